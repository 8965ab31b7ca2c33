// The back office: a manager logs in (POST /api/v1/auth/login) and manages the catalogue
// on this service and orders on the order API, with the token in sessionStorage (gone
// when the tab closes). Text from the APIs only reaches the page as text nodes.
// $, el, money, the route ticket and the toast come from common.js, loaded first.
"use strict";

const main = $("#main");
const orderApi = ($('meta[name="order-api"]').content || "").replace(/\/+$/, "");
const ORDER_STATUSES = ["PENDING", "PROCESSING", "PAID", "FULFILLED", "CANCELLED", "FAILED"];

/** `render`, for a view started now: does nothing once another route has started. */
const current = () => currentView(render);

function render(title, ...children) {
  document.title = `${title} · Back office`;
  main.replaceChildren(el("h1", {}, title), ...children);
}

const toast = (text) => showToast(text, 3000);

const token = () => sessionStorage.getItem("token");

/** One API call with the manager's token: `{ status, body }`; a 401 logs out. */
async function api(method, path, body, base = "") {
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let reply;
  try {
    const response = await fetch(base + path, init);
    const text = await response.text();
    let parsed = null;
    try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
    reply = { status: response.status, body: parsed };
  } catch {
    reply = { status: 0, body: null };
  }
  if (reply.status === 401 && token()) {
    sessionStorage.removeItem("token");
    toast("Your session has ended; please log in again.");
    route();
  }
  return reply;
}

function problemText(reply) {
  if (reply.status === 0) return "The service cannot be reached.";
  return (reply.body && (reply.body.detail || reply.body.message)) || `Request failed (${reply.status}).`;
}

/** Shows each `fieldErrors` entry under its input (`<form>` inputs named as the API's
 * fields); any other error above the form. */
function showErrors(form, reply) {
  for (const p of form.querySelectorAll(".error")) p.textContent = "";
  for (const i of form.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
  const errors = (reply.body && reply.body.fieldErrors) || {};
  let first = null;
  for (const [field, message] of Object.entries(errors)) {
    const input = form.elements[field];
    if (!input) continue;
    $(`#${input.id}-error`).textContent = message;
    input.setAttribute("aria-invalid", "true");
    first = first || input;
  }
  if (first) first.focus();
  else $(".form-error", form).textContent = problemText(reply);
}

function field(prefix, name, label, input) {
  const id = `${prefix}-${name}`;
  input.id = id;
  input.name = name;
  input.setAttribute("aria-describedby", `${id}-error`);
  return el("div", { class: "field" }, el("label", { for: id }, label), input, el("p", { class: "error", id: `${id}-error` }));
}

// ---------------------------------------------------------------- login
function viewLogin() {
  const show = current();
  $("#admin-nav").hidden = true;
  const form = el("form", { class: "stack", id: "login-form" },
    el("p", { class: "error form-error", role: "alert" }),
    field("login", "username", "Username", el("input", { autocomplete: "username", required: true })),
    field("login", "password", "Password", el("input", { type: "password", autocomplete: "current-password", required: true })),
    el("button", { type: "submit" }, "Log in"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const reply = await api("POST", "/api/v1/auth/login", { username: form.elements.username.value, password: form.elements.password.value });
    if (reply.status === 200 && reply.body.accessToken) {
      sessionStorage.setItem("token", reply.body.accessToken);
      go("#/products");
    } else {
      showErrors(form, reply);
    }
  });
  show("Log in", form);
  form.elements.username.focus();
}

// ---------------------------------------------------------------- catalogue
async function categoriesById() {
  const reply = await api("GET", "/api/v1/categories");
  return reply.status === 200 ? reply.body : [];
}

function productForm(categories, product, done) {
  const p = product || {};
  const form = el("form", { class: "stack", id: "product-form" },
    el("h2", {}, product ? `Edit ${p.name}` : "New product"),
    el("p", { class: "error form-error", role: "alert" }),
    product ? null : field("product", "sku", "SKU (A–Z, 0–9, -)", el("input", { value: "" })),
    field("product", "name", "Name", el("input", { value: p.name || "" })),
    field("product", "description", "Description", el("textarea", { rows: 3 }, p.description || "")),
    field("product", "price", "Price", el("input", { type: "number", step: "0.01", min: "0.01", value: p.price ?? "" })),
    field("product", "inventoryQuantity", "Stock", el("input", { type: "number", min: "0", step: "1", value: p.inventoryQuantity ?? "" })),
    field("product", "categoryId", "Category", el("select", {}, categories.map((c) => el("option", { value: c.id, selected: c.id === p.categoryId }, c.name)))),
    el("div", { class: "toolbar" }, el("button", { type: "submit" }, product ? "Save" : "Create"),
      el("button", { type: "button", class: "secondary", onclick: done }, "Cancel")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const v = (name) => (form.elements[name] ? form.elements[name].value.trim() : "");
    const body = {
      name: v("name"), description: v("description") || null, categoryId: v("categoryId") || null,
      price: v("price") === "" ? null : Number(v("price")),
      inventoryQuantity: v("inventoryQuantity") === "" ? null : Number(v("inventoryQuantity")),
    };
    if (!product) body.sku = v("sku");
    const reply = product
      ? await api("PUT", `/api/v1/products/${p.id}`, body)
      : await api("POST", "/api/v1/products", body);
    if (reply.status === 200 || reply.status === 201) { toast("Saved"); done(); } else showErrors(form, reply);
  });
  return form;
}

async function viewProducts(params) {
  const show = current();
  const active = params.get("active") !== "false";
  const page = Math.max(0, parseInt(params.get("page") || "0", 10) || 0);
  const [categories, reply] = await Promise.all([
    categoriesById(),
    api("GET", `/api/v1/products?size=50&page=${page}&isActive=${active}&sortBy=name`),
  ]);
  if (reply.status !== 200) return show("Products", el("p", { class: "notice bad" }, problemText(reply)));
  const editor = el("div", { id: "editor" });
  const reload = () => viewProducts(params);
  const categoryName = (id) => (categories.find((c) => c.id === id) || {}).name || "";
  const rows = reply.body.content.map((p) => {
    const stockId = `stock-${p.sku}`;
    const stock = el("input", { id: stockId, type: "number", min: 0, value: p.inventoryQuantity, class: "stock-input" });
    const saveStock = async () => {
      const r = await api("PUT", `/api/v1/products/${p.id}`, { inventoryQuantity: Number(stock.value) });
      if (r.status === 200) toast(`Stock of ${p.name} is now ${r.body.inventoryQuantity}`);
      else toast(problemText(r));
    };
    return el("tr", { "data-sku": p.sku },
      el("td", {}, p.name, el("br"), el("small", {}, p.sku)),
      el("td", { class: "opt" }, categoryName(p.categoryId)),
      el("td", {}, money.format(p.price)),
      el("td", {}, el("label", { for: stockId, class: "visually-hidden" }, `Stock of ${p.name}`), stock,
        el("button", { type: "button", class: "secondary save-stock", onclick: saveStock }, "Save stock")),
      el("td", {},
        el("button", { type: "button", class: "secondary", onclick: () => { editor.replaceChildren(productForm(categories, p, reload)); editor.scrollIntoView(); } }, "Edit"),
        " ",
        active
          ? el("button", { type: "button", class: "danger", onclick: async () => {
            if (!confirm(`Stop selling ${p.name}?`)) return;
            const r = await api("DELETE", `/api/v1/products/${p.id}`);
            if (r.status === 204) { toast(`${p.name} deactivated`); reload(); } else toast(problemText(r));
          } }, "Deactivate")
          : el("button", { type: "button", class: "secondary", onclick: async () => {
            const r = await api("PUT", `/api/v1/products/${p.id}`, { isActive: true });
            if (r.status === 200) { toast(`${p.name} is for sale again`); reload(); } else toast(problemText(r));
          } }, "Reactivate")));
  });
  const total = reply.body.totalPages;
  show("Products",
    el("div", { class: "toolbar" },
      el("button", { type: "button", id: "new-product", onclick: () => editor.replaceChildren(productForm(categories, null, reload)) }, "New product"),
      el("a", { href: active ? "#/products?active=false" : "#/products" }, active ? "Show deactivated products" : "Show products for sale")),
    editor,
    el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Product"), el("th", { class: "opt" }, "Category"), el("th", {}, "Price"), el("th", {}, "Stock"), el("th", {}, "Actions"))),
      el("tbody", {}, rows)),
    el("nav", { class: "pager", "aria-label": "Pages" },
      page > 0 ? el("a", { href: `#/products?active=${active}&page=${page - 1}` }, "← Previous") : null,
      total ? el("span", {}, `Page ${page + 1} of ${total}`) : null,
      page + 1 < total ? el("a", { href: `#/products?active=${active}&page=${page + 1}` }, "Next →") : null));
}

function categoryForm(category, done) {
  const c = category || {};
  const form = el("form", { class: "stack", id: "category-form" },
    el("h2", {}, category ? `Edit ${c.name}` : "New category"),
    el("p", { class: "error form-error", role: "alert" }),
    field("category", "name", "Name", el("input", { value: c.name || "" })),
    field("category", "description", "Description", el("textarea", { rows: 2 }, c.description || "")),
    el("div", { class: "toolbar" }, el("button", { type: "submit" }, category ? "Save" : "Create"),
      el("button", { type: "button", class: "secondary", onclick: done }, "Cancel")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { name: form.elements.name.value.trim(), description: form.elements.description.value.trim() || null };
    const reply = category ? await api("PUT", `/api/v1/categories/${c.id}`, body) : await api("POST", "/api/v1/categories", body);
    if (reply.status === 200 || reply.status === 201) { toast("Saved"); done(); } else showErrors(form, reply);
  });
  return form;
}

async function viewCategories() {
  const show = current();
  const categories = await categoriesById();
  const editor = el("div", { id: "editor" });
  const reload = () => viewCategories();
  show("Categories",
    el("div", { class: "toolbar" }, el("button", { type: "button", onclick: () => editor.replaceChildren(categoryForm(null, reload)) }, "New category")),
    editor,
    el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", { class: "opt" }, "Description"), el("th", {}, "Actions"))),
      el("tbody", {}, categories.map((c) => el("tr", {},
        el("td", {}, c.name), el("td", { class: "opt" }, c.description || ""),
        el("td", {}, el("button", { type: "button", class: "secondary", onclick: () => editor.replaceChildren(categoryForm(c, reload)) }, "Edit")))))));
}

// ---------------------------------------------------------------- orders
async function viewOrders(params) {
  const show = current();
  const status = ORDER_STATUSES.includes(params.get("status")) ? params.get("status") : "";
  const page = Math.max(0, parseInt(params.get("page") || "0", 10) || 0);
  const query = new URLSearchParams({ page, size: 20 });
  if (status) query.set("status", status);
  const reply = await api("GET", `/api/v1/orders?${query}`, undefined, orderApi);
  const filter = el("select", { id: "status-filter", onchange: (e) => { location.hash = `#/orders?status=${e.target.value}`; } },
    el("option", { value: "" }, "All statuses"),
    ORDER_STATUSES.map((s) => el("option", { value: s, selected: s === status }, s)));
  if (reply.status !== 200) {
    return show("Orders", el("div", { class: "toolbar" }, el("label", { for: "status-filter" }, "Status"), filter), el("p", { class: "notice bad" }, problemText(reply)));
  }
  const reload = () => viewOrders(params);
  const act = async (order, action, body) => {
    const r = await api("POST", `/api/v1/orders/${encodeURIComponent(order.orderNumber)}/${action}`, body, orderApi);
    if (r.status === 200) { toast(`Order ${order.orderNumber} is now ${r.body.status}`); reload(); } else toast(problemText(r));
  };
  const rows = reply.body.content.map((o) => {
    const reasonId = `reason-${o.orderNumber}`;
    const actions = [];
    if (["PENDING", "PROCESSING", "PAID"].includes(o.status)) {
      const reason = el("input", { id: reasonId, value: "Cancelled by the shop", maxlength: 500 });
      actions.push(el("label", { for: reasonId, class: "visually-hidden" }, `Why order ${o.orderNumber} is cancelled`), reason,
        el("button", { type: "button", class: "danger cancel", onclick: () => act(o, "cancel", { reason: reason.value.trim() }) }, "Cancel"));
    }
    if (o.status === "PAID") actions.push(" ", el("button", { type: "button", class: "fulfil", onclick: () => act(o, "fulfill", {}) }, "Fulfil"));
    return el("tr", { "data-order": o.orderNumber },
      el("td", {}, o.orderNumber, el("br"), el("small", {}, o.createdAt.replace("T", " ").slice(0, 16))),
      el("td", { class: "opt" }, o.customerInfo.name, el("br"), el("small", {}, o.customerInfo.email)),
      el("td", {}, money.format(o.subtotal)),
      el("td", {}, el("span", { class: `status ${o.status}` }, o.status)),
      el("td", {}, actions));
  });
  const total = reply.body.totalPages;
  const link = (p) => `#/orders?status=${status}&page=${p}`;
  show("Orders",
    el("div", { class: "toolbar" }, el("label", { for: "status-filter" }, "Status"), filter,
      el("span", {}, `${reply.body.totalElements} orders`)),
    el("table", { id: "orders" }, el("thead", {}, el("tr", {}, el("th", {}, "Order"), el("th", { class: "opt" }, "Customer"), el("th", {}, "Total"), el("th", {}, "Status"), el("th", {}, "Actions"))),
      el("tbody", {}, rows)),
    el("nav", { class: "pager", "aria-label": "Pages" },
      page > 0 ? el("a", { href: link(page - 1) }, "← Previous") : null,
      total ? el("span", {}, `Page ${page + 1} of ${total}`) : null,
      page + 1 < total ? el("a", { href: link(page + 1) }, "Next →") : null));
}

// ---------------------------------------------------------------- operations
/** Sum of every series of `name` in a Prometheus text exposition, or null if absent. */
function metricSum(text, name) {
  if (typeof text !== "string") return null;
  let sum = null;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const series = line.slice(0, line.lastIndexOf(" "));
    if (series === name || series.startsWith(`${name}{`)) sum = (sum || 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

async function viewOperations() {
  const show = current();
  const [counts, customerMetrics, orderMetrics] = await Promise.all([
    Promise.all(ORDER_STATUSES.map((s) => api("GET", `/api/v1/orders?status=${s}&size=1`, undefined, orderApi))),
    api("GET", "/actuator/prometheus"),
    api("GET", "/actuator/prometheus", undefined, orderApi),
  ]);
  const stat = (label, value, id) => el("li", { id }, el("b", {}, value == null ? "–" : value), label);
  // A counter with no series yet (no record was ever dead-lettered) is zero.
  const metric = (reply, name) => (reply.status === 200 ? metricSum(reply.body, name) ?? 0 : null);
  const recent = await api("GET", "/api/v1/orders?size=10", undefined, orderApi);
  show("Operations",
    el("h2", {}, "Orders by status"),
    el("ul", { class: "stats" }, ORDER_STATUSES.map((s, i) => stat(s, counts[i].status === 200 ? counts[i].body.totalElements : null, `count-${s}`))),
    el("h2", {}, "Outboxes and dead letters"),
    el("p", {}, "From each service's /actuator/prometheus: rows waiting to be published, rows that gave up (an operator requeues them), and records sent to a dead-letter topic since the service started."),
    el("ul", { class: "stats" },
      stat("Checkout outbox: pending", metric(customerMetrics, "outbox_pending_rows"), "customer-outbox-pending"),
      stat("Checkout outbox: failed", metric(customerMetrics, "outbox_failed_rows"), "customer-outbox-failed"),
      stat("Stock returns: dead letters", metric(customerMetrics, "dlq_messages_total"), "customer-dlq"),
      stat("Payment outbox: pending", metric(orderMetrics, "outbox_pending_rows"), "order-outbox-pending"),
      stat("Payment outbox: failed", metric(orderMetrics, "outbox_failed_rows"), "order-outbox-failed"),
      stat("Order consumers: dead letters", metric(orderMetrics, "dlq_messages_total"), "order-dlq")),
    el("h2", {}, "Recent orders"),
    recent.status === 200
      ? el("table", {}, el("tbody", {}, recent.body.content.map((o) => el("tr", {}, el("td", {}, o.orderNumber), el("td", {}, o.createdAt.replace("T", " ").slice(0, 16)), el("td", {}, money.format(o.subtotal)), el("td", {}, el("span", { class: `status ${o.status}` }, o.status))))))
      : el("p", { class: "notice bad" }, problemText(recent)));
}

// ---------------------------------------------------------------- router
async function route() {
  routeTicket += 1;
  if (!token()) return viewLogin();
  $("#admin-nav").hidden = false;
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  const view = (path || "/").split("/").filter(Boolean)[0] || "products";
  for (const a of document.querySelectorAll("#admin-nav a")) {
    a.toggleAttribute("aria-current", a.getAttribute("href") === `#/${view}`);
  }
  if (view === "categories") await viewCategories();
  else if (view === "orders") await viewOrders(params);
  else if (view === "operations") await viewOperations();
  else await viewProducts(params);
}

/** Shows `hash`: through the hashchange handler when it changes, else at once (one
 * render either way, so no element a user or a test holds is replaced twice). */
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

$("#logout").addEventListener("click", () => { sessionStorage.removeItem("token"); go("#/"); });
window.addEventListener("hashchange", () => { route(); main.focus({ preventScroll: true }); });
route();

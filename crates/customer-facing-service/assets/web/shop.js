// The storefront: a few views over the public API, switched by the URL's hash so every
// page has an address (#/product/<id>, #/cart, #/order/<number>) and Back works.
// Text from the API only ever reaches the page as text nodes, never as HTML.
// $, el, money, the route ticket and the toast come from common.js, loaded first.
"use strict";

const main = $("#main");
// Where order lookups go: this origin by default; the server fills the meta tag while
// the order API lives on the order service.
const TERMINAL = ["PAID", "FULFILLED", "FAILED", "CANCELLED"];

/** `render`, for a view started now: does nothing once another route has started. */
const current = () => currentView(render);

function render(title, ...children) {
  document.title = title ? `${title} · Shop` : "Shop";
  main.replaceChildren(...children);
}

const toast = (text) => showToast(text, 2500);

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// The cart belongs to this browser: its session id lives in localStorage.
function sessionId() {
  let id = localStorage.getItem("sessionId");
  if (!id) {
    id = randomId();
    localStorage.setItem("sessionId", id);
  }
  return id;
}

/** One API call: `{ status, body }`; body is the parsed JSON or null. Never throws for
 * an HTTP status; a network failure is status 0. */
async function api(method, path, body, headers = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  try {
    const response = await fetch(path, init);
    const text = await response.text();
    let parsed = null;
    try { parsed = text ? JSON.parse(text) : null; } catch { parsed = null; }
    return { status: response.status, body: parsed };
  } catch {
    return { status: 0, body: null };
  }
}

function problemText(reply) {
  if (reply.status === 0) return "The shop cannot be reached. Check your connection and try again.";
  return (reply.body && (reply.body.detail || reply.body.message)) || `Something went wrong (${reply.status}).`;
}

function stockText(quantity) {
  if (quantity <= 0) return el("span", { class: "stock out" }, "Out of stock");
  if (quantity <= 5) return el("span", { class: "stock low" }, `Only ${quantity} left`);
  return el("span", { class: "stock" }, "In stock");
}

// ---------------------------------------------------------------- cart
async function refreshCartCount(cart) {
  if (!cart) {
    const reply = await api("GET", `/api/v1/carts/${sessionId()}`);
    cart = reply.status === 200 ? reply.body : null;
  }
  const count = cart ? cart.items.reduce((n, i) => n + i.quantity, 0) : 0;
  $("#cart-count").textContent = count;
}

async function addToCart(product, quantity, button) {
  if (button) button.disabled = true;
  const reply = await api("POST", `/api/v1/carts/${sessionId()}/items`, { productId: product.id, quantity });
  if (button) button.disabled = false;
  if (reply.status === 200 || reply.status === 201) {
    toast(`${product.name} added to your cart`);
    refreshCartCount(reply.body);
  } else {
    toast(problemText(reply));
  }
}

// ---------------------------------------------------------------- catalogue
let categories = [];

async function loadCategories() {
  const reply = await api("GET", "/api/v1/categories");
  categories = reply.status === 200 ? reply.body : [];
}

function renderCategoryNav(current) {
  const link = (href, label, active) => el("a", { href, "aria-current": active ? "page" : false }, label);
  $("#categories").replaceChildren(
    link("#/", "All products", !current),
    ...categories.map((c) => link(`#/?category=${c.id}`, c.name, current === c.id)),
  );
}

const SORTS = {
  "name-asc": ["name", "asc", "Name A–Z"],
  "price-asc": ["price", "asc", "Price: low to high"],
  "price-desc": ["price", "desc", "Price: high to low"],
  "createdAt-desc": ["createdAt", "desc", "Newest"],
};

function listHash(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const text = q.toString();
  return text ? `#/?${text}` : "#/";
}

async function viewList(params) {
  const show = current();
  const category = params.get("category") || "";
  const search = params.get("q") || "";
  const sort = SORTS[params.get("sort")] ? params.get("sort") : "name-asc";
  const page = Math.max(0, parseInt(params.get("page") || "0", 10) || 0);
  renderCategoryNav(category);
  $("#search").value = search;
  const [sortBy, sortDir] = SORTS[sort];
  const query = new URLSearchParams({ page, size: 12, sortBy, sortDir });
  if (category) query.set("categoryId", category);
  if (search) query.set("search", search);
  const reply = await api("GET", `/api/v1/products?${query}`);
  if (reply.status !== 200) return show("Products", el("p", { class: "notice bad" }, problemText(reply)));
  const result = reply.body;
  const categoryName = (categories.find((c) => c.id === category) || {}).name;
  const title = search ? `Results for “${search}”` : categoryName || "All products";
  const state = { category, q: search, sort };
  const sortSelect = el("select", { id: "sort", onchange: (e) => { location.hash = listHash({ ...state, sort: e.target.value }); } },
    Object.entries(SORTS).map(([key, [, , label]]) => el("option", { value: key, selected: key === sort }, label)));
  const cards = result.content.map((p) => el("li", { class: "card product" },
    el("h2", {}, el("a", { href: `#/product/${p.id}` }, p.name)),
    el("span", { class: "price" }, money.format(p.price)),
    stockText(p.inventoryQuantity),
    el("button", { type: "button", disabled: p.inventoryQuantity <= 0, "aria-label": `Add ${p.name} to cart`,
      onclick: (e) => addToCart(p, 1, e.currentTarget) }, "Add to cart")));
  const pager = el("nav", { class: "pager", "aria-label": "Pages" },
    page > 0 ? el("a", { href: listHash({ ...state, page: page - 1 }), rel: "prev" }, "← Previous") : null,
    el("span", {}, result.totalPages ? `Page ${page + 1} of ${result.totalPages}` : ""),
    page + 1 < result.totalPages ? el("a", { href: listHash({ ...state, page: page + 1 }), rel: "next" }, "Next →") : null);
  show(title,
    el("h1", {}, title),
    el("div", { class: "toolbar" },
      el("span", { id: "result-count" }, `${result.totalElements} product${result.totalElements === 1 ? "" : "s"}`),
      el("label", { for: "sort" }, "Sort by"), sortSelect),
    cards.length ? el("ul", { class: "grid", id: "products" }, cards) : el("p", {}, "No products found."),
    pager);
}

async function viewProduct(id) {
  const show = current();
  renderCategoryNav("");
  const reply = await api("GET", `/api/v1/products/${encodeURIComponent(id)}`);
  if (reply.status !== 200) return show("Product", el("p", { class: "notice bad" }, problemText(reply)));
  const p = reply.body;
  const available = p.isActive && p.inventoryQuantity > 0;
  const quantity = el("input", { id: "quantity", type: "number", min: 1, max: Math.max(1, p.inventoryQuantity), value: 1, inputmode: "numeric" });
  show(p.name,
    el("p", {}, el("a", { href: "#/" }, "← All products")),
    el("article", { class: "card" },
      el("h1", {}, p.name),
      el("p", {}, p.description || ""),
      el("span", { class: "price" }, money.format(p.price)),
      p.isActive ? stockText(p.inventoryQuantity) : el("span", { class: "stock out" }, "No longer sold"),
      el("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); addToCart(p, parseInt(quantity.value, 10) || 1, $("#add", e.target)); } },
        el("label", { for: "quantity" }, "Quantity"), quantity,
        el("button", { id: "add", type: "submit", disabled: !available }, "Add to cart"))));
}

// ---------------------------------------------------------------- cart page
async function viewCart() {
  const show = current();
  renderCategoryNav("");
  const mine = routeTicket;
  const reply = await api("GET", `/api/v1/carts/${sessionId()}`);
  if (reply.status !== 200) return show("Cart", el("p", { class: "notice bad" }, problemText(reply)));
  if (mine === routeTicket) renderCart(reply.body);
}

function renderCart(cart) {
  const show = current();
  refreshCartCount(cart);
  if (!cart.items.length) {
    return show("Cart", el("h1", {}, "Your cart"), el("p", {}, "Your cart is empty. ", el("a", { href: "#/" }, "Browse products")));
  }
  const change = async (item, quantity) => {
    const reply = quantity > 0
      ? await api("PUT", `/api/v1/carts/${sessionId()}/items/${item.id}`, { quantity })
      : await api("DELETE", `/api/v1/carts/${sessionId()}/items/${item.id}`);
    if (reply.status === 200 && reply.body) renderCart(reply.body);
    else if (reply.status === 204) viewCart();
    else { toast(problemText(reply)); viewCart(); }
  };
  const rows = cart.items.map((item) => {
    const id = `qty-${item.id}`;
    return el("tr", { "data-product": item.productSku },
      el("td", {}, item.productName),
      el("td", { class: "opt" }, money.format(item.priceSnapshot)),
      el("td", {}, el("label", { for: id, class: "visually-hidden" }, `Quantity of ${item.productName}`),
        el("input", { id, class: "quantity", type: "number", min: 1, value: item.quantity, inputmode: "numeric",
          // A blank box is a customer still typing, not a removal.
          onchange: (e) => { const q = parseInt(e.target.value, 10); if (!Number.isNaN(q)) change(item, q); } })),
      el("td", {}, money.format(item.subtotal)),
      el("td", {}, el("button", { type: "button", class: "secondary remove", "aria-label": `Remove ${item.productName}`, onclick: () => change(item, 0) }, "Remove")));
  });
  show("Cart",
    el("h1", {}, "Your cart"),
    el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Product"), el("th", { class: "opt" }, "Price"), el("th", {}, "Quantity"), el("th", {}, "Subtotal"), el("th", {}, el("span", { class: "visually-hidden" }, "Actions")))),
      el("tbody", {}, rows)),
    el("p", { class: "total" }, "Total: ", el("span", { id: "cart-total" }, money.format(cart.subtotal))),
    el("p", { class: "total" }, el("a", { class: "button", href: "#/checkout", id: "to-checkout" }, "Checkout")));
}

// ---------------------------------------------------------------- checkout
const CHECKOUT_FIELDS = [
  ["customerInfo.name", "Full name", "text", "name"],
  ["customerInfo.email", "Email", "email", "email"],
  ["customerInfo.phone", "Phone (10–20 digits, optionally starting with +)", "tel", "tel"],
  ["customerInfo.shippingAddress.street", "Street", "text", "street-address"],
  ["customerInfo.shippingAddress.city", "City", "text", "address-level2"],
  ["customerInfo.shippingAddress.state", "State or region", "text", "address-level1"],
  ["customerInfo.shippingAddress.postalCode", "Postal code", "text", "postal-code"],
  ["customerInfo.shippingAddress.country", "Country", "text", "country-name"],
];
const fieldId = (name) => name.replace(/\./g, "-");

async function viewCheckout() {
  const show = current();
  renderCategoryNav("");
  const reply = await api("GET", `/api/v1/carts/${sessionId()}`);
  if (reply.status === 200 && !reply.body.items.length) {
    return show("Checkout", el("h1", {}, "Checkout"), el("p", {}, "Your cart is empty. ", el("a", { href: "#/" }, "Browse products")));
  }
  // One key per checkout attempt: a double click or a retry after a lost answer sends
  // the same key, so the server places the order at most once.
  let key = randomId();
  const saved = JSON.parse(sessionStorage.getItem("checkoutForm") || "{}");
  const form = el("form", { class: "stack", id: "checkout-form", novalidate: true },
    el("h1", {}, "Checkout"),
    el("p", {}, "Total: ", el("b", {}, reply.status === 200 ? money.format(reply.body.subtotal) : "")),
    el("div", { id: "form-error", class: "error", role: "alert" }),
    CHECKOUT_FIELDS.map(([name, label, type, autocomplete]) => el("div", { class: "field" },
      el("label", { for: fieldId(name) }, label),
      el("input", { id: fieldId(name), name, type, autocomplete, value: saved[name] || "", "aria-describedby": `${fieldId(name)}-error` }),
      el("p", { class: "error", id: `${fieldId(name)}-error` }))),
    el("button", { type: "submit", id: "place-order" }, "Place order"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = $("#place-order");
    if (button.disabled) return;
    const value = (name) => form.elements[name].value.trim();
    const values = Object.fromEntries(CHECKOUT_FIELDS.map(([name]) => [name, value(name)]));
    sessionStorage.setItem("checkoutForm", JSON.stringify(values));
    const body = {
      sessionId: sessionId(),
      customerInfo: {
        name: values["customerInfo.name"], email: values["customerInfo.email"], phone: values["customerInfo.phone"],
        shippingAddress: {
          street: values["customerInfo.shippingAddress.street"], city: values["customerInfo.shippingAddress.city"],
          state: values["customerInfo.shippingAddress.state"], postalCode: values["customerInfo.shippingAddress.postalCode"],
          country: values["customerInfo.shippingAddress.country"],
        },
      },
    };
    for (const [name] of CHECKOUT_FIELDS) {
      $(`#${fieldId(name)}-error`).textContent = "";
      form.elements[name].removeAttribute("aria-invalid");
    }
    $("#form-error").textContent = "";
    button.disabled = true;
    button.textContent = "Placing order…";
    let reply;
    // A duplicate still in flight (409 without an order) or a lost answer: same key again.
    for (let attempt = 0; attempt < 5; attempt++) {
      reply = await api("POST", "/api/v1/checkout", body, { "Idempotency-Key": key });
      const inFlight = reply.status === 409 && reply.body && /\/conflict$/.test(reply.body.type || "");
      if (reply.status !== 0 && reply.status < 500 && reply.status !== 429 && !inFlight) break;
      await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
    }
    button.disabled = false;
    button.textContent = "Place order";
    if (reply.status === 201 && reply.body.orderNumber) {
      sessionStorage.removeItem("checkoutForm");
      sessionStorage.setItem(`order:${reply.body.orderNumber}`, body.customerInfo.email);
      refreshCartCount();
      location.hash = `#/order/${encodeURIComponent(reply.body.orderNumber)}?new=1`;
      return;
    }
    // The server answered and placed nothing: the next attempt is a new one.
    if (reply.status >= 400 && reply.status < 500) key = randomId();
    const errors = (reply.body && reply.body.fieldErrors) || {};
    let first = null;
    for (const [field, message] of Object.entries(errors)) {
      const known = CHECKOUT_FIELDS.find(([name]) => name === field);
      if (!known) continue;
      $(`#${fieldId(field)}-error`).textContent = message;
      form.elements[field].setAttribute("aria-invalid", "true");
      first = first || form.elements[field];
    }
    if (first) first.focus();
    else $("#form-error").textContent = problemText(reply);
  });
  show("Checkout", form);
}

// ---------------------------------------------------------------- order tracking
function orderEmail(number) {
  return sessionStorage.getItem(`order:${number}`) || "";
}

async function viewOrder(number, params) {
  const show = current();
  renderCategoryNav("");
  const email = params.get("email") || orderEmail(number);
  const status = el("span", { id: "order-status", class: "status PENDING" }, "PENDING");
  const explanation = el("p", { id: "order-explanation" }, "We have your order and are taking the payment.");
  const details = el("div", { id: "order-details" });
  show(`Order ${number}`,
    params.get("new") ? el("p", { class: "notice", id: "confirmation" }, "Thank you! Your order has been placed.") : null,
    el("h1", {}, "Order ", el("span", { id: "order-number" }, number)),
    el("p", {}, "Status: ", status),
    explanation,
    details);
  const headers = email ? { "X-Customer-Email": email } : {};
  const here = location.hash;
  for (let wait = 1000; location.hash === here; wait = Math.min(wait * 1.5, 5000)) {
    const reply = await api("GET", `/api/v1/orders/${encodeURIComponent(number)}`, undefined, headers);
    if (location.hash !== here) return;
    if (reply.status === 200) {
      const order = reply.body;
      status.textContent = order.status;
      status.className = `status ${order.status}`;
      explanation.textContent = {
        PENDING: "We have your order and are taking the payment.",
        PROCESSING: "We are taking the payment.",
        PAID: "Paid. We are preparing your order.",
        FULFILLED: "Shipped.",
        FAILED: "The payment was declined. Nothing was charged; please try again with another payment.",
        CANCELLED: "This order was cancelled.",
      }[order.status] || "";
      details.replaceChildren(
        el("table", {}, el("tbody", {}, order.items.map((i) => el("tr", {}, el("td", {}, i.productName), el("td", {}, `× ${i.quantity}`), el("td", {}, money.format(i.subtotal)))))),
        el("p", { class: "total" }, "Total: ", money.format(order.subtotal)),
        el("p", {}, `For ${order.customerInfo.name}, ${order.customerInfo.email}`));
      if (TERMINAL.includes(order.status)) return;
    } else if (reply.status !== 404 && reply.status !== 0 && reply.status !== 429) {
      explanation.textContent = problemText(reply);
      return;
    }
    // 429: this address has looked up too many orders for now; the next poll, later, gets through.
    await new Promise((r) => setTimeout(r, reply.status === 429 ? 5000 : wait));
  }
}

function viewTrack() {
  const show = current();
  renderCategoryNav("");
  const form = el("form", { class: "stack", id: "track-form" },
    el("h1", {}, "Track an order"),
    el("div", { class: "field" }, el("label", { for: "track-number" }, "Order number"), el("input", { id: "track-number", required: true })),
    el("div", { class: "field" }, el("label", { for: "track-email" }, "Email used for the order (optional, shows the details)"), el("input", { id: "track-email", type: "email" })),
    el("button", { type: "submit" }, "Track"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const number = $("#track-number").value.trim();
    const email = $("#track-email").value.trim();
    if (email) sessionStorage.setItem(`order:${number}`, email);
    if (number) location.hash = `#/order/${encodeURIComponent(number)}`;
  });
  show("Track an order", form);
}

// ---------------------------------------------------------------- router
async function route() {
  routeTicket += 1;
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  const parts = (path || "/").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts.length) $("#search").value = "";
  if (parts[0] === "product" && parts[1]) await viewProduct(parts[1]);
  else if (parts[0] === "cart") await viewCart();
  else if (parts[0] === "checkout") await viewCheckout();
  else if (parts[0] === "order" && parts[1]) await viewOrder(parts[1], params);
  else if (parts[0] === "track") viewTrack();
  else await viewList(params);
}

$("#search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  location.hash = listHash({ q: $("#search").value.trim() });
});
window.addEventListener("hashchange", () => { route(); main.focus({ preventScroll: true }); });
loadCategories().then(route);
refreshCartCount();

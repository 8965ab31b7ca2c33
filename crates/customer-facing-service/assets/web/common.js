// What the storefront (shop.js) and the back office (admin.js) share: DOM helpers, the
// money format, the route ticket that keeps a late view from painting over a newer one,
// and the toast. Each page loads it before its own script; both are classic scripts, so
// these names are globals of the page.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const money = new Intl.NumberFormat(undefined, { style: "currency", currency: "USD" });

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value == null) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child != null) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// Each route() is a new ticket; a view that was still loading when the customer moved
// on (an older ticket) must not paint over the newer one.
let routeTicket = 0;

/** `render`, for a view started now: does nothing once another route has started. */
function currentView(render) {
  const mine = routeTicket;
  return (...args) => { if (mine === routeTicket) render(...args); };
}

/** Shows `text` in the page's #toast for `ms` milliseconds. */
function showToast(text, ms) {
  const t = $("#toast");
  t.textContent = text;
  t.classList.add("show");
  clearTimeout(showToast.timer);
  showToast.timer = setTimeout(() => t.classList.remove("show"), ms);
}

// The console's only script of its own (no inline scripts: the Content-Security-Policy forbids them).
// Loaded before htmx and Alpine (all deferred, so in order).
"use strict";

document.documentElement.classList.add("js");

// htmx sends the CSRF token of the page (the <meta name="csrf-token">) on every request that
// writes; the server refuses cookie-authenticated writes without it.
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && event.detail.verb !== "get") {
    event.detail.headers["X-CSRF-Token"] = meta.getAttribute("content");
  }
});

// Alpine components (the CSP build evaluates no code from attributes: templates name these).
document.addEventListener("alpine:init", function () {
  // the side menu's toggle on narrow screens
  window.Alpine.data("menu", function () {
    return {
      open: false,
      toggle: function () { this.open = !this.open; },
      get navClass() { return this.open ? "open" : ""; },
    };
  });
});

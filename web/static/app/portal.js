// The member portal: the member code's countdown (htmx swaps in the next code when it reaches 0).
// No inline scripts (strict CSP): this file is the portal's only script besides htmx.
"use strict";
(function () {
  function tick() {
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var left = parseInt(el.textContent, 10);
      if (left > 0) el.textContent = String(left - 1);
    });
  }
  window.setInterval(tick, 1000);
})();

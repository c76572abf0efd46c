// Copy buttons: <button data-copy="input-id" data-copied="Copied"> copies that input's value (a new
// POS client's secret). Event delegation, so buttons htmx swaps in work too; no inline scripts (CSP).
"use strict";

document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) {
    return;
  }
  var input = document.getElementById(button.getAttribute("data-copy"));
  if (!input) {
    return;
  }
  input.select();
  var done = function () {
    button.textContent = button.getAttribute("data-copied") || button.textContent;
  };
  var fallback = function () {
    if (document.execCommand("copy")) {
      done();
    }
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(input.value).then(done, fallback);
  } else {
    fallback();
  }
});

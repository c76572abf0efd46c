// The web till's keyboard flow (loaded by the till page only; no inline scripts: CSP).
// After a member is found or enrolled, typing goes on in the amount field; after a sale, the next
// customer starts at the find box (a scanner can fire straight away).
"use strict";

document.addEventListener("htmx:afterSettle", function (event) {
  var path = (event.detail.pathInfo && event.detail.pathInfo.requestPath) || "";
  var focus = null;
  if (/\/console\/till\/(find|enrol)$/.test(path) &&
      document.querySelector("#find-area [data-member], #find-area [data-newcomer]")) {
    focus = document.getElementById("f-amount");
  } else if (/\/console\/till\/work$/.test(path)) {
    focus = document.getElementById("f-q");
  }
  if (focus) {
    focus.focus();
  }
});

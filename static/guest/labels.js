/* Printable QR labels: the Print button. */
document.querySelectorAll("[data-action=print]").forEach(function (button) {
  "use strict";
  button.addEventListener("click", function () { window.print(); });
});

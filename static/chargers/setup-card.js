/* The setup card's Print button (the CSP allows no inline handlers). */
(function () {
  "use strict";
  var button = document.getElementById("print-card");
  if (button) { button.addEventListener("click", function () { window.print(); }); }
}());

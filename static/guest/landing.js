/* Guest landing page: one press of "Continue to payment" only (the start can take a while). */
(function () {
  "use strict";
  var form = document.getElementById("start-form");
  if (!form) return;
  form.addEventListener("submit", function () {
    var button = document.getElementById("pay-start");
    button.disabled = true;
    button.textContent = "One moment…";
  });
})();

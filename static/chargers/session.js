/* Session page: while the session charges, refresh the meter card (curve, kWh, kW, price) every
   10 s from the server. Stops once the server says the session is over. Without this script the
   page shows the values of its load. */
(function () {
  "use strict";
  var INTERVAL_MS = 10000;
  var refresh = function () {
    var card = document.getElementById("session-meter");
    if (!card || card.getAttribute("data-live") !== "1") { return; }
    fetch(card.getAttribute("data-url"), {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html) { card.outerHTML = html; }
      })
      .catch(function () { /* the next tick tries again */ })
      .then(function () { window.setTimeout(refresh, INTERVAL_MS); });
  };
  window.setTimeout(refresh, INTERVAL_MS);
}());

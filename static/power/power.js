/* Power page: refresh the live allocation card (limits, draw, chart) every 5 s from the server.
   Without this script the page shows the values of its load. */
(function () {
  "use strict";
  var INTERVAL_MS = 5000;
  var refresh = function () {
    var card = document.getElementById("power-live");
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

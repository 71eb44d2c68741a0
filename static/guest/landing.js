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

/* All ports in use: ask the server every 20 s (its own small rate-limit bucket, never the
 * page lookups') and reload into the start form once a port is free. */
(function () {
  "use strict";
  var busy = document.getElementById("busy");
  if (!busy) return;
  var url = busy.dataset.portsUrl;
  var every = 20000;
  function check() {
    if (document.hidden) return setTimeout(check, every);
    fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) {
        if (state && state.any_free) { window.location.reload(); return; }
        setTimeout(check, every);
      })
      .catch(function () { setTimeout(check, every); });
  }
  setTimeout(check, every);
})();

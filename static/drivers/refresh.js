// Sessions on other networks: while a start or a session is in progress (data-refresh), the
// "Now" section and the list are fetched again every 10 s and replaced in place (aria-live).
(function () {
  "use strict";
  function refresh() {
    var now = document.getElementById("roaming-now");
    if (!now || !now.hasAttribute("data-refresh")) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        ["roaming-now", "roaming-sessions"].forEach(function (id) {
          var fresh = doc.getElementById(id);
          var old = document.getElementById(id);
          if (!fresh || !old) return;
          old.innerHTML = fresh.innerHTML;
          if (fresh.hasAttribute("data-refresh")) old.setAttribute("data-refresh", "");
          else old.removeAttribute("data-refresh");
        });
      })
      .catch(function () {})
      .then(function () { window.setTimeout(refresh, 10000); });
  }
  window.setTimeout(refresh, 10000);
})();

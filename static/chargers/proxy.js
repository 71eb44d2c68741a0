/* Chargers > View > Proxy: refresh each backoffice's connection state every 5 s. */
(function () {
  "use strict";
  var table = document.getElementById("proxy-table");
  if (!table || !window.fetch) return;
  var labels = { connected: ["badge-ok", "Connected"], connecting: ["badge-warn", "Connecting…"], disconnected: ["badge-bad", "Disconnected"] };
  function render(cell, row) {
    var label = labels[row.status] || labels.disconnected;
    var badge = document.createElement("span");
    badge.className = "badge " + label[0];
    badge.textContent = label[1];
    cell.replaceChildren(badge);
    if (row.last_error) {
      var error = document.createElement("span");
      error.className = "small bad-text";
      error.textContent = row.last_error;
      cell.append(document.createElement("br"), error);
    }
    if (row.dropped_text) {
      var dropped = document.createElement("span");
      dropped.className = "small bad-text js-dropped";
      dropped.textContent = row.dropped_text;
      cell.append(document.createElement("br"), dropped);
    }
  }
  function refresh() {
    fetch(table.getAttribute("data-state-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        data.rows.forEach(function (row) {
          var tr = table.querySelector('tr[data-row="' + (row.id === null ? "self" : row.id) + '"]');
          if (!tr) return;
          var state = tr.querySelector(".js-status");
          var key = row.status + row.last_error + (row.dropped_text || "");
          if (state && state.getAttribute("data-status") !== key) {
            state.setAttribute("data-status", key);
            render(state, row);
          }
          var last = tr.querySelector(".js-last");
          if (last && row.last_message_text) last.textContent = row.last_message_text;
        });
      })
      .catch(function () {});
  }
  setInterval(refresh, 5000);
})();

/* Payouts > Statements: progress bars of the CSV jobs, refreshed until each is done. */
(function () {
  "use strict";

  function show(row, percent) {
    row.querySelector(".progress span").style.width = percent + "%";
    row.querySelector(".progress").setAttribute("aria-valuenow", percent);
  }

  function poll(row) {
    fetch(row.dataset.progressUrl, {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (data) {
        show(row, data.percent);
        row.querySelector(".job-text").textContent = data.status === "failed" ? "Failed: " + data.error
          : data.processed + " / " + data.total + " rows · " + data.status;
        if (data.download) {
          var a = document.createElement("a"); a.href = data.download; a.textContent = "Download CSV";
          row.querySelector(".job-link").replaceChildren(a);
        } else if (data.status !== "failed") { setTimeout(function () { poll(row); }, 1500); }
      });
  }

  document.querySelectorAll("tr[data-job]").forEach(function (row) {
    show(row, row.querySelector(".progress").getAttribute("aria-valuenow") || 0);
    if (row.dataset.status === "queued" || row.dataset.status === "running") { poll(row); }
  });
})();

/* Host portal: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";

  // Commands: show only the fields the chosen command needs; show progress while waiting.
  var commandForm = document.getElementById("command-form");
  if (commandForm) {
    var action = commandForm.querySelector("[name=action]");
    var sync = function () {
      commandForm.querySelectorAll("[data-for]").forEach(function (el) {
        el.hidden = el.getAttribute("data-for").split(" ").indexOf(action.value) < 0;
      });
    };
    action.addEventListener("change", sync);
    sync();
    commandForm.addEventListener("submit", function () {
      var button = commandForm.querySelector("button[type=submit]");
      var progress = document.getElementById("command-progress");
      var timeout = parseFloat(commandForm.getAttribute("data-timeout") || "30") * 1000;
      button.disabled = true;
      progress.hidden = false;
      var bar = progress.querySelector(".progress span");
      var start = Date.now();
      setInterval(function () {
        var f = Math.min((Date.now() - start) / timeout, 1);
        bar.style.width = Math.round(f * 100) + "%";
      }, 200);
    });
  }

  // Forms that change something important ask first.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (!window.confirm(form.getAttribute("data-confirm"))) ev.preventDefault();
    });
  });

  // Chargers > View > Logs: new frames appear without reload.
  var log = document.getElementById("log-entries");
  if (log && log.getAttribute("data-live")) {
    var live = document.getElementById("live");
    var liveText = live.querySelector(".text");
    var latest = parseInt(log.getAttribute("data-latest-id") || "0", 10);
    var filters = JSON.parse(log.getAttribute("data-filters") || "{}");
    var fetching = false, again = false, delay = 1000, lastPush = Date.now();
    // Pushes are best effort on the server; a quiet spell gets one cheap catch-up fetch.
    setInterval(function () {
      if (live.classList.contains("on") && Date.now() - lastPush > 15000) { lastPush = Date.now(); refresh(); }
    }, 5000);

    var setLive = function (on, text) {
      live.classList.toggle("on", on);
      liveText.textContent = text;
    };

    var refresh = function () {
      if (fetching) { again = true; return; }
      fetching = true;
      var params = new URLSearchParams(filters);
      params.set("after", String(latest));
      params.set("back", log.getAttribute("data-back") || "");
      fetch(log.getAttribute("data-fragment-url") + "?" + params.toString(), {credentials: "same-origin"})
        .then(function (r) {
          if (!r.ok) throw new Error("HTTP " + r.status);
          var header = parseInt(r.headers.get("X-Latest-Id") || "0", 10);
          if (r.headers.get("X-More")) again = true;
          return r.text().then(function (html) { return [html, header]; });
        })
        .then(function (result) {
          var tpl = document.createElement("template");
          tpl.innerHTML = result[0];
          var fresh = Array.prototype.slice.call(tpl.content.querySelectorAll("details.log-entry"));
          fresh.reverse().forEach(function (el) {
            var old = log.querySelector('details.log-entry[data-key="' + CSS.escape(el.getAttribute("data-key")) + '"]');
            if (old) { el.open = old.open; old.replaceWith(el); }
            else { el.classList.add("new"); log.insertBefore(el, log.firstChild); }
          });
          if (fresh.length) {
            var empty = document.getElementById("log-empty");
            if (empty) empty.remove();
          }
          latest = Math.max(latest, result[1]);
        })
        .catch(function () { /* the next push or reconnect retries */ })
        .then(function () {
          fetching = false;
          if (again) { again = false; refresh(); }
        });
    };

    var connect = function () {
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var ws = new WebSocket(scheme + location.host + "/ws/chargers/" + encodeURIComponent(log.getAttribute("data-station")) + "/logs/");
      ws.onopen = function () {
        delay = 1000;
        setLive(true, "Live: new messages appear automatically");
        refresh();
        // The server learns that this tab watches within a couple of seconds; catch up once after.
        setTimeout(refresh, 3000);
      };
      ws.onmessage = function () { lastPush = Date.now(); refresh(); };
      ws.onclose = function () {
        setLive(false, "Live updates paused, reconnecting…");
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      };
    };
    connect();
  }

  // Lists with live status (chargers): refresh the rows while the page is visible.
  document.querySelectorAll("table[data-refresh]").forEach(function (table) {
    var every = parseInt(table.getAttribute("data-refresh"), 10) * 1000;
    setInterval(function () {
      if (document.visibilityState !== "visible") return;
      fetch(location.href, {credentials: "same-origin"}).then(function (r) {
        return r.ok ? r.text() : Promise.reject(new Error("HTTP " + r.status));
      }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("#" + table.id + " tbody");
        if (fresh) table.querySelector("tbody").replaceWith(fresh);
      }).catch(function () { /* keep the last rows; the next tick retries */ });
    }, every);
  });

  // CSV exports: stream with a progress bar, then save.
  document.querySelectorAll("a[data-export]").forEach(function (link) {
    link.addEventListener("click", function (ev) {
      if (!window.fetch || !window.ReadableStream) return;
      ev.preventDefault();
      var box = document.getElementById(link.getAttribute("data-export"));
      var bar = box.querySelector(".progress span");
      var text = box.querySelector(".text");
      box.hidden = false;
      link.setAttribute("aria-disabled", "true");
      fetch(link.href, {credentials: "same-origin"}).then(function (r) {
        if (!r.ok) throw new Error("The export failed (HTTP " + r.status + ").");
        var total = parseInt(r.headers.get("X-Total-Rows") || "0", 10);
        var name = (r.headers.get("Content-Disposition") || "").replace(/.*filename="([^"]+)".*/, "$1") || "export.csv";
        var reader = r.body.getReader(), chunks = [], lines = 0;
        var pump = function () {
          return reader.read().then(function (step) {
            if (step.done) return;
            chunks.push(step.value);
            for (var i = 0; i < step.value.length; i++) if (step.value[i] === 10) lines++;
            var done = Math.max(lines - 1, 0);
            bar.style.width = (total ? Math.min(100, Math.round(done * 100 / total)) : 50) + "%";
            text.textContent = done + " of " + total + " sessions exported…";
            return pump();
          });
        };
        return pump().then(function () {
          bar.style.width = "100%";
          text.textContent = "Done: " + total + " sessions.";
          var url = URL.createObjectURL(new Blob(chunks, {type: "text/csv"}));
          var a = document.createElement("a");
          a.href = url; a.download = name; document.body.appendChild(a); a.click(); a.remove();
          setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
        });
      }).catch(function (err) {
        text.textContent = err.message;
      }).then(function () { link.removeAttribute("aria-disabled"); });
    });
  });
})();

/* Guest session page: follows the charger live over a websocket (no polling). */
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) return;
  var $ = function (id) { return document.getElementById(id); };
  var state = live.dataset.state;
  var deadline = null;
  var retry = 1000;
  var ws;

  function show(id, visible) { var el = $(id); if (el) el.hidden = !visible; }
  function setStatus(status, label) {
    var el = $("status");
    if (state === "finished" || state === "failed") {
      // This session is over: the port's next state belongs to the next guest.
      el.className = "status";
      el.textContent = "Session ended";
      return;
    }
    el.className = "status " + (status || "");
    el.textContent = label || status || "–";
    if (state === "charging") {
      // Available/Finishing after charging: the session is ending; the receipt state follows.
      $("state-label").textContent = (status === "Available" || status === "Finishing") ? "Session ending – preparing your receipt" : (label || "Charging");
    }
  }
  // Elapsed time counts on in the page between the server's snapshots (its seconds, not the
  // phone's clock); the same words as the portal: "50 s", "7 min", "1 h 05 min".
  var elapsedBase = null, elapsedAt = 0, running = false;
  function durationText(seconds) {
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60);
    if (h) return h + " h " + (m < 10 ? "0" : "") + m + " min";
    if (m) return m + " min";
    return seconds + " s";
  }
  function elapsedTick() {
    if (elapsedBase === null) return;
    var seconds = elapsedBase + (running ? Math.floor((Date.now() - elapsedAt) / 1000) : 0);
    $("elapsed").textContent = durationText(seconds);
  }
  function setElapsed(seconds, isRunning) {
    if (seconds === null || seconds === undefined) return;
    elapsedBase = seconds; elapsedAt = Date.now(); running = !!isRunning;
    elapsedTick();
  }
  function setCost(cost, isRunning) {
    if (cost === undefined) return;
    $("cost").textContent = cost || "";
    $("cost-label").textContent = isRunning ? "Cost so far" : "Cost";
    show("cost-cell", !!cost);
    show("cost-note", !!cost && isRunning);
  }
  var elapsedNode = $("elapsed");
  if (elapsedNode && elapsedNode.dataset.elapsed) {
    setElapsed(parseInt(elapsedNode.dataset.elapsed, 10), elapsedNode.dataset.running === "1");
  }
  setInterval(function () { if (running && state === "charging") elapsedTick(); }, 1000);
  function tick() {
    if (deadline === null || state !== "starting") return;
    var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    $("seconds-left").textContent = left;
    if (left > 0) setTimeout(tick, 1000);
  }
  function apply(s) {
    state = s.state;
    live.dataset.state = state;
    $("state-label").textContent = s.headline || s.state_label;
    setStatus(s.status, s.status_label);
    if (s.kw !== null && s.kw !== undefined) $("kw").textContent = s.kw;
    if (state !== "charging") $("kw").textContent = "–";
    if (s.kwh !== null && s.kwh !== undefined) $("kwh").textContent = s.kwh;
    if (s.no_reading) $("kwh").textContent = "–";
    show("no-reading", !!s.no_reading);
    setElapsed(s.elapsed_s, s.running);
    setCost(s.cost, s.running);
    var power = $("power-allowed");
    if (power) {
      power.textContent = s.power || "";
      power.className = s.power_waiting ? "notice" : "muted";
      show("power-allowed", !!s.power);
    }
    show("waiting", state === "starting");
    show("meters", state === "charging" || state === "finished");
    $("failure").textContent = s.failure || "";
    show("failure", !!s.failure);
    $("finish-note").textContent = s.note || "";
    show("finish-note", !!s.note);
    show("stop-form", !!s.can_stop);
    $("stop-btn").textContent = state === "charging" ? (s.stop_requested ? "Stopping…" : "Stop charging") : "Cancel";
    var receipt = $("receipt-link");
    if (s.receipt_url) receipt.href = s.receipt_url;
    receipt.textContent = state === "failed" ? "Details" : "View receipt";
    show("receipt-link", state === "finished" || state === "failed");
    if (state === "starting" && s.seconds_left !== null) { deadline = Date.now() + s.seconds_left * 1000; tick(); }
  }
  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(scheme + location.host + live.dataset.ws);
    ws.onopen = function () { retry = 1000; show("conn-note", false); };
    ws.onmessage = function (e) {
      var m = JSON.parse(e.data);
      if (m.type === "state") apply(m);
      else if (m.type === "status") setStatus(m.status, m.status_label);
      else if (m.type === "meter") {
        if (m.kw !== null) $("kw").textContent = m.kw;
        if (m.kwh !== null) $("kwh").textContent = m.kwh;
        if (m.cost !== undefined) setCost(m.cost, true);
      }
    };
    ws.onclose = function () {
      if (state === "finished" || state === "failed") return;
      show("conn-note", true);
      setTimeout(connect, retry);  // reconnect after a dropped socket, backing off
      retry = Math.min(retry * 2, 30000);
    };
  }
  document.getElementById("stop-form").addEventListener("submit", function (ev) {
    // Stopping a running charge asks once; cancelling before it started does not.
    var form = ev.currentTarget;
    if (state === "charging" && !window.confirm(form.getAttribute("data-confirm-stop"))) {
      ev.preventDefault();
      return;
    }
    $("stop-btn").disabled = true; $("stop-btn").textContent = "Stopping…";
  });
  connect();
})();

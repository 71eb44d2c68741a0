/* Start charging: scan the charger's QR code with the browser's camera (issue 51 item 6).
 *
 * Uses the browser's own BarcodeDetector (no library, nothing loaded from elsewhere); where the
 * browser has none, or no camera, the button stays hidden and the Station ID field is the way.
 * A label's code is https://<site>/s/<station id>: only the station id is taken from it and sent
 * through the same Station ID lookup as typing it, so a code pointing anywhere else is refused
 * here and never opened. */
(function () {
  "use strict";
  var form = document.getElementById("start-form");
  var button = document.getElementById("scan-start");
  var panel = document.getElementById("scan-panel");
  if (!form || !button || !panel) return;
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices ||
      !navigator.mediaDevices.getUserMedia) return;

  var video = document.getElementById("scan-video");
  var status = document.getElementById("scan-status");
  var cancel = document.getElementById("scan-cancel");
  var input = document.getElementById("start-station-id");
  var stream = null;
  var timer = null;

  /* The station id a scanned text names, or null. A charger's label: a URL whose path is
   * /s/<station id>; a code holding only an id (printed by some makers): the text itself. */
  function stationId(text) {
    var value = (text || "").trim();
    if (!value) return null;
    if (/^[a-z][a-z0-9+.-]*:/i.test(value)) {
      var url;
      try { url = new URL(value); } catch (e) { return null; }
      var match = /^\/s\/([^/]+)\/?$/.exec(url.pathname);
      if (!match) return null;
      try { return decodeURIComponent(match[1]); } catch (e) { return null; }
    }
    return value.length <= 100 && !/\s/.test(value) ? value : null;
  }

  function stop() {
    if (timer) { clearTimeout(timer); timer = null; }
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    video.srcObject = null;
    panel.hidden = true;
    button.hidden = false;
  }

  function say(text) { status.textContent = text; }

  function found(id) {
    stop();
    input.value = id;
    say("Found " + id + ". Opening its page…");
    form.submit();
  }

  function look(detector) {
    if (!stream) return;
    detector.detect(video).then(function (codes) {
      for (var i = 0; i < codes.length; i++) {
        var id = stationId(codes[i].rawValue);
        if (id) return found(id);
        say("This QR code is not a charger's code here. Point the camera at the code on the charger.");
      }
      timer = setTimeout(function () { look(detector); }, 250);
    }).catch(function () {
      timer = setTimeout(function () { look(detector); }, 500);
    });
  }

  function start() {
    var detector;
    try {
      detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    } catch (e) {
      say("This browser cannot read QR codes. Type the Station ID instead.");
      return;
    }
    button.hidden = true;
    panel.hidden = false;
    say("Point the camera at the QR code on the charger.");
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        return video.play();
      })
      .then(function () { look(detector); })
      .catch(function () {
        stop();
        say("The camera is not available (not allowed, or none). Type the Station ID instead.");
      });
  }

  button.hidden = false;
  button.addEventListener("click", start);
  cancel.addEventListener("click", function () { stop(); say(""); });
})();

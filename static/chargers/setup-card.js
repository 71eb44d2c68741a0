/* The setup card's Print and Copy password buttons (the CSP allows no inline handlers). */
(function () {
  "use strict";
  var button = document.getElementById("print-card");
  if (button) { button.addEventListener("click", function () { window.print(); }); }
  var copy = document.getElementById("copy-password");
  var status = document.getElementById("copy-status");
  function say(text) { if (status) { status.textContent = text; } }
  function selectIt(node) {
    // Without clipboard access (plain http), the password is selected for Ctrl+C / long press.
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    say("Selected: copy it with Ctrl+C (or long press on a phone).");
  }
  if (copy) {
    copy.addEventListener("click", function () {
      var node = document.getElementById(copy.getAttribute("data-copy"));
      if (!node) { return; }
      var text = node.textContent.trim();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () {
          say("Password copied.");
        }, function () { selectIt(node); });
      } else {
        selectIt(node);
      }
    });
  }
}());

/* Phone navigation: fold the main menu behind a "Menu" button below 800 px so it does not push the
   page down (it took ~290 of 844 px). Without this script the menu simply stays open. */
(function () {
  "use strict";
  var button = document.querySelector(".menu-toggle");
  var nav = document.getElementById("mainnav");
  if (!button || !nav) { return; }
  var phone = window.matchMedia("(max-width: 799px)");
  var set = function (open) {
    button.setAttribute("aria-expanded", open ? "true" : "false");
    nav.classList.toggle("folded", !open);
  };
  var sync = function () {
    button.hidden = !phone.matches;
    set(!phone.matches);
  };
  button.addEventListener("click", function () {
    set(button.getAttribute("aria-expanded") !== "true");
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && phone.matches && button.getAttribute("aria-expanded") === "true") {
      set(false);
      button.focus();
    }
  });
  // Menu groups: one open at a time; a click elsewhere or Escape closes them.
  var groups = Array.prototype.slice.call(nav.querySelectorAll("details.navgroup"));
  var closeGroups = function (except) {
    groups.forEach(function (g) { if (g !== except) { g.open = false; } });
  };
  groups.forEach(function (g) {
    g.addEventListener("toggle", function () { if (g.open) { closeGroups(g); } });
  });
  document.addEventListener("click", function (event) {
    if (!nav.contains(event.target)) { closeGroups(null); }
  });
  document.addEventListener("keydown", function (event) {
    var open = groups.filter(function (g) { return g.open; })[0];
    if (event.key === "Escape" && open) {
      open.open = false;
      open.querySelector("summary").focus();
    }
  });
  if (phone.addEventListener) { phone.addEventListener("change", sync); }
  sync();
  // Keep the active charger tab in view when the tab row scrolls sideways on a phone.
  var active = document.querySelector(".tabs a.active");
  if (active && active.parentNode.scrollWidth > active.parentNode.clientWidth) {
    active.parentNode.scrollLeft = active.offsetLeft - 16;
  }
}());

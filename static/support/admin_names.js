// Django admin's autocomplete fields (select2) name their combobox by its current value alone, so
// an empty one had no accessible name (axe-core: aria-input-field-name): a screen reader said
// "combobox" and nothing else. Each is named by its field's label, then its value.
(function () {
  "use strict";
  function name(combo) {
    var container = combo.closest(".select2-container");
    var select = container && container.previousElementSibling;
    if (!select || select.tagName !== "SELECT" || !select.id) return;
    var label = document.querySelector('label[for="' + select.id + '"]');
    if (!label) return;
    if (!label.id) label.id = select.id + "_label";
    var rendered = combo.querySelector(".select2-selection__rendered");
    var ids = rendered && rendered.id ? label.id + " " + rendered.id : label.id;
    combo.setAttribute("aria-labelledby", ids);
    if (rendered) rendered.setAttribute("aria-labelledby", ids);
  }
  function nameAll(root) {
    if (root.querySelectorAll) {
      root.querySelectorAll('.select2-selection[role="combobox"]').forEach(name);
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    nameAll(document);
    // select2 builds its boxes after the page loads, and again for every inline row added.
    new MutationObserver(function (records) {
      records.forEach(function (record) {
        record.addedNodes.forEach(function (node) {
          if (node.nodeType === 1) nameAll(node.parentNode || node);
        });
      });
    }).observe(document.body, { childList: true, subtree: true });
  });
})();

// Names for what Django's admin leaves unnamed for screen readers (axe-core, serious):
// - its autocomplete fields (select2) name their combobox by its current value alone, so an empty
//   one had no accessible name (aria-input-field-name): each is named by its field's label, then
//   its value;
// - tabular inline inputs, filter-list help icons and empty filter choices (below).
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
  // Django's tabular inlines name their inputs by the column header alone, which a screen
  // reader does not read as a label (axe-core: label, select-name): each gets its header's text.
  function nameCell(cell) {
    var table = cell.closest("table");
    var column = Array.prototype.find.call(cell.classList, function (c) {
      return c.indexOf("field-") === 0;
    });
    var head = null;
    if (column) {
      head = table.querySelector("thead th.column-" + column.slice(6));
    } else if (cell.classList.contains("delete")) {
      head = table.querySelector("thead th:last-child");
    }
    var text = head ? head.textContent.trim() : "";
    if (!text) return;
    cell.querySelectorAll("input:not([type=hidden]), select, textarea").forEach(function (el) {
      var labelled = el.id && document.querySelector('label[for="' + el.id + '"]');
      if (!labelled && !el.hasAttribute("aria-label")) el.setAttribute("aria-label", text);
    });
  }
  function nameAll(root) {
    if (!root.querySelectorAll) return;
    root.querySelectorAll('.select2-selection[role="combobox"]').forEach(name);
    root.querySelectorAll(".tabular tbody td").forEach(nameCell);
    // The filter-list help icons carry an aria-label on a span with no role (aria-prohibited-attr).
    root.querySelectorAll("span.help-tooltip[aria-label]:not([role])").forEach(function (icon) {
      icon.setAttribute("role", "img");
    });
    // A list filter's choice for the empty value is a link with no text (axe-core: link-name).
    root.querySelectorAll("#changelist-filter a").forEach(function (link) {
      if (!link.textContent.trim()) link.textContent = "(blank)";
    });
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

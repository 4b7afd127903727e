// Click-to-sort for tables with class "sortable". Progressive enhancement: without JavaScript the
// tables are plain and complete. A cell's data-value (number or text) is its sort key.
(function () {
  "use strict";

  function key(row, column) {
    var cell = row.cells[column];
    if (!cell) return null;
    var raw = cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent;
    raw = raw.trim();
    if (raw === "" || raw === "—") return null;
    var number = Number(raw);
    return isNaN(number) ? raw.toLowerCase() : number;
  }

  function compare(a, b) {
    if (a === null && b === null) return 0;
    if (a === null) return 1; // missing values last, whatever the direction
    if (b === null) return -1;
    if (typeof a === typeof b) return a < b ? -1 : a > b ? 1 : 0;
    return typeof a === "number" ? -1 : 1;
  }

  function sortTable(table, header, column) {
    var body = table.tBodies[0];
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows).map(function (row, index) {
      return { row: row, key: key(row, column), index: index };
    });
    rows.sort(function (x, y) {
      if (x.key === null || y.key === null) return compare(x.key, y.key) || x.index - y.index;
      var order = compare(x.key, y.key);
      return (ascending ? order : -order) || x.index - y.index;
    });
    rows.forEach(function (entry) { body.appendChild(entry.row); });
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    if (!table.tHead || !table.tBodies.length) return;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
      if (!header.hasAttribute("data-sort")) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      while (header.firstChild) button.appendChild(header.firstChild);
      button.setAttribute("aria-label", "Sort by " + button.textContent.trim());
      header.appendChild(button);
      button.addEventListener("click", function () { sortTable(table, header, column); });
    });
  });
})();

"""The page's inline CSS and its one tiny script (sortable tables); no framework, no network."""

from __future__ import annotations

# Blocks every fetch the page could try: images are data: URIs, style and script are inline.
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "base-uri 'none'; form-action 'none'")

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 0 auto;
       max-width: 1360px; padding: 1rem 1.5rem 3rem; color: #1b1b1b; line-height: 1.4; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; word-break: break-word; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: .2rem; margin-top: 2.2rem; }
nav a { margin-right: .9rem; }
.meta { color: #555; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .88rem; }
th, td { border: 1px solid #d0d0d0; padding: .25rem .55rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
table.sortable th { cursor: pointer; user-select: none; white-space: nowrap; }
table.fitted { font-size: .82rem; }
table.fitted th, table.fitted td { padding: .25rem .4rem; }
table.fitted td { white-space: nowrap; }
table.fitted td.wrap { white-space: normal; overflow-wrap: anywhere; min-width: 6em; }
table.fitted td.wrap:nth-child(2) { min-width: 10em; }
table.sortable.fitted th { white-space: normal; vertical-align: bottom; }
table.sortable th::after { content: " \\2195"; color: #999; }
table.sortable th[aria-sort="ascending"]::after { content: " \\2191"; color: #000; }
table.sortable th[aria-sort="descending"]::after { content: " \\2193"; color: #000; }
tr.best td { background: #eaf6ea; }
.scroll { overflow-x: auto; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: .7rem; overflow-x: auto; font-size: .82rem; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-weight: 600; margin-bottom: .3rem; }
.note { color: #6b4e00; background: #fff8e1; border-left: 4px solid #f0c040; padding: .3rem .6rem; }
tr.sev-error td:first-child { background: #f8d7da; font-weight: 600; }
tr.sev-warning td:first-child { background: #fff3cd; font-weight: 600; }
tr.sev-info td:first-child { background: #e7f1fb; }
.cards h5 { font-size: 1rem; margin: 1rem 0 .2rem; }
.cards td:first-child { font-weight: 600; white-space: nowrap; background: #f7f7f7; }
"""

SORT_JS = """
(function () {
  function key(cell) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) { raw = cell.textContent; }
    var num = Number(raw);
    return raw.trim() === "" ? [2, 0] : (isNaN(num) ? [1, raw.toLowerCase()] : [0, num]);
  }
  function compare(a, b) {
    if (a[0] !== b[0]) { return a[0] - b[0]; }
    return a[1] < b[1] ? -1 : (a[1] > b[1] ? 1 : 0);
  }
  document.querySelectorAll("table.sortable th").forEach(function (th) {
    th.setAttribute("title", "click to sort");
    th.addEventListener("click", function () {
      var table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
      var asc = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (r1, r2) {
        var k1 = key(r1.cells[col]), k2 = key(r2.cells[col]);
        if (k1[0] === 2 || k2[0] === 2) { return k1[0] - k2[0]; }  // empty cells stay last
        return asc ? compare(k1, k2) : compare(k2, k1);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
})();
"""

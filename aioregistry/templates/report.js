// The report's table: rows from the JSON data block, paged, sorted and filtered here.
// Cells are written with textContent only: every string in a row came from a registry.
(function () {
  "use strict";
  var rows = JSON.parse(document.getElementById("rows-data").textContent);
  var byId = function (id) { return document.getElementById(id); };

  function text(value) { return value === null || value === undefined ? "" : String(value); }
  function bytes(size) {
    if (size === null || size === undefined) { return ""; }
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var value = size;
    var unit = 0;
    while (Math.abs(value) >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return unit === 0 ? value + " B" : value.toFixed(1) + " " + units[unit];
  }
  function yesNo(value) { return value === true ? "yes" : value === false ? "no" : ""; }
  function list(value) { return Array.isArray(value) ? value.map(text).join(", ") : text(value); }
  function shortDigest(digest) { return digest ? text(digest).slice(0, 19) : ""; }
  function referrerKinds(value) {
    if (!Array.isArray(value)) { return ""; }
    var counts = {};
    value.forEach(function (r) { var k = text(r && r.kind) || "other"; counts[k] = (counts[k] || 0) + 1; });
    return Object.keys(counts).sort().map(function (k) { return counts[k] > 1 ? k + " ×" + counts[k] : k; }).join(", ");
  }
  function referrerDetails(value) {
    if (!Array.isArray(value)) { return ""; }
    return value.map(function (r) {
      var notes = r && r.annotations ? Object.keys(r.annotations).map(function (k) { return k + "=" + text(r.annotations[k]); }) : [];
      return text(r && r.kind) + " " + text(r && r.artifactType) + " " + text(r && r.digest) + (notes.length ? " (" + notes.join("; ") + ")" : "");
    }).join("\n");
  }

  // key: the row's field; sort: "text" or "num"; show: the cell's text; title: its tooltip.
  var columns = [
    { key: "reference", label: "reference", sort: "text", cls: "mono" },
    { key: "platforms", label: "platforms", sort: "text", show: function (r) { return list(r.platforms && r.platforms.length ? r.platforms : r.platform); } },
    { key: "created", label: "created", sort: "text" },
    { key: "age_days", label: "age (days)", sort: "num", cls: "num" },
    { key: "size", label: "size", sort: "num", cls: "num", show: function (r) { return bytes(r.size); }, title: function (r) { return r.size === null || r.size === undefined ? "" : r.size + " bytes"; } },
    { key: "layers", label: "layers", sort: "num", cls: "num" },
    { key: "signed", label: "signed", sort: "text", show: function (r) { return yesNo(r.signed); }, yesno: true },
    { key: "sbom", label: "SBOM", sort: "text", show: function (r) { return yesNo(r.sbom); }, yesno: true },
    { key: "attestation", label: "attestation", sort: "text", show: function (r) { return yesNo(r.attestation); }, yesno: true },
    { key: "referrers", label: "referrers", sort: "text", show: function (r) { return referrerKinds(r.referrers); }, title: function (r) { return referrerDetails(r.referrers); } },
    { key: "same_digest", label: "same digest as", sort: "text", cls: "wrap", show: function (r) { return list(r.same_digest); } },
    { key: "digest", label: "digest", sort: "text", cls: "mono", show: function (r) { return shortDigest(r.digest); }, title: function (r) { return text(r.digest); } },
    { key: "error", label: "error", sort: "text", cls: "wrap" }
  ];
  columns.forEach(function (c) {
    if (!c.show) { c.show = function (r) { return text(r[c.key]); }; }
  });

  // What the filter box searches, per row, lower-cased once.
  var haystacks = rows.map(function (r) {
    return [r.reference, list(r.platforms), r.platform, r.digest, r.error, list(r.same_digest), referrerDetails(r.referrers), r.created]
      .map(text).join("\n").toLowerCase();
  });
  var only = {
    "": function () { return true; },
    unsigned: function (r) { return !r.error && r.signed !== true; },
    nosbom: function (r) { return !r.error && r.sbom !== true; },
    noattestation: function (r) { return !r.error && r.attestation !== true; },
    errors: function (r) { return !!r.error; }
  };

  var state = { sortKey: null, descending: false, page: 0, pageSize: 200, matching: [] };
  var order = rows.map(function (_, i) { return i; });

  function sortValue(column, row) {
    var v = column.key === "platforms" || column.key === "referrers" || column.key === "same_digest" ? column.show(row) : row[column.key];
    if (v === null || v === undefined || v === "") { return null; }
    if (column.sort === "num") { return typeof v === "number" ? v : Number(v); }
    return String(v).toLowerCase();
  }

  function sortRows() {
    order = rows.map(function (_, i) { return i; });
    var column = columns.filter(function (c) { return c.key === state.sortKey; })[0];
    if (!column) { return; }
    var keys = rows.map(function (r) { return sortValue(column, r); });
    var sign = state.descending ? -1 : 1;
    order.sort(function (a, b) {
      var x = keys[a], y = keys[b];
      if (x === null && y === null) { return a - b; }
      if (x === null) { return 1; }  // empty cells last, either way
      if (y === null) { return -1; }
      if (x < y) { return -sign; }
      if (x > y) { return sign; }
      return a - b;
    });
  }

  function applyFilter() {
    var needle = byId("filter").value.trim().toLowerCase();
    var keep = only[byId("only").value] || only[""];
    state.matching = order.filter(function (i) {
      return keep(rows[i]) && (!needle || haystacks[i].indexOf(needle) !== -1);
    });
    var pages = Math.max(1, Math.ceil(state.matching.length / state.pageSize));
    if (state.page >= pages) { state.page = pages - 1; }
  }

  function render() {
    var body = byId("rows-body");
    var start = state.page * state.pageSize;
    var shown = state.matching.slice(start, start + state.pageSize);
    var fragment = document.createDocumentFragment();
    shown.forEach(function (i) {
      var row = rows[i];
      var tr = document.createElement("tr");
      if (row.error) { tr.className = "error"; }
      columns.forEach(function (c) {
        var td = document.createElement("td");
        var value = c.show(row);
        td.textContent = value;
        if (c.cls) { td.className = c.cls; }
        if (c.yesno && value) { td.className = value; }
        var title = c.title ? c.title(row) : "";
        if (title) { td.title = title; }
        tr.appendChild(td);
      });
      fragment.appendChild(tr);
    });
    body.replaceChildren(fragment);
    var total = rows.length;
    var matching = state.matching.length;
    var pages = Math.max(1, Math.ceil(matching / state.pageSize));
    var count = byId("row-count");
    count.dataset.matching = String(matching);
    count.dataset.total = String(total);
    count.textContent = matching.toLocaleString("en") + " of " + total.toLocaleString("en") + " rows";
    byId("page-info").textContent = matching
      ? "rows " + (start + 1).toLocaleString("en") + "–" + (start + shown.length).toLocaleString("en") + ", page " + (state.page + 1) + " of " + pages
      : "no rows match";
    byId("first").disabled = byId("prev").disabled = state.page === 0;
    byId("next").disabled = byId("last").disabled = state.page >= pages - 1;
  }

  function refresh() { applyFilter(); render(); }

  var header = byId("header-row");
  columns.forEach(function (c) {
    var th = document.createElement("th");
    th.textContent = c.label;
    th.dataset.key = c.key;
    th.scope = "col";
    th.tabIndex = 0;
    if (c.cls === "num") { th.className = "num"; }
    var sortBy = function () {
      state.descending = state.sortKey === c.key ? !state.descending : false;
      state.sortKey = c.key;
      Array.prototype.forEach.call(header.children, function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", state.descending ? "descending" : "ascending");
      state.page = 0;
      sortRows();
      refresh();
    };
    th.addEventListener("click", sortBy);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(); } });
    header.appendChild(th);
  });

  var pending = null;
  byId("filter").addEventListener("input", function () {
    clearTimeout(pending);  // one filter pass per pause in typing, not per key
    pending = setTimeout(function () { state.page = 0; refresh(); }, 120);
  });
  byId("only").addEventListener("change", function () { state.page = 0; refresh(); });
  byId("page-size").addEventListener("change", function () {
    state.pageSize = Number(byId("page-size").value) || 200;
    state.page = 0;
    refresh();
  });
  byId("first").addEventListener("click", function () { state.page = 0; render(); });
  byId("prev").addEventListener("click", function () { state.page = Math.max(0, state.page - 1); render(); });
  byId("next").addEventListener("click", function () { state.page += 1; render(); });
  byId("last").addEventListener("click", function () { state.page = Math.max(0, Math.ceil(state.matching.length / state.pageSize) - 1); render(); });

  state.pageSize = Number(byId("page-size").value) || 200;
  refresh();
}());

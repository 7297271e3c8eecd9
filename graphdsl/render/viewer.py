"""The HTML viewer's page: markup, style and script, with %%SLOTS%% that html.page fills in one pass.

Kept in a Python module (not a data file) so that it is packaged with the code.
"""

# The opening every graphdsl page shares: a strict CSP (inline style and script only, no fetch),
# the %%TITLE%% slot, and the full-height flex column both layouts build on.
PAGE_HEAD = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>%%TITLE%%</title>
<style>
  html, body { margin: 0; height: 100%; font-family: Helvetica, Arial, sans-serif; color: #1a1a1a; }
  body { display: flex; flex-direction: column; }
"""

TEMPLATE = PAGE_HEAD + r"""  header { display: flex; gap: 10px; align-items: center; padding: 5px 8px; border-bottom: 1px solid #ddd;
           background: #fafafa; flex-wrap: wrap; }
  header h1 { font-size: 14px; margin: 0; font-weight: 600; }
  header .sub { color: #555; font-size: 12px; }
  header input { font-size: 13px; padding: 2px 6px; width: 13em; }
  header button { font-size: 12px; padding: 2px 7px; }
  #count { color: #555; font-size: 12px; min-width: 5em; }
  main { flex: 1; display: flex; min-height: 0; }
  .pic { flex: 1; overflow: hidden; cursor: grab; background: #fff; position: relative; outline: none; }
  .pic[hidden] { display: none; }
  .pic.dragging { cursor: grabbing; }
  .pic svg { width: 100%; height: 100%; display: block; user-select: none; }
  #panel { width: 320px; border-left: 1px solid #ddd; padding: 6px 10px; overflow: auto; font-size: 12px;
           background: #fcfcfc; }
  @media (max-width: 1000px) {
    main { flex-direction: column; }
    #panel { width: auto; height: 30%; border-left: 0; border-top: 1px solid #ddd; }
  }
  #panel h2 { font-size: 14px; margin: 4px 0 6px; overflow-wrap: anywhere; }
  #panel .meta { color: #555; margin-bottom: 6px; }
  #panel pre { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 11px; background: #f3f3f3;
               padding: 6px; white-space: pre; overflow-x: auto; word-break: keep-all; overflow-wrap: normal;
               margin: 2px 0 8px; }
  #panel .k { font-weight: 600; margin-top: 6px; }
  #panel .grad { color: #8f3f00; }
  g.node.hit > :is(polygon, ellipse, path) { stroke: #0072B2 !important; stroke-width: 4px !important; }
  svg.searching g.node:not(.hit), svg.searching g.edge { opacity: 0.25; }
  g.node.pinned > :is(polygon, ellipse, path) { stroke: #D55E00 !important; stroke-width: 3px !important; }
  g.cluster > text { cursor: pointer; }
  g.cluster.shut > :is(polygon, path) { fill: #E3F2EC; }
  .folded { display: none; }
</style>
</head>
<body>
<header>
  <h1>%%TITLE%%</h1><span class="sub">%%SUBTITLE%%</span>
  <input id="search" type="search" placeholder="search a name (Enter: next)" autocomplete="off">
  <span id="count"></span>
  <button id="fit" title="fit the whole graph">fit</button>
  <button id="zin" title="zoom in">+</button><button id="zout" title="zoom out">−</button>
  <button id="blocks"%%TOGGLE%% title="draw every def call and loop iteration in full, or as blocks again">expand blocks</button>
</header>
<main>
  <div class="pic" id="pic-main" tabindex="0">%%SVG%%</div>
  <div class="pic" id="pic-expanded" tabindex="0" hidden>%%EXPANDED%%</div>
  <aside id="panel"><p class="meta">Hover a node for its full value and gradient, or an operator for its
  inputs and local derivative; click to select it, then arrow keys follow its edges. Drag to pan, wheel to
  scroll, Ctrl+wheel (or + −) to zoom. Click a green block to expand it, a loop's title to unroll it, a cluster's title to fold it.</p>
  <div id="info"></div></aside>
</main>
<script type="application/json" id="graph-data">%%DATA%%</script>
<script>
(function () {
  "use strict";
  var all = JSON.parse(document.getElementById("graph-data").textContent);
  var info = document.getElementById("info");
  var search = document.getElementById("search"), count = document.getElementById("count");
  var READABLE = 1.4;  // screen pixels per SVG unit when zooming to a node: 10-unit text at 14 px

  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) { e.className = cls; } e.textContent = text; return e; }
  function key(g) { var t = g.querySelector(":scope > title"); return t ? t.textContent : ""; }

  function show(d) {
    info.textContent = "";
    if (!d) { return; }
    info.appendChild(el("h2", "", d.title));
    info.appendChild(el("div", "meta", [d.kind, d.role, d.shape].filter(Boolean).join(" · ")));
    var order = [["id", "id"], ["text", "source"], ["op", "operator"], ["inputs", "inputs"], ["output", "output"],
                 ["local", "local derivative"], ["call", "def call"], ["adjoint", "adjoint of"],
                 ["value", "value"], ["grad", d.grad_name || "gradient"], ["where", "source line"]];
    order.forEach(function (p) {
      if (d[p[0]] === undefined || d[p[0]] === null || d[p[0]] === "") { return; }
      info.appendChild(el("div", "k" + (p[0] === "grad" ? " grad" : ""), p[1]));
      info.appendChild(el("pre", p[0] === "grad" ? "grad" : "", String(d[p[0]])));
    });
  }

  function Viewer(view, data) {
    var self = this;
    this.view = view; this.data = data || {};
    var svg = this.svg = view.querySelector("svg");
    if (!svg) { return; }
    var vb0 = svg.viewBox.baseVal;
    this.home = { x: vb0.x, y: vb0.y, w: vb0.width, h: vb0.height };
    this.box = null;
    this.nodes = Array.prototype.slice.call(svg.querySelectorAll("g.node"));
    this.byKey = {};
    this.nodes.forEach(function (g) { self.byKey[key(g)] = g; });
    this.succ = {}; this.pred = {}; this.edgesOf = {};
    Array.prototype.slice.call(svg.querySelectorAll("g.edge")).forEach(function (e) {
      var t = key(e), cut = -1, a, b;
      for (var i = t.indexOf("->"); i >= 0; i = t.indexOf("->", i + 1)) {
        if (self.byKey[t.slice(0, i)] && self.byKey[t.slice(i + 2)]) { cut = i; break; }
      }
      if (cut < 0) { return; }
      a = t.slice(0, cut); b = t.slice(cut + 2);
      (self.succ[a] = self.succ[a] || []).push(b); (self.pred[b] = self.pred[b] || []).push(a);
      (self.edgesOf[a] = self.edgesOf[a] || []).push(e); (self.edgesOf[b] = self.edgesOf[b] || []).push(e);
    });
    this.drag = null;
    view.addEventListener("wheel", function (e) {
      e.preventDefault();
      if (e.ctrlKey || e.metaKey) { self.zoom(e.deltaY > 0 ? 1.15 : 1 / 1.15, e.clientX, e.clientY); return; }
      var s = self.scale();
      self.box.x += e.deltaX / s; self.box.y += e.deltaY / s; self.apply();
    }, { passive: false });
    view.addEventListener("mousedown", function (e) {
      self.drag = { x: e.clientX, y: e.clientY, bx: self.box.x, by: self.box.y, moved: false };
      view.classList.add("dragging");
    });
    window.addEventListener("mousemove", function (e) {
      var d = self.drag;
      if (!d) { return; }
      var s = self.scale();
      if (Math.abs(e.clientX - d.x) + Math.abs(e.clientY - d.y) > 3) { d.moved = true; }
      self.box.x = d.bx - (e.clientX - d.x) / s; self.box.y = d.by - (e.clientY - d.y) / s; self.apply();
    });
    window.addEventListener("mouseup", function () {
      view.classList.remove("dragging"); setTimeout(function () { self.drag = null; }, 0);
    });
    this.nodes.forEach(function (g) {
      g.addEventListener("mouseenter", function () { if (!self.pinned) { show(self.data[key(g)]); } });
      g.addEventListener("click", function () {
        if (self.drag && self.drag.moved) { return; }
        var d = self.data[key(g)] || {};
        if (d.kind && d.kind.indexOf("def call") === 0 && expandedViewer) { switchTo(expandedViewer, d.call); return; }
        self.select(self.pinned === g ? null : g, false);
      });
    });
    Array.prototype.slice.call(svg.querySelectorAll("g.cluster")).forEach(function (c) {
      var label = key(c).replace(/^cluster_/, ""), text = c.querySelector("text");
      if (!text) { return; }
      text.addEventListener("click", function (e) {
        e.stopPropagation();
        // a rolled loop (one iteration, ×N) opens unrolled, at the iteration it showed
        if (label.indexOf("loop:") === 0 && expandedViewer && self !== expandedViewer) {
          switchTo(expandedViewer, null, "cluster_iter:" + label.slice(5) + "=");
          return;
        }
        self.fold(c, label, text);
      });
    });
  }
  Viewer.prototype.scale = function () {
    var r = this.svg.getBoundingClientRect();
    return Math.min(r.width / this.box.w, r.height / this.box.h);
  };
  Viewer.prototype.apply = function () {
    var r = this.svg.getBoundingClientRect(), s = this.scale();
    // the viewBox keeps the aspect of the element, so what is shown is exactly box
    this.box.w = r.width / s; this.box.h = r.height / s;
    this.svg.setAttribute("viewBox", this.box.x + " " + this.box.y + " " + this.box.w + " " + this.box.h);
  };
  Viewer.prototype.start = function () {
    // a tall picture starts fit to its width, at its top; "fit" shows all of it
    var r = this.svg.getBoundingClientRect(), h = this.home;
    if (!r.width || !r.height) { return; }
    if (h.h / h.w > r.height / r.width) { this.box = { x: h.x, y: h.y, w: h.w, h: h.w * r.height / r.width }; }
    else { this.fit(); return; }
    this.apply();
  };
  Viewer.prototype.fit = function () {
    var r = this.svg.getBoundingClientRect(), h = this.home, s = Math.min(r.width / h.w, r.height / h.h);
    this.box = { x: h.x - (r.width / s - h.w) / 2, y: h.y - (r.height / s - h.h) / 2, w: r.width / s, h: r.height / s };
    this.apply();
  };
  Viewer.prototype.zoom = function (f, cx, cy) {
    var r = this.svg.getBoundingClientRect();
    if (cx === undefined) { cx = r.left + r.width / 2; cy = r.top + r.height / 2; }
    var s = this.scale(), px = this.box.x + (cx - r.left) / s, py = this.box.y + (cy - r.top) / s;
    this.box = { x: px - (px - this.box.x) * f, y: py - (py - this.box.y) * f, w: this.box.w * f, h: this.box.h * f };
    this.apply();
  };
  Viewer.prototype.centre = function (g, readable) {
    var b = g.getBBox(), m = this.svg.getCTM().inverse().multiply(g.getCTM());
    var cx = m.a * (b.x + b.width / 2) + m.c * (b.y + b.height / 2) + m.e;
    var cy = m.b * (b.x + b.width / 2) + m.d * (b.y + b.height / 2) + m.f;
    var r = this.svg.getBoundingClientRect(), s = this.scale();
    if (readable) { s = Math.max(s, READABLE); }  // zoom in until its text is readable, never out
    this.box = { x: cx - r.width / s / 2, y: cy - r.height / s / 2, w: r.width / s, h: r.height / s };
    this.apply();
  };
  Viewer.prototype.select = function (g, move) {
    if (this.pinned) { this.pinned.classList.remove("pinned"); }
    this.pinned = g;
    if (!g) { return; }
    g.classList.add("pinned"); show(this.data[key(g)]);
    if (move) { this.centre(g, false); }
    this.view.focus({ preventScroll: true });
  };
  Viewer.prototype.step = function (dir) {
    if (!this.pinned) { return; }
    var k = key(this.pinned), self = this;
    var next = (dir === "down" ? this.succ[k] : dir === "up" ? this.pred[k] : null) || [];
    if (dir === "left" || dir === "right") {  // siblings: the other readers of the same value
      var from = (this.pred[k] || [])[0], sibs = from ? this.succ[from] : [k], i = sibs.indexOf(k);
      next = [sibs[(i + (dir === "right" ? 1 : sibs.length - 1)) % sibs.length]];
    }
    next = next.filter(function (n) { return self.byKey[n] && !self.byKey[n].classList.contains("folded"); });
    if (next.length) { this.select(this.byKey[next[0]], true); }
  };
  Viewer.prototype.fold = function (c, label, text) {
    var shut = !c.classList.contains("shut"), self = this;
    c.classList.toggle("shut", shut);
    if (!c.dataset.label) { c.dataset.label = text.textContent; }
    text.textContent = (shut ? "▸ " : "") + c.dataset.label + (shut ? "  (folded: click to open)" : "");
    this.nodes.forEach(function (g) {
      var d = self.data[key(g)] || {};
      if ((d.clusters || []).indexOf(label) < 0) { return; }
      g.classList.toggle("folded", shut);
      (self.edgesOf[key(g)] || []).forEach(function (e) { e.classList.toggle("folded", shut); });
    });
  };
  Viewer.prototype.find = function (q) {
    var self = this, hits = [];
    this.nodes.forEach(function (g) {
      var d = self.data[key(g)] || {};
      var hay = [key(g), d.title, d.name, d.text].filter(Boolean).join("\n").toLowerCase();
      var hit = q !== "" && hay.indexOf(q) >= 0;
      g.classList.toggle("hit", hit);
      if (hit) { hits.push(g); }
    });
    this.svg.classList.toggle("searching", q !== "");
    return hits;
  };

  var mainViewer = new Viewer(document.getElementById("pic-main"), all.main);
  var expandedViewer = all.expanded ? new Viewer(document.getElementById("pic-expanded"), all.expanded) : null;
  var active = mainViewer;
  if (!active.svg) { return; }
  active.start();
  var toggle = document.getElementById("blocks");
  function switchTo(v, call, prefix) {
    mainViewer.view.hidden = v !== mainViewer;
    if (expandedViewer) { expandedViewer.view.hidden = v !== expandedViewer; }
    active = v;
    toggle.textContent = v === mainViewer ? "expand blocks" : "collapse blocks";
    if (!v.box) { v.start(); }
    if (call) {  // the cluster of the block clicked (its first call, for a folded chain)
      Array.prototype.slice.call(v.svg.querySelectorAll("g.cluster")).forEach(function (g) {
        if (key(g) === "cluster_" + call.split(" · ")[0]) { v.centre(g, true); }
      });
    }
    if (prefix) {  // the loop clicked: its last iteration's box
      var boxes = Array.prototype.slice.call(v.svg.querySelectorAll("g.cluster")).filter(function (g) {
        return key(g).indexOf(prefix) === 0;
      });
      if (boxes.length) { v.centre(boxes[boxes.length - 1], true); }
    }
    search.dispatchEvent(new Event("input"));
  }
  toggle.onclick = function () { switchTo(active === mainViewer && expandedViewer ? expandedViewer : mainViewer); };
  document.getElementById("fit").onclick = function () { active.fit(); };
  document.getElementById("zin").onclick = function () { active.zoom(1 / 1.3); };
  document.getElementById("zout").onclick = function () { active.zoom(1.3); };
  window.addEventListener("resize", function () { if (active.box) { active.apply(); } });

  var hits = [], at = -1;
  search.addEventListener("input", function () {
    var q = search.value.trim().toLowerCase();
    hits = active.find(q); at = -1;
    count.textContent = q === "" ? "" : hits.length + (hits.length === 1 ? " match" : " matches");
  });
  search.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && hits.length) { at = (at + 1) % hits.length; active.centre(hits[at], true); show(active.data[key(hits[at])]); }
    if (e.key === "Escape") { search.value = ""; search.dispatchEvent(new Event("input")); }
  });
  document.addEventListener("keydown", function (e) {
    if (e.target === search) { return; }
    var dir = { ArrowDown: "down", ArrowUp: "up", ArrowLeft: "left", ArrowRight: "right" }[e.key];
    if (dir && active.pinned) { e.preventDefault(); active.step(dir); }
  });
})();
</script>
</body>
</html>
"""

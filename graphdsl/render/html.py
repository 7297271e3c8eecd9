"""One self-contained HTML file: the SVG inline, pan and zoom, hover for full values, search.

No network: no CDN, no fonts or scripts fetched; the data for the hover panel
is a JSON block in the page, escaped so that no value or name can close it.
"""
from __future__ import annotations

import json
import re

from .labels import esc_html

_PROLOG = re.compile(r"^\s*(<\?xml[^>]*\?>\s*|<!DOCTYPE[^>]*>\s*|<!--.*?-->\s*)*", re.S)


def inline_svg(svg: bytes | str) -> str:
    """The <svg> element alone, sized to its container."""
    text = svg.decode("utf-8") if isinstance(svg, bytes) else svg
    text = _PROLOG.sub("", text)
    text = re.sub(r'<svg\b([^>]*?)\swidth="[^"]*"', r'<svg\1 width="100%"', text, count=1, flags=re.S)
    text = re.sub(r'<svg\b([^>]*?)\sheight="[^"]*"', r'<svg\1 height="100%"', text, count=1, flags=re.S)
    return text


def script_json(data) -> str:
    """JSON safe inside <script>: no `</script>`, no `<!--`, no line separators."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, sort_keys=False)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def page(svg: bytes | str, nodes: dict, title: str, subtitle: str = "") -> str:
    """nodes: DOT node name -> {"title", "kind", "role", "shape", "value", "grad", ...} (all plain text)."""
    fills = {"TITLE": esc_html(title), "SUBTITLE": esc_html(subtitle), "DATA": script_json(nodes),
             "SVG": inline_svg(svg)}
    return fill(_TEMPLATE, fills)


_SLOT = re.compile(r"%%([A-Z]+)%%")


def fill(template: str, fills: dict) -> str:
    """Every %%NAME%% slot of the template replaced in one pass, so that text put in one slot (a file
    named `%%SVG%%.gdsl`) is never read again as a slot."""
    return _SLOT.sub(lambda m: fills[m.group(1)], template)


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>%%TITLE%%</title>
<style>
  html, body { margin: 0; height: 100%; font-family: Helvetica, Arial, sans-serif; color: #1a1a1a; }
  body { display: flex; flex-direction: column; }
  header { display: flex; gap: 12px; align-items: center; padding: 6px 10px; border-bottom: 1px solid #ddd;
           background: #fafafa; flex-wrap: wrap; }
  header h1 { font-size: 15px; margin: 0; font-weight: 600; }
  header .sub { color: #555; font-size: 12px; }
  header input { font-size: 13px; padding: 3px 6px; width: 16em; }
  header button { font-size: 13px; padding: 2px 8px; }
  #count { color: #555; font-size: 12px; min-width: 6em; }
  main { flex: 1; display: flex; min-height: 0; }
  #view { flex: 1; overflow: hidden; cursor: grab; background: #fff; position: relative; }
  #view.dragging { cursor: grabbing; }
  #view svg { width: 100%; height: 100%; display: block; user-select: none; }
  #panel { width: 340px; border-left: 1px solid #ddd; padding: 8px 10px; overflow: auto; font-size: 12px;
           background: #fcfcfc; }
  #panel h2 { font-size: 14px; margin: 4px 0 6px; word-break: break-all; }
  #panel .meta { color: #555; margin-bottom: 6px; }
  #panel pre { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 11px; background: #f3f3f3;
               padding: 6px; white-space: pre-wrap; word-break: break-all; margin: 2px 0 8px; }
  #panel .k { font-weight: 600; margin-top: 6px; }
  #panel .grad { color: #8f3f00; }
  g.node.hit > :is(polygon, ellipse, path) { stroke: #0072B2 !important; stroke-width: 4px !important; }
  svg.searching g.node:not(.hit), svg.searching g.edge { opacity: 0.25; }
  g.node.pinned > :is(polygon, ellipse, path) { stroke: #D55E00 !important; stroke-width: 3px !important; }
</style>
</head>
<body>
<header>
  <h1>%%TITLE%%</h1><span class="sub">%%SUBTITLE%%</span>
  <input id="search" type="search" placeholder="search a name (Enter: next)" autocomplete="off">
  <span id="count"></span>
  <button id="fit" title="fit the whole graph">fit</button>
  <button id="zin" title="zoom in">+</button><button id="zout" title="zoom out">−</button>
</header>
<main>
  <div id="view">%%SVG%%</div>
  <aside id="panel"><p class="meta">Hover a node for its full value and gradient; click to pin it.
  Drag to pan, wheel to zoom.</p><div id="info"></div></aside>
</main>
<script type="application/json" id="graph-data">%%DATA%%</script>
<script>
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("graph-data").textContent);
  var view = document.getElementById("view");
  var svg = view.querySelector("svg");
  var info = document.getElementById("info");
  if (!svg) { return; }
  var vb0 = svg.viewBox.baseVal;
  var home = { x: vb0.x, y: vb0.y, w: vb0.width, h: vb0.height };
  var box = { x: home.x, y: home.y, w: home.w, h: home.h };
  function apply() { svg.setAttribute("viewBox", box.x + " " + box.y + " " + box.w + " " + box.h); }
  function toSvg(cx, cy) {
    var r = svg.getBoundingClientRect();
    var s = Math.max(box.w / r.width, box.h / r.height);
    var ox = box.x + (box.w - r.width * s) / 2, oy = box.y + (box.h - r.height * s) / 2;
    return { x: ox + (cx - r.left) * s, y: oy + (cy - r.top) * s, s: s };
  }
  function zoom(f, cx, cy) {
    var r = svg.getBoundingClientRect();
    if (cx === undefined) { cx = r.left + r.width / 2; cy = r.top + r.height / 2; }
    var p = toSvg(cx, cy);
    box.x = p.x - (p.x - box.x) * f; box.y = p.y - (p.y - box.y) * f; box.w *= f; box.h *= f; apply();
  }
  view.addEventListener("wheel", function (e) {
    e.preventDefault(); zoom(e.deltaY > 0 ? 1.15 : 1 / 1.15, e.clientX, e.clientY);
  }, { passive: false });
  var drag = null;
  view.addEventListener("mousedown", function (e) {
    drag = { x: e.clientX, y: e.clientY, bx: box.x, by: box.y, moved: false }; view.classList.add("dragging");
  });
  window.addEventListener("mousemove", function (e) {
    if (!drag) { return; }
    var s = toSvg(0, 0).s;
    if (Math.abs(e.clientX - drag.x) + Math.abs(e.clientY - drag.y) > 3) { drag.moved = true; }
    box.x = drag.bx - (e.clientX - drag.x) * s; box.y = drag.by - (e.clientY - drag.y) * s; apply();
  });
  window.addEventListener("mouseup", function () { view.classList.remove("dragging"); setTimeout(function () { drag = null; }, 0); });
  document.getElementById("fit").onclick = function () { box = { x: home.x, y: home.y, w: home.w, h: home.h }; apply(); };
  document.getElementById("zin").onclick = function () { zoom(1 / 1.3); };
  document.getElementById("zout").onclick = function () { zoom(1.3); };

  var nodes = Array.prototype.slice.call(svg.querySelectorAll("g.node"));
  function key(g) { var t = g.querySelector("title"); return t ? t.textContent : ""; }
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) { e.className = cls; } e.textContent = text; return e; }
  function show(g) {
    var d = data[key(g)]; info.textContent = "";
    if (!d) { return; }
    info.appendChild(el("h2", "", d.title));
    info.appendChild(el("div", "meta", [d.kind, d.role, d.shape].filter(Boolean).join(" · ")));
    var order = [["id", "id"], ["text", "source"], ["op", "operator"], ["call", "def call"], ["adjoint", "adjoint of"],
                 ["value", "value"], ["grad", d.grad_name || "gradient"], ["where", "source line"]];
    order.forEach(function (p) {
      if (d[p[0]] === undefined || d[p[0]] === null || d[p[0]] === "") { return; }
      info.appendChild(el("div", "k" + (p[0] === "grad" ? " grad" : ""), p[1]));
      info.appendChild(el("pre", p[0] === "grad" ? "grad" : "", String(d[p[0]])));
    });
  }
  var pinned = null;
  nodes.forEach(function (g) {
    g.addEventListener("mouseenter", function () { if (!pinned) { show(g); } });
    g.addEventListener("click", function () {
      if (drag && drag.moved) { return; }
      if (pinned) { pinned.classList.remove("pinned"); }
      pinned = pinned === g ? null : g;
      if (pinned) { pinned.classList.add("pinned"); show(g); }
    });
  });

  var search = document.getElementById("search"), count = document.getElementById("count");
  var hits = [], at = -1;
  function centre(g) {
    var b = g.getBBox(), ctm = g.getCTM(), root = svg.getCTM();
    var m = root.inverse().multiply(ctm);
    var cx = m.a * (b.x + b.width / 2) + m.c * (b.y + b.height / 2) + m.e;
    var cy = m.b * (b.x + b.width / 2) + m.d * (b.y + b.height / 2) + m.f;
    var w = Math.min(home.w, Math.max(b.width * 8, home.w / 6)), h = w * box.h / box.w;
    box = { x: cx - w / 2, y: cy - h / 2, w: w, h: h }; apply(); show(g);
  }
  search.addEventListener("input", function () {
    var q = search.value.trim().toLowerCase();
    hits = []; at = -1;
    nodes.forEach(function (g) {
      var d = data[key(g)] || {};
      var hay = [key(g), d.title, d.name, d.text].filter(Boolean).join("\\n").toLowerCase();
      var hit = q !== "" && hay.indexOf(q) >= 0;
      g.classList.toggle("hit", hit);
      if (hit) { hits.push(g); }
    });
    svg.classList.toggle("searching", q !== "");
    count.textContent = q === "" ? "" : hits.length + (hits.length === 1 ? " match" : " matches");
  });
  search.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && hits.length) { at = (at + 1) % hits.length; centre(hits[at]); }
    if (e.key === "Escape") { search.value = ""; search.dispatchEvent(new Event("input")); }
  });
})();
</script>
</body>
</html>
"""

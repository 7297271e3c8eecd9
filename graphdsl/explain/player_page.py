"""The player's page: layout, style and script, all inline (no network: the CSP forbids every fetch).

The script replays steps 0..k to show step k: value tags above nodes, gradient
tags below, the current node outlined, the nodes it reads dashed. The body's
data-step and data-current attributes say what is shown (tests read them).
"""
from ..render.viewer import PAGE_HEAD


TEMPLATE = PAGE_HEAD + r"""  header { display: flex; gap: 10px; align-items: center; padding: 6px 10px; border-bottom: 1px solid #ddd;
           background: #fafafa; flex-wrap: wrap; }
  header h1 { font-size: 15px; margin: 0; font-weight: 600; }
  header button { font-size: 14px; padding: 2px 10px; min-width: 2.5em; }
  #slider { flex: 1; min-width: 160px; }
  #counter { color: #444; font-size: 12px; min-width: 7em; font-variant-numeric: tabular-nums; }
  main { flex: 1; display: flex; min-height: 0; }
  #view { flex: 1; overflow: auto; background: #fff; }
  #view svg { width: 100%; height: 100%; display: block; }
  #panel { width: 420px; border-left: 1px solid #ddd; padding: 8px 12px; overflow: auto; background: #fcfcfc; }
  #panel h2 { font-size: 14px; margin: 4px 0 4px; }
  #phase { font-size: 11px; text-transform: uppercase; letter-spacing: 0.06em; color: #666; }
  #equation { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; background: #f3f3f3;
              padding: 8px; white-space: pre-wrap; word-break: break-word; margin: 4px 0 8px; }
  #note { font-size: 12px; color: #333; line-height: 1.4; }
  main.wide { flex-direction: column; }
  main.wide #panel { width: auto; height: 36%; border-left: none; border-top: 1px solid #ddd; }
  #keys { font-size: 11px; color: #777; margin-top: 12px; }
  g.node.current > :is(polygon, ellipse, path) { stroke: #d62728 !important; stroke-width: 4px !important; }
  g.node.reads > :is(polygon, ellipse, path) { stroke: #0072b2 !important; stroke-width: 3px !important;
                                              stroke-dasharray: 5 3; }
  g.node.reads-grad > :is(polygon, ellipse, path) { stroke: #b8860b !important; stroke-width: 3px !important;
                                                   stroke-dasharray: 2 2; }
  text.tag { font-family: "DejaVu Sans Mono", Menlo, monospace; font-size: 10px; paint-order: stroke;
             stroke: #fff; stroke-width: 3px; }
  text.tag.value { fill: #0b4f8a; }
  text.tag.grad { fill: #b22222; font-weight: 600; }
</style>
</head>
<body data-step="0" data-current="">
<header>
  <h1>%%TITLE%%</h1>
  <button id="prev" title="previous step (left arrow)">◀</button>
  <button id="play" title="play / pause (space)">▶ play</button>
  <button id="next" title="next step (right arrow)">▶</button>
  <input id="slider" type="range" min="0" max="0" value="0" aria-label="step">
  <span id="counter"></span>
  <label title="zoom to the step's nodes"><input id="follow" type="checkbox"> follow</label>
  <button id="zin" title="zoom in">+</button><button id="zout" title="zoom out">−</button>
  <button id="fit" title="the whole graph">fit</button>
</header>
<main>
  <div id="view">%%SVG%%</div>
  <aside id="panel">
    <div id="phase"></div>
    <h2 id="title"></h2>
    <pre id="equation"></pre>
    <div id="note"></div>
    <div id="keys">← → step · space play/pause · Home/End first/last. Red outline: the value being computed;
    blue dashes: the values it reads; gold dashes: the gradients it reads. Values are written above a node,
    gradients (∂) below it, from the step that computes them.</div>
  </aside>
</main>
<script type="application/json" id="steps">%%DATA%%</script>
<script>
(function () {
  "use strict";
  var steps = JSON.parse(document.getElementById("steps").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var svg = document.querySelector("#view svg");
  var nodes = {};
  if (svg) {
    svg.querySelectorAll("g.node").forEach(function (g) {
      var t = g.querySelector("title");
      if (t) { nodes[t.textContent] = g; }
    });
  }
  var slider = document.getElementById("slider");
  var follow = document.getElementById("follow");
  var current = 0, timer = null;
  slider.max = String(steps.length - 1);
  var home = svg ? svg.getAttribute("viewBox").split(/[ ,]+/).map(Number) : [0, 0, 1, 1];
  var box = home.slice();
  if (home[2] > 2.2 * home[3]) {  // a wide, flat graph: the panel goes underneath, the picture gets the width
    document.querySelector("main").classList.add("wide");
  }
  follow.checked = Object.keys(nodes).length > 40;  // a large graph: follow the steps by default

  function setBox(b) { box = b; if (svg) { svg.setAttribute("viewBox", b.join(" ")); } }

  function zoom(f) {
    var cx = box[0] + box[2] / 2, cy = box[1] + box[3] / 2;
    setBox([cx - box[2] * f / 2, cy - box[3] * f / 2, box[2] * f, box[3] * f]);
  }

  function userBox(el) {  // an element's box in the svg's user units (the viewBox's)
    var r = el.getBoundingClientRect(), m = svg.getScreenCTM().inverse();
    var a = svg.createSVGPoint(), b = svg.createSVGPoint();
    a.x = r.left; a.y = r.top; b.x = r.right; b.y = r.bottom;
    a = a.matrixTransform(m); b = b.matrixTransform(m);
    return [a.x, a.y, b.x, b.y];
  }

  function focus(s) {
    var ids = (s.node ? [s.node] : []).concat(s.reads.map(function (r) { return r[0]; }));
    var els = ids.map(function (n) { return nodes[n]; }).filter(Boolean);
    if (!els.length) { setBox(home.slice()); return; }
    setBox(home.slice());
    var u = [Infinity, Infinity, -Infinity, -Infinity];
    els.forEach(function (el) {
      var b = userBox(el);
      u = [Math.min(u[0], b[0]), Math.min(u[1], b[1]), Math.max(u[2], b[2]), Math.max(u[3], b[3])];
    });
    var w = Math.max(u[2] - u[0] + 160, home[2] / 4), h = Math.max(u[3] - u[1] + 120, home[3] / 4);
    setBox([(u[0] + u[2] - w) / 2, (u[1] + u[3] - h) / 2, w, h]);
  }

  function tag(node, cls, text) {
    var g = nodes[node];
    if (!g) { return; }
    var box = g.getBBox();
    var t = document.createElementNS(NS, "text");
    t.setAttribute("class", "tag " + cls);
    t.setAttribute("text-anchor", "middle");
    t.setAttribute("x", box.x + box.width / 2);
    t.setAttribute("y", cls === "grad" ? box.y + box.height + 11 : box.y - 4);
    t.textContent = (cls === "grad" && text.charAt(0) !== "∂" ? "∂ " : "") + text;
    g.appendChild(t);
  }

  function mark(node, cls) {
    if (nodes[node]) { nodes[node].classList.add(cls); }
  }

  function show(k) {
    current = Math.max(0, Math.min(steps.length - 1, k));
    var values = {}, grads = {};
    for (var i = 0; i <= current; i++) {
      Object.assign(values, steps[i].values);
      Object.assign(grads, steps[i].grads);
    }
    document.querySelectorAll("text.tag").forEach(function (t) { t.remove(); });
    document.querySelectorAll("g.node.current, g.node.reads, g.node.reads-grad").forEach(function (g) {
      g.classList.remove("current", "reads", "reads-grad");
    });
    Object.keys(values).forEach(function (n) { tag(n, "value", values[n]); });
    Object.keys(grads).forEach(function (n) { tag(n, "grad", grads[n]); });
    var s = steps[current];
    s.reads.forEach(function (r) { mark(r[0], r[1] === "grad" ? "reads-grad" : "reads"); });
    if (s.node) { mark(s.node, "current"); }
    document.getElementById("phase").textContent = s.phase;
    document.getElementById("title").textContent = s.title;
    document.getElementById("equation").textContent = s.text;
    document.getElementById("note").textContent = s.note;
    document.getElementById("counter").textContent = "step " + current + " of " + (steps.length - 1);
    slider.value = String(current);
    if (follow.checked && svg) { focus(s); }
    document.body.setAttribute("data-step", String(current));
    document.body.setAttribute("data-current", s.node || "");
  }

  function play() {
    if (timer) { clearInterval(timer); timer = null; }
    else {
      if (current >= steps.length - 1) { show(0); }
      timer = setInterval(function () {
        if (current >= steps.length - 1) { play(); return; }
        show(current + 1);
      }, 1200);
    }
    document.getElementById("play").textContent = timer ? "❚❚ pause" : "▶ play";
  }

  document.getElementById("prev").addEventListener("click", function () { show(current - 1); });
  document.getElementById("next").addEventListener("click", function () { show(current + 1); });
  document.getElementById("play").addEventListener("click", play);
  document.getElementById("zin").addEventListener("click", function () { zoom(1 / 1.4); });
  document.getElementById("zout").addEventListener("click", function () { zoom(1.4); });
  document.getElementById("fit").addEventListener("click", function () { follow.checked = false; setBox(home.slice()); });
  follow.addEventListener("change", function () { if (follow.checked) { focus(steps[current]); } else { setBox(home.slice()); } });
  slider.addEventListener("input", function () { show(parseInt(slider.value, 10)); });
  document.addEventListener("keydown", function (e) {
    if (e.target === slider && (e.key === "ArrowLeft" || e.key === "ArrowRight")) { return; }
    if (e.target.tagName === "BUTTON" && e.key === " ") { return; }
    if (e.key === "ArrowRight") { show(current + 1); e.preventDefault(); }
    else if (e.key === "ArrowLeft") { show(current - 1); e.preventDefault(); }
    else if (e.key === "Home") { show(0); e.preventDefault(); }
    else if (e.key === "End") { show(steps.length - 1); e.preventDefault(); }
    else if (e.key === " ") { play(); e.preventDefault(); }
  });
  show(0);
})();
</script>
</body>
</html>
"""

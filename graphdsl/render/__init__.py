"""Annotated diagrams of a model: structure, shapes, values and gradients.

    r = graphdsl.load("mlp.gdsl").render(values={...}, view="both")
    r.save("mlp.svg")        # .svg .png .pdf .dot .html .json
    r.dot                    # the DOT source
    r                        # in Jupyter: displayed (SVG, and PNG where available)

`render_model` evaluates what it can: with values (given, or the declarations'
initialisers) it computes every forward value and d(of)/dv for every variable in
one plan; without, it draws structure and shapes only and says why in the picture.
"""
from __future__ import annotations

import base64
import os
import time
from dataclasses import replace


from ..autodiff import adjoint_table
from ..build import build
from ..diagnostics import GraphDSLError
from ..digraph import upstream
from ..fileio import atomic_write, dumps
from ..plan import Plan
from . import backends
from . import labels as L
from .blocks import called_defs
from .rolled import has_loops
from .dot import COMPACT_AT, Annotations, Options, Scene, forward_set, scene, scene_data, to_dot
from .measure import READABLE_PX, smallest_text_px

__all__ = ["render_model", "Rendering", "Options", "FORMATS", "format_of"]

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot", ".html": "html",
           ".htm": "html", ".json": "json"}
# failures that leave a picture of structure and shapes rather than an error
RECOVERABLE = {"E304", "E305"}
UNROLL_AT = 1500  # drawn nodes above which the HTML viewer does not offer a loop unrolled (dot takes long)


def format_of(path) -> str:
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in FORMATS:
        raise ValueError(f"cannot tell the format of `{os.fspath(path)}` from its extension; "
                         f"use one of {', '.join(sorted(set(FORMATS)))}")
    return FORMATS[ext]


def render_model(model, values: dict | None = None, view: str = "forward", seed: int = 0, *,
                 of: str | None = None, wrt=None, show_values: bool = True, show_grads: bool = True,
                 precision: int = 4, heat: bool = False, collapse=(), expand=(), focus: str | None = None,
                 radius: int = 2, labels: str = "auto", rankdir: str = "auto", legend: bool = True,
                 title: str | None = None, renderer: str | None = None, unroll: bool = False) -> "Rendering":
    """collapse: def names drawn as blocks ("all": every def); expand: never collapsed ("all": no automatic
    collapsing). With the defaults, a picture whose text would be unreadable in a 900-px cell is redrawn
    with its def calls as blocks, then with chains of blocks folded, then blocks with compact labels, then
    folded with compact labels. A loop is drawn rolled (one iteration, `×N`) unless `unroll`."""
    opts = Options(view=view, show_values=show_values, show_grads=show_grads, precision=int(precision),
                   heat=heat, collapse=collapse, expand=expand, focus=focus, radius=int(radius), labels=labels,
                   rankdir=rankdir, legend=legend, title=title, wrt=wrt, unroll=bool(unroll))
    if renderer is not None:
        backends.choice(renderer)
    t0 = time.perf_counter()
    graph, ann = annotate(model, values, seed, opts, of)
    best = None
    steps = list(readability_steps(graph, opts))
    if len(steps) > 1 and len(scene(graph, ann, opts).nodes) > COMPACT_AT:
        steps = steps[-1:]  # too big to lay out several times (dot takes minutes): the smallest at once
    for step in steps:
        sc = scene(graph, ann, step)
        r = Rendering(to_dot(graph, ann, step, sc), graph, ann, step, sc, renderer)
        px = r.smallest_text_px()
        if best is None or px > best[0]:
            best = (px, r)
        if px >= READABLE_PX:
            break
    r = best[1]
    r.seconds = time.perf_counter() - t0
    return r


def readability_steps(graph, opts: Options):
    """The options to try in turn until the text is readable: as asked, then blocks, folded, compact; with
    a loop drawn rolled, each with the forward values it reads by their readers, then at its top."""
    for step in _steps(graph, opts):
        yield step
        if has_loops(graph) and not opts.unroll:
            yield replace(step, pull=False)


def _steps(graph, opts: Options):
    yield opts
    automatic = opts.labels == "auto" and not opts.collapse and opts.focus is None and "all" not in opts.expand
    if not automatic:
        return
    defs = called_defs(graph)
    if set(defs) - set(opts.expand):
        yield replace(opts, collapse=("all",))
        yield replace(opts, collapse=("all",), fold=True)
        yield replace(opts, collapse=("all",), labels="compact")  # every call still seen, values on hover
        yield replace(opts, collapse=("all",), fold=True, labels="compact")
    else:
        yield replace(opts, labels="compact")


# ---- values and gradients -------------------------------------------------------------------------

def annotate(model, values, seed: int, opts: Options, of: str | None):
    """(graph to draw, Annotations): concrete and evaluated when possible, else symbolic."""
    want_numbers = opts.show_values or opts.show_grads or opts.heat
    want_adjoints = opts.view != "forward" or ((opts.show_grads or opts.heat) and want_numbers)
    notes: list[str] = []
    try:
        compiled, given = model.compile(values or {})
    except GraphDSLError as err:
        if not _recoverable(err):
            raise
        notes.append("structure and shapes only: " + _reason(err) +
                     (" (give values with --set NAME=... or --load FILE)" if err.errors[0].code == "E304" else ""))
        return _symbolic(model, opts, of, notes)
    built = compiled.built
    g = built.graph
    ann = _base_annotations(model, built, notes)
    if want_adjoints:
        _adjoints(model, built, ann, of, notes, opts.wrt)
    if not want_numbers and opts.view == "forward":
        return g, ann
    try:
        ann.values = evaluate(model, compiled, given, seed, g, ann)
        ann.evaluated = True
    except GraphDSLError as err:
        if not _recoverable(err):
            raise
        notes.append("no values: " + _reason(err))
    ann.notes = tuple(notes)
    return g, ann


def _recoverable(err: GraphDSLError) -> bool:
    return bool(err.errors) and all(d.code in RECOVERABLE for d in err.errors)


def _reason(err: GraphDSLError) -> str:
    return err.errors[0].message


def _base_annotations(model, built, notes) -> Annotations:
    g = built.graph
    text = model.source.text
    calls = {label: L.one_line(text[c["span"].start:c["span"].end], 60) if c.get("span") else label
             for label, c in g.graph.get("calls", {}).items()}
    return Annotations(outputs=tuple(built.outputs), call_text=calls, notes=tuple(notes),
                       source_name=os.path.basename(model.source.name) or model.source.name)


def _adjoints(model, built, ann: Annotations, of, notes, wrt=None) -> None:
    """Build d(of)/dv for every variable of reaches (reverse mode adds the nodes to the graph)."""
    try:
        target = model._resolve_of(built, of)
    except GraphDSLError:
        if of is not None:
            raise
        notes.append(f"no gradients: the model has {len(built.outputs)} outputs; choose one with --of "
                     f"({', '.join(built.graph.nodes[o].get('name') or o for o in built.outputs)})")
        ann.notes = tuple(notes)
        return
    try:
        table = adjoint_table(built.gb, target)
    except GraphDSLError as err:
        if of is not None and not _recoverable(err):
            raise
        notes.append("no gradients: " + _reason(err))
        ann.notes = tuple(notes)
        return
    g = built.graph
    ann.of = target
    ann.of_name = g.nodes[target].get("name") or target
    ann.wrt = tuple(model.wrt_nodes(built, wrt))
    ann.adjoints = dict(table)
    ann.notes = tuple(notes)


def _symbolic(model, opts: Options, of, notes):
    """Structure only. A fresh build when reverse mode must add nodes, so model.graph stays as it is."""
    built = model.built
    if opts.view != "forward":
        built = build(model.program, model.source, dims=model.dim_overrides, strict=model.strict, max_ops=None)
    ann = _base_annotations(model, built, notes)
    if opts.view != "forward":
        _adjoints(model, built, ann, of, notes, opts.wrt)
        if not ann.adjoints:
            notes.append("the forward graph is drawn instead" if opts.view == "backward" else
                         "no gradient flow to draw")
    ann.notes = tuple(notes)
    return built.graph, ann


def evaluate(model, compiled, given, seed, g, ann: Annotations) -> dict:
    """Every value the picture needs, from one plan, keeping each slot (nothing is freed)."""
    need = forward_set(g, ann.outputs)
    if ann.adjoints:
        need |= upstream(g, list(dict.fromkeys(ann.adjoints.values())))
    sinks = [n for n in g.nodes if n in need and g.nodes[n]["kind"] == "var"
             and not any(s in need for s in g.successors(n))]
    plan = Plan(g, sinks, model.source, model.max_elements, optimize=False)
    model.check_memory(plan, keep_all=True)
    return plan.run_all(model.leaf_values(compiled, given, seed))


# ---- the result -------------------------------------------------------------------------------------

class Rendering:
    """A drawn model: `.dot`, `.svg()`, `.png()`, `.pdf()`, `.html()`, `.json()`, `.save(path)`."""

    def __init__(self, dot: str, graph, ann: Annotations, opts: Options, sc: Scene, renderer=None,
                 seconds: float = 0.0):
        self.dot = dot
        self.graph = graph
        self.annotations = ann
        self.options = opts
        self.scene = sc
        self.renderer = renderer
        self.seconds = seconds
        self._svg: bytes | None = None
        self.notebook_formats: tuple = ("text/html", "image/svg+xml")  # what a notebook is given

    @property
    def notes(self) -> list[str]:
        out = list(self.annotations.notes)
        if self.scene.compact:
            out.append(f"{len(self.scene.nodes)} nodes: compact labels")
        return out

    def smallest_text_px(self) -> float:
        """The smallest text in pixels when the SVG is fit to a 900-px cell (inf if nothing can draw it)."""
        try:
            return smallest_text_px(self.svg())
        except GraphDSLError:
            return float("inf")

    def backend(self, fmt: str = "svg") -> str:
        return backends.which(fmt, self.renderer)

    def svg(self) -> str:
        if self._svg is None:
            self._svg = backends.render(self.dot, "svg", self.renderer)
        return self._svg.decode("utf-8")

    def png(self, dpi: int | None = None) -> bytes:
        """The picture at dpi, or by default at 150 dpi within a pixel budget (lower for big pictures).
        From the SVG's layout: rasterised by resvg, or redrawn by the system `dot` (faster than resvg)."""
        self.svg()
        dpi = backends.png_dpi(*backends.svg_size_pt(self._svg), dpi)
        if backends.which("png", self.renderer) == "embedded":
            return backends.rasterise(self._svg, dpi)
        return backends.render(self.dot, "png", self.renderer, dpi)

    def pdf(self) -> bytes:
        if backends.which("pdf", self.renderer) == "embedded":
            self.svg()
            return backends.png_to_pdf(backends.rasterise(self._svg, 200), 200)
        return backends.render(self.dot, "pdf", self.renderer)

    def data(self, full_values: bool = True) -> dict:
        return scene_data(self.graph, self.annotations, self.options, self.scene, full_values)

    def json(self) -> str:
        """Node-link JSON (RFC 8259: NaN and Inf as strings), one node or link a line."""
        data = self.data()
        head = {k: v for k, v in data.items() if k not in ("nodes", "links")}
        lines = ["{" + dumps(head)[1:-1] + ","]
        for key in ("nodes", "links"):
            items = data[key]
            lines.append(f' "{key}": [')
            lines.extend("  " + dumps(item) + ("," if i + 1 < len(items) else "") for i, item in enumerate(items))
            lines.append(" ]" + ("," if key == "nodes" else ""))
        lines.append("}")
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        from .html import page

        return page(self.svg(), self._hover_data(), self._title(), self._subtitle(), self._expanded())

    def _expanded(self):
        """(svg, hover data) of the same picture with every block expanded (def calls in full, loops
        unrolled), when blocks are drawn; a loop too long to lay out unrolled stays rolled."""
        if not self.scene.call_nodes and not self.scene.rolled:
            return None
        opts = replace(self.options, collapse=(), fold=False, expand=("all",), unroll=bool(self.scene.rolled))
        sc = scene(self.graph, self.annotations, opts)
        if self.scene.rolled and len(sc.nodes) > UNROLL_AT:
            if not self.scene.call_nodes:
                return None
            opts = replace(opts, unroll=False)
            sc = scene(self.graph, self.annotations, opts)
        full = Rendering(to_dot(self.graph, self.annotations, opts, sc), self.graph, self.annotations, opts, sc,
                         self.renderer)
        return full.svg(), full._hover_data()

    def _title(self) -> str:
        return f"{self.options.title or self.annotations.source_name or 'graphdsl'} · {self.options.view} view"

    def _subtitle(self) -> str:
        return " · ".join(self.annotations.notes)

    def _hover_data(self) -> dict:
        from .hover import hover_data

        return hover_data(self.graph, self.annotations, self.scene, self.data(full_values=False)["nodes"])

    def render(self, fmt: str) -> bytes:
        if fmt == "dot":
            return self.dot.encode("utf-8")
        if fmt == "json":
            return self.json().encode("utf-8")
        if fmt == "html":
            return self.html().encode("utf-8")
        if fmt == "svg":
            self.svg()
            return self._svg
        if fmt == "png":
            return self.png()
        if fmt == "pdf":
            return self.pdf()
        raise ValueError(f"unknown format {fmt!r}")

    def save(self, path, format: str | None = None, force: bool = False) -> str:
        """Write the picture; the format comes from the extension unless given. Returns the path.

        An existing write-protected file is refused (E308) unless `force`."""
        fmt = format or format_of(path)
        atomic_write(path, self.render(fmt), force)
        return os.fspath(path)

    def _repr_mimebundle_(self, include=None, exclude=None):
        """text/html (the interactive viewer, in a sandboxed iframe) and image/svg+xml for front ends without
        JavaScript; image/png only when asked for (`r.notebook_formats += ("image/png",)`)."""
        from .notebook import iframe

        bundle = {"text/plain": repr(self)}
        try:
            svg = self.svg()
            if "text/html" in self.notebook_formats:
                bundle["text/html"] = iframe(self.html(), svg, self._title())
            if "image/svg+xml" in self.notebook_formats:
                bundle["image/svg+xml"] = svg
            if "image/png" in self.notebook_formats:
                bundle["image/png"] = base64.b64encode(self.png(dpi=96)).decode("ascii")
        except GraphDSLError as err:
            bundle["text/plain"] += "\n" + err.format()
        if include:
            bundle = {k: v for k, v in bundle.items() if k in include or k == "text/plain"}
        if exclude:
            bundle = {k: v for k, v in bundle.items() if k not in exclude}
        return bundle

    def __repr__(self) -> str:
        ann = self.annotations
        return (f"<graphdsl rendering of {ann.source_name}: {self.options.view} view, {len(self.scene.nodes)} nodes"
                f"{', with values' if ann.evaluated else ', structure only'}>")

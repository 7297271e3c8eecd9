"""A pure, deterministic function from (graph, values, gradients, options) to DOT text.

First `scene` decides what is drawn (the view, collapsed calls, a focus
neighbourhood); then `to_dot` writes it. Node order is the graph's insertion
order, which the builder makes deterministic; nothing depends on id() or on
hash order, so the same model and values always give the same bytes.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..diagnostics import Diagnostic, GraphDSLError, suggest
from . import labels as L
from . import theme as T

VIEWS = ("forward", "backward", "both")
LABEL_MODES = ("auto", "full", "compact")
COMPACT_AT = 300  # drawn nodes above which labels turn compact by themselves


@dataclass(frozen=True)
class Options:
    view: str = "forward"
    show_values: bool = True  # show values on variables
    show_grads: bool = True  # show d(of)/dv on variables
    precision: int = 4  # significant digits
    heat: bool = False  # fill variables by log10 |gradient|
    collapse: tuple = ()  # def names whose calls are drawn as single nodes
    focus: str | None = None  # draw only this node's neighbourhood...
    radius: int = 2  # ...of this many operator steps
    labels: str = "auto"  # auto | full | compact
    rankdir: str = "LR"
    legend: bool = True
    title: str | None = None

    def __post_init__(self):
        if self.view not in VIEWS:
            raise ValueError(f"unknown view {self.view!r}: use one of {', '.join(VIEWS)}")
        if self.labels not in LABEL_MODES:
            raise ValueError(f"unknown label mode {self.labels!r}: use one of {', '.join(LABEL_MODES)}")
        if not 1 <= int(self.precision) <= 17:
            raise ValueError(f"precision must be between 1 and 17, not {self.precision}")
        if int(self.radius) < 0:
            raise ValueError(f"radius must be 0 or more, not {self.radius}")
        if self.rankdir not in ("LR", "TB", "RL", "BT"):
            raise ValueError(f"rankdir must be LR, TB, RL or BT, not {self.rankdir!r}")
        collapse = (self.collapse,) if isinstance(self.collapse, str) else tuple(self.collapse or ())
        object.__setattr__(self, "collapse", collapse)


@dataclass
class Annotations:
    """What is known about the graph beyond its structure."""

    values: dict = field(default_factory=dict)  # var id -> ndarray (forward and adjoint vars)
    adjoints: dict = field(default_factory=dict)  # forward var id -> its adjoint var id, d(of)/d(var)
    of: str | None = None  # the var differentiated
    of_name: str | None = None
    outputs: tuple = ()
    evaluated: bool = False  # values were computed
    notes: tuple = ()  # lines for the legend (why something is missing, ...)
    call_text: dict = field(default_factory=dict)  # call label -> source text of the call ("phi(z)")
    source_name: str | None = None


@dataclass
class Scene:
    nodes: list  # drawn node ids, in order
    kind: dict  # id -> var | op | call | ghost
    edges: list  # (u, v, style) with style forward | backward | ghost | gradient
    cluster: dict  # id -> tuple of call labels (its cluster path)
    call_nodes: dict = field(default_factory=dict)  # synthetic id -> call label
    members: dict = field(default_factory=dict)  # synthetic id -> hidden node ids
    focus: str | None = None
    backward: set = field(default_factory=set)  # nodes of the adjoint graph
    adjoint_names: dict = field(default_factory=dict)  # adjoint var id -> primal var ids
    compact: bool = False
    total: int = 0  # nodes in the view before focus


# ---- choosing what to draw -------------------------------------------------------------------

def _upstream(g, seeds) -> set:
    """Every node that reaches one of seeds (seeds included): one breadth-first walk."""
    seen = set(seeds)
    queue = deque(seeds)
    while queue:
        n = queue.popleft()
        for u in g.predecessors(n):
            if u not in seen:
                seen.add(u)
                queue.append(u)
    return seen


def forward_set(g, outputs) -> set:
    """The program: forward-phase nodes plus whatever the outputs read (`grad(...)` in the language)."""
    fwd = {n for n, d in g.nodes(data=True) if d.get("phase", "forward") == "forward"}
    return fwd | _upstream(g, [o for o in outputs if o in g])


def scene(g, ann: Annotations, opts: Options) -> Scene:
    fwd = forward_set(g, ann.outputs)
    kind: dict = {}
    backward: set = set()
    adjoint_names: dict = {}
    for var, adj in ann.adjoints.items():
        adjoint_names.setdefault(adj, []).append(var)
    if opts.view == "backward" and ann.adjoints:
        targets = [a for a in dict.fromkeys(ann.adjoints.values()) if a in g]
        backward = _upstream(g, targets) - fwd
        ghosts = {a for a in targets if a in fwd}
        for n in backward:
            if g.nodes[n]["kind"] == "op":
                ghosts.update(u for u in g.predecessors(n) if u in fwd)
        drawn = backward | ghosts
        nodes = [n for n in g.nodes if n in drawn]
        for n in nodes:
            kind[n] = g.nodes[n]["kind"] if n in backward else "ghost"
        edges = [(u, v, "backward" if u in backward else "ghost")
                 for u, v, _ in g.edges(keys=True) if v in backward and u in drawn]
    else:
        nodes = [n for n in g.nodes if n in fwd]
        for n in nodes:
            kind[n] = g.nodes[n]["kind"]
        edges = [(u, v, "forward") for u, v, _ in g.edges(keys=True) if u in fwd and v in fwd]
    cluster = {n: tuple(g.nodes[n].get("call") or ()) for n in nodes}
    sc = Scene(nodes, kind, edges, cluster, backward=backward, adjoint_names=adjoint_names)
    if opts.collapse:
        _collapse(g, sc, opts.collapse, ann)
    sc.total = len(sc.nodes)
    if opts.focus is not None:
        _focus(g, sc, opts.focus, opts.radius)
    if opts.view == "both":
        sc.edges = sc.edges + _gradient_edges(g, sc, ann)
    sc.compact = opts.labels == "compact" or (opts.labels == "auto" and len(sc.nodes) > COMPACT_AT)
    return sc


def _gradient_edges(g, sc: Scene, ann: Annotations) -> list:
    """Each forward edge whose variable end has a gradient, reversed: the flow of d(of)/d(...)."""
    out = []
    for u, v, style in sc.edges:
        if style != "forward":
            continue
        var = u if sc.kind.get(u) == "var" else v
        if var in ann.adjoints:
            out.append((v, u, "gradient"))
    return out


def _collapse(g, sc: Scene, names, ann: Annotations) -> None:
    calls = g.graph.get("calls", {})
    defs = sorted({c["def"] for c in calls.values()})
    for name in names:
        if name not in defs:
            near = suggest(name, defs)
            raise GraphDSLError(Diagnostic(
                "E101", f"--collapse `{name}`: no def of that name is called in the model",
                help=(f"did you mean `{near}`?",) if near else
                (f"defs called: {', '.join(defs)}" if defs else "the model calls no def",)))
    wanted = set(names)
    inside: dict = {}  # node -> the collapsed call path it sits in
    for n in sc.nodes:
        path = sc.cluster[n]
        for i, label in enumerate(path):
            if calls.get(label, {}).get("def") in wanted:
                inside[n] = path[: i + 1]
                break
    if not inside:
        return
    succ: dict = {}
    for u, v, _ in sc.edges:
        succ.setdefault(u, []).append(v)
    hidden: dict = {}
    for n, path in inside.items():
        data = g.nodes[n]
        keep = sc.kind[n] != "op" and (data.get("role") == "output" or n == ann.of or
                                       any(inside.get(v) != path for v in succ.get(n, ())))
        if keep:
            sc.cluster[n] = path[:-1]
        else:
            hidden[n] = "call:" + path[-1]
    order: list = []
    for n in sc.nodes:
        rep = hidden.get(n)
        if rep is None:
            order.append(n)
        elif rep not in sc.kind:
            label = rep[len("call:"):]
            sc.kind[rep] = "call"
            sc.call_nodes[rep] = label
            sc.cluster[rep] = inside[n][:-1]
            order.append(rep)
        if rep is not None:
            sc.members.setdefault(rep, []).append(n)
    edges, seen = [], set()
    for u, v, style in sc.edges:
        a, b = hidden.get(u, u), hidden.get(v, v)
        if a == b:
            continue
        if a != u or b != v:
            if (a, b, style) in seen:
                continue
            seen.add((a, b, style))
        edges.append((a, b, style))
    sc.nodes, sc.edges = order, edges
    for n in hidden:
        sc.kind.pop(n, None)
        sc.cluster.pop(n, None)


def resolve_node(g, sc: Scene, name: str) -> str:
    """A drawn node by id (`%12`, `matmul#3`, `dJ/dW1`) or by the user's name."""
    if name in sc.kind:
        return name
    for rep, members in sc.members.items():
        if name in members:
            return rep
    named = [n for n in sc.nodes if sc.kind[n] != "call" and g.nodes[n].get("name") == name]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise GraphDSLError(Diagnostic("E101", f"--focus `{name}` names {len(named)} nodes",
                                       help=(f"give one of their ids: {', '.join(named[:8])}",)))
    if name in g:
        raise GraphDSLError(Diagnostic("E101", f"--focus `{name}` is not drawn in this view",
                                       help=("try --view forward or --view backward",)))
    names = [g.nodes[n].get("name") or n for n in sc.nodes if sc.kind[n] != "call"]
    near = suggest(name, names)
    raise GraphDSLError(Diagnostic("E101", f"--focus `{name}`: no such node",
                                   help=(f"did you mean `{near}`?",) if near else
                                   ("give a name from the model, or a node id such as `%12` or `matmul#3`",)))


def _focus(g, sc: Scene, name: str, radius: int) -> None:
    """Keep the nodes within `radius` operator steps (2 * radius edges) of the focus."""
    start = resolve_node(g, sc, name)
    adj: dict = {}
    for u, v, style in sc.edges:
        adj.setdefault(u, []).append(v)
        adj.setdefault(v, []).append(u)
    limit = 2 * radius + (1 if sc.kind[start] in ("op", "call") else 0)
    depth = {start: 0}
    queue = deque([start])
    while queue:
        n = queue.popleft()
        if depth[n] >= limit:
            continue
        for m in adj.get(n, ()):
            if m not in depth:
                depth[m] = depth[n] + 1
                queue.append(m)
    # an operator at the rim keeps all its inputs and its output, so no operator is drawn half-fed
    rim = [n for n in depth if sc.kind[n] in ("op", "call") and depth[n] == limit]
    for n in rim:
        for m in adj.get(n, ()):
            depth.setdefault(m, limit + 1)
    sc.nodes = [n for n in sc.nodes if n in depth]
    sc.edges = [(u, v, s) for u, v, s in sc.edges if u in depth and v in depth]
    sc.focus = start


# ---- writing DOT -----------------------------------------------------------------------------

def _attrs(items: dict) -> str:
    """Node/edge attributes; `label` values are escStrings already, everything else is escaped here."""
    parts = []
    for key, value in items.items():
        if key in ("label", "xlabel"):
            parts.append(f"{key}={L.dot_string(value)}")
        else:
            parts.append(f'{key}="{L.esc_quoted(value)}"')
    return ", ".join(parts)


def _grad_value(n, sc: Scene, ann: Annotations):
    """The gradient array drawn for node n (None: not computed)."""
    if n in sc.backward or sc.kind.get(n) == "ghost":
        return None
    adj = ann.adjoints.get(n)
    return None if adj is None else ann.values.get(adj)


def _heat_value(n, sc: Scene, ann: Annotations):
    """What --heat colours by: a forward variable's gradient, or an adjoint's own value."""
    if n in sc.backward:
        return ann.values.get(n) if n in sc.adjoint_names else None
    return _grad_value(n, sc, ann)


def _heat_range(sc: Scene, ann: Annotations) -> tuple[int, int] | None:
    logs = []
    for n in sc.nodes:
        if sc.kind.get(n) != "var":
            continue
        value = _heat_value(n, sc, ann)
        if value is None:
            continue
        norm = float(np.linalg.norm(np.ravel(np.asarray(value, dtype=np.float64))))
        if math.isfinite(norm) and norm > 0:
            logs.append(math.log10(norm))
    if not logs:
        return None
    lo, hi = math.floor(min(logs)), math.ceil(max(logs))
    return (lo, hi) if hi > lo else (lo, lo + 1)


def _heat_fill(value, rng) -> tuple[str, bool] | None:
    """(fill colour, dark?) for a gradient, or None when there is none."""
    if value is None:
        return None
    norm = float(np.linalg.norm(np.ravel(np.asarray(value, dtype=np.float64))))
    if not math.isfinite(norm):
        return T.BAD, True
    if norm == 0 or rng is None:
        return T.HEAT[0], False
    k = T.heat_class(math.log10(norm), *rng)
    return T.HEAT[k], k >= T.HEAT_DARK


def _var_style(g, n, sc: Scene, ann: Annotations, opts: Options, heat_rng) -> dict:
    data = g.nodes[n]
    if sc.kind[n] == "ghost":
        style = dict(T.GHOST_STYLE)
    elif n in sc.backward:
        primals = sc.adjoint_names.get(n, [])
        if primals:
            role = g.nodes[primals[0]].get("role", "intermediate")
            style = {**T.ROLE_STYLE.get(role, T.ROLE_STYLE["intermediate"]), "fillcolor": T.ADJOINT_FILL}
            style.pop("peripheries", None)
        else:
            style = dict(T.BACKWARD_VAR)
    else:
        style = dict(T.ROLE_STYLE.get(data.get("role"), T.ROLE_STYLE["intermediate"]))
    if opts.heat and ann.evaluated and sc.kind[n] == "var" and (n not in sc.backward or n in sc.adjoint_names):
        filled = _heat_fill(_heat_value(n, sc, ann), heat_rng)
        style["fillcolor"] = filled[0] if filled else T.NO_GRAD_FILL
        if filled and filled[1]:
            style["fontcolor"] = "#FFFFFF"
    return style


def _node_attrs(g, n, sc: Scene, ann: Annotations, opts: Options, heat_rng) -> dict:
    kind = sc.kind[n]
    if kind == "call":
        label = sc.call_nodes[n]
        return {"label": L.esc_text(label.split("#")[0]) + "\\n" + L.esc_text(label), "fontname": T.FONT,
                **T.CALL_STYLE}
    data = g.nodes[n]
    if kind == "op":
        style = T.BACKWARD_OP if n in sc.backward else (T.OPAQUE_STYLE if data.get("op") == "opaque"
                                                        else T.OP_STYLE)
        size = "14" if len(L.op_symbol(data)) <= 2 and not L.op_detail(data) else "10"
        return {"label": L.op_label(data), "fontname": T.FONT, **style, "fontsize": size}
    show_values = opts.show_values and ann.evaluated
    value = ann.values.get(n) if show_values else None
    if L.is_literal(data) or data.get("dim"):
        if data.get("dim"):
            text = data["dim"] if data.get("value") is None else \
                f"{data['dim']} = {L.fmt_number(data['value'], opts.precision)}"
        else:
            text = L.literal_label(data, opts.precision)
        attrs = {"label": L.esc_text(text), "fontname": T.MONO, **T.LITERAL_STYLE}
        primals = sc.adjoint_names.get(n) if n in sc.backward else None
        if primals:  # a constant cotangent, e.g. the seed d(of)/d(of) = 1
            names = [L.grad_name(ann.of_name or "J", p, g.nodes[p]) for p in primals]
            text = " = ".join(names[:4] + (["…"] if len(names) > 4 else []) + [text])
            attrs.update(label=L.esc_text(text), fillcolor=T.ADJOINT_FILL, color=T.VERMILLION)
        if kind == "ghost":
            attrs.update(color=T.GHOST_STYLE["color"], fontcolor=T.GHOST_STYLE["fontcolor"])
        return attrs
    style = _var_style(g, n, sc, ann, opts, heat_rng)
    if sc.compact:
        return {"label": L.var_compact(n, data), "shape": "box", "fontname": T.MONO, "fontsize": "10",
                "margin": "0.06,0.03", **style}
    role = data.get("role", "intermediate")
    if kind == "ghost":
        fields, bad = L.var_fields(n, data, role_text="forward", value=value, show_value=show_values,
                                   precision=opts.precision)
    elif n in sc.backward:
        primals = sc.adjoint_names.get(n, [])
        extra = None
        if primals:
            names = [L.grad_name(ann.of_name or "J", p, g.nodes[p]) for p in primals]
            shown = [x for x in names if x != L.var_title(n, data)]
            if shown:
                extra = "= " + ", ".join(shown[:3]) + (f" (+{len(shown) - 3})" if len(shown) > 3 else "")
        fields, bad = L.var_fields(n, data, role_text="", value=value, show_value=show_values,
                                   precision=opts.precision, extra=extra)
    else:
        show_grad = opts.show_grads and ann.evaluated and ann.of is not None
        fields, bad = L.var_fields(n, data, role_text="" if role == "intermediate" else role, value=value,
                                   grad=_grad_value(n, sc, ann), grad_label=L.grad_name(ann.of_name or "J", n, data),
                                   show_value=show_values, show_grad=show_grad, precision=opts.precision)
    attrs = {"label": L.record(fields, opts.rankdir), "shape": "record", "fontname": T.MONO, "fontsize": "10",
             **style}
    if bad:  # NaN or Inf: flagged in red, border and text
        attrs.update(color=T.BAD, fontcolor=T.BAD, penwidth="3")
    return attrs


def _cluster_label(label: str, ann: Annotations, backward: bool) -> str:
    text = ann.call_text.get(label)
    head = L.one_line(text, 40) if text else label.split("#")[0]
    return L.esc_text(f"{head}  [{label}]" + ("  backward" if backward else ""))


def _title(sc: Scene, ann: Annotations, opts: Options) -> str:
    """The graph label: a title line, then notes, left-justified."""
    title = opts.title or ann.source_name or "graphdsl"
    head = f"{title} · {opts.view} view"
    if ann.evaluated and ann.of is not None and np.size(ann.values.get(ann.of, [])) == 1:
        head += f" · {ann.of_name} = {L.fmt_number(np.ravel(ann.values[ann.of])[0], opts.precision)}"
    notes = list(ann.notes)
    if sc.compact:
        notes.append(f"{len(sc.nodes)} nodes: labels are compact (name and shape); draw details with "
                     "--focus NODE --radius K, or hover in the .html output")
    if sc.focus is not None:
        steps = "operator step" if opts.radius == 1 else "operator steps"
        notes.append(f"focus: {len(sc.nodes)} of {sc.total} nodes within {opts.radius} {steps} of {sc.focus}")
    return "".join(L.esc_text(line) + "\\l" for line in [head] + notes)


def _legend(opts: Options, heat_rng, has_calls: bool, sinks: list, roles: set) -> list[str]:
    """A cluster of sample nodes, one per role and mark, in one rank after the graph's last nodes.

    Invisible edges from the sinks put the legend's rank after them (to the right in
    LR); invisible edges within the rank keep its items in order.
    """
    items = []
    for role, style in T.ROLE_STYLE.items():
        if role not in roles:
            continue
        items.append((f"legend:{role}", {"label": L.esc_text(T.ROLE_LABEL[role]), "shape": "box", **style}))
    items.append(("legend:op", {"label": "op", **T.OP_STYLE, "fontsize": "9", "width": "0.4"}))
    if has_calls:
        items.append(("legend:call", {"label": "def call", "shape": "box", "style": "rounded,dashed",
                                      "color": T.GREEN, "fontcolor": T.GREEN}))
    if opts.view == "both":
        items.append(("legend:gradient", {"label": "<- - gradient flow", "shape": "plaintext",
                                          "fontcolor": T.VERMILLION}))
    if opts.view == "backward":
        items.append(("legend:adjoint", {"label": "adjoint", "shape": "box", "style": "filled",
                                         "fillcolor": T.ADJOINT_FILL, "color": T.VERMILLION}))
        items.append(("legend:ghost", {"label": "forward value read", "shape": "box", **T.GHOST_STYLE}))
    if opts.heat and heat_rng is not None:
        lo, hi = heat_rng
        for k, colour in enumerate(T.HEAT):
            text = f"|grad| 1e{lo}" if k == 0 else (f"1e{hi}" if k == len(T.HEAT) - 1 else " ")
            items.append((f"legend:heat{k}", {"label": L.esc_text(text), "shape": "box", "style": "filled",
                                              "fillcolor": colour, "color": "#888888",
                                              "fontcolor": "#FFFFFF" if k >= T.HEAT_DARK else T.TEXT}))
    out = ["  subgraph \"cluster_legend\" {",
           '    graph [label="legend", style="rounded", color="#BBBBBB", fontcolor="#555555", fontsize="9", '
           'margin="6"];',
           f'    node [fontname="{T.FONT}", fontsize="9", height="0.25", margin="0.1,0.02"];']
    for nid, attrs in items:
        out.append(f"    {L.quote_id(nid)} [{_attrs(attrs)}];")
    out.append("    {rank=same; " + " ".join(L.quote_id(nid) + ";" for nid, _ in items) + "}")
    for (a, _), (b, _) in zip(items, items[1:]):  # within a rank in LR, an edge's head is drawn above
        out.append(f'    {L.quote_id(b)} -> {L.quote_id(a)} [style="invis"];')
    out.append("  }")
    for n in sinks:
        out.append(f'  {L.quote_id(n)} -> {L.quote_id(items[0][0])} [style="invis"];')
    return out


def to_dot(g, ann: Annotations, opts: Options, sc: Scene | None = None) -> str:
    sc = sc or scene(g, ann, opts)
    heat_rng = _heat_range(sc, ann) if opts.heat and ann.evaluated else None
    out = ["digraph graphdsl {",
           f'  graph [rankdir="{opts.rankdir}", fontname="{T.FONT}", fontsize="12", nodesep="0.25", '
           f'ranksep="0.4", newrank="true", labelloc="t", labeljust="l", bgcolor="#FFFFFF", pad="0.2", '
           f"label={L.dot_string(_title(sc, ann, opts))}];",
           f'  node [fontname="{T.FONT}", fontsize="11", fontcolor="{T.TEXT}"];',
           f'  edge [fontname="{T.FONT}", color="{T.EDGE}", arrowsize="0.7"];']
    by_path: dict = {}
    for n in sc.nodes:
        by_path.setdefault(sc.cluster.get(n, ()), []).append(n)
    children: dict = {}
    for path in by_path:
        for i in range(len(path)):
            kids = children.setdefault(path[:i], [])
            if path[: i + 1] not in kids:
                kids.append(path[: i + 1])
    backward_view = opts.view == "backward"
    cluster_style = ", ".join(f'{k}="{v}"' for k, v in T.CLUSTER_STYLE.items())

    def emit(path, indent):  # depth is bounded by the def nesting limit (64)
        pad = "  " * indent
        for n in by_path.get(path, ()):
            attrs = _node_attrs(g, n, sc, ann, opts, heat_rng)
            if n == sc.focus:
                attrs["penwidth"] = "3.5"
            out.append(f"{pad}{L.quote_id(n)} [{_attrs(attrs)}];")
        for child in children.get(path, ()):
            label = child[-1]
            out.append(f"{pad}subgraph {L.quote_id('cluster_' + label)} {{")
            out.append(f"{pad}  graph [label={L.dot_string(_cluster_label(label, ann, backward_view))}, "
                       f"{cluster_style}];")
            emit(child, indent + 1)
            out.append(f"{pad}}}")

    emit((), 1)
    if opts.legend:
        has_out = {u for u, _, style in sc.edges if style != "gradient"}
        sinks = [n for n in sc.nodes if n not in has_out]
        roles = {g.nodes[n].get("role") for n in sc.nodes if sc.kind[n] == "var" and n not in sc.backward}
        roles |= {g.nodes[p].get("role") for n in sc.nodes if n in sc.backward for p in sc.adjoint_names.get(n, ())}
        out.extend(_legend(opts, heat_rng, any(sc.cluster.get(n) for n in sc.nodes), sinks, roles))
    styles = {"forward": {}, "backward": T.BACKWARD_EDGE, "ghost": T.GHOST_EDGE, "gradient": T.GRADIENT_EDGE}
    for u, v, style in sc.edges:
        attrs = styles[style]
        tail = f" [{_attrs(attrs)}]" if attrs else ""
        out.append(f"  {L.quote_id(u)} -> {L.quote_id(v)}{tail};")
    out.append("}")
    return "\n".join(out) + "\n"


# ---- the same picture as data ------------------------------------------------------------------

def scene_data(g, ann: Annotations, opts: Options, sc: Scene, full_values: bool = True) -> dict:
    """Node-link data of what is drawn (for .json and the HTML viewer)."""
    nodes = []
    for n in sc.nodes:
        kind = sc.kind[n]
        if kind == "call":
            label = sc.call_nodes[n]
            nodes.append({"id": n, "kind": "call", "call": label, "text": ann.call_text.get(label),
                          "members": sc.members.get(n, [])})
            continue
        data = g.nodes[n]
        item = {"id": n, "kind": data["kind"], "drawn_as": kind}
        for key in ("role", "name", "text", "op", "phase", "func"):
            if key in data and data[key] is not None:
                item[key] = data[key]
        if data["kind"] == "op":
            item["op"] = data.get("op")
            detail = L.op_detail(data)
            if detail:
                item["attrs"] = detail
            if data.get("op") == "opaque":
                item["func"] = data.get("attrs", {}).get("func")
        else:
            shape = data.get("shape")
            item["shape"] = None if shape is None else [{"name": d.name, "size": d.size} for d in shape]
            item["shape_text"] = L.shape_text(data)
        item["call"] = list(data.get("call") or ())
        if data.get("span") is not None:
            item["line"], item["col"] = data["span"].line, data["span"].col
        if n in sc.adjoint_names:
            item["adjoint_of"] = sc.adjoint_names[n]
        if data["kind"] == "var" and ann.evaluated:
            value = ann.values.get(n)
            grad = _grad_value(n, sc, ann) if ann.of is not None else None
            if value is not None:
                item["value"] = _as_data(value) if full_values else L.value_text(value)
            if ann.of is not None and kind == "var" and n not in sc.backward:
                item["grad"] = (_as_data(grad) if full_values else L.value_text(grad)) if grad is not None \
                    else None
        nodes.append(item)
    links = [{"source": u, "target": v, "kind": style} for u, v, style in sc.edges]
    return {"directed": True, "multigraph": True,
            "graph": {"file": ann.source_name, "view": opts.view, "of": ann.of_name, "evaluated": ann.evaluated,
                      "notes": list(ann.notes), "focus": sc.focus, "collapse": list(opts.collapse)},
            "nodes": nodes, "links": links}


JSON_FULL_MAX = 10_000


def _as_data(value):
    arr = np.asarray(value, dtype=np.float64)
    if arr.size <= JSON_FULL_MAX:
        return arr
    finite = arr[np.isfinite(arr)]
    return {"shape": list(arr.shape), "min": finite.min() if finite.size else None,
            "mean": finite.mean() if finite.size else None, "max": finite.max() if finite.size else None,
            "norm": float(np.linalg.norm(finite)) if finite.size else None,
            "nonfinite": int(arr.size - finite.size), "truncated": True}

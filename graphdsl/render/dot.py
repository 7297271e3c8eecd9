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
from ..digraph import upstream
from . import labels as L
from . import theme as T
from .blocks import collapse_calls
from .rolled import ITER, LOOP, after_what_enters, is_loop_cluster, parts_into_blocks, relative_text, roll_loops
from .layout import choose_rankdir, contract_gradient_sums, inline_literals, split_auxiliary
from .words import BackwardNames, op_text, with_literals

VIEWS = ("forward", "backward", "both")
LABEL_MODES = ("auto", "summary", "full", "compact")
RANKDIRS = ("auto", "TB", "LR", "BT", "RL")
COMPACT_AT = 300  # drawn nodes above which labels turn compact by themselves
LEGEND_TIES = 4  # invisible edges that put the legend after the graph
GHOST_TEXT = 16  # characters of a forward value's name in the backward view's compact labels
ON_NODE = 12  # an anonymous value's gradient on its own node: dJ/d(o - y) up to this many characters


@dataclass(frozen=True)
class Options:
    view: str = "forward"
    show_values: bool = True  # show values on variables
    show_grads: bool = True  # show d(of)/dv on variables
    precision: int = 4  # significant digits
    heat: bool = False  # fill variables by log10 |gradient|
    collapse: tuple = ()  # def names whose calls are drawn as blocks ("all": every def)
    fold: bool = False  # also fold chains of calls of one def into one block `f ×N`
    expand: tuple = ()  # def names never collapsed ("all": none)
    wrt: tuple | None = None  # the backward view draws the adjoints leading to these (default: as grad)
    focus: str | None = None  # draw only this node's neighbourhood...
    radius: int = 2  # ...of this many operator steps
    labels: str = "auto"  # auto (summary, compact when big) | summary | full | compact
    rankdir: str = "auto"  # auto: from the graph's shape
    legend: bool = True
    title: str | None = None
    unroll: bool = False  # draw every iteration of a loop (default: one iteration, rolled, `×N`)
    pull: bool = True  # a forward value read in a rolled loop sits by its reader (False: at the block's top)

    def __post_init__(self):
        if self.view not in VIEWS:
            raise ValueError(f"unknown view {self.view!r}: use one of {', '.join(VIEWS)}")
        if self.labels not in LABEL_MODES:
            raise ValueError(f"unknown label mode {self.labels!r}: use one of {', '.join(LABEL_MODES)}")
        if not 1 <= int(self.precision) <= 17:
            raise ValueError(f"precision must be between 1 and 17, not {self.precision}")
        if int(self.radius) < 0:
            raise ValueError(f"radius must be 0 or more, not {self.radius}")
        if self.rankdir not in RANKDIRS:
            raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {self.rankdir!r}")
        collapse = (self.collapse,) if isinstance(self.collapse, str) else tuple(self.collapse or ())
        object.__setattr__(self, "collapse", collapse)
        expand = (self.expand,) if isinstance(self.expand, str) else tuple(self.expand or ())
        object.__setattr__(self, "expand", expand)
        if isinstance(self.wrt, str):
            object.__setattr__(self, "wrt", tuple(w.strip() for w in self.wrt.split(",") if w.strip()))


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
    wrt: tuple = ()  # forward var ids whose gradients the backward view leads to (empty: every one)


@dataclass
class Scene:
    nodes: list  # drawn node ids, in order
    kind: dict  # id -> var | op | call | ghost
    edges: list  # (u, v, style) with style forward | backward | ghost | gradient
    cluster: dict  # id -> tuple of call labels (its cluster path)
    call_nodes: dict = field(default_factory=dict)  # synthetic id -> call label
    folded: dict = field(default_factory=dict)  # synthetic id -> the call labels it folds (2 or more)
    absorbed: dict = field(default_factory=dict)  # synthetic id -> params drawn inside the block
    members: dict = field(default_factory=dict)  # synthetic id -> hidden node ids
    focus: str | None = None
    backward: set = field(default_factory=set)  # nodes of the adjoint graph
    adjoint_names: dict = field(default_factory=dict)  # adjoint var id -> primal var ids
    compact: bool = False
    total: int = 0  # nodes in the view before focus
    rankdir: str = "TB"
    refs: dict = field(default_factory=dict)  # reference node id -> the auxiliary variable it stands for
    inlined: dict = field(default_factory=dict)  # op id -> {argument position: literal text} drawn in its circle
    sums: dict = field(default_factory=dict)  # adjoint id -> how many parts are summed into it (drawn as edges)
    names: object = None  # BackwardNames: titles of the backward view's values
    loop_titles: dict = field(default_factory=dict)  # loop cluster label -> its title (rolled.py)
    loop_names: dict = field(default_factory=dict)  # node of a rolled loop -> its name in terms of t: `h[t]`
    edge_attrs: dict = field(default_factory=dict)  # (u, v, style) -> {"label": ..., "carried": bool}
    rolled: dict = field(default_factory=dict)  # loop key -> the iteration drawn for it
    loop_frames: dict = field(default_factory=dict)  # node drawn for every iteration of a rolled loop -> frames
    order_edges: list = field(default_factory=list)  # (u, v): invisible, u is drawn above v (rolled.py)
    twins: dict = field(default_factory=dict)  # node of another iteration -> the node drawn for it (rolled)
    pulled: set = field(default_factory=set)  # ghost edges (u, v) that pull u towards v (in a rolled loop)


# ---- choosing what to draw -------------------------------------------------------------------

def forward_set(g, outputs) -> set:
    """The program: forward-phase nodes plus whatever the outputs read (`grad(...)` in the language)."""
    fwd = {n for n, d in g.nodes(data=True) if d.get("phase", "forward") == "forward"}
    return fwd | upstream(g, [o for o in outputs if o in g])


def scene(g, ann: Annotations, opts: Options) -> Scene:
    fwd = forward_set(g, ann.outputs)
    kind: dict = {}
    backward: set = set()
    adjoint_names: dict = {}
    for var, adj in ann.adjoints.items():
        adjoint_names.setdefault(adj, []).append(var)
    if opts.view == "backward" and ann.adjoints:
        wanted = [ann.adjoints[w] for w in ann.wrt if w in ann.adjoints] if ann.wrt else ann.adjoints.values()
        targets = [a for a in dict.fromkeys(wanted) if a in g]
        backward = upstream(g, targets) - fwd
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
    roll_loops(g, sc, opts.unroll, ann.evaluated)
    if opts.collapse:
        collapse_calls(g, sc, opts.collapse, ann, expand=opts.expand, fold=opts.fold)
        parts_into_blocks(g, sc)
    sc.total = len(sc.nodes)
    if opts.focus is not None:
        _focus(g, sc, opts.focus, opts.radius)
    if opts.view == "both":
        sc.edges = sc.edges + _gradient_edges(g, sc, ann)
    sc.compact = opts.labels == "compact" or (opts.labels == "auto" and len(sc.nodes) > COMPACT_AT)
    sc.rankdir = choose_rankdir(sc) if opts.rankdir == "auto" else opts.rankdir
    inline_literals(g, sc)
    if sc.call_nodes and sc.backward:
        contract_gradient_sums(g, sc)
    split_auxiliary(g, sc)
    _place_ghosts(sc)
    after_what_enters(g, sc, opts.pull)
    sc.names = BackwardNames(g, sc, ann)
    return sc


def _place_ghosts(sc: Scene) -> None:
    """A forward value read by the backward pass sits in the innermost cluster holding all its readers."""
    readers: dict = {}
    for u, v, _ in sc.edges:
        if sc.kind.get(u) == "ghost":
            readers.setdefault(u, []).append(sc.cluster.get(v, ()))
    for n, paths in readers.items():
        common = paths[0]
        for path in paths[1:]:
            k = 0
            while k < min(len(common), len(path)) and common[k] == path[k]:
                k += 1
            common = common[:k]
        sc.cluster[n] = common


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


def resolve_node(g, sc: Scene, name: str) -> str:
    """A drawn node by id (`%12`, `matmul#3`, `dJ/dW1`) or by the user's name; an element of another
    iteration of a rolled loop (`h[3]`) is the element drawn for it."""
    name = sc.twins.get(name, name)
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


def _detail(opts: Options) -> str:
    """Values in full (small arrays as matrices) only when asked; else one line each."""
    return "full" if opts.labels == "full" else "summary"


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
    if kind == "ref":
        return _ref_attrs(g, sc.refs[n], sc, ann)
    if kind == "call":
        return _block_attrs(g, n, sc, ann, opts)
    data = g.nodes[n]
    if n in sc.loop_names:  # a rolled loop's value is named in terms of its variable: h[t]
        data = {**data, "name": sc.loop_names[n]}
    if kind == "op":
        style = T.BACKWARD_OP if n in sc.backward else (T.OPAQUE_STYLE if data.get("op") == "opaque"
                                                        else T.OP_STYLE)
        symbol, detail = op_text(g, n)
        symbol = with_literals(symbol, sc.inlined.get(n), g.in_degree(n))
        size = "14" if len(symbol) <= 2 and not detail else "10"
        label = L.esc_text(symbol) + ("\\n" + L.esc_text(detail) if detail else "")
        return {"label": label, "fontname": T.FONT, **style, "fontsize": size}
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
    title = sc.names.title(n) if n in sc.backward else None
    if title and n in sc.loop_frames:
        title = relative_text(title, sc.loop_frames[n])
    if sc.compact:
        name = title or L.var_title(n, data)
        if kind == "ghost":  # a forward value read: its name is enough to tell which, the rest is on hover
            name = L.one_line(name, GHOST_TEXT)
        text = f"{name} {L.shape_text(data)}"
        return {"label": L.esc_text(text), "shape": "box", "fontname": T.MONO, "fontsize": "10",
                "margin": "0.06,0.03", **style}
    role = data.get("role", "intermediate")
    if kind == "ghost":
        fields, bad = L.var_fields(n, data, role_text="forward", value=value, show_value=show_values,
                                   precision=opts.precision, detail=_detail(opts))
    elif n in sc.backward:
        primals = sc.adjoint_names.get(n, [])
        extra = None
        if primals:
            names = [L.grad_name(ann.of_name or "J", p, g.nodes[p]) for p in primals]
            shown = [x for x in dict.fromkeys(names) if x != title]
            if shown:
                extra = "= " + ", ".join(shown[:3]) + (f" (+{len(shown) - 3})" if len(shown) > 3 else "")
        if n in sc.sums:
            extra = (extra + ", " if extra else "") + f"the sum of {sc.sums[n]} parts"
        fields, bad = L.var_fields(n, data, role_text="", value=value, show_value=show_values,
                                   precision=opts.precision, extra=extra, detail=_detail(opts), title=title)
    else:
        show_grad = opts.show_grads and ann.evaluated and ann.of is not None
        fields, bad = L.var_fields(n, data, role_text="" if role == "intermediate" else role, value=value,
                                   grad=_grad_value(n, sc, ann), grad_label=L.grad_name(ann.of_name or "J", n, data, ON_NODE),
                                   show_value=show_values, show_grad=show_grad, precision=opts.precision,
                                   detail=_detail(opts))
    attrs = {"label": L.record(fields, sc.rankdir), "shape": "record", "fontname": T.MONO, "fontsize": "10",
             **style}
    if bad:  # NaN or Inf: flagged in red, border and text
        attrs.update(color=T.BAD, fontcolor=T.BAD, penwidth="3")
    return attrs


def block_title(n, sc: Scene, ann: Annotations) -> str:
    """`cell(xs[1], h1)  [cell#2]`, or `cell ×3  [cell#1 … cell#3]` for a folded chain."""
    label = sc.call_nodes[n]
    folded = sc.folded.get(n)
    if folded:
        return f"{label.split('#')[0]} ×{len(folded)}  [{folded[0]} … {folded[-1]}]"
    text = ann.call_text.get(label)
    return f"{L.one_line(text, 40)}  [{label}]" if text else label


def _block_attrs(g, n, sc: Scene, ann: Annotations, opts: Options) -> dict:
    """A collapsed call: its title, how much it hides, and the params drawn inside it with their gradients."""
    hidden_ops = sum(1 for m in sc.members.get(n, ()) if g.nodes[m]["kind"] == "op")
    fields = [[(block_title(n, sc, ann), "n"), (f"{hidden_ops} operations inside", "n")]]
    show_grad = opts.show_grads and ann.evaluated and ann.of is not None and n not in sc.backward
    for p in sc.absorbed.get(n, ()):
        data = g.nodes[p]
        line = f"{L.var_title(p, data)} {L.shape_text(data)}"
        adj = ann.adjoints.get(p)
        if show_grad and sc.kind.get(p) != "ghost" and adj in ann.values:
            line += f"  {L.grad_name(ann.of_name or 'J', p, data)} = " + \
                L.summary_line(ann.values[adj], opts.precision)[0]
        fields.append([(line, "l")])
    return {"label": L.record(fields, sc.rankdir), "shape": "Mrecord", "fontname": T.MONO, "fontsize": "10",
            **T.CALL_STYLE}


def _ref_attrs(g, n, sc: Scene, ann: Annotations) -> dict:
    """A small reference to an auxiliary variable drawn in full at its first use."""
    data = g.nodes[n]
    if L.is_literal(data) or data.get("dim"):
        text = L.literal_label(data, 4) if L.is_literal(data) else data["dim"]
    else:
        text = L.var_title(n, data)
    style = dict(T.GHOST_STYLE) if sc.kind.get(n) == "ghost" else \
        dict(T.ROLE_STYLE.get(data.get("role"), T.ROLE_STYLE["intermediate"]))
    style.pop("peripheries", None)
    style["style"] = "filled,dashed"
    return {"label": L.esc_text(text), "shape": "box", "fontname": T.MONO, "fontsize": "10",
            "margin": "0.05,0.02", "height": "0.25", "width": "0.3", **style, "penwidth": "1.0"}


def _cluster_label(label: str, sc: Scene, ann: Annotations, backward: bool) -> str:
    if label in sc.loop_titles:
        return L.esc_text(sc.loop_titles[label] + ("  backward" if backward else ""))
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
        notes.append("compact labels: values on hover in .html, or --focus NODE")
    if sc.focus is not None:
        steps = "operator step" if opts.radius == 1 else "operator steps"
        notes.append(f"focus: {len(sc.nodes)} of {sc.total} nodes within {opts.radius} {steps} of {sc.focus}")
    return "".join(L.esc_text(line) + "\\l" for line in [head] + notes)


def _legend(opts: Options, heat_rng, has_calls: bool, sinks: list, roles: set, rankdir: str,
            has_loops: bool = False) -> list[str]:
    """A cluster of sample nodes after the graph's last nodes: one row of roles and marks, one of heat.

    Invisible edges from the sinks put the legend after them; invisible edges within
    a row keep its items in reading order, and from row to row stack the rows.
    """
    marks = []
    heat = opts.heat and heat_rng is not None
    for role, style in T.ROLE_STYLE.items():
        if role not in roles:
            continue
        if heat:  # the fill is the heat colour: the role is the border
            style = {**style, "fillcolor": "#FFFFFF"}
        marks.append((f"legend:{role}", {"label": L.esc_text(T.ROLE_LABEL[role]), "shape": "box", **style}))
    marks.append(("legend:op", {"label": "op", **T.OP_STYLE, "fontsize": "10", "width": "0.4"}))
    if has_calls:
        marks.append(("legend:call", {"label": "def call", "shape": "box", "style": "rounded,dashed",
                                      "color": T.GREEN, "fontcolor": T.GREEN}))
    if has_loops:
        marks.append(("legend:loop", {"label": "loop" if opts.unroll else "loop ×N: one iteration", "shape": "box",
                                      "style": "rounded,bold", "color": T.BLUE, "fontcolor": T.BLUE}))
    if opts.view == "both":
        marks.append(("legend:gradient", {"label": "<- - gradient flow", "shape": "plaintext",
                                          "fontcolor": T.VERMILLION}))
    if opts.view == "backward":
        marks.append(("legend:adjoint", {"label": "adjoint", "shape": "box", "style": "filled",
                                         "fillcolor": T.ADJOINT_FILL, "color": T.VERMILLION}))
        marks.append(("legend:ghost", {"label": "forward value read", "shape": "box", **T.GHOST_STYLE}))
    rows = [marks]
    if heat:
        rows.append(_heat_swatches(heat_rng))
    out = ["  subgraph \"cluster_legend\" {",
           '    graph [label="legend", style="rounded", color="#BBBBBB", fontcolor="#555555", fontsize="10", '
           'margin="6"];',
           f'    node [fontname="{T.FONT}", fontsize="10", height="0.25", margin="0.1,0.02"];']
    across = rankdir in ("LR", "RL")  # within a rank in LR, an edge's head is drawn above its tail
    for row in rows:
        for nid, attrs in row:
            out.append(f"    {L.quote_id(nid)} [{_attrs(attrs)}];")
        out.append("    {rank=same; " + " ".join(L.quote_id(nid) + ";" for nid, _ in row) + "}")
        for (a, _), (b, _) in zip(row, row[1:]):
            first, second = (b, a) if across else (a, b)
            out.append(f'    {L.quote_id(first)} -> {L.quote_id(second)} [style="invis"];')
    for upper, lower in zip(rows, rows[1:]):
        out.append(f'    {L.quote_id(upper[0][0])} -> {L.quote_id(lower[0][0])} [style="invis"];')
    out.append("  }")
    for n in sinks[-LEGEND_TIES:]:  # the last sinks are the deepest; more ties only slow the layout
        out.append(f'  {L.quote_id(n)} -> {L.quote_id(marks[0][0])} [style="invis"];')
    return out


def _heat_swatches(heat_rng) -> list:
    """One labelled swatch per heat class: the smallest gradient norm it holds."""
    lo, hi = heat_rng
    items = [("legend:heat", {"label": "fill: |gradient| ≥", "shape": "plaintext"})]
    for k, colour in enumerate(T.HEAT):
        edge = lo + (hi - lo) * k / len(T.HEAT)
        items.append((f"legend:heat{k}", {"label": L.esc_text(f"{10 ** edge:.0e}"), "shape": "box",
                                          "style": "filled", "fillcolor": colour, "color": "#888888",
                                          "fontcolor": "#FFFFFF" if k >= T.HEAT_DARK else T.TEXT}))
    items.append(("legend:heatnone", {"label": "no gradient", "shape": "box", "style": "filled",
                                      "fillcolor": T.NO_GRAD_FILL, "color": "#888888"}))
    return items


def _is_leaf(g, sc: Scene, n) -> bool:
    """A value the program starts from (input, param, const, a reference to one): it hangs beside the chain."""
    if sc.kind.get(n) == "ref":
        return True
    return sc.kind.get(n) == "var" and g.nodes[n].get("role") in ("input", "param", "const")


def to_dot(g, ann: Annotations, opts: Options, sc: Scene | None = None) -> str:
    sc = sc or scene(g, ann, opts)
    heat_rng = _heat_range(sc, ann) if opts.heat and ann.evaluated else None
    out = ["digraph graphdsl {",
           f'  graph [rankdir="{sc.rankdir}", fontname="{T.FONT}", fontsize="12", nodesep="0.18", '
           f'ranksep="0.35", newrank="true", labelloc="t", labeljust="l", bgcolor="#FFFFFF", pad="0.2", '
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
    def cluster_style(label):
        style = T.LOOP_STYLE if label.startswith(LOOP) else T.ITER_STYLE if label.startswith(ITER) \
            else T.CLUSTER_STYLE
        return ", ".join(f'{k}="{v}"' for k, v in style.items())

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
            out.append(f"{pad}  graph [label={L.dot_string(_cluster_label(label, sc, ann, backward_view))}, "
                       f"{cluster_style(label)}];")
            emit(child, indent + 1)
            out.append(f"{pad}}}")

    emit((), 1)
    if opts.legend:
        has_out = {u for u, _, style in sc.edges if style != "gradient"}
        sinks = [n for n in sc.nodes if n not in has_out]
        roles = {g.nodes[n].get("role") for n in sc.nodes if sc.kind[n] == "var" and n not in sc.backward}
        roles |= {g.nodes[p].get("role") for n in sc.nodes if n in sc.backward for p in sc.adjoint_names.get(n, ())}
        paths = [sc.cluster.get(n) or () for n in sc.nodes]
        out.extend(_legend(opts, heat_rng, any(not is_loop_cluster(c) for p in paths for c in p), sinks, roles,
                           sc.rankdir, any(is_loop_cluster(c) for p in paths for c in p)))
    styles = {"forward": {}, "backward": T.BACKWARD_EDGE, "ghost": T.GHOST_EDGE, "gradient": T.GRADIENT_EDGE}
    for u, v, style in sc.edges:
        attrs = styles[style]
        if style == "forward" and not _is_leaf(g, sc, u):
            attrs = T.CHAIN_EDGE
        if (u, v) in sc.pulled:
            attrs = {**attrs, "weight": "1"}
        extra = sc.edge_attrs.get((u, v, style))
        if extra:  # a loop's edge: the carried state, or one that holds in some iterations only
            attrs = {**attrs, **(T.CARRIED_EDGE if extra.get("carried") else T.ITERATION_EDGE),
                     "xlabel": L.esc_text(extra["label"])}  # placed after layout: no extra width
        tail = f" [{_attrs(attrs)}]" if attrs else ""
        out.append(f"  {L.quote_id(u)} -> {L.quote_id(v)}{tail};")
    drawn = set(sc.nodes)
    for u, v in sc.order_edges:
        if u in drawn and v in drawn:
            out.append(f'  {L.quote_id(u)} -> {L.quote_id(v)} [style="invis"];')
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
                          "title": block_title(n, sc, ann), "folds": sc.folded.get(n, [label]),
                          "params": sc.absorbed.get(n, []), "members": sc.members.get(n, [])})
            continue
        if kind == "ref":
            nodes.append({"id": n, "kind": "ref", "ref": sc.refs[n]})
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
    links = [{"source": u, "target": v, "kind": style, **_loop_label(sc, (u, v, style))} for u, v, style in sc.edges]
    return {"directed": True, "multigraph": True,
            "graph": {"file": ann.source_name, "view": opts.view, "of": ann.of_name, "evaluated": ann.evaluated,
                      "notes": list(ann.notes), "focus": sc.focus, "collapse": list(opts.collapse),
                      "rolled": dict(sc.rolled)},
            "nodes": nodes, "links": links}


def _loop_label(sc: Scene, edge) -> dict:
    """A rolled loop's edge label in the node-link data: the carried state (`h[t-1]`), `t=1`, `Σ t`."""
    attrs = sc.edge_attrs.get(edge)
    if not attrs:
        return {}
    return {"label": attrs["label"], **({"carried": True} if attrs.get("carried") else {})}


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

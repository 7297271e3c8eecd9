"""The graph and the one way to add to it.

A bipartite multi-digraph (digraph.MultiDiGraph, networkx's layout without networkx): variable nodes (kind "var") and operator
nodes (kind "op"); the edge from an input to an operator is keyed by argument
position. `GraphBuilder.op` is used by the forward builder and by every
reverse-mode rule alike, so gradients are ordinary nodes.
"""
from __future__ import annotations

import copy

import numpy as np

from .diagnostics import Diagnostic, GraphDSLError, Reporter, Source
from .digraph import AT, NO_DATA, MultiDiGraph, upstream
from .ops import REGISTRY, ShapeError, fmt_shape
from .ops.base import Dim

_FIRST = AT[0]
ROLES = ("input", "param", "const", "intermediate", "output")


class GraphBuilder:
    def __init__(self, source: Source, reporter: Reporter | None = None):
        self.g = MultiDiGraph()
        self.source = source
        self.reporter = reporter or Reporter(source)
        self.count = 0
        self.phase = "forward"  # "backward" while reverse mode adds adjoints
        self.span = None  # the source span new nodes are attributed to
        self.call: tuple[str, ...] = ()  # the def calls new nodes sit inside
        # The loop iterations new nodes sit inside, outermost first: (loop_key, var, value)
        # frames (see loops.py). Nodes outside every loop get no `loop` attribute at all.
        self.loop: tuple[tuple[str, str, int], ...] = ()
        self.next_out: str | None = None  # the name the next emitted op writes to (see build.lower)
        # Dims declared without a size (bound by the data) in a build for export (free_counts): a rule
        # reads their sizes at run time (the losses' count N) rather than folding them into a constant,
        # so the exported graph takes any size. Empty otherwise: eval and explain fold them.
        self.free_dims: set[str] = set()

    def with_graph(self, g) -> "GraphBuilder":
        """A copy of this builder (its count, span, phase, ...) that adds to `g`, with diagnostics
        and free dims of its own: to build on a copy of the graph without touching this one."""
        other = copy.copy(self)
        other.g, other.free_dims = g, set(self.free_dims)
        other.reporter = Reporter(self.source, list(self.reporter.diagnostics), self.reporter.error_count)
        return other

    # ---- variables -------------------------------------------------------------
    def fresh(self) -> str:
        self.count += 1
        return f"%{self.count}"

    def add_var(self, vid: str, role: str, shape, **attrs) -> str:
        attrs.setdefault("span", self.span)
        attrs.setdefault("call", self.call)
        if self.loop:
            attrs.setdefault("loop", self.loop)
        attrs.update(kind="var", role=role, shape=shape, phase=self.phase)
        self._add_node(vid, attrs)
        return vid

    # networkx's add_node/add_edge clear its caches on every call, which made
    # building a 100,000-node model spend most of its time there. These write the
    # same adjacency dicts directly (a MultiDiGraph's succ and pred share each
    # key dict); `finish()` clears the caches once afterwards.
    def _add_node(self, n, attrs: dict) -> None:
        g = self.g
        if n in g._node:
            g._node[n].update(attrs)
            return
        g._succ[n] = {}
        g._pred[n] = {}
        g._node[n] = attrs

    def _add_edge(self, u, v, key: int) -> None:
        g = self.g
        keys = g._succ[u].get(v)  # (a new key dict: the edge's may be shared, see digraph.AT)
        g._succ[u][v] = g._pred[v][u] = {key: NO_DATA} if keys is None else {**keys, key: NO_DATA}

    def finish(self) -> None:
        """Nothing to do: kept for networkx's graph, whose caches needed clearing here."""

    def const(self, value, name: str | None = None) -> str:
        value = np.asarray(value, dtype=np.float64)
        return self.add_var(name or self.fresh(), "const", tuple(Dim(None, s) for s in value.shape),
                            value=value, anonymous=name is None)

    # Node look-ups read networkx's node dict directly (`g._node`): through the
    # `g.nodes` view they were a tenth of the time to build a large model.
    def shape(self, vid: str):
        return self.g._node[vid]["shape"]

    def const_value(self, vid: str):
        """The value of a fixed constant (a literal, an engine constant, a dim's size), else None.

        A named constant (`const k = 3`, `t = 1`) is left out: grad may differentiate
        with respect to it, so rules and simplifications must keep it as a node.
        """
        node = self.g._node[vid]
        return node.get("value") if is_fixed_const(node) else None

    def producer(self, vid: str):
        """The op node that computes vid, or None for a leaf."""
        for u in self.g.predecessors(vid):
            return u
        return None

    def inputs_of(self, op_id: str) -> list[str]:
        return arguments(self.g._pred[op_id])

    # ---- operators ---------------------------------------------------------------
    def op(self, name: str, *inputs, **attrs) -> str:
        """Add `name(*inputs)` (numbers become constants), simplifying trivial cases."""
        ids = list(inputs)
        for k, x in enumerate(ids):  # a loop, not a comprehension: reverse mode calls this for every term
            if not isinstance(x, str):
                ids[k] = self.const(x)
        simpler = self._simplify(name, ids, attrs) if name in _FOLDABLE else None
        return simpler if simpler is not None else self.emit(name, ids, attrs)

    def emit(self, name: str, ids: list[str], attrs: dict, out: str | None = None) -> str:
        # Called for every node of every build and of reverse mode: the adjacency dicts are
        # written here directly (as _add_node/_add_edge do), with the attribute dicts in
        # add_var's key order.
        shape = self._infer(REGISTRY[name], ids, attrs)
        count = self.count + 1
        op_id = f"{name}#{count}"
        fresh = False  # a new name: no node of that name yet
        if out is None:
            out = self.next_out
            if out is None:
                count += 1  # as fresh() numbers it
                out, fresh = f"%{count}", True
            else:
                self.next_out = None
        else:
            self.next_out = None
        self.count = count
        g = self.g
        nodes, succ, pred = g._node, g._succ, g._pred
        span, call, phase = self.span, self.call, self.phase
        # (each of the three dicts gets op_id before out: edges() and the renderers follow their order)
        # (edges at position 0 or 1, the only ones between their nodes, share their key dicts: digraph.AT)
        first, second = AT
        succ[op_id] = {out: first}  # the edge op -> out
        if len(ids) == 2 and ids[0] != ids[1]:  # most ops: two different arguments, an edge each
            a, b = ids
            succ[a][op_id] = first
            succ[b][op_id] = second
            pred[op_id] = {a: first, b: second}
        elif len(ids) == 1:
            succ[ids[0]][op_id] = first
            pred[op_id] = {ids[0]: first}
        else:  # a value read twice (x * x) has one key dict of its own for its positions
            pred[op_id] = op_pred = {}
            for k, u in enumerate(ids):
                keys = op_pred.get(u)
                if keys is None:
                    keys = op_pred[u] = succ[u][op_id] = {}
                keys[k] = NO_DATA
        nodes[op_id] = data = {"kind": "op", "op": name, "attrs": attrs, "span": span, "call": call,
                               "phase": phase, "out": out}
        loop = self.loop
        if loop:
            data["loop"] = loop
        if loop:  # add_var's key order
            var = {"anonymous": out[0] == "%", "span": span, "call": call, "loop": loop, "kind": "var",
                   "role": "intermediate", "shape": shape, "phase": phase}
        else:
            var = {"anonymous": out[0] == "%", "span": span, "call": call, "kind": "var", "role": "intermediate",
                   "shape": shape, "phase": phase}
        if not fresh and out in nodes:
            nodes[out].update(var)
            pred[out][op_id] = first
        else:
            nodes[out], succ[out], pred[out] = var, {}, {op_id: first}
        return out

    def _infer(self, opdef, ids, attrs):
        rule_attrs = attrs
        if attrs and attrs.get("like") is not None:  # the rule wants the target's shape, not its id
            rule_attrs = {**attrs, "like": self.shape(attrs["like"])}
            if rule_attrs["like"] is None:
                return None
        nodes = self.g._node
        try:
            if len(ids) == 2:  # most ops: no list comprehension (a call of its own)
                return opdef.shape([nodes[ids[0]]["shape"], nodes[ids[1]]["shape"]], rule_attrs)
            return opdef.shape([nodes[u]["shape"] for u in ids], rule_attrs)
        except ShapeError as err:
            self._shape_error(err, ids)
            return None

    def _shape_error(self, err: ShapeError, ids):
        labels = [self.label_shaped(u) for u in ids]
        message = err.message.format(*labels, *([""] * 4))
        if self.phase == "backward":
            raise GraphDSLError(Diagnostic(err.code, f"in reverse mode: {message}", self.span, "error",
                                           err.notes, err.help), self.source)
        self.reporter.error(err.code, message, self.span, err.notes, err.help)

    def label(self, vid: str) -> str:
        """The value as diagnostics name it (see `describe`)."""
        return describe(self.g, vid, self.source)

    def label_shaped(self, vid: str) -> str:
        return describe(self.g, vid, self.source, shape=self.shape(vid))

    def _simplify(self, name, ids, attrs):
        """Fold the trivial nodes reverse mode would otherwise leave: *1, +0, -(-x), (x.T).T (for _FOLDABLE ops)."""
        if name in _UNITS:  # 1*x, x*1, x/1, 0+x, x+0, x-0
            unit = _UNITS[name]
            if name in ("mul", "add") and self._is_fixed_scalar(ids[0], unit) and self._keeps_shape(ids[1], ids[0]):
                return ids[1]
            if self._is_fixed_scalar(ids[1], unit) and self._keeps_shape(ids[0], ids[1]):
                return ids[0]
            return None
        if name in ("neg", "transpose") and attrs.get("axes") is None:
            inner = self.producer(ids[0])
            if inner and self.g._node[inner]["op"] == name and self.g._node[inner]["attrs"].get("axes") is None:
                return self.inputs_of(inner)[0]
        if attrs.get("like") is not None and name in ("sum_to", "broadcast_to", "reshape", "unreduce") \
                and not attrs.get("mean") and _same_shape(self.shape(ids[0]), self.shape(attrs["like"])):
            return ids[0]
        return None

    def _is_fixed_scalar(self, vid: str, target: float) -> bool:
        """Whether vid is a fixed constant (see const_value) that is the number `target`."""
        return _is_scalar(self.const_value(vid), target)

    def _keeps_shape(self, kept, dropped) -> bool:
        """Dropping `dropped` from a broadcasting op must not change the result's shape."""
        return self.shape(dropped) == () and self.shape(kept) is not None

    # ---- renaming -------------------------------------------------------------
    def bind(self, vid: str, new_id: str, display: str | None = None, rename: bool = True, **attrs) -> str:
        """Give the value vid the id `new_id` (shown as `display`): rename a fresh node, else add identity.

        `rename=False` when something else still refers to vid by id (a def's parameter).
        """
        attrs.update(anonymous=False, name=display or new_id)
        node = self.g._node[vid]
        if vid == new_id:  # already written under its name (see build.lower)
            node.update(attrs)
            return new_id
        fresh = rename and node.get("anonymous") and not self.g._succ[vid] and node["phase"] == self.phase
        if not fresh:
            out = self.emit("identity", [vid], {}, out=new_id)
        else:
            self._relabel(vid, new_id)
            out = new_id
        self.g._node[out].update(attrs)
        self.g._node[out].pop("text", None)
        return out

    def _relabel(self, old: str, new: str):
        """Rename `old` (a fresh value: nothing reads it yet) to `new`."""
        g = self.g
        if new not in g._node and not g._succ[old]:  # move the node's dicts (reverse mode names every adjoint)
            data, preds = g._node.pop(old), g._pred.pop(old)
            del g._succ[old]
            g._node[new], g._succ[new], g._pred[new] = data, {}, preds
            for u, keys in preds.items():
                succ_u = g._succ[u]
                del succ_u[old]
                succ_u[new] = keys
                g._node[u]["out"] = new
            return
        data = dict(self.g._node[old])
        preds = list(self.g.in_edges(old, keys=True))
        self.g.remove_node(old)
        self._add_node(new, data)
        for u, _, k in preds:
            self._add_edge(u, new, k)
            self.g._node[u]["out"] = new


def arguments(preds: dict) -> list[str]:
    """An op's arguments in order, from its predecessors (input -> {position: edge data}).

    One value may be several arguments (`x * x`). Reverse mode and the plan ask this for
    every op: one or two different arguments, the common cases, need no sort.
    """
    if len(preds) == 1:
        (u, keys), = preds.items()
        return [u] * len(keys)
    if len(preds) == 2:
        (u, ku), (v, kv) = preds.items()
        if ku is _FIRST and len(kv) == 1:  # (the key dict shared by first arguments: digraph.AT)
            return [u, v]
        if len(ku) == 1 and len(kv) == 1:
            return [u, v] if min(ku) < min(kv) else [v, u]
    return [u for _, u in sorted((k, u) for u, keys in preds.items() for k in keys)]


def describe(g, vid: str, source: Source | None, shape=False) -> str:
    """A value as diagnostics name it, quoted: `W1`, `W1 @ x`, `dJ/d(W1 @ x)`.

    Never an internal id (`%78`, `dJ/d%4`): a value without a name or source text
    of its own (a term reverse mode added) is named by the expression it belongs to.
    With `shape` (a shape tuple, or None for unknown), the shape follows: `W1 : [m=3, d=4]`.
    """
    node = g._node[vid]
    code = _code_name(g, vid)
    suffix = "" if shape is False else f" : {fmt_shape(shape)}"
    if code is not None:
        return f"`{code}{suffix}`"
    op = next(iter(g._pred[vid]), None)
    what = f"a `{g._node[op]['op']}` term" if op is not None else "a value"
    where = source_text(source, node.get("span"))
    place = f"`{where}`" if where else (f"line {node['span'].line}" if node.get("span") else "the model")
    part = "of the gradient through" if node.get("phase") == "backward" else "in"
    return f"{what} {part} {place}" + (f" (shape {fmt_shape(shape)})" if suffix else "")


def _code_name(g, vid) -> str | None:
    node = g._node[vid]
    name = node.get("name")
    if node.get("text"):
        return node["text"]
    if name and not node.get("anonymous") and "%" not in name:
        return name
    pair = node.get("adjoint_of")
    if pair:
        of, var = (_code_name(g, p) for p in pair)
        if of is not None and var is not None:
            return f"d{_grouped(of)}/d{_grouped(var)}"
    return None


def _grouped(code: str) -> str:
    return code if code.isidentifier() else f"({code})"


def source_text(source: Source | None, span) -> str | None:
    """The source text under span, when it is short enough to quote on one line."""
    if span is None or source is None:
        return None
    text = source.text[span.start:span.end]
    return text if len(text) <= 40 and "\n" not in text else None


def is_fixed_const(node: dict) -> bool:
    """A constant grad never differentiates with respect to: a literal or a dim's size."""
    return node["role"] == "const" and bool(node.get("anonymous") or node.get("dim"))


def _is_scalar(value, target: float) -> bool:
    return value is not None and np.ndim(value) == 0 and float(value) == target


_UNITS = {"mul": 1.0, "div": 1.0, "add": 0.0, "sub": 0.0}  # the operand each arithmetic op may drop
_FOLDABLE = frozenset({*_UNITS, "neg", "transpose", "sum_to", "broadcast_to", "reshape", "unreduce"})  # _simplify's ops


def _same_shape(a, b) -> bool:
    """Equal sizes axis by axis; an axis of unknown size matches only the same named dim, also unknown."""
    if a is None or b is None or len(a) != len(b):
        return False
    for x, y in zip(a, b):  # a loop, not all(...): reverse mode asks this for every cotangent
        if x.size is not None:
            if x.size != y.size:
                return False
        elif x.name is None or x.name != y.name or y.size is not None:
            return False
    return True


def upstream_in_order(g: MultiDiGraph, seeds) -> list:
    """The seeds and every node they are computed from, in a topological order, as (node, its
    attribute dict, its predecessor dict) triples: reverse mode walks them backwards, the plan
    forwards.

    The builder adds an op after its arguments and a value after its op, so the insertion
    order is almost always topological: one backward sweep over it collects the nodes,
    keeping in `wanted` only those still to be met. A node wanted again after it was met
    (read by a node added before it) means the order is not topological, and only then does
    `topological_order` sort them. Reading the dicts in their own order, not by generations,
    and the node and predecessor dicts side by side (they hold the nodes in the same order),
    is also what keeps a large graph's walk in the cache: it goes through an RNN one time
    step after another, not by a look-up per node in dicts of a hundred thousand.
    """
    wanted = set(seeds)
    met, want = wanted.remove, wanted.update
    order = []
    for (n, data), (m, preds) in zip(reversed(g._node.items()), reversed(g._pred.items())):
        if n in wanted:
            if n is not m:  # the two dicts' orders differ (n stays wanted): sort instead
                break
            met(n)
            want(preds)
            order.append((n, data, preds))
    if wanted:
        node, pred = g._node, g._pred
        return [(n, node[n], pred[n]) for n in topological_order(g, upstream(g, seeds))]
    order.reverse()
    return order


def topological_order(g: MultiDiGraph, nodes) -> list:
    """The nodes of `nodes` in topological order, as networkx.topological_sort(g.subgraph(nodes)).

    Kahn's algorithm by generations, starting from the graph's insertion order, read
    straight from the adjacency dicts: a subgraph view made the same walk cost seconds
    on graphs of a few thousand nodes. For a node set of at least half the graph the
    order is exactly networkx's; for smaller sets networkx follows the set's hash order,
    and this stays deterministic.
    """
    pred, succ = g._pred, g._succ
    # every node (reverse mode's walk from an output, most often): no membership tests
    whole = isinstance(nodes, (set, frozenset)) and len(nodes) == len(g._node) and nodes.issuperset(g._node)
    indegree: dict = {}
    zero = []
    for n in g._node:
        if whole or n in nodes:
            d = 0
            for u, keys in pred[n].items():
                if whole or u in nodes:
                    d += len(keys)
            if d:
                indegree[n] = d
            else:
                zero.append(n)
    order = []
    while zero:
        generation, zero = zero, []
        for n in generation:
            for child, keys in succ[n].items():
                if whole or child in nodes:
                    left = indegree[child] - len(keys)
                    if left:
                        indegree[child] = left
                    else:
                        zero.append(child)
                        del indegree[child]
        order.extend(generation)
    if indegree:
        raise ValueError("graph contains a cycle")
    return order

"""Reverse mode that builds graph: adjoint nodes (dJ/dW1) added to the same graph.

The engine does three things centrally, so no rule has to: walk the ops in
reverse topological order, sum the cotangents of a value used more than once,
and sum a broadcast cotangent back to its input's shape, checking that shape.
"""
from __future__ import annotations

from .diagnostics import Diagnostic, GraphDSLError
from .graph import GraphBuilder, _same_shape, arguments, is_fixed_const, upstream_in_order
from .ops import REGISTRY, fmt_shape
from .ops.base import ShapeError, UnknownShape, same_dim


class _OpView:
    """What a reverse-mode rule sees of the node it differentiates."""

    __slots__ = ("args", "out", "g", "attrs", "_needed")

    def __init__(self, args, out, g, attrs, needed):
        self.args, self.out, self.g, self.attrs, self._needed = args, out, g, attrs, needed

    def needs(self, i: int) -> bool:
        return self.args[i] in self._needed


def gradient_node(gb: GraphBuilder, y: str, x: str) -> str:
    """The node for grad(y, x): built once per y, then looked up.

    In one walk over everything: the builder may rename the adjoints it returns
    (`g = grad(J, W)` binds the node to `g`), so a later pass could not read them.
    """
    adjoint_table(gb, y)
    return gradients(gb, y, [x])[x]


def gradients(gb: GraphBuilder, of: str, wrt: list[str]) -> dict[str, str]:
    """Node ids of d(of)/d(w) for each w in wrt; zero nodes where `of` does not depend on w.

    Only the ops on a path from wrt to `of` are walked (dJ/dx of an input nobody asked
    for is not built); a later call for other wrt, or adjoint_table, continues the walk.
    """
    walk = _walk_of(gb, of)
    walk.extend(gb, walk.reaching(wrt))
    table = walk.table
    for w in wrt:
        if w not in table:
            table[w] = _zero_adjoint(gb, of, w)
    return {w: table[w] for w in wrt}


def adjoint_table(gb: GraphBuilder, of: str) -> dict[str, str]:
    """d(of)/dv for every value v that `of` depends on (explain, render and equations show them all)."""
    walk = _walk_of(gb, of)
    walk.extend(gb, walk.differentiable)
    return walk.table


def _walk_of(gb: GraphBuilder, of: str) -> "_Walk":
    walks = gb.g.graph.setdefault("adjoint_walks", {})
    walk = walks.get(of)
    if walk is None or walk.g is not gb.g:  # (a copied graph shares its attributes' values)
        _check_scalar(gb, of)
        walk = walks[of] = _Walk(gb.g, of)
        gb.g.graph.setdefault("adjoints", {})[of] = walk.table
    return walk


def _check_scalar(gb: GraphBuilder, of: str) -> None:
    shape = gb.shape(of)
    if shape is not None and any(d.size != 1 for d in shape if d.size is not None) and len(shape) > 0:
        raise GraphDSLError(Diagnostic("E204", f"can only differentiate a scalar, but {gb.label(of)} has "
                                               f"shape {fmt_shape(shape)}", gb.g.nodes[of].get("span"),
                                       help=("reduce it first, e.g. sum(...) or mean(...)",)), gb.source)


class _Walk:
    """Reverse mode from one `of`, done in passes: each pass adds the adjoints of newly needed values.

    A pass walks the ops in the same reverse topological order as one full walk would, so
    each value's cotangent parts are summed in the same order whichever pass adds them.
    """

    def __init__(self, g, of: str):
        self.g, self.of = g, of
        self.differentiable = differentiable = set()
        # (op id, its attribute dict, its predecessor dict): each pass reads all three, and
        # neither dict of a forward op is replaced while the graph grows.
        self.ops = ops = []
        for n, data, preds in reversed(upstream_in_order(g, (of,))):  # `of` and what it is computed from
            if data["kind"] == "op":
                ops.append((n, data, preds))
            elif not is_fixed_const(data):
                differentiable.add(n)
        self.succ = g._succ
        self.needed: set = set()
        self.totals: dict[str, str] = {}  # the walk's adjoints
        self.table: dict[str, str] = {}  # and the zeros gradients() adds for values `of` does not depend on
        self.seed: str | None = None

    def reaching(self, wrt) -> set:
        """The differentiable values on a path from some w in wrt to `of` (w included)."""
        within, succ = self.differentiable, self.succ
        seen = {w for w in wrt if w in within}
        stack = list(seen)
        while stack:
            for op in succ[stack.pop()]:
                for v in succ[op]:
                    if v in within and v not in seen:
                        seen.add(v)
                        stack.append(v)
        return seen

    def extend(self, gb: GraphBuilder, wanted: set) -> None:
        new = wanted - self.needed
        if not new and self.seed is not None:
            return
        self.needed |= new
        saved = gb.phase, gb.span, gb.call, gb.loop
        gb.phase = "backward"
        try:
            self._pass(gb, new)
        finally:
            gb.phase, gb.span, gb.call, gb.loop = saved
            gb.finish()

    def _pass(self, gb, new):
        of, table, totals = self.of, self.table, self.totals
        nodes = gb.g._node
        gb.span = nodes[of].get("span")
        cts: dict[str, list[str]] = {}
        pending: dict = {}  # how many cotangent lists still hold each node
        # an earlier pass's adjoints keep their ids (the table holds them): a later pass names none of them
        keep = set(totals.values())
        if self.seed is None:
            self.seed = gb.const(1.0)
            cts[of] = [self.seed]
            pending[self.seed] = 1
        for op_id, node, preds in self.ops:
            out = node["out"]
            total = totals.get(out)
            if total is None:
                if out not in cts:
                    continue
                gb.span, gb.call, gb.loop = node["span"], node["call"], node.get("loop", ())
                total = table[out] = totals[out] = _accumulate(gb, of, out, cts.pop(out), pending, keep)
            elif not _reads_any(preds, new):
                continue
            gb.span, gb.call, gb.loop = node["span"], node["call"], node.get("loop", ())
            _propagate(gb, op_id, node, preds, total, new, cts, pending)
        gb.loop = ()
        for leaf in list(cts):  # leaves: inputs, params, consts
            gb.span = nodes[leaf].get("span")
            table[leaf] = totals[leaf] = _accumulate(gb, of, leaf, cts.pop(leaf), pending, keep)


def _reads_any(preds: dict, values: set) -> bool:
    for u in preds:
        if u in values:
            return True
    return False


def _accumulate(gb, of, var, parts, pending, keep=frozenset()) -> str:
    """Sum the cotangents of var in the order of its uses; name the sum dJ/dvar when no other list
    still holds it. (The walk goes backwards: `parts` holds the last use's part first.)"""
    for p in parts:
        pending[p] = pending.get(p, 0) - 1
    total = parts[-1]
    for p in reversed(parts[:-1]):
        total = gb.op("add", total, p)
    g = gb.g
    nodes = g._node
    node = nodes[total]
    if node.get("anonymous") and node["phase"] == "backward" and not g._succ[total] \
            and pending.get(total, 0) <= 0 and node["role"] != "const" and total not in keep:
        name = f"d{nodes[of].get('name') or of}/d{nodes[var].get('name') or var}"
        if name not in nodes:
            total = gb.bind(total, name)
            node = nodes[total]
    node.setdefault("adjoint_of", (of, var))
    return total


def _propagate(gb, op_id, node, preds, g_id, needed, cts, pending):
    opdef = REGISTRY[node["op"]]
    nodes = gb.g._node
    args = arguments(preds)
    if not opdef.differentiable:
        return
    for a in args:
        if a in needed:
            break
    else:
        return
    if opdef.vjp is None:
        if node["op"] == "opaque":  # an undefined function: say which, and how to define it
            func = node["attrs"].get("func")
            raise GraphDSLError(Diagnostic("E305", f"cannot differentiate `{func}`: it is not defined", node["span"],
                                           help=(f"define it before differentiating, e.g. `def {func}(z) = relu(z)`",)),
                                gb.source)
        raise GraphDSLError(Diagnostic("E305", f"`{node['op']}` has no reverse-mode rule", node["span"],
                                       help=("wrap it in stop_gradient(...) if its gradient is not needed",)),
                            gb.source)
    view = _OpView(args, node["out"], g_id, node["attrs"], needed)
    try:
        grads = opdef.vjp(gb, view)
    except TypeError:
        if any(gb.shape(a) is None for a in args + [node["out"]]):
            # the rule needs ranks (matmul, concat, stack): known once data give the shapes
            raise UnknownShape(node["op"]) from None
        raise
    except ShapeError as err:
        gb._shape_error(err, args)
        raise
    for arg, ct in reversed(list(zip(args, grads))):  # (last argument first, as the walk goes: see _accumulate)
        if ct is None or arg not in needed:
            continue
        want, have = nodes[arg]["shape"], nodes[ct]["shape"]
        if want is not None and have is not None and not _same_shape(have, want):  # else nothing to sum or check
            ct = _unbroadcast(gb, ct, arg, op_id)
        held = cts.get(arg)
        if held is None:
            cts[arg] = [ct]
        else:
            held.append(ct)
        pending[ct] = pending.get(ct, 0) + 1


def _unbroadcast(gb, ct, arg, op_id) -> str:
    """Sum ct back to arg's shape, then insist they agree (_propagate calls it when both shapes
    are known and differ: the common case, equal shapes, needs nothing summed or checked)."""
    nodes = gb.g._node
    want, have = nodes[arg]["shape"], nodes[ct]["shape"]
    if _sums_to(have, want):  # else a rule's bug, reported below
        ct = gb.op("sum_to", ct, like=arg)
        have = gb.shape(ct)
    if have is not None and (len(have) != len(want) or any(same_dim(a, b) is False for a, b in zip(have, want))):
        raise GraphDSLError(Diagnostic(
            "E204", f"internal: the cotangent of {gb.label(arg)} from `{gb.g.nodes[op_id]['op']}` has shape "
                    f"{fmt_shape(have)}, not {fmt_shape(want)}", gb.span), gb.source)
    return ct


def _sums_to(have, want) -> bool:
    """Whether a cotangent of shape `have` can be summed back to `want` (want broadcasts to have)."""
    if len(have) < len(want):
        return False
    return all(w.size == 1 or same_dim(h, w) is not False for h, w in zip(have[len(have) - len(want):], want))


def _zero_adjoint(gb, of, w) -> str:
    saved = gb.phase
    gb.phase = "backward"
    try:
        z = gb.op("zeros_like", like=w)
        gb.g.nodes[z]["adjoint_of"] = (of, w)
        return z
    finally:
        gb.phase = saved

"""Reverse mode that builds graph: adjoint nodes (dJ/dW1) added to the same graph.

The engine does three things centrally, so no rule has to: walk the ops in
reverse topological order, sum the cotangents of a value used more than once,
and sum a broadcast cotangent back to its input's shape, checking that shape.
"""
from __future__ import annotations

from collections import Counter

from .diagnostics import Diagnostic, GraphDSLError
from .digraph import ancestors
from .graph import GraphBuilder, _same_shape, is_fixed_const, topological_order
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
    """The node for grad(y, x): built once per y, then looked up."""
    return gradients(gb, y, [x])[x]


def gradients(gb: GraphBuilder, of: str, wrt: list[str]) -> dict[str, str]:
    """Node ids of d(of)/d(w) for each w in wrt; zero nodes where `of` does not depend on w."""
    adjoints = gb.g.graph.setdefault("adjoints", {})
    if of not in adjoints:
        adjoints[of] = _build_adjoints(gb, of)
    table = adjoints[of]
    for w in wrt:
        if w not in table:
            table[w] = _zero_adjoint(gb, of, w)
    return {w: table[w] for w in wrt}


def _build_adjoints(gb: GraphBuilder, of: str) -> dict[str, str]:
    shape = gb.shape(of)
    if shape is not None and any(d.size != 1 for d in shape if d.size is not None) and len(shape) > 0:
        raise GraphDSLError(Diagnostic("E204", f"can only differentiate a scalar, but {gb.label(of)} has "
                                               f"shape {fmt_shape(shape)}", gb.g.nodes[of].get("span"),
                                       help=("reduce it first, e.g. sum(...) or mean(...)",)), gb.source)
    g = gb.g
    upstream = ancestors(g, of) | {of}
    needed = {v for v in upstream if g.nodes[v]["kind"] == "var" and not is_fixed_const(g.nodes[v])}
    saved = gb.phase, gb.span, gb.call
    gb.phase = "backward"
    try:
        return _walk(gb, of, upstream, needed)
    finally:
        gb.phase, gb.span, gb.call = saved
        gb.finish()


def _walk(gb, of, upstream, needed):
    g = gb.g
    gb.span = g.nodes[of].get("span")
    seed = gb.const(1.0)
    cts: dict[str, list[str]] = {of: [seed]}
    pending = Counter([seed])  # how many cotangent lists still hold each node
    table: dict[str, str] = {}
    ops = [n for n in topological_order(g, upstream) if g.nodes[n]["kind"] == "op"]
    for op_id in reversed(ops):
        node = g.nodes[op_id]
        out = node["out"]
        if out not in cts:
            continue
        gb.span, gb.call = node["span"], node["call"]
        total = _accumulate(gb, of, out, cts.pop(out), pending)
        table[out] = total
        _propagate(gb, op_id, node, total, needed, cts, pending)
    for leaf in list(cts):  # leaves: inputs, params, consts
        gb.span = g.nodes[leaf].get("span")
        table[leaf] = _accumulate(gb, of, leaf, cts.pop(leaf), pending)
    return table


def _accumulate(gb, of, var, parts, pending) -> str:
    """Sum the cotangents of var; name the sum dJ/dvar when no other list still holds it."""
    pending.subtract(parts)
    total = parts[0]
    for p in parts[1:]:
        total = gb.op("add", total, p)
    name = f"d{gb.g.nodes[of].get('name') or of}/d{gb.g.nodes[var].get('name') or var}"
    node = gb.g.nodes[total]
    if node.get("anonymous") and node["phase"] == "backward" and gb.g.out_degree(total) == 0 \
            and pending[total] <= 0 and name not in gb.g and node["role"] != "const":
        total = gb.bind(total, name)
    gb.g.nodes[total].setdefault("adjoint_of", (of, var))
    return total


def _propagate(gb, op_id, node, g_id, needed, cts, pending):
    opdef = REGISTRY[node["op"]]
    args = gb.inputs_of(op_id)
    if not opdef.differentiable or not any(a in needed for a in args):
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
    for arg, ct in zip(args, grads):
        if ct is None or arg not in needed:
            continue
        ct = _unbroadcast(gb, ct, arg, op_id)
        cts.setdefault(arg, []).append(ct)
        pending[ct] += 1


def _unbroadcast(gb, ct, arg, op_id) -> str:
    """Sum ct back to arg's shape, then insist they agree."""
    want, have = gb.shape(arg), gb.shape(ct)
    if want is None or have is None:
        return ct
    if not _same_shape(have, want) and _sums_to(have, want):  # else a rule's bug, reported below
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

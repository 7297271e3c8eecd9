"""Local derivatives du/dv, for a value v and the named scalars u it reaches through anonymous values only.

D2L writes ds/dW1 = lam W1 and dL/do = (o - y) / b before using them in the
chain rule. Each is built by reverse mode on a scratch graph holding only the
few nodes between v and u, so the cost does not grow with the size of the
model, and the model's own graph only ever holds the adjoints of `of`.
"""
from __future__ import annotations

from ..autodiff import gradients
from ..diagnostics import GraphDSLError
from ..digraph import descendants
from .convert import Converter
from .equation import Equation
from .nodes import is_scalar, through_anonymous

LOCAL_LIMIT = 300  # beyond this many adjoints, skip the local derivatives (a teaching aid)


def local_derivatives(gb, names, target, printed, upstream) -> dict:
    """{v: [(u, Equation du/dv)]} for each printed value v."""
    if len(printed) > LOCAL_LIMIT:
        return {}
    result: dict = {}
    for v in printed:
        found = _locals_of(gb, names, target, v, upstream)
        if found:
            result[v] = found
    return result


def _locals_of(gb, names, target, v, upstream) -> list:
    g = gb.g
    consumers, ops = through_anonymous(g, v, upstream)
    scalars = [u for u in consumers if u != target and is_scalar(g, u)
               and not any(u in descendants(g, w) for w in consumers if w != u)]  # else u is not local
    if not scalars:
        return []
    scratch = scratch_builder(gb, ops)
    scratch_names = names.on_scratch(scratch.g)
    found = []
    for u in scalars:
        expr = _local_expr(scratch, scratch_names, u, v)
        if expr is not None:
            found.append((u, Equation(names.adjoint(u, v, is_scalar(g, v)), [expr], "local", v, u)))
    return found


def _local_expr(scratch, scratch_names, u, v):
    """du/dv as an expression in named forward values only, or None."""
    try:
        a = gradients(scratch, u, [v])[v]
    except GraphDSLError:
        return None
    conv = Converter(scratch.g, scratch_names)
    conv.run([a])
    built_by_reverse_mode = scratch.g.nodes[a].get("phase") == "backward" and scratch.g.in_degree(a)
    expr = conv.defn.get(a) if built_by_reverse_mode else conv.ref_of(a)
    # a local derivative that needs another adjoint, an auxiliary or an unnamed value explains nothing
    if expr is None or scratch_names.aux or any(r.adjoint or r.name.startswith("%") for r in expr.refs()):
        scratch_names.aux.clear()
        return None
    return expr


def scratch_builder(gb, ops):
    """A throwaway graph builder over the ops, their inputs and the anonymous values those come from."""
    g = gb.g
    nodes, stack = set(), []
    for op in ops:
        nodes.add(op)
        nodes.add(g.nodes[op]["out"])
        stack.extend(g.predecessors(op))
    while stack:
        n = stack.pop()
        if n in nodes:
            continue
        nodes.add(n)
        if g.nodes[n]["kind"] == "op" or (g.nodes[n].get("anonymous") and g.nodes[n].get("phase") == "forward"):
            stack.extend(g.predecessors(n))
    scratch = gb.with_graph(g.subgraph(nodes).copy())
    scratch.g.graph["adjoints"] = {}
    scratch.g.graph["adjoint_walks"] = {}
    return scratch

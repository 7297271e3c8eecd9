"""Forward equations: the model's named values in topological order, ties in source order."""
from __future__ import annotations

import networkx as nx

from .. import ast as A
from .convert import Converter
from .equation import Equation
from .expr import App
from .nodes import is_scalar, upstream_of


def forward_equations(g, names, built, target, program) -> list:
    upstream = upstream_of(g, set(built.outputs) | {target})
    sub = g.subgraph(upstream).to_networkx()
    order = [n for n in nx.lexicographical_topological_sort(sub, key=_source_position(g))
             if g.nodes[n]["kind"] == "var" and g.in_degree(n) and names.is_named(n)]
    conv = Converter(g, names)
    conv.run(order)
    assigns = {s.name: s for s in program.statements if isinstance(s, A.Assign)}
    out = []
    for n in order:
        rhs = [conv.defn[n]]
        call = _call_form(g, names, built, n, conv, assigns)
        if call is not None and call != rhs[0]:
            rhs.insert(0, call)
        out.append(Equation(names.sym(n), rhs, "forward", n))
    return conv.with_aux(out)


def _source_position(g):
    """Ties in a topological order go to what the source says first."""
    def key(n):
        span = g.nodes[n].get("span")
        return f"{span.start if span is not None else 10 ** 12:012d}{n}"
    return key


def _call_form(g, names, built, n, conv, assigns):
    """`phi(z)` for h = phi(z) where phi is a def: the call as the model wrote it."""
    d = g.nodes[n]
    stmt = assigns.get(d.get("name"))
    if not d.get("call") or stmt is None or built.assigned.get(stmt.name) != n:
        return None
    value = stmt.value
    if not isinstance(value, A.Call) or value.func not in built.defs or value.kwargs:
        return None
    args = []
    for a in value.args:
        node = _named_node(g, built, a)
        if node is None:
            return None
        args.append(conv.ref_of(node) if node in conv.ref else names.sym(node))
    return App("call:" + value.func, args, scalar=is_scalar(g, n))


def _named_node(g, built, arg):
    """The graph node a call argument names (a value, a declaration or a dim), or None."""
    if not isinstance(arg, A.Name):
        return None
    node = built.assigned.get(arg.id) or (arg.id if arg.id in built.decls else None) or \
        (f"dim:{arg.id}" if f"dim:{arg.id}" in g else None)
    return node if node is not None and node in g else None

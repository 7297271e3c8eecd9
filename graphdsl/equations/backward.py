"""Backward equations: the adjoints reverse mode built into the graph, from `of` back to the parameters.

Adjoints of named values are referred to by name (dJ/dW1); where a value v's
only named consumer is a scalar u with a local derivative, dJ/dv is also
written as the chain rule dJ/du du/dv.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from ..autodiff import adjoint_table, gradients
from .convert import Converter
from .equation import Equation
from .expr import mul
from .local import local_derivatives
from .nodes import downstream_of, inputs, is_scalar, through_anonymous, upstream_of


def backward_equations(gb, names, target, wrt) -> list:
    g = gb.g
    full = adjoint_table(gb, target)  # every value upstream of `of`, not only wrt
    table = dict(gradients(gb, target, list(wrt)))
    table.update(full)
    upstream = upstream_of(g, [target])
    printed = _printed_values(g, target, wrt, table, upstream)
    first_of = _name_adjoints(g, names, target, table, printed)
    conv = Converter(g, names)
    conv.run([table[v] for v in printed])
    locals_ = local_derivatives(gb, names, target, printed, upstream)
    out = []
    for v in printed:
        a = table[v]
        rhs = [conv.defn[a]] if first_of.get(a) == v else [conv.ref_of(a)]
        chain = _chain(g, names, target, table, v, through_anonymous(g, v, upstream)[0], locals_)
        if chain is not None and chain != rhs[-1]:
            rhs.insert(0, chain)
        out.extend(eq for _, eq in locals_.get(v, []))
        out.append(Equation(names.adjoint(target, v, is_scalar(g, v)), rhs, "backward", v))
    return conv.with_aux(out)


def _printed_values(g, target, wrt, table, upstream) -> list:
    """The named forward values between wrt and `of`, in reverse order, then any wrt not among them."""
    reach = downstream_of(g, wrt)
    printed = [v for v in _reverse_order(g, target, upstream)
               if v != target and v in reach and v in table and not g.nodes[v].get("anonymous")
               and g.nodes[v].get("phase") == "forward"]
    return printed + [w for w in wrt if w not in printed and w in table]


def _name_adjoints(g, names, target, table, printed) -> dict:
    """Name each adjoint node after the first printed value it is the adjoint of; {adjoint: that value}.

    Several values can share one adjoint node (dJ/do = dJ/dL when L = o); the
    first defines it, the others refer to it by that name.
    """
    first_of: dict = {}
    for v in printed:
        a = table[v]
        d = g.nodes[a]
        if d.get("phase") == "backward" and d["role"] != "const" and a not in first_of and g.in_degree(a):
            first_of[a] = v
            names.adjoint_names[a] = names.adjoint(target, v, is_scalar(g, a))
    return first_of


def _reverse_order(g, target, upstream) -> list:
    """Values from `of` back to the leaves: a value comes once all its consumers are done
    (Kahn's algorithm, first come first served, arguments in order)."""
    consumers = {n: len({op for op in g.successors(n) if op in upstream})
                 for n in upstream if g.nodes[n]["kind"] == "var"}
    order, queue, seen = [], deque([target]), set()
    while queue:
        v = queue.popleft()
        if v in seen:
            continue
        seen.add(v)
        order.append(v)
        for op in g.predecessors(v):
            for u in dict.fromkeys(inputs(g, op)):  # x * x consumes x once
                if u in consumers:
                    consumers[u] -= 1
                    if consumers[u] == 0:
                        queue.append(u)
    return order


def _chain(g, names, target, table, v, consumers, locals_):
    """dJ/dv = dJ/du du/dv when v's only named consumer u is a scalar with a local derivative."""
    pairs = locals_.get(v, [])
    if len(consumers) != 1 or len(pairs) != 1 or pairs[0][0] != consumers[0]:
        return None
    u, local = pairs[0]
    if _is_one(g, table.get(u)):  # dJ/du = 1: dJ/dv is du/dv itself
        return local.lhs
    return mul(names.adjoint(target, u, True), local.lhs)


def _is_one(g, n) -> bool:
    d = g.nodes[n] if n is not None else {}
    return d.get("role") == "const" and d.get("value") is not None and np.ndim(d["value"]) == 0 \
        and float(d["value"]) == 1.0

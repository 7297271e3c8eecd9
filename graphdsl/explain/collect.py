"""Collect the walkthrough: the equations package's equations, every number from the engine.

The symbolic side is `equations(model)`; the numbers come from one Plan over the
model's own concrete graph (forward values, the adjoints reverse mode built,
and each contribution to a fan-out sum), run with `run_all`; local derivatives
du/dv are reverse mode on the same scratch graph the equations package uses,
run by a Plan too; the update is train.py's SGD rule.
"""
from __future__ import annotations

import numpy as np

from ..autodiff import adjoint_table, gradients
from ..equations import equations
from ..equations.expr import Sym, add, mul, neg
from ..equations.convert import Converter
from ..equations.local import scratch_builder
from ..equations.nodes import inputs, through_anonymous, upstream_of
from ..ops import REGISTRY
from ..plan import Plan
from ..train import Optimizer
from .steps import Entry, Part, Step, Walkthrough

ETA = Sym("η", r"\eta", True)


def collect(model, values=None, of=None, wrt=None, lr=None, seed=0, dims=None, check_finite=True) -> Walkthrough:
    if check_finite:  # the engine's own run first: a NaN or Inf is reported where it first appears (E302)
        model.grad(values, of=of, wrt=wrt, seed=seed, dims=dims)
    compiled, given = model.compile(values, dims)
    eqs = equations(model, values or None, of=of, wrt=wrt, dims=dims)
    built, names = compiled.built, eqs.names
    g = built.graph
    target, wrt_nodes = model.grad_targets(compiled, of, wrt)
    table = dict(adjoint_table(built.gb, target))
    upstream = upstream_of(g, [target])
    fan = {eq.node: _fan_in(g, eq.node, table[eq.node], upstream) for eq in eqs.backward if eq.kind == "backward"}
    wanted = [eq.node for eq in eqs.forward] + [target] + list(table.values()) + \
        [p for parts in fan.values() for p in parts]
    plan = Plan(g, list(dict.fromkeys(wanted)), model.source, model.max_elements)
    leaves = model.leaf_values(compiled, given, seed)
    numbers = plan.run_all(leaves)

    lookup = _lookup(g, names, target, table, numbers)
    forward = [_step(g, eq, numbers[eq.node], lookup) for eq in eqs.forward]
    backward = []
    for eq in eqs.backward:
        if eq.kind == "local":
            value = _local_value(built.gb, eq.node, eq.other, upstream, numbers)
            lookup[eq.lhs.name] = Entry(value, g.nodes[eq.node]["shape"], eq.node, "local")
        elif eq.kind == "backward":
            value = numbers[table[eq.node]]
            lookup[eq.lhs.name] = Entry(value, g.nodes[eq.node]["shape"], eq.node, "grad")
        else:
            value = numbers[eq.node]
        step = _step(g, eq, value, lookup)
        if eq.kind == "backward":
            _explain_sharing(g, names, step, fan[eq.node], numbers, upstream)
        backward.append(step)
    loss = float(np.asarray(numbers[target]).reshape(-1)[0])
    walk = Walkthrough(model.source.name, names.display(target), target, _starting(g, names, built, leaves),
                       forward, backward, lookup, loss)
    walk.lr_asked = lr is not None
    if lr is not None:
        _update(model, compiled, plan, walk, wrt_nodes, table, numbers, leaves, lr, names)
    return walk


def _lookup(g, names, target, table, numbers) -> dict:
    """name -> Entry for the named forward values, the dims, the auxiliaries and the adjoints."""
    out = {}
    for n, value in numbers.items():
        d = g.nodes[n]
        if d["kind"] == "var" and d.get("phase") == "forward" and names.is_named(n):
            out[names.sym(n).name] = Entry(value, d["shape"], n, "value")
    for n, sym in names.aux.items():
        if n in numbers:
            out[sym.name] = Entry(numbers[n], g.nodes[n]["shape"], n, "value")
    for v, a in table.items():
        if a in numbers and names.is_named(v) and g.nodes[v].get("phase") == "forward":
            out[names.adjoint(target, v, True).name] = Entry(numbers[a], g.nodes[v]["shape"], v, "grad")
    return out


def _step(g, eq, value, lookup) -> Step:
    shape = g.nodes[eq.node]["shape"] if eq.node in g else None
    reads = []
    for ref in eq.rhs[-1].refs():
        entry = lookup.get(ref.name)
        if entry is not None and (entry.node, entry.kind) not in reads:
            reads.append((entry.node, entry.kind))
    return Step(eq.kind, eq.node, eq.lhs, list(eq.rhs), np.asarray(value), shape, reads)


def _starting(g, names, built, leaves) -> list:
    """(name, role, node, value) of the params, inputs and consts, in declaration order."""
    out = []
    for name, decl in built.decls.items():
        if name in leaves and name in g:
            out.append((names.display(name), decl.kind, name, np.asarray(leaves[name])))
    return out


# ---- local derivatives ------------------------------------------------------------------------------

def _local_value(gb, v, u, upstream, numbers):
    """du/dv by reverse mode on the scratch graph between v and u, fed the engine's forward values."""
    _, ops = through_anonymous(gb.g, v, upstream)
    scratch = scratch_builder(gb, ops)
    a = gradients(scratch, u, [v])[v]
    plan = Plan(scratch.g, [a])
    leaves = {n: numbers[n] for n in scratch.g if not scratch.g.in_degree(n) and n in numbers}
    return np.asarray(plan.run_all(leaves)[a])


# ---- fan-out: a value feeding several others ---------------------------------------------------------

def _consumer_edges(g, v, upstream) -> list:
    """(op, argument position) for each differentiable forward use of v on the way to the loss."""
    return [(op, k) for op in g.successors(v) if op in upstream and g.nodes[op].get("phase") == "forward"
            and REGISTRY[g.nodes[op]["op"]].differentiable for k in g[v][op]]


def _fan_in(g, v, a, upstream) -> list:
    """The contributions summed into dJ/dv when v is used more than once: the leaves of the
    chain of adds reverse mode built (one add per extra use), else []."""
    uses = len(_consumer_edges(g, v, upstream))
    if uses < 2:
        return []
    parts = [a]
    while len(parts) < uses:
        for i, p in enumerate(parts):
            ops = list(g.predecessors(p))
            if ops and g.nodes[ops[0]]["op"] == "add" and g.nodes[p].get("phase") == "backward":
                parts[i:i + 1] = inputs(g, ops[0])
                break
        else:
            break
    return parts if len(parts) > 1 else []


def _explain_sharing(g, names, step, parts, numbers, upstream) -> None:
    """The contributions of a fan-out, and the error shared out in proportion to the weights, in words."""
    v = step.node
    consumers, _ = through_anonymous(g, v, upstream)
    shown = ", ".join(names.display(u) for u in consumers)
    if parts:
        conv = Converter(g, names)
        for p in parts:
            expr = conv.ref_of(p) if p in g else None
            via = [r.name for r in expr.refs() if r.adjoint] if expr is not None else []
            step.parts.append(Part(expr, numbers[p], via))
        step.note = (f"{names.display(v)} is used {len(parts)} times (by {shown}), so its gradient is the sum of "
                     f"what comes back along each use")
        if g.nodes[v].get("role") != "param":
            step.note += (": each contribution is the gradient arriving there times the weight (local "
                          "derivative) on that path, so the error is shared out in proportion to the weights")
        step.note += "."
        return
    if g.nodes[v].get("role") == "param":  # a weight's gradient is an outer product: nothing is shared out
        return
    for op in g.successors(v):
        if op in upstream and g.nodes[op].get("op") == "matmul":
            other = [u for u in inputs(g, op) if u != v]
            weights = names.display(other[0]) if other else names.display(v)
            step.note = (f"{names.display(v)} feeds {shown} through a matrix product with {weights}: each element "
                         f"of {names.display(v)} collects the gradients of the elements it feeds, weighted by "
                         f"the entries of {weights} that connect them (the error is shared out in proportion "
                         f"to the weights).")
            return


# ---- the update ------------------------------------------------------------------------------------------

def _update(model, compiled, plan, walk, wrt_nodes, table, numbers, leaves, lr, names) -> None:
    g = compiled.built.graph
    params = [w for w in wrt_nodes if g.nodes[w].get("role") == "param"]
    if not params:  # --wrt named no param: nothing to update, and the loss stays as it is
        return
    walk.lr = lr
    old = {w: np.asarray(leaves[w], dtype=np.float64) for w in params}
    new = Optimizer("sgd", lr).step(old, {w: numbers[table[w]] for w in params})
    walk.lookup[ETA.name] = Entry(np.asarray(lr), (), walk.of_node, "rate")
    for w in params:
        sym = names.sym(w)
        grad = names.adjoint(walk.of_node, w, True)
        walk.lookup.setdefault(grad.name, Entry(numbers[table[w]], g.nodes[w]["shape"], w, "grad"))
        step = Step("update", w, sym, [add(sym, neg(mul(ETA, grad)))], new[w], g.nodes[w]["shape"],
                    [(w, "value"), (w, "grad")])
        walk.updates.append(step)
    forward = model._plan(compiled, (walk.of_node,))
    after = forward.run({**leaves, **new}, check_finite=False)[0]
    walk.loss_after = float(np.asarray(after).reshape(-1)[0])

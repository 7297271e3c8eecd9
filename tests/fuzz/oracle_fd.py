"""Finite differences against reverse mode, and how far a program's kinked operations are from their kinks."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import assume

from graphdsl import GraphDSLError
from graphdsl.plan import Plan
from fuzz.checks import leaf_values
from fuzz.oracle_torch import _ints
from fuzz.stats import RECORD, STATS
from fuzz.tables import KINK_OPS


def grad_agrees(model, prog, *, kink_guard=False):
    """Reverse mode against central differences along one random direction of every wrt value."""
    try:
        value, grads = model.grad(prog.values, of=prog.target, wrt=prog.wrt)
    except GraphDSLError as err:
        STATS["grad_" + err.errors[0].code] += 1
        assume(False)
    leaves = leaf_values(model, prog)
    f0 = float(value)
    assume(abs(f0) < 1e4 and all(np.all(np.abs(g) < 1e4) for g in grads.values()))
    if kink_guard and not away_from_kinks(model, prog, leaves):
        STATS["fd_skipped_near_kink"] += 1
        assume(False)
    rng = np.random.default_rng(len(prog.text))
    direction = {w: rng.standard_normal(np.shape(leaves[w])) for w in prog.wrt}

    def f(t):
        vals = {**leaves, **{w: leaves[w] + t * direction[w] for w in prog.wrt}}
        return float(model.eval(vals, outputs=[prog.target], check_finite=False)[prog.target])

    # fourth-order central differences at two steps: their difference estimates the FD error
    # (truncation ~h^4 f^(5), rounding ~eps |f| / h; h = 1e-3 balances them for O(1) programs)
    numeric, coarse = five_point(f, 1e-3), five_point(f, 2e-3)
    analytic = float(sum(np.sum(grads[w] * direction[w]) for w in prog.wrt))
    assume(math.isfinite(numeric) and math.isfinite(coarse))
    tol = 1e-7 + 1e-6 * max(abs(numeric), abs(analytic)) + 1e-11 * abs(f0) + 4 * abs(numeric - coarse)
    STATS["fd_checked"] += 1
    # the largest error as a share of its tolerance (at most 1), and relative, where FD is sharp
    RECORD["fd_worst_of_tolerance"] = max(RECORD.get("fd_worst_of_tolerance", 0.0), abs(numeric - analytic) / tol)
    if abs(numeric - coarse) <= 1e-9 * max(1.0, abs(numeric)):
        RECORD["fd_worst_rel"] = max(RECORD.get("fd_worst_rel", 0.0),
                                     abs(numeric - analytic) / max(1.0, abs(numeric)))
    if abs(numeric - analytic) > tol and agrees_at_another_step(f, analytic, f0):
        STATS["fd_other_step"] += 1
        return
    assert abs(numeric - analytic) <= tol, (
        f"reverse mode {analytic!r} != finite differences {numeric!r} (|diff| {abs(numeric - analytic):.3e})")


def agrees_at_another_step(f, analytic, f0) -> bool:
    """h = 1e-3 is wrong for two kinds of program that are not wrong: rounding noise in f (a saturated
    sigmoid's 1 - p loses digits) wants a larger step, and a fast oscillation (sin of a sum of size 1e3)
    a smaller one. Agreement at another step, within that step's own estimated error, settles it; a wrong
    gradient disagrees at every step."""
    for h in (1e-2, 4e-3, 1e-4, 1e-5, 1e-6):
        numeric, coarse = five_point(f, h), five_point(f, 2 * h)
        tol = 1e-7 + 1e-6 * max(abs(numeric), abs(analytic)) + 1e-11 * abs(f0) + 4 * abs(numeric - coarse)
        sharp = abs(numeric - coarse) <= 1e-6 * max(1.0, abs(numeric))  # this step resolves f'
        if math.isfinite(numeric) and sharp and abs(numeric - analytic) <= tol:
            return True
    return False


def five_point(f, h):
    """f'(0) by the fourth-order central stencil."""
    return (f(-2 * h) - 8 * f(-h) + 8 * f(h) - f(2 * h)) / (12 * h)

def away_from_kinks(model, prog, leaves, margin=1e-3) -> bool:
    """Evaluate the arguments of every kinked op; False if one is within `margin` of its kink."""
    compiled, given = model.compile(prog.values)
    leaves = {**model.leaf_values(compiled, given, 0), **leaves}  # the dropout masks too
    g = compiled.built.graph
    kinked = [(n, d) for n, d in g.nodes(data=True) if d["kind"] == "op" and d["op"] in KINK_OPS]
    if not kinked:
        return True
    args = {n: [u for u, _, _ in sorted(g.in_edges(n, keys=True), key=lambda e: e[2])] for n, _ in kinked}
    targets = sorted({a for a_s in args.values() for a in a_s})
    vals = dict(zip(targets, Plan(g, targets, model.source).run_reference(leaves)))
    for n, d in kinked:
        xs = [np.asarray(vals[a], dtype=np.float64) for a in args[n]]
        op = d["op"]
        if op in ("relu", "abs", "leaky_relu", "sign", "elu"):
            gap = np.abs(xs[0])
        elif op in ("floor", "ceil"):  # steps at the integers
            gap = np.abs(xs[0] - np.round(xs[0]))
        elif op == "round":  # steps halfway between them
            gap = np.abs(xs[0] - np.floor(xs[0]) - 0.5)
        elif op == "max_pool2d":  # each window's top two must differ
            gap = pool_window_gaps(xs[0], d["attrs"])
        elif op in ("maximum", "minimum", "gt", "ge", "lt", "le", "eq", "ne"):
            gap = np.abs(xs[0] - xs[1])
        elif op == "clip":
            gap = np.minimum(np.abs(xs[0] - xs[1]), np.abs(xs[0] - xs[2]))
        elif op == "where":
            continue  # its condition is a comparison, checked on its own
        else:  # max/min reductions: the top two along the axes must differ
            x, axis = xs[0], d["attrs"].get("axis")
            axes = tuple(range(x.ndim)) if axis is None else ((axis,) if np.ndim(axis) == 0 else tuple(axis))
            axes = tuple(a % max(1, x.ndim) for a in axes)
            rest = tuple(s for i, s in enumerate(x.shape) if i not in axes)
            if not x.size:  # nothing to pick (argmax over an empty axis is refused before this)
                continue
            flat = np.moveaxis(x, axes, tuple(range(-len(axes), 0))).reshape(rest + (-1,)) if x.ndim else x.reshape(1)
            if flat.shape[-1] < 2:
                continue
            top = np.sort(flat, axis=-1)
            gap = top[..., -1] - top[..., -2] if op == "max" else top[..., 1] - top[..., 0]
        if np.size(gap) and float(np.min(gap)) < margin:
            return False
    return True


def pool_window_gaps(x, attrs):
    """The gap between the largest and the second largest element of each max_pool2d window (-inf padding)."""
    ks = _ints(attrs["k"], 2)
    stride = ks if attrs.get("stride") is None else _ints(attrs["stride"], 2)
    pad = _ints(attrs.get("padding", 0), 2)
    if ks[0] * ks[1] < 2:  # a window of one element: no kink
        return np.array([np.inf])
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple((p, p) for p in pad), constant_values=-np.inf)
    win = np.lib.stride_tricks.sliding_window_view(xp, ks, axis=(2, 3))[:, :, ::stride[0], ::stride[1]]
    top = np.sort(win.reshape(win.shape[:4] + (-1,)), axis=-1)
    with np.errstate(invalid="ignore"):  # -inf - -inf: two padded cells, never both the top
        return np.nan_to_num(top[..., -1] - top[..., -2], nan=np.inf)

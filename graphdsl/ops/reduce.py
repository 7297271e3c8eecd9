"""Reductions (`axis=`, `keepdims=`) and the engine's broadcasting helpers.

`like=` attributes name another node whose shape is the target; the builder
gives shape rules that node's Shape, the planner gives forwards its sizes.
"""
from __future__ import annotations

import numpy as np

from .base import OpDef, ShapeError, axes_tuple, reduce_rule, register
from .construct import as_dim

RED_KW = {"axis": None, "keepdims": False}


def _np_axis(axis):
    return None if axis is None else tuple(axis) if isinstance(axis, (list, tuple)) else axis


def _unreduce(b, n, x, g, mean=False):
    """g broadcast back over the axes that the reduction of x removed."""
    return b.op("unreduce", g, like=x, axis=n.attrs.get("axis"), keepdims=n.attrs.get("keepdims", False),
                mean=mean)


def _reduction(name, forward, vjp, latex, rule=reduce_rule, local=()):
    register(OpDef(name, forward, rule, vjp, (1, 1), dict(RED_KW), latex=latex, local=local))


def _nonempty_rule(shapes, attrs):
    """max and min have no value over an empty axis (NumPy raises at run time): refuse it here."""
    shape = shapes[0]
    if shape is not None:
        axes = axes_tuple(attrs.get("axis"), len(shape))
        for i in range(len(shape)) if axes is None else axes:
            if shape[i].size == 0:
                raise ShapeError("E204", f"cannot take the max or min of {{0}} over axis {i}: it is empty")
    return reduce_rule(shapes, attrs)


def _logsumexp(x, axis=None, keepdims=False):
    axis = _np_axis(axis)
    peak = np.max(x, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    out = np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True)) + peak
    return out if keepdims else np.squeeze(out, axis=axis) if axis is not None else out.reshape(())


def _extreme_vjp(b, n):
    x = n.args[0]
    spread = b.op("extreme_mask", x, b.op("unreduce", n.out, like=x, axis=n.attrs.get("axis"),
                                          keepdims=n.attrs.get("keepdims", False)), axis=n.attrs.get("axis"))
    return [b.op("mul", _unreduce(b, n, x, n.g), spread)]


def _norm_scale(b, n):
    """g / norm, and 0 where the norm is 0 (the subgradient PyTorch picks), not 0/0."""
    return b.op("where", b.op("eq", n.out, 0.0), 0.0, b.op("div", n.g, n.out))


_reduction("sum", lambda x, axis=None, keepdims=False: np.sum(x, axis=_np_axis(axis), keepdims=keepdims),
           lambda b, n: [_unreduce(b, n, n.args[0], n.g)], r"\sum {0}",
           local=("dJ/da = g broadcast back to a's shape",))
_reduction("mean", lambda x, axis=None, keepdims=False: np.mean(x, axis=_np_axis(axis), keepdims=keepdims),
           lambda b, n: [_unreduce(b, n, n.args[0], n.g, mean=True)], r"\mathrm{{mean}}({0})",
           local=("dJ/da = g / n, broadcast back",))
_reduction("max", lambda x, axis=None, keepdims=False: np.max(x, axis=_np_axis(axis), keepdims=keepdims),
           _extreme_vjp, r"\max {0}", _nonempty_rule)
_reduction("min", lambda x, axis=None, keepdims=False: np.min(x, axis=_np_axis(axis), keepdims=keepdims),
           _extreme_vjp, r"\min {0}", _nonempty_rule)
_reduction("logsumexp", _logsumexp,
           lambda b, n: [b.op("mul", _unreduce(b, n, n.args[0], n.g),
                              b.op("exp", b.op("sub", n.args[0], _unreduce(b, n, n.args[0], n.out))))],
           r"\log\sum\exp {0}")
_reduction("var", lambda x, axis=None, keepdims=False: np.var(x, axis=_np_axis(axis), keepdims=keepdims),
           lambda b, n: [b.op("mul", _unreduce(b, n, n.args[0], n.g, mean=True),
                              b.op("mul", 2.0, b.op("sub", n.args[0],
                                                    b.op("mean", n.args[0], axis=n.attrs.get("axis"),
                                                         keepdims=True))))],
           r"\mathrm{{var}}({0})")
_reduction("norm", lambda x, axis=None, keepdims=False: np.sqrt(np.sum(x * x, axis=_np_axis(axis), keepdims=keepdims)),
           lambda b, n: [b.op("mul", _unreduce(b, n, n.args[0], _norm_scale(b, n)), n.args[0])],
           r"\|{0}\|", local=("∂y/∂a = a / y",))
_reduction("sqnorm", lambda x, axis=None, keepdims=False: np.sum(x * x, axis=_np_axis(axis), keepdims=keepdims),
           lambda b, n: [b.op("mul", _unreduce(b, n, n.args[0], n.g), b.op("mul", 2.0, n.args[0]))],
           r"\|{0}\|^{{2}}", local=("∂y/∂a = 2a",))


# ---- engine helpers (internal) -----------------------------------------------------

def _like_rule(shapes, attrs):
    return attrs["like"]


def _unreduce_fwd(g, like, axis=None, keepdims=False, mean=False):
    axes = axes_tuple(axis, len(like))
    if axes is None:
        axes = tuple(range(len(like)))
    if not keepdims and axes:
        g = np.expand_dims(g, axes)
    if mean:
        g = g / max(1, int(np.prod([like[a] for a in axes])))
    return np.broadcast_to(g, like)


register(OpDef("unreduce", _unreduce_fwd, _like_rule,
               lambda b, n: [b.op(("mean" if n.attrs.get("mean") else "sum"), n.g,
                                  axis=n.attrs.get("axis"), keepdims=n.attrs.get("keepdims", False))],
               (1, 1), {"like": None, "axis": None, "keepdims": False, "mean": False},
               latex=r"{0}", internal=True, local=("dJ/da = sum of g over the broadcast axes",)))


def sum_to(g, like):
    """Sum a broadcast cotangent back to the shape `like` (the inverse of broadcasting)."""
    if g.shape == tuple(like):
        return g
    lead = g.ndim - len(like)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(like) if s == 1 and g.shape[lead + i] != 1)
    out = np.sum(g, axis=axes, keepdims=True)
    return out.reshape(like)


register(OpDef("sum_to", sum_to, _like_rule,
               lambda b, n: [b.op("broadcast_to", n.g, like=n.args[0])],
               (1, 1), {"like": None}, latex=r"{0}", internal=True, local=("dJ/da = g broadcast back",)))


def _extreme_mask(x, peak, axis=None):
    hit = np.asarray(x == peak, dtype=np.float64)  # x may be a Python float in scalar plans
    count = np.sum(hit, axis=_np_axis(axis), keepdims=True)
    return hit / count


register(OpDef("extreme_mask", _extreme_mask, lambda s, a: s[0], None, (2, 2), {"axis": None},
               differentiable=False, internal=True, latex=r"[{0} = {1}]"))


def _eye_fwd(like=None, n=None):
    if like is None:
        return np.eye(int(n))
    if len(like) != 2 or like[0] != like[1]:
        return np.eye(like[0], like[1]) if len(like) == 2 else np.ones(like)
    return np.eye(like[0])


def _eye_shape(shapes, attrs):
    if attrs.get("like") is not None:  # the engine's identity of a given shape
        return attrs["like"]
    dim = as_dim(attrs.get("n"), "eye")
    return (dim, dim)


register(OpDef("eye", _eye_fwd, _eye_shape, None, (0, 0), {"n": None, "like": None}, differentiable=False,
               latex="I", doc="the n x n identity: eye(n)"))
register(OpDef("zeros_like", lambda like: np.zeros(like), _like_rule, None, (0, 0), {"like": None},
               differentiable=False, internal=True, latex="0"))



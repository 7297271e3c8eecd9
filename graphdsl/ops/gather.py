"""Indexing by a tensor and running sums: take (and its scatter-add), cumsum, pad, argmax/argmin.

take's gradient is take_grad, a scatter-add whose own gradient is take again;
cumsum's is a reversed cumsum whose gradient is cumsum; pad's is a slice.
"""
from __future__ import annotations

import numpy as np

from ..arrays import c_ordered
from .base import Dim, OpDef, ShapeError, norm_axis, register


def _indices(idx, size: int, axis: int):
    """idx as int64 indices into an axis of `size`; a clear error for fractions or out-of-range ones."""
    idx = np.asarray(idx)
    if idx.size == 0:
        return idx.astype(np.int64)
    whole = np.round(idx)
    bad = np.flatnonzero((whole != idx) | (whole < -size) | (whole >= size))
    if bad.size:
        value = idx.ravel()[bad[0]]
        what = "not a whole number" if value != np.round(value) else f"out of range for axis {axis} of size {size}"
        raise ValueError(f"index {value:g} (at flat position {bad[0]}) is {what}; indices run from "
                         f"{-size} to {size - 1}")
    return whole.astype(np.int64)


def _take(x, idx, axis=0):
    axis = int(axis) % max(np.ndim(x), 1)
    return np.take(x, _indices(idx, np.shape(x)[axis], axis), axis=axis)


def _take_grad(g, idx, like=None, axis=0):
    """Scatter-add g into zeros shaped `like`: repeated indices accumulate."""
    axis = int(axis) % max(len(like), 1)
    i = _indices(idx, like[axis], axis).ravel() % like[axis]
    out = np.zeros(like)
    g = np.reshape(g, tuple(like[:axis]) + (i.size,) + tuple(like[axis + 1:]))
    np.add.at(np.moveaxis(out, axis, 0), i, np.moveaxis(g, axis, 0))  # moveaxis is a view into out
    return out


def _take_shape(shapes, attrs):
    xs, ids = shapes
    if xs is None or ids is None:
        return None
    if len(xs) == 0:
        raise ShapeError("E204", "take needs an array {0} with at least one axis")
    axis = norm_axis(attrs.get("axis", 0), len(xs))
    return tuple(xs[:axis]) + tuple(ids) + tuple(xs[axis + 1:])


register(OpDef("take", _take, _take_shape,
               lambda b, n: [b.op("take_grad", n.g, n.args[1], like=n.args[0], axis=n.attrs["axis"]), None],
               (2, 2), {"axis": 0}, latex=r"{0}_{{[{1}]}}",
               doc="select along `axis` by integer-valued indices, as numpy.take"))
register(OpDef("take_grad", _take_grad, lambda s, a: a["like"],
               lambda b, n: [b.op("take", n.g, n.args[1], axis=n.attrs["axis"]), None],
               (2, 2), {"axis": 0, "like": None}, latex=r"\mathrm{{scatter}}({0}, {1})", internal=True))


# ---- cumsum ---------------------------------------------------------------------------------

def _axis_kept(shapes, attrs):
    s = shapes[0]
    if attrs.get("axis") is None:
        raise ShapeError("E103", "cumsum needs an axis: cumsum(x, 0)")
    if s is not None:
        norm_axis(attrs["axis"], len(s))
    return s


def _rev_cumsum(x, axis=0):
    return c_ordered(np.flip(np.cumsum(np.flip(x, axis), axis), axis))  # not flip's view: see arrays.py


register(OpDef("cumsum", lambda x, axis=None: np.cumsum(x, axis=int(axis)), _axis_kept,
               lambda b, n: [b.op("rev_cumsum", n.g, axis=n.attrs["axis"])], (1, 1), {"axis": None},
               latex=r"\mathrm{{cumsum}}({0})", doc="running sum along `axis`"))
register(OpDef("rev_cumsum", lambda x, axis=0: _rev_cumsum(x, int(axis)), _axis_kept,
               lambda b, n: [b.op("cumsum", n.g, axis=n.attrs["axis"])], (1, 1), {"axis": 0},
               latex=r"\mathrm{{cumsum}}^{{\top}}({0})", internal=True))


# ---- pad ------------------------------------------------------------------------------------

def _widths(attrs, rank):
    raw = attrs.get("widths")
    if raw is None:
        raise ShapeError("E103", "pad needs widths: pad(x, [[before, after], ...])")
    rows = raw if isinstance(raw, tuple) and raw and isinstance(raw[0], tuple) else None
    if rows is None or len(rows) != rank or any(len(r) != 2 or any(v != int(v) or v < 0 for v in r)
                                                 for r in rows):
        raise ShapeError("E204", f"pad needs one [before, after] pair of whole numbers >= 0 for each of the "
                                 f"{rank} axes of {{0}}",
                         help=("e.g. pad(x, [[0, 0], [1, 1]]) pads the last axis of a matrix by one each side",))
    return tuple((int(a), int(c)) for a, c in rows)


def _pad_shape(shapes, attrs):
    s = shapes[0]
    if s is None:
        return None
    widths = _widths(attrs, len(s))
    return tuple(d if a == c == 0 else Dim(None, None if d.size is None else d.size + a + c)
                 for d, (a, c) in zip(s, widths))


def _pad(x, widths=None, value=0.0):
    return np.pad(x, _widths({"widths": widths}, np.ndim(x)), constant_values=float(value))


def _pad_vjp(b, n):
    widths = _widths(n.attrs, len(b.shape(n.args[0])))
    key = tuple(slice(a, -c if c else None) for a, c in widths)
    return [b.op("index", n.g, key=key)]


register(OpDef("pad", _pad, _pad_shape, _pad_vjp, (1, 1), {"widths": None, "value": 0.0},
               latex=r"\mathrm{{pad}}({0})", doc="pad each axis with `value`: pad(x, [[before, after], ...])"))


# ---- argmax / argmin (no gradient; indices as float64) ----------------------------------------

def _arg_shape(shapes, attrs):
    s = shapes[0]
    if s is None:
        return None
    if attrs.get("axis") is None:
        return ()
    axis = norm_axis(attrs["axis"], len(s))
    if s[axis].size == 0:
        raise ShapeError("E204", f"cannot take the argmax or argmin of {{0}} over axis {axis}: it is empty")
    return tuple(d for i, d in enumerate(s) if i != axis)


def _arg(fn):
    # the first extreme wins on ties, in NumPy and PyTorch alike
    return lambda x, axis=None: fn(x, axis=None if axis is None else int(axis)).astype(np.float64)


register(OpDef("argmax", _arg(np.argmax), _arg_shape, None, (1, 1), {"axis": None}, differentiable=False,
               latex=r"\arg\max {0}", doc="index of the largest element along `axis` (of the flattened array)"))
register(OpDef("argmin", _arg(np.argmin), _arg_shape, None, (1, 1), {"axis": None}, differentiable=False,
               latex=r"\arg\min {0}", doc="index of the smallest element along `axis`"))

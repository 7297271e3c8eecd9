"""Constructors (no inputs, no gradient): arange, ones, zeros; and the triangle masks tril, triu.

eye(n) is the `eye` operator of reduce.py, which the engine also builds with like=.
Sizes may be dims (`arange(T)`): the planner gives the forwards their numbers.
"""
from __future__ import annotations

import numpy as np

from .base import Dim, OpDef, ShapeError, register


def as_dim(value, what: str) -> Dim:
    """A size argument (a number or a dim) as a Dim; a clear error when it is not a size."""
    dim = value if isinstance(value, Dim) else None if value is None else Dim(None, value)
    if dim is None:
        raise ShapeError("E103", f"{what} needs a size, e.g. {what}(3)")
    if dim.size is not None and (float(dim.size) != int(dim.size) or dim.size < 0):
        raise ShapeError("E204", f"{what} needs a whole number >= 0 as its size, not {dim.size}")
    return Dim(dim.name, None if dim.size is None else int(dim.size))


def _shape_arg(what):
    def rule(shapes, attrs):
        raw = attrs.get("shape")
        if raw is None:
            raise ShapeError("E103", f"{what} needs a shape, e.g. {what}([2, 3])")
        return tuple(as_dim(d, what) for d in (raw if isinstance(raw, tuple) else (raw,)))
    return rule


def _sizes(shape):
    return tuple(int(s) for s in (shape if isinstance(shape, (list, tuple)) else (shape,)))


register(OpDef("arange", lambda n=None: np.arange(int(n), dtype=np.float64),
               lambda shapes, attrs: (as_dim(attrs.get("n"), "arange"),), None, (0, 0), {"n": None},
               differentiable=False, latex=r"\mathrm{{arange}}", doc="0, 1, ..., n-1"))
register(OpDef("ones", lambda shape=None: np.ones(_sizes(shape)), _shape_arg("ones"), None, (0, 0), {"shape": None},
               differentiable=False, latex=r"\mathbf{{1}}", doc="an array of ones: ones([n, m])"))
register(OpDef("zeros", lambda shape=None: np.zeros(_sizes(shape)), _shape_arg("zeros"), None, (0, 0),
               {"shape": None}, differentiable=False, latex=r"\mathbf{{0}}", doc="an array of zeros: zeros([n, m])"))


def _triangle_shape(name):
    def rule(shapes, attrs):
        k = attrs.get("k", 0)
        k = k.size if isinstance(k, Dim) else k
        if k is not None and float(k) != int(k):
            raise ShapeError("E204", f"{name}: the diagonal offset k must be a whole number, not {k}")
        s = shapes[0]
        if s is not None and len(s) < 2:
            raise ShapeError("E204", f"{name} needs an array {{0}} with at least 2 axes (it masks the last two)")
        return s
    return rule


for _name, _fn, _tex in (("tril", np.tril, r"\mathrm{{tril}}({0})"), ("triu", np.triu, r"\mathrm{{triu}}({0})")):
    register(OpDef(_name, (lambda f: lambda x, k=0: f(x, int(k)))(_fn), _triangle_shape(_name),
                   (lambda nm: lambda b, n: [b.op(nm, n.g, k=n.attrs["k"])])(_name), (1, 1), {"k": 0},
                   latex=_tex, doc="keep the lower (upper) triangle of the last two axes, from diagonal k"))

"""Linear algebra: matmul (NumPy semantics, 1-D and batched), outer, transpose, trace."""
from __future__ import annotations

import numpy as np

from .base import Dim, OpDef, ShapeError, broadcast, norm_axis, register, same_dim


def _inner_mismatch(a: Dim, b: Dim):
    return ShapeError(
        "E201",
        f"matmul inner dimensions differ: {{0}} has {a} columns but {{1}} has {b} rows",
        notes=("for A @ B the last axis of A must equal the first (matrix) axis of B",),
        help=("check the order of the operands, or transpose one of them with `.T`",),
    )


def matmul_shape(shapes, attrs):
    a, b = shapes
    if a is None or b is None:
        return None
    if len(a) == 0 or len(b) == 0:
        raise ShapeError("E204", "matmul needs arrays of at least 1 dimension: {0} or {1} is a scalar",
                         help=("use `*` to multiply by a scalar",))
    if len(a) == 2 and len(b) == 2:  # the common case, without the batch axes' broadcast
        if same_dim(a[1], b[0]) is False:
            raise _inner_mismatch(a[1], b[0])
        return (a[0], b[1])
    a2 = (Dim(None, 1),) + a if len(a) == 1 else a
    b2 = b + (Dim(None, 1),) if len(b) == 1 else b
    if same_dim(a2[-1], b2[-2]) is False:
        raise _inner_mismatch(a2[-1], b2[-2])
    batch = broadcast(a2[:-2], b2[:-2])
    out = batch + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


def _swap_last(b, x):
    rank = len(b.shape(x))
    if rank == 2:
        return b.op("transpose", x)
    return b.op("transpose", x, axes=tuple(range(rank - 2)) + (rank - 1, rank - 2))


def _matmul_vjp(b, n):
    a, c = n.args
    ra, rc = len(b.shape(a)), len(b.shape(c))
    g = n.g
    if ra == 1 and rc == 1:
        return [b.op("mul", g, c), b.op("mul", g, a)]
    if ra == 1 and rc == 2:
        return [b.op("matmul", c, g), b.op("outer", a, g) if n.needs(1) else None]
    if ra == 2 and rc == 1:
        return [b.op("outer", g, c), b.op("matmul", g, a) if n.needs(1) else None]
    if ra == 1:  # a: [k], c: [..., k, m], g: [..., m]; the engine sums ga's batch axes away
        return [b.op("matmul", b.op("expand_dims", g, axis=-2), _swap_last(b, c)),
                b.op("mul", b.op("expand_dims", a, axis=-1), b.op("expand_dims", g, axis=-2))
                if n.needs(1) else None]
    if rc == 1:  # a: [..., n, k], c: [k], g: [..., n]
        return [b.op("mul", b.op("expand_dims", g, axis=-1), c),
                b.op("matmul", b.op("expand_dims", g, axis=-2), a) if n.needs(1) else None]
    return [b.op("matmul", g, _swap_last(b, c)),
            b.op("matmul", _swap_last(b, a), g) if n.needs(1) else None]


register(OpDef("matmul", np.matmul, matmul_shape, _matmul_vjp, (2, 2), symbol="@", latex=r"{0} {1}",
               local=("dJ/da = g @ bᵀ", "dJ/db = aᵀ @ g")))


def _outer_shape(shapes, attrs):
    a, b = shapes
    for k, s in enumerate(shapes):
        if s is not None and len(s) != 1:
            raise ShapeError("E204", "outer needs two 1-D arrays: {%d} is not 1-D" % k)
    return None if a is None or b is None else (a[0], b[0])


register(OpDef("outer", np.outer, _outer_shape,
               lambda b, n: [b.op("matmul", n.g, n.args[1]),
                             b.op("matmul", n.args[0], n.g) if n.needs(1) else None],
               (2, 2), latex=r"{0} {1}^\top"))


def _perm(attrs, rank):
    axes = attrs.get("axes")
    if axes is None:
        return tuple(range(rank - 1, -1, -1))
    if not isinstance(axes, (list, tuple)):
        raise ShapeError("E204", f"transpose needs `axes=` as a list, a permutation of {{0}}'s {rank} axes")
    axes = tuple(norm_axis(int(a), rank) for a in axes)
    if sorted(axes) != list(range(rank)):
        raise ShapeError("E204", f"transpose axes {tuple(attrs['axes'])} are not a permutation of {{0}}'s {rank} axes")
    return axes


def _transpose_shape(shapes, attrs):
    s = shapes[0]
    if s is None:
        return None
    if len(s) == 2 and attrs.get("axes") is None:  # a matrix's .T: reverse mode makes one per matmul
        return (s[1], s[0])
    return tuple(s[i] for i in _perm(attrs, len(s)))


def _transpose_vjp(b, n):
    rank = len(b.shape(n.args[0]))
    perm = _perm(n.attrs, rank)
    inverse = tuple(int(i) for i in np.argsort(perm))
    return [b.op("transpose", n.g, axes=None if n.attrs.get("axes") is None else inverse)]


register(OpDef("transpose", lambda x, axes=None: np.transpose(x, axes), _transpose_shape, _transpose_vjp,
               (1, 1), {"axes": None}, latex=r"{0}^\top", local=("dJ/da = gᵀ",)))


def _trace_shape(shapes, attrs):
    s = shapes[0]
    if s is not None and len(s) != 2:
        raise ShapeError("E204", "trace needs a matrix: {0} is not 2-D")
    return ()


register(OpDef("trace", np.trace, _trace_shape,
               lambda b, n: [b.op("mul", n.g, b.op("eye", like=n.args[0]))], (1, 1),
               latex=r"\mathrm{{tr}}({0})"))

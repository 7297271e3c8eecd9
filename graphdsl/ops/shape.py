"""Shape operators: reshape, concat, stack, expand_dims, squeeze, broadcast_to, indexing."""
from __future__ import annotations

import numpy as np

from .base import (Dim, OpDef, ShapeError, UnknownShape, axes_tuple, broadcast, concrete, norm_axis, register,
                   same_dim)


def _target(attrs):
    """A `shape=` / `like=` attribute as a tuple of Dims (ints become unnamed dims)."""
    raw = attrs.get("like") if attrs.get("like") is not None else attrs.get("shape")
    if raw is None:
        raise ShapeError("E103", "a target shape is needed, e.g. reshape(x, [2, -1]) or broadcast_to(x, [n, m])")
    return tuple(d if isinstance(d, Dim) else Dim(None, int(d)) for d in raw)


# ---- reshape ------------------------------------------------------------------------

def _reshape_shape(shapes, attrs):
    target = _target(attrs)
    for d in target:
        if d.size is not None and d.size < -1:
            raise ShapeError("E204", f"reshape cannot make an axis of size {d.size}",
                             help=("sizes are whole numbers from 0 up, and at most one -1 for "
                                   "the size that makes the element count fit",))
    if sum(1 for d in target if d.size == -1) > 1:
        raise ShapeError("E204", "reshape takes at most one -1",
                         help=("-1 stands for the one size that makes the element count fit",))
    src = concrete(shapes[0]) if shapes[0] is not None else None
    known = [d.size for d in target if d.size != -1]
    if src is None or any(k is None for k in known):
        return tuple(Dim(None, None) if d.size == -1 else d for d in target)
    total, rest = int(np.prod(src)), int(np.prod(known))
    if -1 in [d.size for d in target]:
        if rest == 0 or total % rest:
            raise ShapeError("E204", f"cannot reshape {{0}} ({total} elements) to {list(_sizes_or(target))}")
        return tuple(Dim(None, total // rest) if d.size == -1 else d for d in target)
    if total != rest:
        raise ShapeError("E204", f"cannot reshape {{0}} ({total} elements) to {list(_sizes_or(target))} "
                                 f"({rest} elements)")
    return target


def _sizes_or(target):
    return [d.size if d.size is not None else d.name for d in target]


register(OpDef("reshape", lambda x, shape=None, like=None: np.reshape(x, like if like is not None else shape),
               _reshape_shape, lambda b, n: [b.op("reshape", n.g, like=n.args[0])], (1, 1),
               {"shape": None, "like": None}, latex=r"\mathrm{{reshape}}({0})"))


def _broadcast_to_shape(shapes, attrs):
    target = _target(attrs)
    for d in target:
        if d.size is not None and d.size < 0:
            raise ShapeError("E204", f"broadcast_to cannot make an axis of size {d.size}",
                             help=("target sizes are whole numbers from 0 up",))
    if shapes[0] is None:
        return target
    bad = ShapeError("E202", f"cannot broadcast {{0}} to [{', '.join(map(str, target))}]",
                     notes=("NumPy broadcasting lines up trailing axes; each axis must equal the target's or be 1",))
    try:
        out = broadcast(shapes[0], target)
    except ShapeError:
        raise bad from None
    if len(out) != len(target) or any(same_dim(o, t) is False for o, t in zip(out, target)):
        raise bad
    return target


register(OpDef("broadcast_to",
               lambda x, shape=None, like=None: np.broadcast_to(x, like if like is not None else shape),
               _broadcast_to_shape, lambda b, n: [n.g], (1, 1), {"shape": None, "like": None},
               latex=r"{0}"))

# broadcast_to's rule above returns [g] and lets the engine's unbroadcast sum it
# back to the input's shape: the one central place that undoes broadcasting.


# ---- expand_dims / squeeze ------------------------------------------------------------

def _expand_shape(shapes, attrs):
    s = shapes[0]
    if s is None:
        return None
    axis = norm_axis(attrs["axis"], len(s) + 1)
    return s[:axis] + (Dim(None, 1),) + s[axis:]


def _squeeze_axes(s, attrs):
    if attrs.get("axis") is None:
        return tuple(i for i, d in enumerate(s) if d.size == 1)
    axes = axes_tuple(attrs["axis"], len(s))
    for a in axes:  # an axis of a free dim is checked when the data give its size
        if s[a].size not in (1, None):
            raise ShapeError("E204", f"cannot squeeze axis {a} of {{0}}: squeeze removes an axis of size 1, "
                                     f"and this one has size {s[a]}",
                             help=("to drop an axis of any size, index it (x[0]) or reduce it "
                                   "(sum(x, axis=...))",))
    return axes


def _squeeze_shape(shapes, attrs):
    s = shapes[0]
    if s is None:
        return None
    if attrs.get("axis") is None and any(d.size is None for d in s):
        return None  # which axes go depends on sizes the data give: the rank is known at run time
    axes = _squeeze_axes(s, attrs)
    return tuple(d for i, d in enumerate(s) if i not in axes)


_reshape_back = lambda b, n: [b.op("reshape", n.g, like=n.args[0])]  # noqa: E731
register(OpDef("expand_dims", lambda x, axis=0: np.expand_dims(x, axis), _expand_shape, _reshape_back,
               (1, 1), {"axis": 0}, latex=r"{0}"))
register(OpDef("squeeze", lambda x, axis=None: np.squeeze(x, axis=None if axis is None else (
    tuple(axis) if isinstance(axis, (list, tuple)) else axis)), _squeeze_shape, _reshape_back, (1, 1),
    {"axis": None}, latex=r"{0}"))


# ---- concat / stack ---------------------------------------------------------------------

def _concat_shape(shapes, attrs):
    if any(s is None for s in shapes):
        return None
    rank = len(shapes[0])
    if rank == 0 or any(len(s) != rank for s in shapes):
        raise ShapeError("E204", "concat needs arrays of one rank (at least 1)")
    axis = norm_axis(attrs["axis"], rank)
    total = 0
    for s in shapes:
        for i in range(rank):
            if i != axis and same_dim(s[i], shapes[0][i]) is False:
                raise ShapeError("E202", f"concat: axis {i} differs: {s[i]} against {shapes[0][i]}")
        total = None if total is None or s[axis].size is None else total + s[axis].size
    return shapes[0][:axis] + (Dim(None, total),) + shapes[0][axis + 1:]


def _concat_vjp(b, n):
    axis = n.attrs["axis"]
    grads, start = [], 0
    for a in n.args:
        rank = len(b.shape(a))
        size = b.shape(a)[norm_axis(axis, rank)].size
        if size is None:  # known once the data bind the free dims
            raise UnknownShape("concat")
        key = (slice(None),) * norm_axis(axis, rank) + (slice(start, start + size),)
        grads.append(b.op("index", n.g, key=key))
        start += size
    return grads


register(OpDef("concat", lambda *xs, axis=0: np.concatenate(xs, axis=axis), _concat_shape, _concat_vjp,
               (1, 10_000), {"axis": 0}, latex=r"[{0}]", variadic=True))


def _stack_shape(shapes, attrs):
    if any(s is None for s in shapes):
        return None
    out = shapes[0]
    for s in shapes[1:]:
        if len(s) != len(out) or any(same_dim(x, y) is False for x, y in zip(s, out)):
            raise ShapeError("E202", "stack needs arrays of one shape")
    axis = norm_axis(attrs["axis"], len(out) + 1)
    return out[:axis] + (Dim(None, len(shapes)),) + out[axis:]


def _stack_vjp(b, n):
    rank = len(b.shape(n.out))
    axis = norm_axis(n.attrs["axis"], rank)
    return [b.op("index", n.g, key=(slice(None),) * axis + (k,)) for k in range(len(n.args))]


register(OpDef("stack", lambda *xs, axis=0: np.stack(xs, axis=axis), _stack_shape, _stack_vjp,
               (1, 10_000), {"axis": 0}, latex=r"[{0}]", variadic=True))


# ---- indexing -----------------------------------------------------------------------------

def _index_shape(shapes, attrs):
    s = shapes[0]
    if s is None:
        return None
    key = attrs["key"]
    if len(key) > len(s):
        raise ShapeError("E204", f"too many indices ({len(key)}) for {{0}} of rank {len(s)}")
    out = []
    for i, (k, d) in enumerate(zip(key, s)):
        if isinstance(k, slice):
            out.append(d if k == slice(None) else _sliced(d, k))
        elif d.size is not None and not -d.size <= k < d.size:
            raise ShapeError("E204", f"index {k} is out of range for axis {i} of {{0}} (size {d.size})")
    return tuple(out) + tuple(s[len(key):])


def _sliced(d: Dim, k: slice) -> Dim:
    return Dim(None, None if d.size is None else len(range(*k.indices(d.size))))


def _index_grad(g, like, key):
    out = np.zeros(like)
    out[key] = g
    return out


register(OpDef("index", lambda x, key=(): x[key], _index_shape,
               lambda b, n: [b.op("index_grad", n.g, like=n.args[0], key=n.attrs["key"])], (1, 1),
               {"key": ()}, latex=r"{0}[\dots]", internal=True, local=("dJ/da = g scattered into zeros",)))
register(OpDef("index_grad", _index_grad, lambda s, a: a["like"],
               lambda b, n: [b.op("index", n.g, key=n.attrs["key"])], (1, 1), {"like": None, "key": ()},
               internal=True, latex=r"{0}", local=("dJ/da = g at the index",)))

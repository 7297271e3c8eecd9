"""Neural-network builtins in stable forms, each with an exact reverse-mode rule."""
from __future__ import annotations

import numpy as np

from .base import Dim, OpDef, ShapeError, UnknownShape, broadcast, norm_axis, register, same_dim


def _softmax(x, axis=-1):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax(x, axis=-1):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _axis_rule(shapes, attrs):
    s = shapes[0]
    if s is not None:
        norm_axis(attrs.get("axis", -1), len(s))
    return s


register(OpDef("softmax", _softmax, _axis_rule,
               lambda b, n: [b.op("mul", n.out, b.op("sub", n.g, b.op("sum", b.op("mul", n.g, n.out),
                                                                      axis=n.attrs["axis"], keepdims=True)))],
               (1, 1), {"axis": -1}, latex=r"\mathrm{{softmax}}({0})", local=("dJ/da = y ⊙ (g − sum(g ⊙ y))",)))
register(OpDef("log_softmax", _log_softmax, _axis_rule,
               lambda b, n: [b.op("sub", n.g, b.op("mul", b.op("exp", n.out),
                                                   b.op("sum", n.g, axis=n.attrs["axis"], keepdims=True)))],
               (1, 1), {"axis": -1}, latex=r"\log\mathrm{{softmax}}({0})",
               local=("dJ/da = g − softmax(a) sum(g)",)))


# ---- losses: each is a mean, so its rule needs the count N of averaged positions ----

def _same_shape_loss(shapes, attrs):
    broadcast(*shapes)
    return ()


def _count(b, like, axis=None):
    """N, the number of positions a loss averages over (all of `like`'s axes but `axis`).

    A constant when the sizes are fixed; otherwise a node that reads them from
    `like`'s shape at run time, so grad(mse(...), w) works with free dims too, and
    a graph exported with a free dim (`dim b`, bound by the data) takes any size.
    """
    shape = b.shape(like)
    dims = None if shape is None else list(shape)
    if dims is not None and axis is not None:
        dims.pop(norm_axis(axis, len(dims)))
    if dims is None or any(d.size is None or d.name in b.free_dims for d in dims):
        return b.op("count", like=like, axis=axis)
    return float(np.prod([d.size for d in dims])) if dims else 1.0


def _count_forward(like, axis=None):
    total = float(np.prod(like)) if like else 1.0
    return np.asarray(total / like[axis] if axis is not None and like[axis] else total)


register(OpDef("count", _count_forward, lambda shapes, attrs: (), None, (0, 0), {"like": None, "axis": None},
               differentiable=False, internal=True, latex="N"))


def _mse_vjp(b, n):
    o, y = n.args
    diff = b.op("sub", o, y)
    go = b.op("mul", b.op("div", b.op("mul", 2.0, n.g), _count(b, diff)), diff)
    return [go, b.op("neg", go) if n.needs(1) else None]


register(OpDef("mse", lambda o, y: np.mean((o - y) ** 2), _same_shape_loss, _mse_vjp, (2, 2),
               latex=r"\mathrm{{mse}}({0}, {1})", local=("∂y/∂a = 2(a − b)/n", "∂y/∂b = −2(a − b)/n")))


def _over_pairs(b, g_target, diff):
    """The target's cotangent over every broadcast (prediction, target) pair.

    It is computed from the prediction alone, so it has the prediction's shape; a
    target that broadcasts to more positions (p : [3, 1] against y : [1, 4]) takes
    part in each of them, and the engine then sums them back to the target's shape.
    """
    return None if g_target is None else b.op("broadcast_to", g_target, like=diff)


def _bce(p, y):
    # PyTorch's BCELoss clamps each log at -100 so that p = 0 or 1 stays finite.
    return -np.mean(y * np.maximum(np.log(p), -100.0) + (1 - y) * np.maximum(np.log1p(-p), -100.0))


def _bce_vjp(b, n):
    # As PyTorch: the denominator p (1 - p) is kept above 1e-12, so p = 0 or 1 gives a finite
    # gradient; the target's gradient is the derivative of the clamped logs of the forward.
    p, y = n.args
    diff = b.op("sub", p, y)
    scale = b.op("div", n.g, _count(b, diff))
    gp = b.op("mul", scale, b.op("div", diff,
                                 b.op("maximum", b.op("mul", p, b.op("sub", 1.0, p)), 1e-12)))
    gy = b.op("mul", scale, b.op("sub", b.op("maximum", b.op("log1p", b.op("neg", p)), -100.0),
                                 b.op("maximum", b.op("log", p), -100.0))) if n.needs(1) else None
    return [gp, _over_pairs(b, gy, diff)]


register(OpDef("bce", _bce, _same_shape_loss, _bce_vjp, (2, 2), latex=r"\mathrm{{bce}}({0}, {1})"))


def _bce_logits(z, y):
    return np.mean(np.logaddexp(0.0, z) - y * z)


def _bce_logits_vjp(b, n):
    z, y = n.args
    diff = b.op("sub", b.op("sigmoid", z), y)
    scale = b.op("div", n.g, _count(b, diff))
    gz = b.op("mul", scale, diff)
    gy = b.op("neg", b.op("mul", scale, z)) if n.needs(1) else None
    return [gz, _over_pairs(b, gy, diff)]


register(OpDef("bce_with_logits", _bce_logits, _same_shape_loss, _bce_logits_vjp, (2, 2),
               latex=r"\mathrm{{bce}}(\sigma({0}), {1})"))


def _cross_entropy(z, t, axis=-1):
    if np.ndim(t) == np.ndim(z) - 1:  # class labels, as torch.nn.functional.cross_entropy
        axis = int(axis) % np.ndim(z)
        t = _onehot(t, np.shape(z)[axis], axis)  # checks the labels too
    return -np.sum(t * _log_softmax(z, axis), axis=axis).mean()


def _ce_shape(shapes, attrs):
    z, t = shapes
    if z is not None:
        axis = norm_axis(attrs.get("axis", -1), len(z))
        if t is not None and len(t) == len(z) - 1:
            _check_labels_shape(z, t, axis)
            return ()
    if z is not None and t is not None:
        if len(z) != len(t) or any(same_dim(a, c) is False for a, c in zip(z, t)):
            raise ShapeError("E202", "cross_entropy needs logits {0} and target {1} of one shape, or integer "
                                     "labels {1} with the class axis left out",
                             help=("labels have one axis fewer than the logits: [N] for [N, classes]",))
    return ()


def _check_labels_shape(z, t, axis):
    rest = tuple(d for i, d in enumerate(z) if i != axis)
    if any(same_dim(a, c) is False for a, c in zip(rest, t)):
        raise ShapeError("E202", f"cross_entropy: labels {{1}} must have the shape of logits {{0}} without its "
                                 f"class axis {axis}, [{', '.join(map(str, rest))}]")


def _ce_vjp(b, n):
    z, t = n.args
    axis = n.attrs["axis"]
    scale = b.op("div", n.g, _count(b, z, axis))
    zs, ts = b.shape(z), b.shape(t)
    if zs is None or ts is None:  # labels or one-hot: the ranks tell, once known
        raise UnknownShape("cross_entropy")
    if len(ts) == len(zs) - 1:  # labels: no gradient of their own
        k = zs[norm_axis(axis, len(zs))]
        onehot = b.op("onehot", t, k=k, axis=axis)
        return [b.op("mul", scale, b.op("sub", b.op("softmax", z, axis=axis), onehot)), None]
    total = b.op("sum", t, axis=axis, keepdims=True)
    gz = b.op("mul", scale, b.op("sub", b.op("mul", b.op("softmax", z, axis=axis), total), t))
    gt = b.op("neg", b.op("mul", scale, b.op("log_softmax", z, axis=axis))) if n.needs(1) else None
    return [gz, gt]


register(OpDef("cross_entropy", _cross_entropy, _ce_shape, _ce_vjp, (2, 2), {"axis": -1},
               latex=r"\mathrm{{CE}}({0}, {1})"))


def _onehot(labels, k=None, axis=-1):
    labels = np.asarray(labels)
    if labels.size and (np.any(labels != np.round(labels)) or labels.min() < 0 or labels.max() >= int(k)):
        # PyTorch's one_hot raises too: a silent all-zero row would hide the mistake
        raise ValueError(f"onehot labels must be whole numbers from 0 to {int(k) - 1}")
    idx = labels.astype(np.int64)
    out = (idx[..., None] == np.arange(int(k))).astype(np.float64)
    return np.moveaxis(out, -1, axis)


def _onehot_shape(shapes, attrs):
    s, k = shapes[0], attrs.get("k")
    if k is None:
        raise ShapeError("E103", "onehot needs the number of classes: onehot(labels, k)")
    dim = k if isinstance(k, Dim) else Dim(None, k)
    if dim.size is not None and (dim.size != int(dim.size) or dim.size < 1):
        raise ShapeError("E204", f"onehot needs a positive whole number of classes, not {dim.size}")
    dim = Dim(dim.name, None if dim.size is None else int(dim.size))
    if s is None:
        return None
    axis = norm_axis(attrs.get("axis", -1), len(s) + 1)
    return s[:axis] + (dim,) + s[axis:]


register(OpDef("onehot", _onehot, _onehot_shape, None, (1, 1), {"k": None, "axis": -1},
               differentiable=False, latex=r"\mathrm{{onehot}}({0})"))



def _dropout_shape(shapes, attrs):
    p = attrs.get("p", 0.5)
    if not 0.0 <= float(p) <= 1.0:
        raise ShapeError("E103", f"dropout's p is a probability from 0 to 1, not {p}")
    return shapes[0]


# The user writes dropout(x, p); the builder adds the mask as a second input: a value of its own
# (role "mask"), drawn per run in training mode and all ones otherwise (see values.dropout_masks).
register(OpDef("dropout", lambda x, mask, p=0.5: x * mask, _dropout_shape,
               lambda b, n: [b.op("mul", n.g, n.args[1]), None], (1, 1), {"p": 0.5},
               latex=r"\mathrm{{dropout}}({0})",
               doc="zero each element with probability p in training, scale the rest"))

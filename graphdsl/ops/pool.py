"""Pooling over NCHW arrays (max_pool2d, avg_pool2d) and flatten, as PyTorch.

The forwards read conv.py's window view; the backwards scatter with its
tap-by-tap adjoint. The rules close on themselves:

    max_pool2d(x)          -> max_pool2d_grad(g, x)   (linear in g; zero in x)
    max_pool2d_grad(g, x)  -> pool_select(gg, x)      (picks gg at each window's max)
    avg_pool2d(x)          -> avg_pool2d_grad(g)      (and back: avg_pool2d(gg))
"""
from __future__ import annotations

import numpy as np

from .base import Dim, OpDef, ShapeError, register
from .conv import out_dims, scatter_windows, spatial, windows
from .reduce import _like_rule


# ---- pooling ---------------------------------------------------------------------------------

POOL_KW = {"k": None, "stride": None, "padding": 0}


def pool_params(k=None, stride=None, padding=0):
    """(window, stride, padding) as pairs of ints, checked; the stride is the window unless given."""
    ks = spatial(k, 2, "k", 1)
    stride = ks if stride is None else spatial(stride, 2, "stride", 1)
    return ks, stride, spatial(padding, 2, "padding", 0)


def _pool_shape(name):
    def rule(shapes, attrs):
        if attrs.get("k") is None:
            raise ShapeError("E103", f"{name} needs a window size: {name}(x, 2) or {name}(x, [2, 3])")
        ks, stride, pad = pool_params(attrs.get("k"), attrs.get("stride"), attrs.get("padding", 0))
        for i in range(2):
            if pad[i] * 2 > ks[i]:  # PyTorch refuses this too
                raise ShapeError("E205", f"{name}: padding={pad[i]} is more than half the window k={ks[i]}",
                                 help=("padding may be at most half the window size",))
        s = shapes[0]
        if s is None:
            return None
        if len(s) != 4:
            raise ShapeError("E204", f"{name} needs input {{0}} of rank 4, [N, C, H, W]",
                             help=("a single image needs batch and channel axes: reshape(x, [1, 1, H, W])",))
        return tuple(s[:2]) + out_dims(name, s[2:], ks, stride, pad, (1, 1), ("kh", "kw"))
    return rule


def _max_windows(x, k, stride, padding):
    ks, stride, pad = pool_params(k, stride, padding)
    win = windows(x, ks, stride, pad, (1, 1), value=-np.inf)
    flat = win.reshape(win.shape[:4] + (-1,))
    # np.argmax picks the first maximum in row-major window order, as PyTorch's kernel does
    return flat, np.argmax(flat, axis=-1)[..., None], (ks, stride, pad)


def _max_pool(x, k=None, stride=None, padding=0):
    flat, arg, _ = _max_windows(x, k, stride, padding)
    return np.take_along_axis(flat, arg, -1)[..., 0]


def _max_pool_grad(g, x, k=None, stride=None, padding=0):
    flat, arg, (ks, stride, pad) = _max_windows(x, k, stride, padding)
    gwin = np.zeros(flat.shape)
    np.put_along_axis(gwin, arg, g[..., None], -1)
    return scatter_windows(gwin.reshape(flat.shape[:4] + ks), x.shape, stride, pad, (1, 1))


def _pool_select(gg, x, k=None, stride=None, padding=0):
    _, arg, (ks, stride, pad) = _max_windows(x, k, stride, padding)
    win = windows(gg, ks, stride, pad, (1, 1))
    flat = win.reshape(win.shape[:4] + (-1,))
    return np.take_along_axis(flat, arg, -1)[..., 0]


def _avg_pool(x, k=None, stride=None, padding=0):
    ks, stride, pad = pool_params(k, stride, padding)
    # count_include_pad, as PyTorch's default: every window divides by kh * kw
    win = windows(x, ks, stride, pad, (1, 1))  # [N, C, Ho, Wo, kh, kw], a strided view
    if max(ks) >= 8:  # (NumPy sums 8 or more elements pairwise: leave such windows to it)
        return win.mean(axis=(-2, -1))
    # One strided add per tap, in NumPy's order for mean over (kh, kw) (each row left to right,
    # then the rows in turn): the same bits as win.mean(), three times quicker on LeNet's pools,
    # where mean's reduction over two small strided axes was a tenth of the whole step.
    total = None
    for i in range(ks[0]):
        row = win[..., i, 0].copy()
        for j in range(1, ks[1]):
            row += win[..., i, j]
        if total is None:
            total = row
        else:
            total += row
    total /= ks[0] * ks[1]
    return total


def _avg_pool_grad(g, like=None, k=None, stride=None, padding=0):
    ks, stride, pad = pool_params(k, stride, padding)
    gwin = np.broadcast_to((g / (ks[0] * ks[1]))[..., None, None], g.shape + ks)
    return scatter_windows(gwin, like, stride, pad, (1, 1))


def _pool_attrs(n):
    return {k: n.attrs[k] for k in POOL_KW}


register(OpDef("max_pool2d", _max_pool, _pool_shape("max_pool2d"),
               lambda b, n: [b.op("max_pool2d_grad", n.g, n.args[0], **_pool_attrs(n))], (1, 1), dict(POOL_KW),
               latex=r"\mathrm{{maxpool}}({0})", doc="max over each window (NCHW), as torch max_pool2d"))
register(OpDef("max_pool2d_grad", _max_pool_grad, lambda s, a: s[1],
               lambda b, n: [b.op("pool_select", n.g, n.args[1], **_pool_attrs(n)), None], (2, 2), dict(POOL_KW),
               latex=r"\mathrm{{maxpool}}^{{\top}}({0}; {1})", internal=True))
register(OpDef("pool_select", _pool_select, lambda s, a: _pool_shape("max_pool2d")(s[1:], a),
               lambda b, n: [b.op("max_pool2d_grad", n.g, n.args[1], **_pool_attrs(n)), None], (2, 2),
               dict(POOL_KW), latex=r"\mathrm{{select}}({0}; {1})", internal=True))
register(OpDef("avg_pool2d", _avg_pool, _pool_shape("avg_pool2d"),
               lambda b, n: [b.op("avg_pool2d_grad", n.g, like=n.args[0], **_pool_attrs(n))], (1, 1),
               dict(POOL_KW), latex=r"\mathrm{{avgpool}}({0})", doc="mean over each window (NCHW), padded cells count"))
register(OpDef("avg_pool2d_grad", _avg_pool_grad, _like_rule,
               lambda b, n: [b.op("avg_pool2d", n.g, **_pool_attrs(n))], (1, 1), {**POOL_KW, "like": None},
               latex=r"\mathrm{{avgpool}}^{{\top}}({0})", internal=True))


# ---- flatten ---------------------------------------------------------------------------------

def _flatten_shape(shapes, attrs):
    s = shapes[0]
    if s is None:
        return None
    start = attrs.get("start", 1)
    if float(start) != int(start) or not -len(s) <= int(start) < max(len(s), 1):
        raise ShapeError("E204", f"flatten: start={start} is out of range for {{0}} of rank {len(s)}")
    start = int(start) % max(len(s), 1)
    sizes = [d.size for d in s[start:]]
    total = None if any(v is None for v in sizes) else int(np.prod(sizes))
    return tuple(s[:start]) + (Dim(None, total),)


def _flatten(x, start=1):
    start = int(start) % max(x.ndim, 1)
    return x.reshape(x.shape[:start] + (-1,))


register(OpDef("flatten", _flatten, _flatten_shape, lambda b, n: [b.op("reshape", n.g, like=n.args[0])], (1, 1),
               {"start": 1}, latex=r"\mathrm{{flatten}}({0})", doc="merge the axes from `start` on into one"))

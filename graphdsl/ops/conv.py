"""Convolution over NCHW arrays (conv1d, conv2d), as PyTorch; the window machinery pool.py shares.

Every forward reads the input through one strided window view (no Python loop
over pixels); every backward scatters window cotangents back with one loop over
the kernel's taps. The reverse-mode rules close on themselves, so derivatives
of any order exist:

    conv(x, w)             -> conv_input_grad(g, w), conv_weight_grad(x, g)
    conv_input_grad(g, w)  -> conv(gg, w),            conv_weight_grad(gg, g)
    conv_weight_grad(x, g) -> conv_input_grad(g, gg), conv(x, gg)

Spatial parameters are tuples with one entry per spatial axis (1 for conv1d, 2
for conv2d); conv1d runs as conv2d over an axis of height 1.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..arrays import c_ordered
from .base import Dim, OpDef, ShapeError, register
from .reduce import _like_rule

CONV_KW = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1}
AXIS_NAMES = {1: ("L",), 2: ("H", "W")}


# ---- static parameters ------------------------------------------------------------------

def _size(v):
    return v.size if isinstance(v, Dim) else v


def spatial(value, nd: int, what: str, low: int) -> tuple:
    """An int or a list of nd ints (a pair for 2-d) as a tuple of nd ints >= low."""
    items = list(value) if isinstance(value, (list, tuple)) else [value] * nd
    items = [_size(v) for v in items]
    if len(items) != nd or any(v is None or float(v) != int(v) or int(v) < low for v in items):
        shown = list(value) if isinstance(value, (list, tuple)) else value
        raise ShapeError("E204", f"`{what}=` must be a whole number >= {low} or a list of {nd}, not {shown}")
    return tuple(int(v) for v in items)


def _params(attrs, nd):
    return (spatial(attrs.get("stride", 1), nd, "stride", 1), spatial(attrs.get("padding", 0), nd, "padding", 0),
            spatial(attrs.get("dilation", 1), nd, "dilation", 1))


def out_size(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def out_dims(name, xs, ks, stride, pad, dil, kernel_names):
    """The output's spatial dims, or a ShapeError spelling the arithmetic out."""
    out = []
    for i, (xd, k) in enumerate(zip(xs, ks)):
        if xd.size is None or k is None:
            out.append(Dim(None, None))
            continue
        size = out_size(xd.size, k, stride[i], pad[i], dil[i])
        if size < 1:
            axis = AXIS_NAMES[len(xs)][i]
            extra = f", dilation={dil[i]}" if dil[i] != 1 else ""
            raise ShapeError(
                "E205", f"{name}: the window does not fit in {{0}}: {axis}={xd.size}, {kernel_names[i]}={k}, "
                        f"padding={pad[i]}{extra}, stride={stride[i]} -> {size}",
                notes=(f"output size = floor(({axis} + 2*padding - dilation*({kernel_names[i]}-1) - 1) / stride) + 1",),
                help=("use a smaller kernel, more padding, or a larger input",))
        out.append(Dim(None, size))
    return tuple(out)


# ---- the window machinery -----------------------------------------------------------------

def _pad(x, pad, value=0.0):
    if not any(pad):
        return x
    return np.pad(x, ((0, 0), (0, 0)) + tuple((p, p) for p in pad), constant_values=value)


def windows(x, ks, stride, pad, dil, value=0.0):
    """[N, C, *out, *k]: every window of the padded input, a strided view."""
    xp = _pad(x, pad, value)
    span = tuple(d * (k - 1) + 1 for k, d in zip(ks, dil))
    view = sliding_window_view(xp, span, axis=(2, 3))
    return view[:, :, ::stride[0], ::stride[1], ::dil[0], ::dil[1]]


def scatter_windows(gwin, like, stride, pad, dil):
    """The adjoint of `windows`: sum [N, C, *out, kh, kw] back into an array shaped `like`."""
    n, c, ho, wo, kh, kw = gwin.shape
    h, w = like[2] + 2 * pad[0], like[3] + 2 * pad[1]
    out = np.zeros((n, c, h, w))
    for i in range(kh):  # one strided add per kernel tap
        for j in range(kw):
            r, q = i * dil[0], j * dil[1]
            out[:, :, r:r + stride[0] * (ho - 1) + 1:stride[0], q:q + stride[1] * (wo - 1) + 1:stride[1]] += \
                gwin[:, :, :, :, i, j]
    # row order, as the compiled program takes every non-view result to be (see arrays.py)
    return c_ordered(out[:, :, pad[0]:pad[0] + like[2], pad[1]:pad[1] + like[3]])


# ---- convolution (1-d inputs are lifted to 2-d with a height of 1) ---------------------------

def _lift(nd, *arrays):
    return [a if a is None or nd == 2 else a[:, :, None, :] for a in arrays]


def _lift_params(nd, stride, pad, dil):
    if nd == 2:
        return stride, pad, dil
    return (1,) + stride, (0,) + pad, (1,) + dil


def _columns(x, ks, stride, pad, dil, groups):
    """im2col: [groups, N*Ho*Wo, C/groups*kh*kw], one copy of the window view, ready for a matmul."""
    win = windows(x, ks, stride, pad, dil)  # [N, C, Ho, Wo, kh, kw], a view
    n, c, ho, wo = win.shape[:4]
    win = win.reshape(n, groups, c // groups, ho, wo, *ks)  # splitting an axis keeps the view
    return win.transpose(1, 0, 3, 4, 2, 5, 6).reshape(groups, n * ho * wo, -1), (n, ho, wo)


def _per_group(gy, groups):
    """[N, O, Ho, Wo] as [groups, N*Ho*Wo, O/groups], the layout of _columns' rows."""
    n, o, ho, wo = gy.shape
    return gy.reshape(n, groups, o // groups, ho, wo).transpose(1, 0, 3, 4, 2).reshape(groups, n * ho * wo, -1)


def _matmul(a, b):
    # NumPy's matmul leaves BLAS for a slow loop on some transposed stacks (200 ms instead of 15 here)
    return np.matmul(np.ascontiguousarray(a), np.ascontiguousarray(b))


def spatial_params(nd, stride, padding, dilation):
    """(stride, padding, dilation) as 2-d tuples of ints, a 1-d op's lifted to a height of 1 (checked)."""
    return _lift_params(nd, *_params({"stride": stride, "padding": padding, "dilation": dilation}, nd))


def conv_forward(x, w, stride=1, padding=0, dilation=1, groups=1, nd=2):
    params = spatial_params(nd, stride, padding, dilation)
    x, w = _lift(nd, x, w)
    g, o = int(groups), w.shape[0]
    cols, (n, ho, wo) = _columns(x, w.shape[2:], *params, g)
    out = _matmul(cols, w.reshape(g, o // g, -1).transpose(0, 2, 1))  # [g, N*Ho*Wo, O/g]: one BLAS matmul per group
    # reshape keeps the transpose as a view when a group or a group's channels number one: row order again
    out = c_ordered(out.reshape(g, n, ho, wo, o // g).transpose(1, 0, 4, 2, 3).reshape(n, o, ho, wo))
    return out if nd == 2 else out[:, :, 0, :]


def conv_input_grad(gy, w, like=None, stride=1, padding=0, dilation=1, groups=1, nd=2):
    stride, pad, dil = spatial_params(nd, stride, padding, dilation)
    gy, w = _lift(nd, gy, w)
    shape = tuple(like) if nd == 2 else (like[0], like[1], 1, like[2])
    g, (n, o, ho, wo), ks = int(groups), gy.shape, w.shape[2:]
    gcols = _matmul(_per_group(gy, g), w.reshape(g, o // g, -1))  # [g, N*Ho*Wo, C/g*kh*kw]
    gwin = gcols.reshape(g, n, ho, wo, -1, *ks).transpose(1, 0, 4, 2, 3, 5, 6).reshape(n, -1, ho, wo, *ks)
    out = scatter_windows(gwin, shape, stride, pad, dil)
    return out if nd == 2 else out[:, :, 0, :]


def conv_weight_grad(x, gy, like=None, stride=1, padding=0, dilation=1, groups=1, nd=2):
    params = spatial_params(nd, stride, padding, dilation)
    x, gy = _lift(nd, x, gy)
    ks = tuple(like[2:]) if nd == 2 else (1, like[2])
    g = int(groups)
    cols, _ = _columns(x, ks, *params, g)
    gw = _matmul(_per_group(gy, g).transpose(0, 2, 1), cols)  # [g, O/g, C/g*kh*kw]
    gw = gw.reshape(gy.shape[1], -1, *ks)
    return gw if nd == 2 else gw[:, :, 0, :]


def _conv_shape(nd):
    name = f"conv{nd}d"

    def rule(shapes, attrs):
        xs, ws = shapes
        stride, pad, dil = _params(attrs, nd)
        groups = attrs.get("groups", 1)
        if float(groups) != int(groups) or int(groups) < 1:
            raise ShapeError("E204", f"`groups=` must be a whole number >= 1, not {groups}")
        groups = int(groups)
        for s, what, k in ((xs, "input", 0), (ws, "weight", 1)):
            if s is not None and len(s) != nd + 2:
                layout = "[N, C, L]" if nd == 1 else "[N, C, H, W]"
                wl = "[O, C/groups, k]" if nd == 1 else "[O, C/groups, kh, kw]"
                raise ShapeError("E204", f"{name} needs {what} {{%d}} of rank {nd + 2}, {layout if k == 0 else wl}"
                                         % k, help=("a single example needs a batch axis: expand_dims(x, 0)",))
        if xs is None or ws is None:
            return None
        _check_channels(name, xs[1], ws[0], ws[1], groups)
        knames = ("k",) if nd == 1 else ("kh", "kw")
        return (xs[0], Dim(ws[0].name, ws[0].size)) + out_dims(
            name, xs[2:], [d.size for d in ws[2:]], stride, pad, dil, knames)
    return rule


def _check_channels(name, c, o, cg, groups):
    if c.size is not None and c.size % groups:
        raise ShapeError("E205", f"{name}: the input's {c.size} channels do not split into groups={groups}")
    if o.size is not None and o.size % groups:
        raise ShapeError("E205", f"{name}: the weight's {o.size} output channels do not split into "
                                 f"groups={groups}")
    if c.size is not None and cg.size is not None and c.size != cg.size * groups:
        raise ShapeError("E205", f"{name}: input {{0}} has C={c.size} channels but weight {{1}} expects "
                                 f"C/groups={cg.size} x groups={groups} = {cg.size * groups}",
                         help=("the weight is [out channels, in channels / groups, *kernel]",))


def _conv_attrs(n, nd=2):
    """The node's parameters plus its spatial rank (conv1d/conv2d carry it in their name)."""
    return {**{k: n.attrs[k] for k in CONV_KW}, "nd": n.attrs.get("nd", nd)}


def _conv_vjp(b, n, nd=2):
    x, w = n.args
    kw = _conv_attrs(n, nd)
    return [b.op("conv_input_grad", n.g, w, like=x, **kw) if n.needs(0) else None,
            b.op("conv_weight_grad", x, n.g, like=w, **kw) if n.needs(1) else None]


def _conv_input_grad_vjp(b, n):
    gy, w = n.args
    kw = _conv_attrs(n)
    return [b.op("conv", n.g, w, **kw) if n.needs(0) else None,
            b.op("conv_weight_grad", n.g, gy, like=w, **kw) if n.needs(1) else None]


def _conv_weight_grad_vjp(b, n):
    x, gy = n.args
    kw = _conv_attrs(n)
    return [b.op("conv_input_grad", gy, n.g, like=x, **kw) if n.needs(0) else None,
            b.op("conv", x, n.g, **kw) if n.needs(1) else None]


def _conv_dispatch(shapes, attrs):
    return _conv_shape(int(attrs.get("nd", 2)))(shapes, attrs)


_CONV_LATEX = r"{0} \star {1}"
for _nd in (1, 2):
    register(OpDef(f"conv{_nd}d", (lambda nd: lambda x, w, **kw: conv_forward(x, w, nd=nd, **kw))(_nd),
                   _conv_shape(_nd), (lambda nd: lambda b, n: _conv_vjp(b, n, nd))(_nd), (2, 2),
                   dict(CONV_KW), latex=_CONV_LATEX,
                   doc=f"{_nd}-d cross-correlation over NCHW input, as torch.nn.functional.conv{_nd}d"))
register(OpDef("conv", conv_forward, _conv_dispatch, _conv_vjp, (2, 2), {**CONV_KW, "nd": 2},
               latex=_CONV_LATEX, internal=True))
register(OpDef("conv_input_grad", conv_input_grad, _like_rule, _conv_input_grad_vjp, (2, 2),
               {**CONV_KW, "nd": 2, "like": None}, latex=r"{0} \star^{{\top}} {1}", internal=True))
register(OpDef("conv_weight_grad", conv_weight_grad, _like_rule, _conv_weight_grad_vjp, (2, 2),
               {**CONV_KW, "nd": 2, "like": None}, latex=r"{0} \star {1}", internal=True))

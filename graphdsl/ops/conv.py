"""Convolution and pooling over NCHW arrays (conv1d, conv2d, max_pool2d, avg_pool2d), as PyTorch.

Every forward reads the input through one strided window view (no Python loop
over pixels); every backward scatters window cotangents back with one loop over
the kernel's taps. The reverse-mode rules close on themselves, so derivatives
of any order exist:

    conv(x, w)             -> conv_input_grad(g, w), conv_weight_grad(x, g)
    conv_input_grad(g, w)  -> conv(gg, w),            conv_weight_grad(gg, g)
    conv_weight_grad(x, g) -> conv_input_grad(g, gg), conv(x, gg)
    max_pool2d(x)          -> max_pool2d_grad(g, x)   (linear in g; zero in x)
    max_pool2d_grad(g, x)  -> pool_select(gg, x)      (picks gg at each window's max)
    avg_pool2d(x)          -> avg_pool2d_grad(g)      (and back: avg_pool2d(gg))

Spatial parameters are tuples with one entry per spatial axis (1 for conv1d, 2
for the rest); conv1d runs as conv2d over an axis of height 1.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .base import Dim, OpDef, ShapeError, register, same_dim

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


def _out_dims(name, xs, ks, stride, pad, dil, kernel_names):
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
    return out[:, :, pad[0]:pad[0] + like[2], pad[1]:pad[1] + like[3]]


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


def _spatial_params(nd, stride, padding, dilation):
    return _lift_params(nd, *_params({"stride": stride, "padding": padding, "dilation": dilation}, nd))


def conv_forward(x, w, stride=1, padding=0, dilation=1, groups=1, nd=2):
    params = _spatial_params(nd, stride, padding, dilation)
    x, w = _lift(nd, x, w)
    g, o = int(groups), w.shape[0]
    cols, (n, ho, wo) = _columns(x, w.shape[2:], *params, g)
    out = _matmul(cols, w.reshape(g, o // g, -1).transpose(0, 2, 1))  # [g, N*Ho*Wo, O/g]: one BLAS matmul per group
    out = out.reshape(g, n, ho, wo, o // g).transpose(1, 0, 4, 2, 3).reshape(n, o, ho, wo)
    return out if nd == 2 else out[:, :, 0, :]


def conv_input_grad(gy, w, like=None, stride=1, padding=0, dilation=1, groups=1, nd=2):
    stride, pad, dil = _spatial_params(nd, stride, padding, dilation)
    gy, w = _lift(nd, gy, w)
    shape = tuple(like) if nd == 2 else (like[0], like[1], 1, like[2])
    g, (n, o, ho, wo), ks = int(groups), gy.shape, w.shape[2:]
    gcols = _matmul(_per_group(gy, g), w.reshape(g, o // g, -1))  # [g, N*Ho*Wo, C/g*kh*kw]
    gwin = gcols.reshape(g, n, ho, wo, -1, *ks).transpose(1, 0, 4, 2, 3, 5, 6).reshape(n, -1, ho, wo, *ks)
    out = scatter_windows(gwin, shape, stride, pad, dil)
    return out if nd == 2 else out[:, :, 0, :]


def conv_weight_grad(x, gy, like=None, stride=1, padding=0, dilation=1, groups=1, nd=2):
    params = _spatial_params(nd, stride, padding, dilation)
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
        return (xs[0], Dim(ws[0].name, ws[0].size)) + _out_dims(
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


def _like(shapes, attrs):
    return attrs["like"]


_CONV_LATEX = r"{0} \star {1}"
for _nd in (1, 2):
    register(OpDef(f"conv{_nd}d", (lambda nd: lambda x, w, **kw: conv_forward(x, w, nd=nd, **kw))(_nd),
                   _conv_shape(_nd), (lambda nd: lambda b, n: _conv_vjp(b, n, nd))(_nd), (2, 2),
                   dict(CONV_KW), latex=_CONV_LATEX,
                   doc=f"{_nd}-d cross-correlation over NCHW input, as torch.nn.functional.conv{_nd}d"))
register(OpDef("conv", conv_forward, _conv_dispatch, _conv_vjp, (2, 2), {**CONV_KW, "nd": 2},
               latex=_CONV_LATEX, internal=True))
register(OpDef("conv_input_grad", conv_input_grad, _like, _conv_input_grad_vjp, (2, 2),
               {**CONV_KW, "nd": 2, "like": None}, latex=r"{0} \star^{{\top}} {1}", internal=True))
register(OpDef("conv_weight_grad", conv_weight_grad, _like, _conv_weight_grad_vjp, (2, 2),
               {**CONV_KW, "nd": 2, "like": None}, latex=r"{0} \star {1}", internal=True))


# ---- pooling ---------------------------------------------------------------------------------

POOL_KW = {"k": None, "stride": None, "padding": 0}


def _pool_params(attrs):
    ks = spatial(attrs.get("k"), 2, "k", 1)
    stride = ks if attrs.get("stride") is None else spatial(attrs["stride"], 2, "stride", 1)
    pad = spatial(attrs.get("padding", 0), 2, "padding", 0)
    return ks, stride, pad


def _pool_shape(name):
    def rule(shapes, attrs):
        if attrs.get("k") is None:
            raise ShapeError("E103", f"{name} needs a window size: {name}(x, 2) or {name}(x, [2, 3])")
        ks, stride, pad = _pool_params(attrs)
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
        return tuple(s[:2]) + _out_dims(name, s[2:], ks, stride, pad, (1, 1), ("kh", "kw"))
    return rule


def _max_windows(x, k, stride, padding):
    ks, stride, pad = _pool_params({"k": k, "stride": stride, "padding": padding})
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
    ks, stride, pad = _pool_params({"k": k, "stride": stride, "padding": padding})
    # count_include_pad, as PyTorch's default: every window divides by kh * kw
    return windows(x, ks, stride, pad, (1, 1)).mean(axis=(-2, -1))


def _avg_pool_grad(g, like=None, k=None, stride=None, padding=0):
    ks, stride, pad = _pool_params({"k": k, "stride": stride, "padding": padding})
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
register(OpDef("avg_pool2d_grad", _avg_pool_grad, _like,
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

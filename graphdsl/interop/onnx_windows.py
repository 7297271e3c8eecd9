"""Convolution and pooling (NCHW) composed from ops onnxruntime runs in float64.

onnxruntime has no double kernel for Conv, ConvTranspose or AveragePool, so the
window machinery of graphdsl/ops/conv.py is written out in ONNX: the padded
input's strided slices, one per kernel tap, stacked as [N, C, Ho, Wo, K] and
contracted with the kernel by one Einsum (as conv.py's im2col matmul); the
adjoint places each tap's cotangent back at its strided positions (a zero
interleave and a Pad) and sums. The batch axis may be a free dim; a free
spatial dim is fixed at the data's size (onnx_graph.FixedSize). MaxPool has a double kernel, and its indices give the
gradient's scatter (ScatterElements, reduction add).
"""
from __future__ import annotations

from ..ops.conv import out_size, spatial_params  # the shape rule's own arithmetic and parameters
from ..ops.pool import pool_params
from .onnx_graph import refuse_free

_INT_MAX = 2 ** 63 - 1


def conv_params(nd, stride=1, padding=0, dilation=1, groups=1):
    """(stride, padding, dilation) as 2-d tuples (1-d lifted to a height of 1), as the NumPy forward reads them, and groups."""
    return (*spatial_params(nd, stride, padding, dilation), int(groups))


def spatial(shape):
    """The spatial sizes of an NCHW shape: fixed numbers (a free spatial dim is fixed at the data's size)."""
    refuse_free(*shape[2:])
    return tuple(shape[2:])


def lift(g, x, nd):
    """A 1-d NCL array as NC1L."""
    return x if nd == 2 else g.node("Unsqueeze", [x, g.ints([2])])


def drop(g, x, nd):
    return x if nd == 2 else g.node("Squeeze", [x, g.ints([2])])


def pad_spatial(g, x, pad, value=0.0):
    if not any(pad):
        return x
    pads = g.ints([0, 0, pad[0], pad[1], 0, 0, pad[0], pad[1]])
    return g.node("Pad", [x, pads, g.const(value)], mode="constant")


def windows(g, xp, ks, stride, dil):
    """[N, C, Ho, Wo, kh*kw]: every kernel tap's strided slice of the padded input, stacked last."""
    taps = []
    for i in range(ks[0]):
        for j in range(ks[1]):
            starts = [i * dil[0], j * dil[1]]
            ends = [i * dil[0] - dil[0] * (ks[0] - 1) or _INT_MAX, j * dil[1] - dil[1] * (ks[1] - 1) or _INT_MAX]
            tap = g.node("Slice", [xp, g.ints(starts), g.ints(ends), g.ints([2, 3]), g.ints(list(stride))])
            taps.append(g.node("Unsqueeze", [tap, g.ints([4])]))
    return taps[0] if len(taps) == 1 else g.node("Concat", taps, axis=4)


def _grouped(g, x, groups, axis_sizes):
    """x with its channel axis split into [groups, channels per group] (the batch axis kept as it is)."""
    return g.node("Reshape", [x, g.ints([0, groups] + list(axis_sizes))])


def _geometry(x_shape, w_shape, nd, stride, pad, dil):
    """(input spatial sizes, O, C/groups, kernel sizes, output sizes) of a convolution, 1-d lifted to 2-d."""
    hw = spatial(x_shape)
    hw = hw if nd == 2 else (1,) + hw
    o, cg = int(w_shape[0]), int(w_shape[1])
    ks = (1, int(w_shape[2])) if nd == 1 else (int(w_shape[2]), int(w_shape[3]))
    out = [out_size(hw[a], ks[a], stride[a], pad[a], dil[a]) for a in range(2)]
    return hw, o, cg, ks, out


def conv(g, x, w, x_shape, w_shape, nd, **kw):
    stride, pad, dil, groups = conv_params(nd, **kw)
    x, w = lift(g, x, nd), lift(g, w, nd)
    _, o, cg, ks, out = _geometry(x_shape, w_shape, nd, stride, pad, dil)
    win = windows(g, pad_spatial(g, x, pad), ks, stride, dil)  # [N, C, Ho, Wo, K]
    kernel = g.node("Reshape", [w, g.ints([groups, o // groups, cg, ks[0] * ks[1]])])
    win = _grouped(g, win, groups, [cg, out[0], out[1], ks[0] * ks[1]])
    y = g.node("Einsum", [win, kernel], equation="ngchwk,gock->ngohw")
    return drop(g, g.node("Reshape", [y, g.ints([0, o, out[0], out[1]])]), nd)


def conv_weight_grad(g, x, gy, x_shape, like, nd, **kw):
    stride, pad, dil, groups = conv_params(nd, **kw)
    x, gy = lift(g, x, nd), lift(g, gy, nd)
    _, o, cg, ks, out = _geometry(x_shape, like, nd, stride, pad, dil)
    win = _grouped(g, windows(g, pad_spatial(g, x, pad), ks, stride, dil), groups,
                   [cg, out[0], out[1], ks[0] * ks[1]])
    gyg = _grouped(g, gy, groups, [o // groups, out[0], out[1]])
    gw = g.node("Einsum", [gyg, win], equation="ngohw,ngchwk->gock")
    return g.node("Reshape", [gw, g.ints([int(v) for v in like])])


def conv_input_grad(g, gy, w, like, w_shape, nd, **kw):
    stride, pad, dil, groups = conv_params(nd, **kw)
    gy, w = lift(g, gy, nd), lift(g, w, nd)
    hw, o, cg, ks, out = _geometry(like, w_shape, nd, stride, pad, dil)
    kernel = g.node("Reshape", [w, g.ints([groups, o // groups, cg, ks[0] * ks[1]])])
    gyg = _grouped(g, gy, groups, [o // groups, out[0], out[1]])
    gwin = g.node("Einsum", [gyg, kernel], equation="ngohw,gock->ngchwk")
    gwin = g.node("Reshape", [gwin, g.ints([0, groups * cg, out[0], out[1], ks[0] * ks[1]])])
    taps = [g.node("Squeeze", [g.node("Slice", [gwin, g.ints([t]), g.ints([t + 1]), g.ints([4])]), g.ints([4])])
            for t in range(ks[0] * ks[1])]
    return drop(g, scatter_taps(g, taps, hw, out, ks, stride, pad, dil), nd)


def scatter_taps(g, taps, hw, out, ks, stride, pad, dil):
    """The adjoint of `windows`: tap t's [N, C, Ho, Wo] added back at its strided positions, unpadded."""
    full = (hw[0] + 2 * pad[0], hw[1] + 2 * pad[1])
    placed = []
    for t, tap in enumerate(taps):
        i, j = divmod(t, ks[1])
        placed.append(_place(g, tap, (i * dil[0], j * dil[1]), stride, out, full))
    total = placed[0] if len(placed) == 1 else g.node("Sum", placed)
    if not any(pad):
        return total
    return g.node("Slice", [total, g.ints([pad[0], pad[1]]), g.ints([pad[0] + hw[0], pad[1] + hw[1]]),
                           g.ints([2, 3])])


def _place(g, tap, offset, stride, out, full):
    """[N, C, Ho, Wo] spread to [N, C, *full]: element (h, w) lands at offset + stride * (h, w), zeros elsewhere."""
    if stride != (1, 1):  # interleave stride - 1 zeros after each element of both spatial axes
        spread = g.node("Unsqueeze", [tap, g.ints([3, 5])])
        spread = g.node("Pad", [spread, g.ints([0] * 6 + [0, 0, 0, stride[0] - 1, 0, stride[1] - 1])])
        spread = g.node("Reshape", [spread, g.ints([0, 0, out[0] * stride[0], out[1] * stride[1]])])
        tap = g.node("Slice", [spread, g.ints([0, 0]), g.ints([stride[0] * (out[0] - 1) + 1,
                                                              stride[1] * (out[1] - 1) + 1]), g.ints([2, 3])])
    spans = [stride[a] * (out[a] - 1) + 1 for a in range(2)]
    after = [full[a] - offset[a] - spans[a] for a in range(2)]
    return g.node("Pad", [tap, g.ints([0, 0, offset[0], offset[1], 0, 0, after[0], after[1]])])


# ---- pooling --------------------------------------------------------------------------------------
def avg_pool(g, x, x_shape, **kw):
    ks, stride, pad = pool_params(**kw)
    spatial(x_shape)
    win = windows(g, pad_spatial(g, x, pad), ks, stride, (1, 1))
    # the window's sum over its size, padding included (count_include_pad, as PyTorch's default)
    return g.node("Div", [g.node("ReduceSum", [win, g.ints([4])], keepdims=0), g.const(float(ks[0] * ks[1]))])


def avg_pool_grad(g, gy, like, **kw):
    ks, stride, pad = pool_params(**kw)
    hw = spatial(like)
    out = [out_size(hw[a], ks[a], stride[a], pad[a], 1) for a in range(2)]
    share = g.node("Div", [gy, g.const(float(ks[0] * ks[1]))])
    return scatter_taps(g, [share] * (ks[0] * ks[1]), hw, out, ks, stride, pad, (1, 1))


def _max_pool_node(g, x, outputs, **kw):
    ks, stride, pad = pool_params(**kw)
    return g.node("MaxPool", [x], outputs=outputs, kernel_shape=list(ks), strides=list(stride),
                  pads=[pad[0], pad[1], pad[0], pad[1]])


def max_pool(g, x, x_shape, **kw):
    spatial(x_shape)
    return _max_pool_node(g, x, 1, **kw)


def _flat(g, x):
    return g.node("Reshape", [x, g.ints([-1])])


def max_pool_grad(g, gy, x, **kw):
    """gy added at each window's maximum (MaxPool's flat NCHW indices; the first maximum wins a tie, as NumPy's)."""
    _, idx = _max_pool_node(g, x, 2, **kw)
    shape = g.node("Shape", [x])
    zeros = g.node("ConstantOfShape", [g.node("ReduceProd", [shape], keepdims=1)], value=g.fill(0.0))
    out = g.node("ScatterElements", [zeros, _flat(g, idx), _flat(g, gy)], axis=0, reduction="add")
    return g.node("Reshape", [out, shape], allowzero=1)


def pool_select(g, gg, x, **kw):
    """gg read at each window's maximum of x: the adjoint of max_pool_grad."""
    _, idx = _max_pool_node(g, x, 2, **kw)
    picked = g.node("GatherElements", [_flat(g, gg), _flat(g, idx)], axis=0)
    return g.node("Reshape", [picked, g.node("Shape", [idx])], allowzero=1)

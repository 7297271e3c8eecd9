"""THE table from graphdsl's op names to PyTorch: `TORCH[op](*args, **kw)` computes what
`graphdsl.ops.REGISTRY[op].forward` computes, on tensors, differentiably.

Every op of the table is here (the public builtins and the internal ones reverse
mode emits), except `opaque`, a call of an undefined function that is never
evaluated. Three readers share it: the torch exporter (torch_export.py) writes
calls of these functions and copies the helpers a model uses into the exported
file, the torch backend (torch_backend.py) runs a plan's steps with it, and the
fuzzer (tests/test_fuzz_programs.py) replays generated programs through it and
checks torch.autograd of the result against graphdsl's reverse mode.

So that the exporter can copy them, the helpers below use only torch, `F` and
`math`, and each is a module-level function (no closures, no numpy). The ops that
create an array from sizes alone (CREATES) take `dtype=` and `device=`; every
other helper makes its arrays like its arguments.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Ops that make an array from static sizes alone: they take dtype= and device= keywords.
CREATES = frozenset({"arange", "ones", "zeros", "eye", "zeros_like", "count"})
NOT_IN_TORCH = frozenset({"opaque"})  # a call of an undefined function: never evaluated
INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "matmul": "@"}  # how an exporter writes them


# ---- axes and reductions -------------------------------------------------------------------
def axes_of(x, axis):
    """`axis=` (None, an int or a list) as torch's `dim=`: a tuple of non-negative axes."""
    if axis is None:
        return tuple(range(x.ndim))
    items = axis if isinstance(axis, (list, tuple)) else [axis]
    return tuple(sorted(int(a) % max(1, x.ndim) for a in items))


def reduce_with(fn, x, axis, keepdims, **options):
    """fn(x, dim=, keepdim=) over graphdsl's `axis=`: a 0-d x and an empty axis list as NumPy has them."""
    dims = axes_of(x, axis)
    if x.ndim == 0:
        return fn(x.reshape(1), dim=(0,), keepdim=False, **options).reshape(())
    if not dims:
        return x.clone()
    return fn(x, dim=dims, keepdim=bool(keepdims), **options)


def sum_of_squares(x, dim, keepdim):
    return torch.sum(x * x, dim=dim, keepdim=keepdim)


# one function per reduction, so that an exported file reads `reduce_sum(h, axis=0)`
def reduce_sum(x, axis=None, keepdims=False):
    return reduce_with(torch.sum, x, axis, keepdims)


def reduce_mean(x, axis=None, keepdims=False):
    return reduce_with(torch.mean, x, axis, keepdims)


def reduce_max(x, axis=None, keepdims=False):
    return reduce_with(torch.amax, x, axis, keepdims)


def reduce_min(x, axis=None, keepdims=False):
    return reduce_with(torch.amin, x, axis, keepdims)


def logsumexp(x, axis=None, keepdims=False):
    return reduce_with(torch.logsumexp, x, axis, keepdims)


def variance(x, axis=None, keepdims=False):
    return reduce_with(torch.var, x, axis, keepdims, correction=0)


def norm(x, axis=None, keepdims=False):
    return reduce_with(torch.linalg.vector_norm, x, axis, keepdims, ord=2)


def sqnorm(x, axis=None, keepdims=False):
    return reduce_with(sum_of_squares, x, axis, keepdims)


def keep_axes(g, like, axis, keepdims):
    """g with the reduced axes of `like` put back as size 1, and those axes."""
    dims = tuple(range(len(like))) if axis is None else tuple(
        sorted(int(a) % len(like) for a in (axis if isinstance(axis, (list, tuple)) else [axis])))
    if keepdims:
        return g, dims
    return g.reshape([1 if i in dims else s for i, s in enumerate(like)]), dims


def unreduce(g, like=None, axis=None, keepdims=False, mean=False):
    """A reduction's gradient: g broadcast back over the reduced axes (divided by their size for a mean)."""
    g, dims = keep_axes(g, like, axis, keepdims)
    if mean:
        g = g / max(1, math.prod(like[d] for d in dims))
    return g.expand(tuple(like))


def sum_to(g, like=None):
    """A broadcast's gradient: g summed back to the shape `like`."""
    like = tuple(like)
    lead = g.ndim - len(like)
    if lead:
        g = g.sum(dim=tuple(range(lead)))
    dims = tuple(i for i, s in enumerate(like) if s == 1 and g.shape[i] != 1)
    return g.sum(dim=dims, keepdim=True) if dims else g


def extreme_mask(x, peak, axis=None):
    """Where x reaches its max (or min): ties share the gradient evenly."""
    hit = (x == peak).to(x.dtype)
    dims = axes_of(x, axis)
    return hit / (hit.sum(dim=dims, keepdim=True) if dims and hit.ndim else hit.clamp(min=1))


def count(like=None, axis=None, dtype=torch.float64, device=None):
    total = float(math.prod(like))
    return torch.tensor(total / like[axis] if axis is not None and like[axis] else total, dtype=dtype,
                        device=device)


# ---- indexing --------------------------------------------------------------------------------
def index(x, key=()):
    """x[key] by NumPy's rules (ints and slices of any step; torch slices only step forward)."""
    axis = 0
    for k in key:
        if isinstance(k, slice):
            if k.step is not None and k.step < 0:
                picks = torch.arange(*k.indices(x.shape[axis]), device=x.device)
                x = x.index_select(axis, picks)
            else:
                x = x[(slice(None),) * axis + (k,)]
            axis += 1
        else:
            x = x.select(axis, int(k))
    return x


def index_grad(g, like=None, key=()):
    """index's gradient: g scattered into zeros of the shape `like` at the positions x[key] reads."""
    like = tuple(like)
    positions = index(torch.arange(math.prod(like), device=g.device).reshape(like), key)
    out = torch.zeros(math.prod(like), dtype=g.dtype, device=g.device)
    return out.index_add(0, positions.reshape(-1), g.reshape(-1)).reshape(like)


def labels_of(idx):
    """Class labels stored as floats, as whole numbers (not differentiated)."""
    return idx.detach().round().long()


def take(x, idx, axis=0):
    axis = int(axis) % x.ndim
    i = labels_of(idx).reshape(-1) % x.shape[axis]
    picked = torch.index_select(x, axis, i)
    return picked.reshape(tuple(x.shape[:axis]) + tuple(idx.shape) + tuple(x.shape[axis + 1:]))


def take_grad(g, idx, like=None, axis=0):
    like = tuple(like)
    axis = int(axis) % len(like)
    i = labels_of(idx).reshape(-1) % like[axis]
    g = g.reshape(like[:axis] + (i.numel(),) + like[axis + 1:])
    return torch.zeros(like, dtype=g.dtype, device=g.device).index_add(axis, i, g)


def onehot(labels, k=None, axis=-1):
    return F.one_hot(labels_of(labels), int(k)).to(labels.dtype).movedim(-1, axis)


def argmax(x, axis=None):
    x = x.detach()
    return (torch.argmax(x.reshape(-1)) if axis is None else torch.argmax(x, dim=int(axis))).to(x.dtype)


def argmin(x, axis=None):
    x = x.detach()
    return (torch.argmin(x.reshape(-1)) if axis is None else torch.argmin(x, dim=int(axis))).to(x.dtype)


# ---- losses ----------------------------------------------------------------------------------
def mse(o, y):
    return torch.mean((o - y) ** 2)


def cross_entropy(z, t, axis=-1):
    if t.ndim == z.ndim - 1:  # integer class labels, the class axis left out
        return F.cross_entropy(z if z.ndim == 1 else z.movedim(int(axis), 1), labels_of(t))
    if z.ndim == 1:
        return F.cross_entropy(z, t)
    return F.cross_entropy(z.movedim(axis, 1), t.movedim(axis, 1))


def bce(p, y):
    """PyTorch's BCELoss, its target differentiated as its forward is written: with the logs clamped at -100.

    PyTorch's own target gradient, log(1 - p) - log(p), is not clamped: 184 at p = 1e-80 where its
    forward (30 for y = 0.3) has 100, and -inf at p = 0; graphdsl differentiates the clamped forward.
    """
    p, y = torch.broadcast_tensors(p, y)
    if bool(torch.all((y >= 0) & (y <= 1))):
        loss = F.binary_cross_entropy(p, y.detach())
        logs = (torch.clamp(torch.log(p), min=-100) - torch.clamp(torch.log1p(-p), min=-100)).detach()
        by_target = -(y * logs).mean()  # linear in y: the clamped forward's derivative in y
        return loss + (by_target - by_target.detach())
    # PyTorch refuses a target outside [0, 1] (a NaN one: sigmoid(c ** x) of a negative c), where the
    # value is NaN, and a program may still give a finite result: where(t > bce(...), a, b)
    return torch.full((), float("nan"), dtype=p.dtype, device=p.device) + 0 * (p.sum() + y.sum())


def bce_with_logits(z, y):
    return F.binary_cross_entropy_with_logits(*torch.broadcast_tensors(z, y))


# ---- elementwise -----------------------------------------------------------------------------
def with_value(differentiated, value):
    """`value`, differentiated as `differentiated` (within an ulp of it: their difference, and the sum, are exact)."""
    return differentiated + (value - differentiated).detach()


def sigmoid(x):
    # not torch.sigmoid's backward: y (1 - y) loses the tail (2.9e-8 relative at x = 20, where the exact
    # derivative is 1.89e-9); exp(logsigmoid(x)) has an accurate one (graphdsl's is exact there). Its value
    # is torch.sigmoid's, which rounds as graphdsl's does.
    return with_value(torch.exp(F.logsigmoid(x)), torch.sigmoid(x))


def sigmoid_grad(x):
    return torch.sigmoid(x) * torch.sigmoid(-x)


def tanh_grad(x):
    return 1 - torch.tanh(x) ** 2


def relu_grad(x):
    return (x > 0).to(x.dtype)


def leaky_relu(x, alpha=0.01):
    return F.leaky_relu(x, float(alpha))


def leaky_relu_grad(x, alpha=0.01):
    return torch.where(x > 0, torch.ones_like(x), torch.full_like(x, float(alpha)))


def elu(x, alpha=1.0):
    return F.elu(x, float(alpha))


def elu_grad(x, alpha=1.0):
    return torch.where(x > 0, torch.ones_like(x), float(alpha) * torch.exp(x.clamp(max=0)))


def normal_pdf(x):
    return torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def gelu_grad(x):
    return torch.special.ndtr(x) + x * normal_pdf(x)


def gelu_grad2(x):
    return normal_pdf(x) * (2 - x * x)


def softplus(x):
    return torch.logaddexp(torch.zeros_like(x), x)


def lt(a, c):
    return torch.lt(a, c).to(a.dtype)


def le(a, c):
    return torch.le(a, c).to(a.dtype)


def gt(a, c):
    return torch.gt(a, c).to(a.dtype)


def ge(a, c):
    return torch.ge(a, c).to(a.dtype)


def eq(a, c):
    return torch.eq(a, c).to(a.dtype)


def ne(a, c):
    return torch.ne(a, c).to(a.dtype)


def max_mask(a, c):
    """maximum's gradient for its first argument: 1 where it wins, 1/2 at a tie."""
    return (a > c).to(a.dtype) + 0.5 * (a == c).to(a.dtype)


def min_mask(a, c):
    return (a < c).to(a.dtype) + 0.5 * (a == c).to(a.dtype)


def clip(x, lo, hi):
    return torch.clamp(x, lo, hi)


def where(c, a, d):
    return torch.where(c != 0, a, d)


def dropout_mask(shape, p, training, dtype, device):
    """An exported dropout call's mask: ones in eval mode; in training each element is kept with
    probability 1 - p and scaled by 1/(1 - p), by torch's own dropout (graphdsl draws its own)."""
    ones = torch.ones(shape, dtype=dtype, device=device)
    return F.dropout(ones, float(p), True) if training and p > 0 else ones


def identity(x):
    return x


def dropout(x, mask, p=0.5):
    return x * mask  # the mask is a leaf: ones in eval mode, drawn per step in training


# ---- shapes ----------------------------------------------------------------------------------
def transpose(x, axes=None):
    # a tuple, not permute(*range(...)): torch.compile's tracer misreads a descending range
    return x.permute(tuple(reversed(range(x.ndim))) if axes is None else tuple(int(a) for a in axes))


def softmax(x, axis=-1):
    return torch.softmax(x, dim=axis)


def log_softmax(x, axis=-1):
    return torch.log_softmax(x, dim=axis)


def reshape(x, shape=None, like=None):
    return x.reshape(tuple(like if like is not None else shape))


def broadcast_to(x, shape=None, like=None):
    return torch.broadcast_to(x, tuple(like if like is not None else shape))


def expand_dims(x, axis=0):
    return x.unsqueeze(int(axis))


def squeeze(x, axis=None):
    if axis is None:
        return x.squeeze()
    return x.squeeze(tuple(axis) if isinstance(axis, (list, tuple)) else int(axis))


def concat(*xs, axis=0):
    return torch.cat(xs, dim=axis)


def stack(*xs, axis=0):
    return torch.stack(xs, dim=axis)


def flatten(x, start=1):
    return torch.flatten(x, int(start))


def pad(x, widths=None, value=0.0):
    flat = [int(v) for pair in reversed(widths) for v in pair]  # F.pad lists the last axis first
    return F.pad(x, flat, value=float(value)) if flat else x.clone()


def cumsum(x, axis=None):
    return torch.cumsum(x, int(axis))


def rev_cumsum(x, axis=0):
    return torch.flip(torch.cumsum(torch.flip(x, (int(axis),)), int(axis)), (int(axis),))


def tril(x, k=0):
    return torch.tril(x, int(k))


def triu(x, k=0):
    return torch.triu(x, int(k))


def einsum(*xs, spec=None):
    return torch.einsum(spec, *xs)


# ---- arrays made from sizes ------------------------------------------------------------------
def sizes(value, nd):
    """A spatial attribute or a shape (a number or a list, floats from the parser) as a tuple of nd ints."""
    items = list(value) if isinstance(value, (list, tuple)) else [value] * nd
    return tuple(int(getattr(v, "size", v)) for v in items)  # a graph's attrs hold numbers as Dims


def eye(like=None, n=None, dtype=torch.float64, device=None):
    if like is None:
        return torch.eye(int(n), dtype=dtype, device=device)
    if len(like) == 2:
        return torch.eye(*like, dtype=dtype, device=device)
    return torch.ones(tuple(like), dtype=dtype, device=device)


def zeros_like(like=None, dtype=torch.float64, device=None):
    return torch.zeros(tuple(like), dtype=dtype, device=device)


def arange(n=None, dtype=torch.float64, device=None):
    return torch.arange(int(n), dtype=dtype, device=device)


def ones(shape=None, dtype=torch.float64, device=None):
    return torch.ones(sizes(shape, 1), dtype=dtype, device=device)


def zeros(shape=None, dtype=torch.float64, device=None):
    return torch.zeros(sizes(shape, 1), dtype=dtype, device=device)


# ---- convolutions and pools --------------------------------------------------------------------
def conv_kw(nd, stride=1, padding=0, dilation=1, groups=1):
    return dict(stride=sizes(stride, nd), padding=sizes(padding, nd), dilation=sizes(dilation, nd),
                groups=int(groups))


def conv1d(x, w, **kw):
    return F.conv1d(x, w, **conv_kw(1, **kw))


def conv2d(x, w, **kw):
    return F.conv2d(x, w, **conv_kw(2, **kw))


def conv(x, w, nd=2, **kw):
    return (F.conv1d if int(nd) == 1 else F.conv2d)(x, w, **conv_kw(int(nd), **kw))


def conv_input_grad(gy, w, like=None, nd=2, **kw):
    """The input gradient of a convolution: torch's own (convolution_backward), differentiable again."""
    fn = torch.nn.grad.conv1d_input if int(nd) == 1 else torch.nn.grad.conv2d_input
    return fn(tuple(like), w, gy, **conv_kw(int(nd), **kw))


def conv_weight_grad(x, gy, like=None, nd=2, **kw):
    fn = torch.nn.grad.conv1d_weight if int(nd) == 1 else torch.nn.grad.conv2d_weight
    return fn(x, tuple(like), gy, **conv_kw(int(nd), **kw))


def pool_kw(k=None, stride=None, padding=0):
    ks = sizes(k, 2)
    return dict(kernel_size=ks, stride=ks if stride is None else sizes(stride, 2), padding=sizes(padding, 2))


def max_pool2d(x, **kw):
    return F.max_pool2d(x, **pool_kw(**kw))


def avg_pool2d(x, **kw):
    return F.avg_pool2d(x, count_include_pad=True, **pool_kw(**kw))


def max_positions(x, **kw):
    """Flat positions (within each [H, W] plane) of every window's maximum, by PyTorch's own kernel."""
    _, idx = F.max_pool2d(x.detach(), return_indices=True, **pool_kw(**kw))
    return idx


def max_pool2d_grad(g, x, **kw):
    """max_pool2d's vector-Jacobian product: g scattered to each window's maximum."""
    idx = max_positions(x, **kw)
    n, c, h, w = x.shape
    out = torch.zeros(n, c, h * w, dtype=g.dtype, device=g.device)
    return out.scatter_add(2, idx.flatten(2), g.flatten(2)).reshape(n, c, h, w)


def pool_select(gg, x, **kw):
    idx = max_positions(x, **kw)
    return gg.flatten(2).gather(2, idx.flatten(2)).reshape(idx.shape)


def avg_pool2d_grad(g, like=None, **kw):
    """avg_pool2d's vector-Jacobian product, by PyTorch's backward (create_graph: linear in g)."""
    with torch.enable_grad():  # also where the caller runs without autograd (the torch backend)
        x0 = torch.zeros(tuple(like), dtype=g.dtype, device=g.device, requires_grad=True)
        y = F.avg_pool2d(x0, count_include_pad=True, **pool_kw(**kw))
        return torch.autograd.grad(y, x0, g, create_graph=True)[0]


TORCH = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "pow": torch.pow,
    "neg": torch.neg,
    "lt": lt, "le": le, "gt": gt, "ge": ge, "eq": eq, "ne": ne,
    "max_mask": max_mask, "min_mask": min_mask,
    "maximum": torch.maximum, "minimum": torch.minimum, "clip": clip, "where": where,
    "exp": torch.exp, "log": torch.log, "log1p": torch.log1p, "expm1": torch.expm1, "sqrt": torch.sqrt,
    "square": torch.square, "abs": torch.abs, "sign": torch.sign, "reciprocal": torch.reciprocal,
    "sin": torch.sin, "cos": torch.cos, "stop_gradient": torch.detach,
    "relu": torch.relu, "relu'": relu_grad,
    "leaky_relu": leaky_relu, "leaky_relu'": leaky_relu_grad, "elu": elu, "elu'": elu_grad,
    "sigmoid": sigmoid, "sigmoid'": sigmoid_grad, "tanh": torch.tanh, "tanh'": tanh_grad,
    "gelu": F.gelu, "gelu'": gelu_grad, "gelu''": gelu_grad2,
    "softplus": softplus, "log_sigmoid": F.logsigmoid,
    "matmul": torch.matmul, "outer": torch.outer, "trace": torch.trace, "transpose": transpose,
    "softmax": softmax, "log_softmax": log_softmax,
    "count": count, "mse": mse, "bce": bce, "bce_with_logits": bce_with_logits,
    "cross_entropy": cross_entropy, "onehot": onehot,
    "sum": reduce_sum, "mean": reduce_mean, "max": reduce_max, "min": reduce_min, "logsumexp": logsumexp,
    "var": variance, "norm": norm, "sqnorm": sqnorm,
    "unreduce": unreduce, "sum_to": sum_to, "extreme_mask": extreme_mask,
    "eye": eye, "zeros_like": zeros_like,
    "reshape": reshape, "broadcast_to": broadcast_to, "expand_dims": expand_dims, "squeeze": squeeze,
    "concat": concat, "stack": stack,
    "index": index, "index_grad": index_grad, "identity": identity,
    "tan": torch.tan, "atan": torch.atan, "asin": torch.asin, "acos": torch.acos, "sinh": torch.sinh,
    "cosh": torch.cosh, "erf": torch.special.erf, "log2": torch.log2, "log10": torch.log10,
    "floor": torch.floor, "ceil": torch.ceil, "round": torch.round,  # PyTorch's gradient is zero too
    "conv1d": conv1d, "conv2d": conv2d, "conv": conv,
    "conv_input_grad": conv_input_grad, "conv_weight_grad": conv_weight_grad,
    "max_pool2d": max_pool2d, "max_pool2d_grad": max_pool2d_grad, "pool_select": pool_select,
    "avg_pool2d": avg_pool2d, "avg_pool2d_grad": avg_pool2d_grad,
    "flatten": flatten, "take": take, "take_grad": take_grad,
    "cumsum": cumsum, "rev_cumsum": rev_cumsum, "pad": pad, "argmax": argmax, "argmin": argmin,
    "arange": arange, "ones": ones, "zeros": zeros, "tril": tril, "triu": triu,
    "dropout": dropout, "einsum": einsum,
}

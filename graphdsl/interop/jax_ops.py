"""THE table from graphdsl's operators (graphdsl/ops REGISTRY) to JAX: `JAX[op](*args, **bound)`.

Each entry computes what the op's NumPy forward computes, with the same positional
arguments and static keyword arguments (`bound`: the plan's concrete values, sizes
as ints). The JAX backend (jax_backend.py) calls these functions; the JAX exporter
(jax_export.py) writes calls of them and copies the helpers below into the file it
writes, so every helper here uses only `jax`, `jnp`, `lax` and `math` and the other
helpers (by name): no NumPy, no graphdsl. An entry is a JAX function, a helper, or
`partial(helper, JAX function)`; nothing else (the exporter writes each as a call).

Derivatives: `jax.grad` of an exported model differentiates these functions, so
where graphdsl's reverse mode picks a convention at a kink the helper is written so
that JAX's autodiff picks the same one: relu'(0) = 0, |x|'(0) = 0, elu'(0) = alpha,
the gradient of norm at 0 is 0, max/min and maximum/minimum share it evenly on ties
(JAX's own rules do), max pooling gives it to each window's first maximum, and the
shifts of softmax, log_softmax and logsumexp are constants (stop_gradient).

Float64 needs `jax.config.update("jax_enable_x64", True)` before any array is made:
the backend sets it, an exported file sets it at its top. Helpers make no dtype of
their own choosing: constants take JAX's default float (float64 under x64).
"""
from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax


# ---- small pieces the helpers share ---------------------------------------------------------

def _float(mask):
    """A boolean array as 0.0/1.0 in the default float (weakly typed: float32 data stay float32)."""
    return jnp.where(mask, 1.0, 0.0)


def _axes(axis, ndim):
    """`axis=` (None, an int or a tuple/list) as a tuple of non-negative axes; None: all."""
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, (list, tuple)) else (axis,)
    return tuple(sorted(int(a) % max(ndim, 1) for a in items))


def _ints(value, n):
    """A spatial attribute (a number or a list of n) as a tuple of n ints."""
    items = list(value) if isinstance(value, (list, tuple)) else [value] * n
    return tuple(int(v) for v in items)


# ---- elementwise ----------------------------------------------------------------------------

def mask(compare, a, c):
    """A comparison as a 0/1 mask (the table's entries bind `compare`: jnp.less, ...)."""
    return _float(compare(a, c))


def max_mask(a, c):
    return _float(a > c) + 0.5 * _float(a == c)


def min_mask(a, c):
    return _float(a < c) + 0.5 * _float(a == c)


def clip(x, lo, hi):
    return jnp.minimum(jnp.maximum(x, lo), hi)


def where(c, a, d):
    return jnp.where(c != 0, a, d)


def abs_(x):
    """|x| as x sign(x): its derivative is sign(x), 0 at 0 as graphdsl's (JAX's abs has 1 there)."""
    return x * jnp.sign(x)


def sign(x):
    return jnp.sign(x)


def relu(x):
    return jnp.where(x > 0, x, 0.0)


def relu_slope(x):
    return _float(x > 0)


def leaky_relu(x, alpha=0.01):
    return jnp.where(x > 0, x, alpha * x)


def leaky_relu_slope(x, alpha=0.01):
    return jnp.where(x > 0, 1.0, alpha)


def elu(x, alpha=1.0):
    # the inner where (not minimum, whose derivative is 1/2 at 0) makes elu'(0) = alpha, as graphdsl's
    return jnp.where(x > 0, x, alpha * jnp.expm1(jnp.where(x > 0, 0.0, x)))


def elu_slope(x, alpha=1.0):
    return jnp.where(x > 0, 1.0, alpha * jnp.exp(jnp.where(x > 0, 0.0, x)))


def sigmoid(x):
    """Stable both ways, as graphdsl's: e = exp(-|x|) never overflows; exact slopes in the tails."""
    e = jnp.exp(-jnp.abs(x))
    r = 1.0 / (1.0 + e)
    return jnp.where(x >= 0, r, e * r)


def sigmoid_slope(x):
    """sigmoid(x) sigmoid(-x) = e / (1 + e)^2 with e = exp(-|x|)."""
    e = jnp.exp(-jnp.abs(x))
    r = 1.0 / (1.0 + e)
    return e * r * r


def tanh_slope(x):
    return 1.0 - jnp.tanh(x) ** 2


def _phi(x):
    """The standard normal density."""
    return jnp.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def gelu(x):
    return x * jax.scipy.special.ndtr(x)


def gelu_slope(x):
    return jax.scipy.special.ndtr(x) + x * _phi(x)


def gelu_curvature(x):
    return _phi(x) * (2.0 - x * x)


def softplus(x):
    return jnp.logaddexp(0.0, x)


def log_sigmoid(x):
    return -jnp.logaddexp(0.0, -x)


def erf(x):
    return jax.scipy.special.erf(x)


def stop_gradient(x):
    return lax.stop_gradient(x)


def identity(x):
    return x


# ---- reductions and the engine's broadcasting helpers -----------------------------------

def sum_(x, axis=None, keepdims=False):
    return jnp.sum(x, axis=_axes(axis, jnp.ndim(x)), keepdims=bool(keepdims))


def mean(x, axis=None, keepdims=False):
    return jnp.mean(x, axis=_axes(axis, jnp.ndim(x)), keepdims=bool(keepdims))


def max_(x, axis=None, keepdims=False):
    return jnp.max(x, axis=_axes(axis, jnp.ndim(x)), keepdims=bool(keepdims))


def min_(x, axis=None, keepdims=False):
    return jnp.min(x, axis=_axes(axis, jnp.ndim(x)), keepdims=bool(keepdims))


def var(x, axis=None, keepdims=False):
    return jnp.var(x, axis=_axes(axis, jnp.ndim(x)), keepdims=bool(keepdims))


def sqnorm(x, axis=None, keepdims=False):
    return jnp.sum(x * x, axis=_axes(axis, jnp.ndim(x)), keepdims=bool(keepdims))


def norm(x, axis=None, keepdims=False):
    """sqrt(sum x^2), with gradient 0 (not NaN) where the norm is 0, as graphdsl's."""
    s = sqnorm(x, axis, keepdims)
    zero = s == 0
    return jnp.where(zero, 0.0, jnp.sqrt(jnp.where(zero, 1.0, s)))


def logsumexp(x, axis=None, keepdims=False):
    axes = _axes(axis, jnp.ndim(x))
    peak = lax.stop_gradient(jnp.max(x, axis=axes, keepdims=True))
    peak = jnp.where(jnp.isfinite(peak), peak, 0.0)
    out = jnp.log(jnp.sum(jnp.exp(x - peak), axis=axes, keepdims=True)) + peak
    return out if keepdims else jnp.squeeze(out, axis=axes)


def unreduce(g, like=None, axis=None, keepdims=False, mean=False):
    """g broadcast back over the axes a reduction of an array shaped `like` removed (/ N for a mean)."""
    axes = _axes(axis, len(like))
    if not keepdims and axes:
        g = jnp.expand_dims(g, axes)
    if mean:
        g = g / max(1, math.prod(like[a] for a in axes))
    return jnp.broadcast_to(g, tuple(like))


def sum_to(g, like=None):
    """A broadcast cotangent summed back to the shape `like`."""
    like = tuple(like)
    if jnp.shape(g) == like:
        return g
    lead = jnp.ndim(g) - len(like)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(like) if s == 1 and jnp.shape(g)[lead + i] != 1)
    return jnp.reshape(jnp.sum(g, axis=axes, keepdims=True), like)


def extreme_mask(x, peak, axis=None):
    hit = _float(x == peak)
    return hit / jnp.sum(hit, axis=_axes(axis, jnp.ndim(hit)), keepdims=True)


def count(like=None, axis=None):
    total = float(math.prod(like))
    return jnp.asarray(total / like[axis] if axis is not None and like[axis] else total)


def eye(like=None, n=None):
    if like is None:
        return jnp.eye(int(n))
    return jnp.eye(like[0], like[1]) if len(like) == 2 else jnp.ones(tuple(like))


def zeros_like(like=None):
    return jnp.zeros(tuple(like))


# ---- linear algebra, softmax and losses ----------------------------------------------------

def transpose(x, axes=None):
    return jnp.transpose(x, None if axes is None else tuple(int(a) for a in axes))


def trace(x):
    return jnp.trace(x)


def _shifted(x, axis):
    return x - lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))


def softmax(x, axis=-1):
    e = jnp.exp(_shifted(x, int(axis)))
    return e / jnp.sum(e, axis=int(axis), keepdims=True)


def log_softmax(x, axis=-1):
    s = _shifted(x, int(axis))
    return s - jnp.log(jnp.sum(jnp.exp(s), axis=int(axis), keepdims=True))


def mse(o, y):
    return jnp.mean((o - y) ** 2)


def bce(p, y):
    # PyTorch's BCELoss clamps each log at -100 so that p = 0 or 1 stays finite
    return -jnp.mean(y * jnp.maximum(jnp.log(p), -100.0) + (1 - y) * jnp.maximum(jnp.log1p(-p), -100.0))


def bce_with_logits(z, y):
    return jnp.mean(jnp.logaddexp(0.0, z) - y * z)


def _poisoned(out, valid):
    """`out`, or NaN everywhere if any index is invalid: JAX cannot raise under jit, NumPy's forward does."""
    return jnp.where(jnp.all(valid), out, jnp.nan)


def onehot(labels, k=None, axis=-1):
    """Whole-number labels from 0 to k-1 as one-hot rows (labels are data: no gradient); others: NaN."""
    labels = lax.stop_gradient(labels)
    idx = jnp.round(labels).astype(jnp.int32)
    out = _float(idx[..., None] == jnp.arange(int(k)))
    return jnp.moveaxis(_poisoned(out, (labels == jnp.round(labels)) & (labels >= 0) & (labels < int(k))), -1,
                        int(axis))


def cross_entropy(z, t, axis=-1):
    if jnp.ndim(t) == jnp.ndim(z) - 1:  # class labels, the class axis left out
        axis = int(axis) % jnp.ndim(z)
        t = onehot(t, jnp.shape(z)[axis], axis)
    return -jnp.mean(jnp.sum(t * log_softmax(z, axis), axis=int(axis)))


def dropout(x, mask, p=0.5):
    return x * mask


# ---- shapes ------------------------------------------------------------------------------

def reshape(x, shape=None, like=None):
    return jnp.reshape(x, tuple(like if like is not None else shape))


def broadcast_to(x, shape=None, like=None):
    return jnp.broadcast_to(x, tuple(like if like is not None else shape))


def expand_dims(x, axis=0):
    return jnp.expand_dims(x, int(axis))


def squeeze(x, axis=None):
    if axis is None:
        return jnp.squeeze(x)
    return jnp.squeeze(x, axis=tuple(axis) if isinstance(axis, (list, tuple)) else int(axis))


def concat(*xs, axis=0):
    return jnp.concatenate(xs, axis=int(axis))


def stack(*xs, axis=0):
    return jnp.stack(xs, axis=int(axis))


def index(x, key=()):
    return x[key]


def index_grad(g, like=None, key=()):
    return jnp.zeros(tuple(like)).at[key].set(g)


def flatten(x, start=1):
    start = int(start) % max(jnp.ndim(x), 1)
    return jnp.reshape(x, jnp.shape(x)[:start] + (-1,))


def pad(x, widths=None, value=0.0):
    return jnp.pad(x, tuple((int(a), int(c)) for a, c in widths), constant_values=float(value))


def tril(x, k=0):
    return jnp.tril(x, int(k))


def triu(x, k=0):
    return jnp.triu(x, int(k))


def arange(n=None):
    return jnp.arange(int(n)) * 1.0


def ones(shape=None):
    return jnp.ones(_ints(shape, 1))


def zeros(shape=None):
    return jnp.zeros(_ints(shape, 1))


def einsum(*xs, spec=None):
    return jnp.einsum(spec, *xs)


# ---- gathering and running sums --------------------------------------------------------------

def _whole(idx, size):
    """Index values as int32 positions into an axis of `size` (negative ones count from the end)."""
    return jnp.round(lax.stop_gradient(idx)).astype(jnp.int32) % size


def _valid(idx, size):
    """Whole numbers from -size to size - 1, as NumPy's forward accepts."""
    idx = lax.stop_gradient(idx)
    return (idx == jnp.round(idx)) & (idx >= -size) & (idx < size)


def take(x, idx, axis=0):
    axis = int(axis) % max(jnp.ndim(x), 1)
    size = jnp.shape(x)[axis]
    return _poisoned(jnp.take(x, _whole(idx, size), axis=axis), _valid(idx, size))


def take_grad(g, idx, like=None, axis=0):
    """Scatter-add g into zeros shaped `like` along `axis`: repeated indices accumulate."""
    like = tuple(like)
    axis = int(axis) % max(len(like), 1)
    i = jnp.reshape(_whole(idx, like[axis]), (-1,))
    g = jnp.reshape(g, like[:axis] + (i.shape[0],) + like[axis + 1:])
    out = jnp.moveaxis(jnp.zeros(like), axis, 0).at[i].add(jnp.moveaxis(g, axis, 0))
    return _poisoned(jnp.moveaxis(out, 0, axis), _valid(idx, like[axis]))


def cumsum(x, axis=None):
    return jnp.cumsum(x, axis=int(axis))


def rev_cumsum(x, axis=0):
    return jnp.flip(jnp.cumsum(jnp.flip(x, int(axis)), axis=int(axis)), int(axis))


def argmax(x, axis=None):
    x = lax.stop_gradient(x)
    return 1.0 * (jnp.argmax(x) if axis is None else jnp.argmax(x, axis=int(axis)))


def argmin(x, axis=None):
    x = lax.stop_gradient(x)
    return 1.0 * (jnp.argmin(x) if axis is None else jnp.argmin(x, axis=int(axis)))


# ---- convolution and pooling (NCHW, as PyTorch) ---------------------------------------------

def _conv_dims(nd):
    return ("NCH", "OIH", "NCH") if nd == 1 else ("NCHW", "OIHW", "NCHW")


def conv(x, w, stride=1, padding=0, dilation=1, groups=1, nd=2):
    nd = int(nd)
    return lax.conv_general_dilated(
        x, w, window_strides=_ints(stride, nd), padding=[(p, p) for p in _ints(padding, nd)],
        rhs_dilation=_ints(dilation, nd), feature_group_count=int(groups), dimension_numbers=_conv_dims(nd),
        precision=lax.Precision.HIGHEST)


def conv1d(x, w, stride=1, padding=0, dilation=1, groups=1):
    return conv(x, w, stride, padding, dilation, groups, nd=1)


def conv2d(x, w, stride=1, padding=0, dilation=1, groups=1):
    return conv(x, w, stride, padding, dilation, groups, nd=2)


def conv_input_grad(gy, w, like=None, stride=1, padding=0, dilation=1, groups=1, nd=2):
    """The convolution's input cotangent: JAX's own transpose of conv (linear in gy; differentiable)."""
    _, pullback = jax.vjp(lambda x: conv(x, w, stride, padding, dilation, groups, nd), jnp.zeros(tuple(like)))
    return pullback(gy)[0]


def conv_weight_grad(x, gy, like=None, stride=1, padding=0, dilation=1, groups=1, nd=2):
    _, pullback = jax.vjp(lambda w: conv(x, w, stride, padding, dilation, groups, nd), jnp.zeros(tuple(like)))
    return pullback(gy)[0]


def _pool_params(k, stride, padding):
    ks = _ints(k, 2)
    return ks, (ks if stride is None else _ints(stride, 2)), _ints(padding, 2)


def _windows(x, ks, stride, pad, value=0.0):
    """[N, C, Ho, Wo, kh*kw]: every window of the padded input, taps in row-major order."""
    xp = jnp.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])), constant_values=value)
    ho = (xp.shape[2] - ks[0]) // stride[0] + 1
    wo = (xp.shape[3] - ks[1]) // stride[1] + 1
    taps = [xp[:, :, i:i + stride[0] * (ho - 1) + 1:stride[0], j:j + stride[1] * (wo - 1) + 1:stride[1]]
            for i in range(ks[0]) for j in range(ks[1])]
    return jnp.stack(taps, axis=-1)


def _first_max(x, k, stride, padding):
    """Each window's taps and the position of its first maximum (PyTorch's and graphdsl's choice)."""
    ks, stride, pad = _pool_params(k, stride, padding)
    win = _windows(x, ks, stride, pad, -jnp.inf)
    return win, jnp.argmax(lax.stop_gradient(win), axis=-1)[..., None]


def max_pool2d(x, k=None, stride=None, padding=0):
    win, arg = _first_max(x, k, stride, padding)
    return jnp.take_along_axis(win, arg, axis=-1)[..., 0]


def max_pool2d_grad(g, x, k=None, stride=None, padding=0):
    """g scattered to each window's first maximum: the transpose of pool_select in gg."""
    _, pullback = jax.vjp(lambda gg: pool_select(gg, x, k, stride, padding), jnp.zeros(jnp.shape(x)))
    return pullback(g)[0]


def pool_select(gg, x, k=None, stride=None, padding=0):
    """gg read at each window's first maximum of x."""
    _, arg = _first_max(x, k, stride, padding)
    ks, stride, pad = _pool_params(k, stride, padding)
    return jnp.take_along_axis(_windows(gg, ks, stride, pad), arg, axis=-1)[..., 0]


def avg_pool2d(x, k=None, stride=None, padding=0):
    ks, stride, pad = _pool_params(k, stride, padding)
    return jnp.mean(_windows(x, ks, stride, pad), axis=-1)  # padded cells count (count_include_pad)


def avg_pool2d_grad(g, like=None, k=None, stride=None, padding=0):
    _, pullback = jax.vjp(lambda x: avg_pool2d(x, k, stride, padding), jnp.zeros(tuple(like)))
    return pullback(g)[0]


# ---- the table -------------------------------------------------------------------------------

JAX = {
    "add": jnp.add, "sub": jnp.subtract, "mul": jnp.multiply, "div": jnp.divide, "pow": jnp.power,
    "neg": jnp.negative,
    "lt": partial(mask, jnp.less), "le": partial(mask, jnp.less_equal), "gt": partial(mask, jnp.greater),
    "ge": partial(mask, jnp.greater_equal), "eq": partial(mask, jnp.equal), "ne": partial(mask, jnp.not_equal),
    "max_mask": max_mask, "min_mask": min_mask,
    "maximum": jnp.maximum, "minimum": jnp.minimum, "clip": clip, "where": where,
    "exp": jnp.exp, "log": jnp.log, "log1p": jnp.log1p, "expm1": jnp.expm1, "sqrt": jnp.sqrt,
    "square": jnp.square, "abs": abs_, "sign": sign, "reciprocal": jnp.reciprocal,
    "sin": jnp.sin, "cos": jnp.cos, "tan": jnp.tan, "atan": jnp.arctan, "asin": jnp.arcsin, "acos": jnp.arccos,
    "sinh": jnp.sinh, "cosh": jnp.cosh, "erf": erf, "log2": jnp.log2, "log10": jnp.log10,
    "floor": jnp.floor, "ceil": jnp.ceil, "round": jnp.round,  # half to even, as NumPy
    "stop_gradient": stop_gradient, "identity": identity,
    "relu": relu, "relu'": relu_slope, "leaky_relu": leaky_relu, "leaky_relu'": leaky_relu_slope,
    "elu": elu, "elu'": elu_slope, "sigmoid": sigmoid, "sigmoid'": sigmoid_slope,
    "tanh": jnp.tanh, "tanh'": tanh_slope, "gelu": gelu, "gelu'": gelu_slope, "gelu''": gelu_curvature,
    "softplus": softplus, "log_sigmoid": log_sigmoid,
    "sum": sum_, "mean": mean, "max": max_, "min": min_, "logsumexp": logsumexp, "var": var, "norm": norm,
    "sqnorm": sqnorm, "unreduce": unreduce, "sum_to": sum_to, "extreme_mask": extreme_mask, "count": count,
    "eye": eye, "zeros_like": zeros_like,
    "matmul": jnp.matmul, "outer": jnp.outer, "transpose": transpose, "trace": trace, "einsum": einsum,
    "softmax": softmax, "log_softmax": log_softmax,
    "mse": mse, "bce": bce, "bce_with_logits": bce_with_logits, "cross_entropy": cross_entropy,
    "onehot": onehot, "dropout": dropout,
    "reshape": reshape, "broadcast_to": broadcast_to, "expand_dims": expand_dims, "squeeze": squeeze,
    "concat": concat, "stack": stack, "index": index, "index_grad": index_grad, "flatten": flatten,
    "pad": pad, "tril": tril, "triu": triu, "arange": arange, "ones": ones, "zeros": zeros,
    "take": take, "take_grad": take_grad, "cumsum": cumsum, "rev_cumsum": rev_cumsum,
    "argmax": argmax, "argmin": argmin,
    "conv1d": conv1d, "conv2d": conv2d, "conv": conv, "conv_input_grad": conv_input_grad,
    "conv_weight_grad": conv_weight_grad,
    "max_pool2d": max_pool2d, "max_pool2d_grad": max_pool2d_grad, "pool_select": pool_select,
    "avg_pool2d": avg_pool2d, "avg_pool2d_grad": avg_pool2d_grad,
}
# A call of a function the model never defines: never evaluated, so never exported (E116 first).
NOT_IN_JAX = frozenset({"opaque"})

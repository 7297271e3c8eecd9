"""THE table from graphdsl's operator names to ONNX: `ONNX_OPS[name](g, *inputs, **kw) -> output name`.

`g` is the OnnxGraph under construction (onnx_graph.py): `g.node` adds an ONNX
node, `g.arg_shapes`/`g.out_shape` are the step's symbolic shapes (ints, and
DimRefs for free dims), `kw` is the step's static arguments (schedule.Step.kw).
Every op of graphdsl.ops.REGISTRY is here (the internal ones reverse mode emits
included, since `--with-grads` exports the gradient graph) except those in
NO_ONNX_COUNTERPART. Each entry computes what the op's NumPy forward computes,
in float64 by default, with only ops that onnxruntime runs in float64: where it
has no double kernel the function is composed (onnx_math.py, onnx_windows.py).
"""
from __future__ import annotations

import math

import numpy as np

from ..ops.base import axes_tuple, norm_axis
from . import onnx_math as m
from . import onnx_windows as win
from .onnx_graph import refuse_free
from .schedule import DimRef

# The ops of REGISTRY (but `opaque`, a call of an undefined function that never runs) with no ONNX
# counterpart: none. Every op has one, composed from ops onnxruntime runs in float64 where ONNX has no
# such op or onnxruntime no double kernel (onnx_math.py, onnx_windows.py). A model that uses an op not in
# ONNX_OPS is refused with E116 before anything is written; docs/interop.md keeps this list too.
NO_ONNX_COUNTERPART: frozenset = frozenset()

_INT_MIN, _INT_MAX = -(2 ** 63), 2 ** 63 - 1


# ---- helpers ----------------------------------------------------------------------------------
def _unary(op_type):
    return lambda g, x: g.node(op_type, [x])


def _binary(op_type):
    return lambda g, a, b: g.node(op_type, [a, b])


def _compare(op_type, negate=False):
    def build(g, a, b):
        hit = g.node(op_type, [a, b])
        return g.cast(g.node("Not", [hit]) if negate else hit)
    return build


def _axes(axis, rank):
    """`axis=` as a tuple of non-negative axes (all of them for None)."""
    axes = axes_tuple(axis, rank)
    return tuple(range(rank)) if axes is None else axes


def _reduce(g, op_type, x, axis, keepdims, rank=None):
    """A reduction over `axis=` with NumPy's answers where onnxruntime's differ: a mean is the sum over the
    count (NaN over an empty axis, where ReduceMean gives 0), max and min are NaN where a NaN is
    reduced (ReduceMax and ReduceMin skip it)."""
    rank = g.rank(0) if rank is None else rank
    axes = _axes(axis, rank)
    if not axes:
        return g.node("Identity", [x])
    axes_tensor, keep = g.ints(list(axes)), int(bool(keepdims))
    if op_type == "ReduceMean":
        return g.node("Div", [g.node("ReduceSum", [x, axes_tensor], keepdims=keep), _count_over(g, x, axes)])
    y = g.node(op_type, [x, axes_tensor], keepdims=keep)
    if op_type in ("ReduceMax", "ReduceMin"):
        y = _nan_where_any(g, x, y, lambda hit: g.node("ReduceMax", [hit, axes_tensor], keepdims=keep))
    return y


def _nan_where_any(g, x, y, reduce):
    """y, NaN wherever `reduce` of x's NaN mask finds one."""
    seen = reduce(g.cast(g.node("IsNaN", [x])))
    return g.node("Where", [g.node("Greater", [seen, g.const(0.0)]), g.const(np.nan), y])


def _count_over(g, x, axes):
    """How many elements of x each reduction over `axes` takes, read from x's shape at run time."""
    sizes = g.node("Gather", [g.node("Shape", [x]), g.ints(list(axes))], axis=0)
    return g.cast(g.node("ReduceProd", [sizes], keepdims=0))


def _reduction(op_type, prepare=None, finish=None):
    def build(g, x, axis=None, keepdims=False):
        y = _reduce(g, op_type, prepare(g, x) if prepare else x, axis, keepdims)
        return finish(g, y) if finish else y
    return build


def _square(g, x):
    return g.node("Mul", [x, x])


def _logsumexp(g, x, axis=None, keepdims=False):
    """log(sum(exp(x - peak))) + peak, the peak 0 where it is not finite (as graphdsl: exp(-inf - -inf))."""
    peak = _reduce(g, "ReduceMax", x, axis, True)
    bad = g.node("Or", [g.node("IsInf", [peak]), g.node("IsNaN", [peak])])
    peak = g.node("Where", [bad, g.const(0.0), peak])
    total = _reduce(g, "ReduceSum", g.node("Exp", [g.node("Sub", [x, peak])]), axis, True)
    out = g.node("Add", [g.node("Log", [total]), peak])
    axes = _axes(axis, g.rank(0))
    return out if keepdims or not axes else g.node("Squeeze", [out, g.ints(list(axes))])


def _var(g, x, axis=None, keepdims=False):
    centred = g.node("Sub", [x, _reduce(g, "ReduceMean", x, axis, True)])
    return _reduce(g, "ReduceMean", _square(g, centred), axis, keepdims)


# ---- the engine's broadcasting helpers ---------------------------------------------------------------
def _unreduce(g, grad, like=None, axis=None, keepdims=False, mean=False):
    axes = _axes(axis, len(like))
    if not keepdims and axes:
        grad = g.node("Unsqueeze", [grad, g.ints(list(axes))])
    if mean:
        grad = g.node("Div", [grad, g.node("Max", [g.count(like, axes), g.const(1.0)])])
    return g.expand(grad, like)


def _sum_to(g, grad, like=None):
    shape = g.arg_shapes[0]
    if tuple(shape) == tuple(like):
        return g.node("Identity", [grad])
    lead = len(shape) - len(like)
    axes = list(range(lead)) + [lead + i for i, s in enumerate(like) if s == 1 and shape[lead + i] != 1]
    total = g.node("ReduceSum", [grad, g.ints(axes)], keepdims=1) if axes else grad
    return g.node("Reshape", [total, g.shape_tensor(like)], allowzero=1)  # a 0 is a size, not "copy"


def _extreme_mask(g, x, peak, axis=None):
    hit = g.cast(g.node("Equal", [x, peak]))
    return g.node("Div", [hit, _reduce(g, "ReduceSum", hit, axis, True)])


def _count(g, like=None, axis=None):
    total = g.count(like, range(len(like)))
    if axis is None or like[axis] == 0:
        return total
    return g.node("Div", [total, g.size(like[axis])])


# ---- constructors -------------------------------------------------------------------------------
def _shape_kw(shape):
    return tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)


def _arange(g, n=None):
    return g.node("Range", [g.const(0.0), g.size(n), g.const(1.0)])


def _eye(g, like=None, n=None):
    if like is None:
        like = (n, n)
    if len(like) != 2:
        return g.full(like, 1.0)
    return g.node("EyeLike", [g.full(like, 0.0)])


def _triangle(upper):
    return lambda g, x, k=0: g.node("Trilu", [x, g.ints(int(k))], upper=upper)


# ---- elementwise --------------------------------------------------------------------------------------
def _mask(op_type):
    def build(g, a, b):
        wins = g.cast(g.node(op_type, [a, b]))
        ties = g.node("Mul", [g.const(0.5), g.cast(g.node("Equal", [a, b]))])
        return g.node("Add", [wins, ties])
    return build


def _where(g, c, a, d):
    return g.node("Where", [g.node("Not", [g.node("Equal", [c, g.const(0.0)])]), a, d])


def _positive(g, x):
    return g.node("Greater", [x, g.const(0.0)])


def _leaky_relu(g, x, alpha=0.01):
    return g.node("Where", [_positive(g, x), x, g.node("Mul", [g.const(float(alpha)), x])])


def _leaky_relu_slope(g, x, alpha=0.01):
    return g.node("Where", [_positive(g, x), g.const(1.0), g.const(float(alpha))])


def _neg_part(g, x):
    return g.node("Min", [x, g.const(0.0)])


def _elu(g, x, alpha=1.0):
    return g.node("Where", [_positive(g, x), x, g.node("Mul", [g.const(float(alpha)), m.expm1(g, _neg_part(g, x))])])


def _elu_slope(g, x, alpha=1.0):
    tail = g.node("Mul", [g.const(float(alpha)), g.node("Exp", [_neg_part(g, x)])])
    return g.node("Where", [_positive(g, x), g.const(1.0), tail])


def _tanh_slope(g, x):
    return g.node("Sub", [g.const(1.0), _square(g, g.node("Tanh", [x]))])


def _gelu(g, x):
    return g.node("Mul", [x, m.ndtr(g, x)])


def _gelu_slope(g, x):
    return g.node("Add", [m.ndtr(g, x), g.node("Mul", [x, m.normal_pdf(g, x)])])


def _gelu_curvature(g, x):
    return g.node("Mul", [m.normal_pdf(g, x), g.node("Sub", [g.const(2.0), _square(g, x)])])


def _log_sigmoid(g, x):
    return g.node("Neg", [m.softplus(g, g.node("Neg", [x]))])


def _log_base(base):
    return lambda g, x: g.node("Div", [g.node("Log", [x]), g.const(math.log(base))])


# ---- linear algebra and the neural-network builtins -------------------------------------------------
def _matmul(g, a, b):
    """NumPy's matmul with each 1-D operand made a matrix and its axis squeezed away after: onnxruntime
    1.2x fuses Transpose + MatMul into a FusedMatMul that is wrong when the other operand is 1-D
    ((x.T @ v) came out as x @ v; tests/test_export_onnx.py keeps the case)."""
    squeeze = []
    if g.rank(0) == 1:
        a, squeeze = g.node("Unsqueeze", [a, g.ints([0])]), squeeze + [-2]
    if g.rank(1) == 1:
        b, squeeze = g.node("Unsqueeze", [b, g.ints([1])]), squeeze + [-1]
    y = g.node("MatMul", [a, b])
    return g.node("Squeeze", [y, g.ints(squeeze)]) if squeeze else y


def _outer(g, a, b):
    return g.node("Mul", [g.node("Unsqueeze", [a, g.ints([1])]), g.node("Unsqueeze", [b, g.ints([0])])])


def _transpose(g, x, axes=None):
    rank = g.rank(0)
    perm = list(range(rank - 1, -1, -1)) if axes is None else [norm_axis(int(a), rank) for a in axes]
    return g.node("Transpose", [x], perm=perm)


def _trace(g, x):
    return g.node("ReduceSum", [g.node("Mul", [x, g.node("EyeLike", [x])])], keepdims=0)


def _einsum(g, *xs, spec=None):
    # onnxruntime reads lower-case subscripts only: rename the letters (distinct letters stay distinct)
    text = spec.replace(" ", "")
    letters = sorted({ch for ch in text if ch.isalpha()})
    if len(letters) <= 26:
        rename = {ch: chr(ord("a") + k) for k, ch in enumerate(letters)}
        text = "".join(rename.get(ch, ch) for ch in text)
    return g.node("Einsum", list(xs), equation=text)


def _softmax(g, x, axis=-1):
    return g.node("Softmax", [x], axis=norm_axis(axis, g.rank(0)))


def _log_softmax_of(g, x, axis):
    """x - max - log(sum(exp(x - max))), as graphdsl (onnxruntime's LogSoftmax is 3e-11 off near 0)."""
    axes = g.ints([axis])
    shifted = g.node("Sub", [x, g.node("ReduceMax", [x, axes], keepdims=1)])
    total = g.node("ReduceSum", [g.node("Exp", [shifted]), axes], keepdims=1)
    return g.node("Sub", [shifted, g.node("Log", [total])])


def _log_softmax(g, x, axis=-1):
    return _log_softmax_of(g, x, norm_axis(axis, g.rank(0)))


def _mean_all(g, x):
    """NumPy's mean of every element: the sum over the count (NaN when empty)."""
    return g.node("Div", [g.node("ReduceSum", [x], keepdims=0), g.cast(g.node("Size", [x]))])


def _mse(g, o, y):
    return _mean_all(g, _square(g, g.node("Sub", [o, y])))


def _clamped_log(g, x):
    return g.node("Max", [x, g.const(-100.0)])


def _bce(g, p, y):
    log_p = _clamped_log(g, g.node("Log", [p]))
    log_q = _clamped_log(g, m.log1p(g, g.node("Neg", [p])))
    q_y = g.node("Sub", [g.const(1.0), y])
    total = g.node("Add", [g.node("Mul", [y, log_p]), g.node("Mul", [q_y, log_q])])
    return g.node("Neg", [_mean_all(g, total)])


def _bce_with_logits(g, z, y):
    return _mean_all(g, g.node("Sub", [m.softplus(g, z), g.node("Mul", [y, z])]))


def _onehot_of(g, labels, k, axis, rank):
    """(labels[..., None] == arange(k)) as floats, the class axis moved to `axis` of the result's rank."""
    classes = g.node("Range", [g.const(0.0), g.size(k), g.const(1.0)])
    hot = g.cast(g.node("Equal", [g.node("Unsqueeze", [labels, g.ints([-1])]), classes]))
    axis = norm_axis(axis, rank)
    if axis == rank - 1:
        return hot
    perm = list(range(axis)) + [rank - 1] + list(range(axis, rank - 1))
    return g.node("Transpose", [hot], perm=perm)


def _onehot(g, labels, k=None, axis=-1):
    return _onehot_of(g, labels, k, axis, g.rank(0) + 1)


def _cross_entropy(g, z, t, axis=-1):
    rank = g.rank(0)
    axis = norm_axis(axis, rank)
    if g.rank(1) == rank - 1:  # class labels, the class axis left out
        t = _onehot_of(g, t, g.arg_shapes[0][axis], axis, rank)
    picked = g.node("ReduceSum", [g.node("Mul", [t, _log_softmax_of(g, z, axis)]), g.ints([axis])], keepdims=0)
    return g.node("Neg", [_mean_all(g, picked)])


# ---- indexing, running sums, padding ---------------------------------------------------------------
def _indices(g, idx):
    return g.node("Cast", [g.node("Round", [idx])], to=g.onnx.TensorProto.INT64)


def _take(g, x, idx, axis=0):
    return g.node("Gather", [x, _indices(g, idx)], axis=norm_axis(axis, g.rank(0)))


def _take_grad(g, grad, idx, like=None, axis=0):
    """Scatter-add grad into zeros shaped `like` along `axis`: repeated indices accumulate."""
    rank = len(like)
    axis = norm_axis(axis, rank)
    flat = g.node("Reshape", [_indices(g, idx), g.ints([-1])])
    size = g.dim(like[axis].name) if isinstance(like[axis], DimRef) else g.ints([int(like[axis])])
    flat = g.node("Where", [g.node("Less", [flat, g.ints(0)]), g.node("Add", [flat, size]), flat])
    count = int(np.prod(g.arg_shapes[1])) if all(isinstance(d, int) for d in g.arg_shapes[1]) else -1
    grad = g.node("Reshape", [grad, g.shape_tensor(tuple(like[:axis]) + (count,) + tuple(like[axis + 1:]))],
                  allowzero=int(count != -1))
    spread = g.node("Reshape", [flat, g.ints([1] * axis + [-1] + [1] * (rank - axis - 1))])
    spread = g.node("Expand", [spread, g.node("Shape", [grad])])
    return g.node("ScatterElements", [g.full(like, 0.0), spread, grad], axis=axis, reduction="add")


def _cumsum(reverse):
    return lambda g, x, axis=0: g.node("CumSum", [x, g.ints(norm_axis(axis, g.rank(0)))], reverse=reverse)


def _pad(g, x, widths=None, value=0.0):
    refuse_free(*[d for d, w in zip(g.arg_shapes[0], widths) if any(w)])
    pads = [int(a) for a, _ in widths] + [int(c) for _, c in widths]
    return g.node("Pad", [x, g.ints(pads), g.const(float(value))], mode="constant")


def _arg(op_type):
    """The first extreme's index along `axis` or of the flattened array; as NumPy's, the first NaN's where
    there is one (onnxruntime's ArgMax and ArgMin skip NaN)."""
    def build(g, x, axis=None):
        if axis is None:
            x, axis = g.node("Reshape", [x, g.ints([-1])]), 0
        else:
            axis = norm_axis(axis, g.rank(0))
        found = g.node(op_type, [x], axis=axis, keepdims=0, select_last_index=0)
        nan = g.cast(g.node("IsNaN", [x]))
        first_nan = g.node("ArgMax", [nan], axis=axis, keepdims=0, select_last_index=0)
        any_nan = g.node("Greater", [g.node("ReduceMax", [nan, g.ints([axis])], keepdims=0), g.const(0.0)])
        return g.cast(g.node("Where", [any_nan, first_nan, found]))
    return build


# ---- shapes ---------------------------------------------------------------------------------------
def _target(shape, like):
    return tuple(like) if like is not None else _shape_kw(shape)


def _to_out_shape(g, x):
    """x reshaped to the step's result shape: the graph's sizes (a -1 resolved), free dims read at run time."""
    return g.node("Reshape", [x, g.shape_tensor(g.out_shape)], allowzero=1)  # a 0 is a size, not "copy"


def _reshape(g, x, shape=None, like=None):
    refuse_free(*[d for d in g.arg_shapes[0] if d not in g.out_shape])  # a free dim merged or split
    return _to_out_shape(g, x)


def _broadcast_to(g, x, shape=None, like=None):
    return g.expand(x, _target(shape, like))


def _expand_dims(g, x, axis=0):
    return g.node("Unsqueeze", [x, g.ints([norm_axis(axis, g.rank(0) + 1)])])


def _squeeze(g, x, axis=None):
    shape = g.arg_shapes[0]
    axes = [i for i, d in enumerate(shape) if d == 1] if axis is None else list(_axes(axis, len(shape)))
    refuse_free(*[shape[a] for a in axes])  # of size 1 in the data
    return g.node("Squeeze", [x, g.ints(axes)]) if axes else g.node("Identity", [x])


def _flatten(g, x, start=1):
    shape = g.arg_shapes[0]
    start = int(start) % max(len(shape), 1)
    refuse_free(*shape[start:])  # the merged axis's length is a number in the graph after it
    return _to_out_shape(g, x)


def _concat(g, *xs, axis=0):
    axis = norm_axis(axis, g.rank(0))
    refuse_free(*[shape[axis] for shape in g.arg_shapes])
    return g.node("Concat", list(xs), axis=axis)


def _stack(g, *xs, axis=0):
    axis = norm_axis(axis, g.rank(0) + 1)
    return g.node("Concat", [g.node("Unsqueeze", [x, g.ints([axis])]) for x in xs], axis=axis)


def _sliced_axes(key):
    return [a for a, k in enumerate(key) if isinstance(k, slice) and k != slice(None)]


def _index(g, x, key=()):
    refuse_free(*[g.arg_shapes[0][a] for a in _sliced_axes(key)])  # the slice's length is a number after it
    return _pick(g, x, key)


def _pick(g, x, key):
    """x[key] for ints and slices (any step): one Slice, then one Gather per int, last axis first."""
    sliced = [(a, key[a]) for a in _sliced_axes(key)]
    if sliced:
        starts, ends, steps = zip(*[_slice_bounds(k) for _, k in sliced])
        x = g.node("Slice", [x, g.ints(list(starts)), g.ints(list(ends)), g.ints([a for a, _ in sliced]),
                             g.ints(list(steps))])
    for a in sorted((a for a, k in enumerate(key) if not isinstance(k, slice)), reverse=True):
        x = g.node("Gather", [x, g.ints(int(key[a]))], axis=a)
    return x if sliced or any(not isinstance(k, slice) for k in key) else g.node("Identity", [x])


def _slice_bounds(k: slice):
    """ONNX Slice's (start, end, step) for a Python slice: its clamping matches Python's."""
    step = 1 if k.step is None else int(k.step)
    if step > 0:
        return (0 if k.start is None else int(k.start)), (_INT_MAX if k.stop is None else int(k.stop)), step
    return (_INT_MAX if k.start is None else int(k.start)), (_INT_MIN if k.stop is None else int(k.stop)), step


def _index_grad(g, grad, like=None, key=()):
    """zeros shaped `like` with grad at x[key]: the flat positions x[key] reads (an arange indexed by the
    same key, any size of a free dim included) receive grad (ScatterElements; the positions are distinct)."""
    refuse_free(*[like[a] for a in _sliced_axes(key)])
    shape = g.shape_tensor(like)
    total = g.node("ReduceProd", [shape], keepdims=1)
    positions = g.node("Range", [g.ints(0), g.node("Squeeze", [total]), g.ints(1)])
    picked = _pick(g, g.node("Reshape", [positions, shape], allowzero=1), key)
    zeros = g.node("ConstantOfShape", [total], value=g.fill(0.0))
    flat = g.node("ScatterElements", [zeros, g.node("Reshape", [picked, g.ints([-1])]),
                                      g.node("Reshape", [grad, g.ints([-1])])], axis=0)
    return g.node("Reshape", [flat, shape], allowzero=1)


# ---- convolution and pooling (onnx_windows.py) ---------------------------------------------------------
def _conv(nd=None):
    def build(g, x, w, nd=nd or 2, **kw):
        return win.conv(g, x, w, g.arg_shapes[0], g.arg_shapes[1], int(nd), **kw)
    return build if nd is None else (lambda g, x, w, **kw: build(g, x, w, nd=nd, **kw))


def _conv_input_grad(g, gy, w, like=None, nd=2, **kw):
    return win.conv_input_grad(g, gy, w, like, g.arg_shapes[1], int(nd), **kw)


def _conv_weight_grad(g, x, gy, like=None, nd=2, **kw):
    return win.conv_weight_grad(g, x, gy, g.arg_shapes[0], like, int(nd), **kw)


ONNX_OPS = {
    # constructors
    "arange": _arange,
    "ones": lambda g, shape=None: g.full(_shape_kw(shape), 1.0),
    "zeros": lambda g, shape=None: g.full(_shape_kw(shape), 0.0),
    "eye": _eye, "zeros_like": lambda g, like=None: g.full(like, 0.0),
    "tril": _triangle(0), "triu": _triangle(1),
    # reductions and the engine's broadcasting helpers
    "sum": _reduction("ReduceSum"), "mean": _reduction("ReduceMean"),
    "max": _reduction("ReduceMax"), "min": _reduction("ReduceMin"),
    "logsumexp": _logsumexp, "var": _var,
    "norm": _reduction("ReduceSum", _square, lambda g, y: g.node("Sqrt", [y])),
    "sqnorm": _reduction("ReduceSum", _square),
    "unreduce": _unreduce, "sum_to": _sum_to, "extreme_mask": _extreme_mask, "count": _count,
    # arithmetic and comparisons
    "add": _binary("Add"), "sub": _binary("Sub"), "mul": _binary("Mul"), "div": _binary("Div"),
    "pow": _binary("Pow"), "neg": _unary("Neg"),
    "lt": _compare("Less"), "le": _compare("LessOrEqual"), "gt": _compare("Greater"),
    "ge": _compare("GreaterOrEqual"), "eq": _compare("Equal"), "ne": _compare("Equal", negate=True),
    "max_mask": _mask("Greater"), "min_mask": _mask("Less"),
    "maximum": _binary("Max"), "minimum": _binary("Min"),
    "clip": lambda g, x, lo, hi: g.node("Min", [g.node("Max", [x, lo]), hi]),
    "where": _where,
    # elementwise functions
    "exp": _unary("Exp"), "log": _unary("Log"), "sqrt": _unary("Sqrt"), "abs": _unary("Abs"),
    "sign": _unary("Sign"), "reciprocal": _unary("Reciprocal"), "sin": _unary("Sin"), "cos": _unary("Cos"),
    "floor": _unary("Floor"), "ceil": _unary("Ceil"), "round": _unary("Round"),  # half to even, as NumPy
    "log1p": m.log1p, "expm1": m.expm1, "square": _square,
    "log2": _log_base(2.0), "log10": _log_base(10.0),
    "tan": m.tan, "atan": m.atan, "asin": m.asin, "acos": m.acos,
    "sinh": m.sinh, "cosh": m.cosh, "erf": m.erf,
    "stop_gradient": _unary("Identity"), "identity": _unary("Identity"),
    # activations and their derivatives
    "relu": _unary("Relu"), "relu'": lambda g, x: g.cast(_positive(g, x)),
    "leaky_relu": _leaky_relu, "leaky_relu'": _leaky_relu_slope,
    "elu": _elu, "elu'": _elu_slope,
    "sigmoid": m.sigmoid, "sigmoid'": m.sigmoid_slope,
    "tanh": _unary("Tanh"), "tanh'": _tanh_slope,
    "gelu": _gelu, "gelu'": _gelu_slope, "gelu''": _gelu_curvature,
    "softplus": m.softplus, "log_sigmoid": _log_sigmoid,
    # linear algebra
    "matmul": _matmul, "outer": _outer, "transpose": _transpose, "trace": _trace, "einsum": _einsum,
    # neural-network builtins
    "softmax": _softmax, "log_softmax": _log_softmax,
    "mse": _mse, "bce": _bce, "bce_with_logits": _bce_with_logits, "cross_entropy": _cross_entropy,
    "onehot": _onehot, "dropout": lambda g, x, mask, p=0.5: g.node("Mul", [x, mask]),
    # convolution and pooling
    "conv1d": _conv(1), "conv2d": _conv(2), "conv": _conv(),
    "conv_input_grad": _conv_input_grad, "conv_weight_grad": _conv_weight_grad,
    "max_pool2d": lambda g, x, **kw: win.max_pool(g, x, g.arg_shapes[0], **kw),
    "max_pool2d_grad": lambda g, gy, x, **kw: win.max_pool_grad(g, gy, x, **kw),
    "pool_select": lambda g, gg, x, **kw: win.pool_select(g, gg, x, **kw),
    "avg_pool2d": lambda g, x, **kw: win.avg_pool(g, x, g.arg_shapes[0], **kw),
    "avg_pool2d_grad": lambda g, gy, like=None, **kw: win.avg_pool_grad(g, gy, like, **kw),
    # indexing, running sums, padding
    "take": _take, "take_grad": _take_grad,
    "cumsum": _cumsum(0), "rev_cumsum": _cumsum(1), "pad": _pad,
    "argmax": _arg("ArgMax"), "argmin": _arg("ArgMin"),
    "index": _index, "index_grad": _index_grad,
    # shapes
    "reshape": _reshape, "broadcast_to": _broadcast_to, "expand_dims": _expand_dims, "squeeze": _squeeze,
    "flatten": _flatten, "concat": _concat, "stack": _stack,
}

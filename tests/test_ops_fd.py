"""Every primitive's reverse-mode rule against a finite-difference Jacobian.

Each case is a small model written in the language, `Y = <expr>` over tiny inputs.
First order: the full Jacobian dY/dx from reverse mode (one `grad` of
`J = sum(Y * w)` per output element, with w a unit vector) is compared with the
central-difference Jacobian from `eval` of Y. Higher orders use the language's
own `grad`: `K = sum(grad(J, a) * va) + ...` (and once more for third order),
and compare `grad(K)` with central differences of K. float64, step 1e-6,
atol 1e-5, rtol 1e-3; the largest error is printed at the end of the run.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pytest

import graphdsl
from graphdsl.ops import REGISTRY, concrete

STEP = 1e-6
ATOL, RTOL = 1e-5, 1e-3


# ---- value generators (deterministic per case) ----------------------------------------

def N(*shape):
    """Normal values kept away from 0 (and so from the kinks of relu & co)."""
    def make(rng):
        x = rng.standard_normal(shape)
        return np.sign(x) * (0.2 + np.abs(x))
    return make


def P(*shape, low=0.5, high=2.0):
    """Positive values (log, sqrt, division, a base with a variable exponent)."""
    return lambda rng: rng.uniform(low, high, shape)


def U(*shape):
    """Values in (0.1, 0.9): probabilities, bce targets."""
    return lambda rng: rng.uniform(0.1, 0.9, shape)


def D(*shape):
    """Distinct values at least 0.3 apart: no ties for max and min."""
    def make(rng):
        n = int(np.prod(shape)) if shape else 1
        return (rng.permutation(n) * 0.3 - 0.15 * n + rng.uniform(0, 0.05, n)).reshape(shape)
    return make


def MASK(*shape):
    return lambda rng: (rng.uniform(size=shape) > 0.5).astype(float)


def ONEHOT(*shape, axis=-1):
    def make(rng):
        logits = rng.standard_normal(shape)
        return (logits == logits.max(axis=axis, keepdims=True)).astype(float)
    return make


def PROB(*shape, axis=-1):
    def make(rng):
        e = np.exp(rng.standard_normal(shape))
        return e / e.sum(axis=axis, keepdims=True)
    return make


def LABELS(*shape, k):
    return lambda rng: rng.integers(0, k, shape).astype(float)


def FIXED(value):
    return lambda rng: np.asarray(value, dtype=float)


# ---- cases -------------------------------------------------------------------------------

@dataclass
class Case:
    id: str
    expr: str
    inputs: dict
    wrt: tuple | None = None  # None: every input
    orders: tuple = (1, 2)  # which derivative orders to check
    fd: bool = True  # False: finite differences are meaningless (integer labels)

    def values(self):
        rng = np.random.default_rng(zlib.crc32(self.id.encode()))
        return {k: np.array(make(rng), dtype=float) for k, make in self.inputs.items()}

    def wrt_names(self):
        return list(self.wrt) if self.wrt is not None else list(self.inputs)


CASES: list[Case] = []


def case(id, expr, orders=(1, 2), wrt=None, **inputs):
    CASES.append(Case(id, expr, inputs, wrt, orders))


# Binary elementwise operators over broadcasting pairs.
PAIRS = [((3, 1), (1, 4)), ((4,), (3, 4)), ((3, 4), (4,)), ((), (3,)), ((2, 3), (2, 3)), ((2, 1, 3), (4, 1))]
BINARY = {"add": "a + c", "sub": "a - c", "mul": "a * c", "div": "a / c", "pow": "a ** c",
          "maximum": "maximum(a, c)", "minimum": "minimum(a, c)"}
for _op, _expr in BINARY.items():
    for _sa, _sc in PAIRS:
        _pair = f"{list(_sa)}+{list(_sc)}".replace(" ", "")
        _a = P(*_sa) if _op == "pow" else N(*_sa)
        _c = P(*_sc) if _op == "div" else N(*_sc)
        case(f"{_op}-{_pair}", _expr, a=_a, c=_c)

case("add-literal", "2 + a - 1.5 + a", a=N(3))
case("mul-literal", "3 * a * 0.5", a=N(3))
case("div-literal-num", "1 / a", a=P(3))
case("div-literal-den", "a / 4", a=N(3))
case("pow-const-2", "a ** 2", a=N(3, 2))
case("pow-const-3-negative-base", "a ** 3", a=N(3, 2))
case("pow-const-half", "a ** 0.5", a=P(3, 2))
case("pow-const-negative", "a ** -1.5", a=P(3, 2))
case("pow-const-0", "a ** 0 + a", a=P(3))
case("pow-const-base", "2 ** a", a=N(4))
case("pow-scalar-exponent", "a ** c", a=P(2, 3), c=FIXED(3.0))
case("pow-shared-base", "a ** a", a=P(4))
case("neg", "-a", a=N(3, 2))
case("unary-plus", "+a * a", a=N(3))
case("identity", "a", a=N(2, 3))
case("fan-out", "a * a + sin(a) * a", a=N(3, 2))
case("where", "where(m, a, c)", m=MASK(3, 4), a=N(3, 1), c=N(4))
case("where-compare", "where(a > 0, a, 0.1 * a)", a=N(3, 4))
case("where-scalar-branch", "where(m, a, 2.0)", m=MASK(4), a=N(4))
case("maximum-literal", "maximum(a, 0.1)", a=N(5))
case("clip-literal", "clip(a, -0.5, 0.5)", a=FIXED([-1.3, -0.7, -0.2, 0.1, 0.3, 0.9, 2.0]))
case("clip-keywords", "clip(a, lo=-0.5, hi=0.5)", a=FIXED([[-1.3, -0.7, -0.2], [0.1, 0.3, 0.9]]))
case("clip-inputs", "clip(a, lo, hi)", a=N(3, 4), lo=FIXED([[-0.5], [-0.3], [-0.6]]),
     hi=FIXED([0.5, 0.3, 0.8, 0.45]))
case("clip-keyword-inputs", "clip(a, lo=lo, hi=hi)", a=N(2, 3), lo=FIXED(-0.4), hi=FIXED([0.3, 0.5, 0.7]))

# Elementwise functions on their domains, away from kinks.
UNARY = {
    "exp": N(3, 4), "log": P(3, 4), "log1p": U(3, 4), "expm1": N(3, 4), "sqrt": P(3, 4),
    "square": N(3, 4), "abs": N(3, 4), "reciprocal": N(3, 4), "sin": N(3, 4), "cos": N(3, 4),
    "tanh": N(3, 4), "sigmoid": N(3, 4), "softplus": N(3, 4), "log_sigmoid": N(3, 4),
    "relu": N(3, 4), "leaky_relu": N(3, 4), "elu": N(3, 4), "gelu": N(3, 4),
}
for _op, _gen in UNARY.items():
    case(_op, f"{_op}(a)", a=_gen)
case("log1p-negative", "log1p(a)", a=lambda rng: -U(5)(rng))
case("leaky_relu-alpha", "leaky_relu(a, alpha=0.2)", a=N(3, 4))
case("leaky_relu-positional", "leaky_relu(a, 0.3)", a=N(3, 4))
case("elu-alpha", "elu(a, alpha=0.5)", a=N(3, 4))
case("sigmoid-large", "sigmoid(a)", a=FIXED([-30.0, -5.0, 5.0, 30.0]))
case("softplus-large", "softplus(a)", a=FIXED([-40.0, -5.0, 5.0, 40.0]))
case("log_sigmoid-large", "log_sigmoid(a)", a=FIXED([-40.0, -5.0, 5.0, 40.0]))
case("tanh-composed", "tanh(a @ b + c)", a=N(2, 3), b=N(3, 4), c=N(4))
# Third derivatives reach the derivative ops' own rules (gelu'' and friends).
for _op in ["sigmoid", "tanh", "gelu", "elu", "softplus", "log_sigmoid", "leaky_relu", "exp", "log", "sin",
            "cos", "sqrt", "reciprocal", "square", "abs", "relu"]:
    case(f"{_op}-third", f"{_op}(a)", orders=(3,), a=P(4) if _op in ("log", "sqrt") else N(4))
case("elu-alpha-third", "elu(a, alpha=0.5)", orders=(3,), a=N(4))
case("pow-variable-third", "a ** c", orders=(3,), a=P(3), c=N(3))

# Linear algebra.
MATMUL = [((3,), (3,)), ((3,), (3, 4)), ((3, 4), (4,)), ((3, 4), (4, 2)), ((2, 3, 4), (2, 4, 5)),
          ((2, 3, 4), (4, 5)), ((4, 5), (2, 5, 3)), ((2, 1, 3, 4), (3, 4, 2)), ((4,), (2, 4, 3)),
          ((2, 3, 4), (4,)), ((1, 3), (3, 1))]
for _sa, _sc in MATMUL:
    case(f"matmul-{list(_sa)}@{list(_sc)}".replace(" ", ""), "a @ c", a=N(*_sa), c=N(*_sc))
case("matmul-call", "matmul(a, c)", a=N(2, 3), c=N(3, 2))
case("dot-1d", "dot(a, c)", a=N(4), c=N(4))
case("matmul-self-transpose", "a @ a.T", a=N(3, 2))
case("outer", "outer(a, c)", a=N(3), c=N(4))
case("transpose-T", "a.T", a=N(3, 4))
case("transpose-1d", "a.T", a=N(3))
case("transpose-default", "transpose(a)", a=N(2, 3, 4))
case("transpose-axes", "transpose(a, axes=[1, 2, 0])", a=N(2, 3, 4))
case("transpose-axes-negative", "transpose(a, axes=[0, -1, 1])", a=N(2, 3, 4))
case("transpose-twice", "transpose(transpose(a, axes=[1, 2, 0]), axes=[1, 2, 0]) * c", a=N(2, 3, 4),
     c=N(4, 2, 3))
case("trace-square", "trace(a)", a=N(3, 3))
case("trace-wide", "trace(a)", a=N(3, 4))
case("trace-product", "trace(a @ c)", a=N(3, 2), c=N(2, 3))

# Reductions: axis None / int / negative / list, keepdims true and false.
REDUCTIONS = ["sum", "mean", "max", "min", "logsumexp", "var", "norm", "sqnorm"]
AXES = [("", "all"), (", keepdims=true", "all-keep"), (", axis=0", "0"), (", axis=1, keepdims=true", "1-keep"),
        (", axis=-1", "-1"), (", axis=[0, 2]", "02"), (", axis=[0, 2], keepdims=true", "02-keep"),
        (", axis=[-1, 1]", "-1,1")]
for _op in REDUCTIONS:
    for _kw, _name in AXES:
        case(f"{_op}-axis={_name}", f"{_op}(a{_kw})", a=D(2, 3, 4) if _op in ("max", "min") else N(2, 3, 4))
    case(f"{_op}-1d", f"{_op}(a)", a=D(5) if _op in ("max", "min") else N(5))
    case(f"{_op}-size-1-axis", f"{_op}(a, axis=0)", a=D(1, 4) if _op in ("max", "min") else N(1, 4))
case("max-positional-axis", "max(a, 1)", a=D(3, 4))
case("logsumexp-large", "logsumexp(a, axis=1)", a=lambda rng: 1000.0 + N(2, 3)(rng))
case("logsumexp-very-negative", "logsumexp(a)", a=lambda rng: -1000.0 + N(4)(rng))
case("var-of-constant-shift", "var(a + 100, axis=0)", a=N(4, 2))

# Shapes.
case("reshape-infer", "reshape(a, [2, -1])", a=N(3, 2, 2))
case("reshape-flat", "reshape(a, [6])", a=N(2, 3))
case("reshape-3d", "reshape(a, [3, 2, 1])", a=N(6))
case("reshape-scalar", "reshape(a, [1, 1]) * c", a=N(), c=N(2, 1))
case("concat-axis0", "concat([a, c], axis=0)", a=N(2, 3), c=N(1, 3))
case("concat-axis1", "concat([a, c], axis=1)", a=N(2, 3), c=N(2, 2))
case("concat-axis-negative", "concat([a, c], axis=-1)", a=N(2, 2, 1), c=N(2, 2, 3))
case("concat-repeated", "concat([a, c, a])", a=N(2), c=N(3))
case("concat-positional-axis", "concat([a, c], 1)", a=N(2, 1), c=N(2, 2))
case("stack-axis0", "stack([a, c], axis=0)", a=N(2, 3), c=N(2, 3))
case("stack-axis1", "stack([a, c], axis=1)", a=N(2, 3), c=N(2, 3))
case("stack-axis-negative", "stack([a, c, a], axis=-1)", a=N(2, 3), c=N(2, 3))
case("array-literal-of-names", "[a, c, a * c]", a=N(), c=N())
case("array-literal-nested", "[[a, 1], [c, a]]", a=N(), c=N())
case("expand_dims-0", "expand_dims(a, 0)", a=N(2, 3))
case("expand_dims-negative", "expand_dims(a, -1)", a=N(2, 3))
case("expand_dims-keyword", "expand_dims(a, axis=1) + c", a=N(2, 3), c=N(4, 3))
case("squeeze-all", "squeeze(a)", a=N(1, 3, 1))
case("squeeze-axis", "squeeze(a, 0)", a=N(1, 3, 1))
case("squeeze-axes", "squeeze(a, axis=[0, 2])", a=N(1, 3, 1, 2))
case("broadcast_to-row", "broadcast_to(a, [3, 4])", a=N(4))
case("broadcast_to-column", "broadcast_to(a, [3, 4])", a=N(3, 1))
case("broadcast_to-scalar", "broadcast_to(a, [2, 3])", a=N())
case("broadcast_to-3d", "broadcast_to(a, [2, 3, 4])", a=N(3, 1))
case("broadcast_to-same", "broadcast_to(a, [2, 3])", a=N(2, 3))
case("index-int", "a[0]", a=N(3, 4))
case("index-column", "a[:, 1]", a=N(3, 4))
case("index-slice", "a[1:3]", a=N(4, 2))
case("index-negative", "a[-1]", a=N(3, 4))
case("index-mixed", "a[0, 1:3]", a=N(3, 4))
case("index-3d", "a[1, :, -2:]", a=N(2, 3, 4))
case("index-step", "a[::2]", a=N(5))
case("index-scalar-element", "a[1, 2] * a", a=N(3, 4))
case("index-overlapping", "a[0:2] * a[1:3]", a=N(3))

# Neural-network builtins.
for _op in ["softmax", "log_softmax"]:
    case(f"{_op}", f"{_op}(a)", a=N(3, 4))
    case(f"{_op}-axis0", f"{_op}(a, axis=0)", a=N(3, 4))
    case(f"{_op}-1d", f"{_op}(a)", a=N(5))
    case(f"{_op}-3d-axis1", f"{_op}(a, axis=1)", a=N(2, 3, 4))
    case(f"{_op}-large", f"{_op}(a)", a=lambda rng: 500.0 + 3 * N(2, 3)(rng))
case("cross_entropy-onehot", "cross_entropy(z, t)", wrt=("z",), z=N(3, 4), t=ONEHOT(3, 4))
case("cross_entropy-prob", "cross_entropy(z, t)", z=N(3, 4), t=PROB(3, 4))
case("cross_entropy-axis0", "cross_entropy(z, t, axis=0)", z=N(4, 3), t=PROB(4, 3, axis=0))
case("cross_entropy-1d", "cross_entropy(z, t)", z=N(5), t=PROB(5))
case("cross_entropy-3d", "cross_entropy(z, t, axis=1)", z=N(2, 3, 2), t=PROB(2, 3, 2, axis=1))
case("cross_entropy-unnormalised", "cross_entropy(z, t)", z=N(2, 3), t=U(2, 3))
case("cross_entropy-onehot-call", "cross_entropy(z, onehot(lab, 4))", wrt=("z",), z=N(3, 4),
     lab=LABELS(3, k=4))
case("mse", "mse(o, y)", o=N(3, 4), y=N(3, 4))
case("mse-broadcast", "mse(o, y)", o=N(3, 4), y=N(4))
case("mse-1d", "mse(o, y)", o=N(5), y=N(5))
case("bce", "bce(p, y)", p=U(3, 4), y=U(3, 4))
case("bce-hard-targets", "bce(p, y)", wrt=("p",), p=U(6), y=FIXED([0, 1, 1, 0, 1, 0]))
case("bce_with_logits", "bce_with_logits(z, y)", z=N(3, 4), y=U(3, 4))
case("bce_with_logits-large", "bce_with_logits(z, y)", z=FIXED([-40.0, -3.0, 3.0, 40.0]),
     y=FIXED([0.0, 1.0, 0.0, 1.0]))
case("bce_with_logits-broadcast", "bce_with_logits(z, y)", z=N(3, 4), y=U(4))

# v2 builtins: convolution and pooling (NCHW), with stride, padding, dilation and groups.
case("conv2d", "conv2d(x, w)", x=N(2, 2, 4, 4), w=N(3, 2, 2, 2))
case("conv2d-stride-padding", "conv2d(x, w, stride=2, padding=1)", x=N(1, 2, 5, 5), w=N(2, 2, 3, 3))
case("conv2d-pairs-dilation", "conv2d(x, w, stride=[1, 2], padding=[0, 1], dilation=[2, 1])", x=N(1, 1, 5, 4),
     w=N(2, 1, 2, 2))
case("conv2d-groups", "conv2d(x, w, groups=2)", x=N(1, 4, 3, 3), w=N(2, 2, 2, 2))
case("conv2d-third", "conv2d(x, w, padding=1) ** 2", orders=(3,), x=N(1, 1, 3, 3), w=N(1, 1, 2, 2))
case("conv1d", "conv1d(x, w, stride=2, padding=1, dilation=2)", x=N(2, 2, 6), w=N(3, 2, 2))
case("conv1d-groups", "conv1d(x, w, groups=2)", x=N(1, 2, 5), w=N(4, 1, 3))
case("max_pool2d", "max_pool2d(x, 2)", x=D(1, 2, 4, 4))
case("max_pool2d-stride-padding", "max_pool2d(x, [2, 3], stride=1, padding=1)", x=D(1, 1, 4, 5))
case("max_pool2d-third", "max_pool2d(x, 2) ** 3", orders=(3,), x=D(1, 1, 4, 4))
case("avg_pool2d", "avg_pool2d(x, 2)", x=N(1, 2, 4, 4))
case("avg_pool2d-stride-padding", "avg_pool2d(x, [3, 2], stride=[2, 1], padding=1)", x=N(1, 1, 5, 4))
case("flatten", "flatten(x)", x=N(2, 2, 3))
case("flatten-start", "flatten(x, 2) * x[0, 0, 0, 0]", x=N(2, 2, 2, 2))
case("lenet-block", "flatten(max_pool2d(relu(conv2d(x, w, padding=1)), 2)) @ v", x=N(1, 1, 4, 4),
     w=N(2, 1, 3, 3), v=N(8, 2))
# gather: repeated and negative indices accumulate into the same rows
case("take-axis0", "take(x, idx)", wrt=("x",), x=N(4, 3), idx=FIXED([[0, 2], [2, -1]]))
case("take-axis1", "take(x, idx, axis=1)", wrt=("x",), x=N(2, 4), idx=FIXED([3, 3, 0, -4, 1]))
case("take-third", "take(x, idx) ** 3", orders=(3,), wrt=("x",), x=N(3), idx=FIXED([1, 1, 0]))
case("cross_entropy-labels", "cross_entropy(z, t)", wrt=("z",), z=N(4, 3), t=LABELS(4, k=3))
case("cross_entropy-labels-axis1", "cross_entropy(z, t, axis=1)", wrt=("z",), z=N(2, 3, 2), t=LABELS(2, 2, k=3))
case("cross_entropy-labels-third", "cross_entropy(z, t)", orders=(3,), wrt=("z",), z=N(3, 3), t=LABELS(3, k=3))
# v2 elementwise functions on their domains
for _op, _gen in {"tan": U(3, 4), "atan": N(3, 4), "asin": U(3, 4), "acos": U(3, 4), "sinh": N(3, 4),
                  "cosh": N(3, 4), "erf": N(3, 4), "log2": P(3, 4), "log10": P(3, 4)}.items():
    case(_op, f"{_op}(a)", a=_gen)
    case(f"{_op}-third", f"{_op}(a)", orders=(3,), a=U(4) if _op in ("tan", "asin", "acos") else
         P(4) if _op.startswith("log") else N(4))
case("einsum-matmul", 'einsum("ij,jk->ik", a, c)', a=N(2, 3), c=N(3, 2))
case("einsum-batch-three", 'einsum("bij,jk,i->bk", a, c, d)', a=N(2, 2, 3), c=N(3, 2), d=N(2))
case("einsum-summed-alone", 'einsum("ij->i", a) * einsum("ij,ij->", a, a)', a=N(2, 3))
case("einsum-transpose-third", 'einsum("ij->ji", a) ** 3', orders=(3,), a=N(2, 2))
case("dropout-eval-mode", "dropout(a, 0.3) * a", a=N(3, 4))  # the identity outside training
case("cumsum-0", "cumsum(a, 0)", a=N(3, 4))
case("cumsum-negative-axis", "cumsum(a, axis=-1) ** 2", orders=(1, 2, 3), a=N(2, 3))
case("pad", "pad(a, [[1, 0], [2, 1]], value=0.5)", a=N(2, 3))
case("pad-1d", "pad(a, [[0, 2]]) * pad(a, [[2, 0]])", a=N(3))
case("tril", "tril(a)", a=N(3, 4))
case("tril-k", "tril(a, k=-1) + triu(a, 1)", a=N(2, 3, 3))
case("triu", "triu(a, k=0) ** 2", orders=(1, 2, 3), a=N(3, 3))

# A def, inlined.
CASES_DEF_PRELUDE = "def f(u, v) = tanh(u) * v + u\n"
case("def-inlined", "f(a, c) + f(c, a)", a=N(3), c=N(3))

# ---- non-differentiable operators: zero gradient ---------------------------------------

ZERO_CASES = [
    Case("sign", "sign(a)", {"a": N(3, 4)}),
    Case("lt", "a < c", {"a": N(3, 1), "c": N(1, 4)}),
    Case("le", "a <= c", {"a": N(4), "c": N(3, 4)}),
    Case("gt", "a > c", {"a": N(3, 4), "c": N(4)}),
    Case("ge", "a >= c", {"a": N(), "c": N(3)}),
    Case("eq", "a == c", {"a": N(2, 3), "c": N(2, 3)}),
    Case("ne", "a != c", {"a": N(2, 3), "c": N(2, 3)}),
    Case("onehot", "onehot(lab, 4)", {"lab": LABELS(3, k=4)}, fd=False),
    Case("onehot-axis0", "onehot(lab, 4, axis=0)", {"lab": LABELS(3, k=4)}, fd=False),
    # finite differences see stop_gradient as the identity, so only reverse mode is checked
    Case("stop_gradient", "stop_gradient(a)", {"a": N(3, 4)}, fd=False),
    Case("stop_gradient-exp", "exp(stop_gradient(a * c))", {"a": N(3, 4), "c": N(4)}, fd=False),
    Case("floor", "floor(a)", {"a": FIXED([[-1.3, -0.7, 0.2], [1.6, 2.4, 3.9]])}),
    Case("ceil", "ceil(a)", {"a": FIXED([[-1.3, -0.7, 0.2], [1.6, 2.4, 3.9]])}),
    Case("round", "round(a) * a ** 0", {"a": FIXED([[-1.3, -0.7, 0.2], [1.6, 2.4, 3.9]])}),
    Case("argmax", "argmax(a, 1) + argmax(a)", {"a": D(3, 4)}),
    Case("argmin", "argmin(a, axis=0)", {"a": D(3, 4)}),
    Case("constructors", "arange(3) + a * 0 + ones([2, 3]) + zeros([3]) + eye(3)[0:2]", {"a": N(3)}),
    Case("where-condition", "where(m, a, c) * 0 + where(m, 1, 2)", {"m": N(3), "a": N(3), "c": N(3)}),
]


# ---- the harness ------------------------------------------------------------------------

def _decls(values):
    return "".join(f"input {k} : [{', '.join(map(str, np.shape(v)))}]\n" for k, v in values.items())


def _model(c: Case, values, extra=""):
    prelude = CASES_DEF_PRELUDE if c.id.startswith("def-") else ""
    return graphdsl.parse(prelude + _decls(values) + f"Y = {c.expr}\n" + extra, name=c.id)


MODELS: dict = {}  # (case id, order) -> (model, top name, shape of Y); reused by the coverage test


def _top_model(c: Case, order: int):
    """J1 = sum(Y * w__); each further order contracts grad with a fixed direction v{k}__x."""
    key = (c.id, order)
    if key not in MODELS:
        values = c.values()
        text = "input w__\n"
        for k in range(2, order + 1):
            text += _decls({f"v{k}__{x}": values[x] for x in c.wrt_names()})
        text += "J1 = sum(Y * w__)\n"
        for k in range(2, order + 1):
            terms = " + ".join(f"sum(grad(J{k - 1}, {x}) * v{k}__{x})" for x in c.wrt_names())
            text += f"J{k} = {terms}\n"
        m = _model(c, values, text + f"output J{order}, Y\n")
        y_shape = concrete(m.graph.nodes["Y"]["shape"])
        assert y_shape is not None, f"{c.id}: the shape of Y is not known"
        MODELS[key] = (m, f"J{order}", y_shape)
    return MODELS[key]


def _compare(fd_record, where, ad, fd):
    ad, fd = np.asarray(ad), np.asarray(fd)
    assert ad.shape == fd.shape, f"{where}: reverse mode has shape {ad.shape}, FD {fd.shape}"
    err = float(np.max(np.abs(ad - fd))) if ad.size else 0.0
    fd_record.add(err, where)
    np.testing.assert_allclose(ad, fd, rtol=RTOL, atol=ATOL, err_msg=where)


def _fd_scalar(f, values, name):
    x0 = values[name]
    out = np.zeros(np.shape(x0))
    for i in np.ndindex(*np.shape(x0)):
        hi, lo = x0.copy(), x0.copy()
        hi[i] += STEP
        lo[i] -= STEP
        out[i] = (f({**values, name: hi}) - f({**values, name: lo})) / (2 * STEP)
    return out


def check_first_order(c: Case, fd_record):
    values = c.values()
    m, top, y_shape = _top_model(c, 1)
    values["w__"] = np.zeros(y_shape)
    size = int(np.prod(y_shape))
    wrt = c.wrt_names()
    # reverse mode, one row of the Jacobian per output element
    rows = {x: [] for x in wrt}
    for k in range(size):
        w = np.zeros(size)
        w[k] = 1.0
        _, grads = m.grad({**values, "w__": w.reshape(y_shape)}, of=top, wrt=wrt)
        for x in wrt:
            assert grads[x].shape == np.shape(values[x]), f"{c.id}: d/d{x} has shape {grads[x].shape}"
            rows[x].append(grads[x].reshape(-1))
    for x in wrt:
        x0 = values[x]
        ad = np.array(rows[x]).reshape(size, np.size(x0))
        # central differences, one column per input element
        cols = []
        for i in np.ndindex(*np.shape(x0)):
            hi, lo = x0.copy(), x0.copy()
            hi[i] += STEP
            lo[i] -= STEP
            yh = m.eval({**values, x: hi}, outputs=["Y"])["Y"]
            yl = m.eval({**values, x: lo}, outputs=["Y"])["Y"]
            assert np.shape(yh) == y_shape
            cols.append(((yh - yl) / (2 * STEP)).reshape(-1))
        fd = np.array(cols).T.reshape(size, np.size(x0))
        _compare(fd_record, f"{c.id} dY/d{x}", ad, fd)


def check_higher_order(c: Case, order: int, fd_record):
    values = c.values()
    rng = np.random.default_rng(zlib.crc32(f"{c.id}/{order}".encode()))
    m, top, y_shape = _top_model(c, order)
    values["w__"] = rng.standard_normal(y_shape)
    for k in range(2, order + 1):
        for x in c.wrt_names():
            values[f"v{k}__{x}"] = rng.standard_normal(np.shape(values[x]))
    _, grads = m.grad(values, of=top, wrt=c.wrt_names())
    f = lambda vals: float(m.eval(vals, outputs=[top])[top])  # noqa: E731
    for x in c.wrt_names():
        _compare(fd_record, f"{c.id} order {order} d/d{x}", grads[x], _fd_scalar(f, values, x))


PARAMS = [pytest.param(c, order, id=f"{c.id}" + ("" if order == 1 else f"-order{order}"))
          for c in CASES for order in c.orders]


@pytest.mark.parametrize("c, order", PARAMS)
def test_reverse_mode_matches_finite_differences(c, order, fd_record, fd_large_record):
    if max(float(np.max(np.abs(v), initial=0.0)) for v in c.values().values()) > 100:
        fd_record = fd_large_record  # FD rounding: |f| eps / step ~ 1e3 * 1e-16 / 1e-6
    if order == 1:
        check_first_order(c, fd_record)
    else:
        check_higher_order(c, order, fd_record)


@pytest.mark.parametrize("c", ZERO_CASES, ids=lambda c: c.id)
def test_non_differentiable_ops_give_zero_gradient(c, fd_record):
    values = c.values()
    m, top, y_shape = _top_model(c, 1)
    values["w__"] = np.random.default_rng(1).standard_normal(y_shape)
    _, grads = m.grad(values, of=top, wrt=c.wrt_names())
    f = lambda vals: float(m.eval(vals, outputs=[top])[top])  # noqa: E731
    for x in c.wrt_names():
        assert grads[x].shape == np.shape(values[x])
        assert np.all(grads[x] == 0.0), f"{c.id}: d/d{x} = {grads[x]}"
        if c.fd:
            _compare(fd_record, f"{c.id} (zero) d/d{x}", grads[x], _fd_scalar(f, values, x))


def test_stop_gradient_blocks_only_its_own_path():
    m = graphdsl.parse("input a : [3]\nJ = sum(stop_gradient(a) * a)")
    a = np.array([0.5, -2.0, 3.0])
    value, grads = m.grad({"a": a}, of="J", wrt=["a"])
    assert value == pytest.approx(np.sum(a * a))
    np.testing.assert_array_equal(grads["a"], a)


def test_comparison_mask_times_value():
    m = graphdsl.parse("input a : [4]\nJ = sum((a > 0) * a)")
    a = np.array([0.5, -2.0, 3.0, -0.1])
    _, grads = m.grad({"a": a}, of="J", wrt=["a"])
    np.testing.assert_array_equal(grads["a"], [1.0, 0.0, 1.0, 0.0])


def test_ties_split_the_gradient_evenly():
    """maximum/minimum and max/min share the gradient on ties, as PyTorch does."""
    m = graphdsl.parse("input a : [3]\ninput c : [3]\nJ = sum(maximum(a, c)) + max(a) + min(c)")
    _, grads = m.grad({"a": [1.0, 2.0, 2.0], "c": [1.0, 0.0, 2.0]}, of="J", wrt=["a", "c"])
    np.testing.assert_allclose(grads["a"], [0.5, 1.0 + 0.5, 0.5 + 0.5])
    np.testing.assert_allclose(grads["c"], [0.5, 0.0 + 1.0, 0.5])


def _ops_in(m) -> set:
    return {d["op"] for _, d in m.graph.nodes(data=True) if d["kind"] == "op"}


def test_every_operator_is_covered():
    """Adding an operator to the table without a case here fails this test."""
    seen = set()
    for c in CASES:
        seen |= _ops_in(_top_model(c, max(c.orders))[0])
    zero_seen = set()
    for c in ZERO_CASES:
        zero_seen |= _ops_in(_top_model(c, 1)[0])
    public = {name for name, op in REGISTRY.items() if not op.internal}
    differentiable = {name for name in public if REGISTRY[name].differentiable}
    missing = sorted(differentiable - seen)
    assert not missing, f"differentiable operators without a finite-difference case: {missing}"
    missing = sorted((public - differentiable) - zero_seen)
    assert not missing, f"non-differentiable operators without a zero-gradient case: {missing}"

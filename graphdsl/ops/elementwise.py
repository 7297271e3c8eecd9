"""Elementwise operators: arithmetic, comparisons, activations and their derivatives.

Reverse-mode rules are graph-building: `b.op(name, *inputs, **attrs)` adds a node
and returns its id; `n` is the node being differentiated (n.args, n.out, n.g,
n.attrs, n.needs(i)). The engine sums cotangents to each input's shape.
"""
from __future__ import annotations

import numpy as np

from .base import OpDef, broadcast_rule, register, unary_same

_SQRT_2PI = np.sqrt(2 * np.pi)


def _unary(name, forward, vjp=None, latex=None, differentiable=True, kwargs=None, doc="", local=()):
    return register(OpDef(name, forward, unary_same, vjp, (1, 1), kwargs or {}, latex=latex,
                          differentiable=differentiable, elementwise=True, doc=doc, local=local))


def _binary(name, forward, vjp=None, symbol=None, latex=None, differentiable=True, local=()):
    return register(OpDef(name, forward, broadcast_rule, vjp, (2, 2), symbol=symbol, latex=latex,
                          differentiable=differentiable, elementwise=True, local=local))


# ---- arithmetic ------------------------------------------------------------------

_binary("add", np.add, lambda b, n: [n.g, n.g], "+", r"{0} + {1}", local=("∂y/∂a = 1", "∂y/∂b = 1"))
_binary("sub", np.subtract, lambda b, n: [n.g, b.op("neg", n.g)], "-", r"{0} - {1}",
        local=("∂y/∂a = 1", "∂y/∂b = −1"))
_binary("mul", np.multiply,
        lambda b, n: [b.op("mul", n.g, n.args[1]), b.op("mul", n.args[0], n.g)], "*", r"{0} \odot {1}",
        local=("∂y/∂a = b", "∂y/∂b = a"))
_binary("div", np.divide,
        lambda b, n: [b.op("div", n.g, n.args[1]),
                      b.op("neg", b.op("div", b.op("mul", n.g, n.out), n.args[1])) if n.needs(1) else None],
        "/", r"\frac{{{0}}}{{{1}}}", local=("∂y/∂a = 1/b", "∂y/∂b = −a/b²"))


def _pow_vjp(b, n):
    # As PyTorch: d/dbase is 0 where the exponent is 0 (not 0 * 0**-1 = nan), and
    # d/dexpo is 0 where base == 0 and expo >= 0 (not 0 * log 0 = nan).
    base, expo = n.args
    c, k = b.const_value(expo), b.const_value(base)
    if c is not None and np.ndim(c) == 0:
        c = float(c)
        if c == 0.0:
            slope = None
        else:
            slope = b.op("mul", c, base if c == 2.0 else b.op("pow", base, c - 1.0))
    else:
        slope = b.op("mul", expo, b.op("pow", base, b.op("sub", expo, 1.0)))
        if c is None or np.any(c == 0):
            slope = b.op("where", b.op("eq", expo, 0.0), 0.0, slope)
    g_base = b.op("mul", n.g, slope) if slope is not None and n.needs(0) else None
    g_expo = None
    if n.needs(1):
        dexpo = b.op("mul", n.out, b.op("log", base))
        if k is None or np.any(k == 0):
            dexpo = b.op("where", b.op("mul", b.op("eq", base, 0.0), b.op("ge", expo, 0.0)), 0.0, dexpo)
        g_expo = b.op("mul", n.g, dexpo)
    return [g_base, g_expo]


_binary("pow", np.power, _pow_vjp, "**", r"{0}^{{{1}}}", local=("∂y/∂a = b·a^(b−1)", "∂y/∂b = y·log a"))
_unary("neg", np.negative, lambda b, n: [b.op("neg", n.g)], r"-{0}", local=("∂y/∂a = −1",))

# ---- comparisons: 0/1 masks, no gradient -----------------------------------------

for _name, _fn, _sym, _tex in [("lt", np.less, "<", "<"), ("le", np.less_equal, "<=", r"\leq"),
                               ("gt", np.greater, ">", ">"), ("ge", np.greater_equal, ">=", r"\geq"),
                               ("eq", np.equal, "==", "="), ("ne", np.not_equal, "!=", r"\neq")]:
    _binary(_name, (lambda f: lambda a, c: f(a, c).astype(np.float64))(_fn), None, _sym,
            "[{0} %s {1}]" % _tex, differentiable=False)


def _mask_fwd(winner):
    def fwd(a, c):
        return winner(a, c).astype(np.float64) + 0.5 * np.equal(a, c)
    return fwd


# PyTorch splits the gradient of maximum/minimum evenly on ties; so do we.
register(OpDef("max_mask", _mask_fwd(np.greater), broadcast_rule, None, (2, 2), latex=r"[{0} > {1}]",
               differentiable=False, elementwise=True, internal=True))
register(OpDef("min_mask", _mask_fwd(np.less), broadcast_rule, None, (2, 2), latex=r"[{0} < {1}]",
               differentiable=False, elementwise=True, internal=True))
_binary("maximum", np.maximum,
        lambda b, n: [b.op("mul", n.g, b.op("max_mask", *n.args)),
                      b.op("mul", n.g, b.op("max_mask", n.args[1], n.args[0]))], latex=r"\max({0}, {1})")
_binary("minimum", np.minimum,
        lambda b, n: [b.op("mul", n.g, b.op("min_mask", *n.args)),
                      b.op("mul", n.g, b.op("min_mask", n.args[1], n.args[0]))], latex=r"\min({0}, {1})")


def _clip_vjp(b, n):
    # PyTorch's clamp: x passes the gradient where lo <= x <= hi (ties included); lo
    # where x < lo < hi; hi where x > hi or hi < lo, since with lo > hi the result is
    # hi everywhere (min(max(x, lo), hi)). At lo == hi neither bound gets it.
    x, lo, hi = n.args
    inside = b.op("mul", b.op("ge", x, lo), b.op("le", x, hi))
    below = b.op("mul", b.op("lt", x, lo), b.op("lt", lo, hi)) if n.needs(1) else None
    above = b.op("maximum", b.op("gt", x, hi), b.op("lt", hi, lo)) if n.needs(2) else None
    return [b.op("mul", n.g, inside),
            b.op("mul", n.g, below) if below is not None else None,
            b.op("mul", n.g, above) if above is not None else None]


register(OpDef("clip", lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi), broadcast_rule, _clip_vjp,
               (3, 3), kw_inputs=("lo", "hi"), latex=r"\mathrm{{clip}}({0}, {1}, {2})", elementwise=True))


def _where_vjp(b, n):
    cond = n.args[0]
    return [None, b.op("where", cond, n.g, 0.0), b.op("where", cond, 0.0, n.g)]


register(OpDef("where", lambda c, a, d: np.where(c != 0, a, d), broadcast_rule, _where_vjp, (3, 3),
               latex=r"\mathrm{{where}}({0}, {1}, {2})", elementwise=True))

# ---- elementwise functions ----------------------------------------------------------

_unary("exp", np.exp, lambda b, n: [b.op("mul", n.g, n.out)], r"\exp({0})", local=("∂y/∂a = exp(a) = y",))
_unary("log", np.log, lambda b, n: [b.op("div", n.g, n.args[0])], r"\log({0})", local=("∂y/∂a = 1/a",))
_unary("log1p", np.log1p, lambda b, n: [b.op("div", n.g, b.op("add", 1.0, n.args[0]))], r"\log(1 + {0})")
_unary("expm1", np.expm1, lambda b, n: [b.op("mul", n.g, b.op("add", n.out, 1.0))], r"(e^{{{0}}} - 1)")
_unary("sqrt", np.sqrt, lambda b, n: [b.op("div", n.g, b.op("mul", 2.0, n.out))], r"\sqrt{{{0}}}",
       local=("∂y/∂a = 1/(2y)",))
_unary("square", np.square, lambda b, n: [b.op("mul", n.g, b.op("mul", 2.0, n.args[0]))], r"{0}^2",
       local=("∂y/∂a = 2a",))
_unary("abs", np.abs, lambda b, n: [b.op("mul", n.g, b.op("sign", n.args[0]))], r"|{0}|",
       local=("∂y/∂a = sign(a)",))
_unary("sign", lambda x: np.sign(x).astype(np.float64), None, r"\mathrm{{sign}}({0})", differentiable=False)
_unary("reciprocal", np.reciprocal,
       lambda b, n: [b.op("neg", b.op("mul", n.g, b.op("square", n.out)))], r"\frac{{1}}{{{0}}}",
       local=("∂y/∂a = −1/a²",))
_unary("sin", np.sin, lambda b, n: [b.op("mul", n.g, b.op("cos", n.args[0]))], r"\sin({0})",
       local=("∂y/∂a = cos(a)",))
_unary("cos", np.cos, lambda b, n: [b.op("neg", b.op("mul", n.g, b.op("sin", n.args[0])))], r"\cos({0})",
       local=("∂y/∂a = −sin(a)",))
_unary("stop_gradient", lambda x: x, None, r"\mathrm{{sg}}({0})", differentiable=False)


# Activations. Each derivative is an op of its own (relu', sigmoid', ...), so the
# backward equations read like a textbook: dJ/dz = dJ/dh ⊙ relu'(z).
def _deriv_vjp(deriv_name):
    return lambda b, n: [b.op("mul", n.g, b.op(deriv_name, n.args[0], **n.attrs))]


def _sigmoid(x):
    # stable both ways without logaddexp (a third of the time): e = exp(-|x|) never overflows
    e = np.exp(-np.abs(x))
    r = 1.0 / (1.0 + e)
    return np.where(np.asarray(x) >= 0, r, e * r)


def _sigmoid_slope(x):
    """sigmoid(x) sigmoid(-x) = e / (1 + e)^2 with e = exp(-|x|): one exp, no cancellation."""
    e = np.exp(-np.abs(x))
    r = 1.0 / (1.0 + e)
    return e * r * r


def _activation(name, forward, deriv, deriv_vjp, latex, kwargs=None, local=()):
    dname = name + "'"
    _unary(name, forward, _deriv_vjp(dname), latex, kwargs=kwargs, local=local)
    _unary(dname, deriv, deriv_vjp, latex.replace("({0})", "'({0})"), kwargs=kwargs)


def _zero_vjp(b, n):  # piecewise-constant derivative: zero almost everywhere
    return [None]


_activation("relu", lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(np.float64), _zero_vjp,
            r"\mathrm{{relu}}({0})", local=("∂y/∂a = 1 where a > 0, else 0",))
_activation("leaky_relu", lambda x, alpha=0.01: np.where(x > 0, x, alpha * x),
            lambda x, alpha=0.01: np.where(x > 0, 1.0, alpha), _zero_vjp, r"\mathrm{{leaky\_relu}}({0})",
            kwargs={"alpha": 0.01})
_activation("elu", lambda x, alpha=1.0: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0))),
            lambda x, alpha=1.0: np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0))),
            lambda b, n: [b.op("mul", n.g, b.op("sub", n.out, b.op("gt", n.args[0], 0.0)))],
            r"\mathrm{{elu}}({0})", kwargs={"alpha": 1.0})
_activation("sigmoid", _sigmoid, _sigmoid_slope,
            lambda b, n: [b.op("mul", n.g, b.op("mul", n.out,
                                                b.op("sub", 1.0, b.op("mul", 2.0, b.op("sigmoid", n.args[0])))))],
            r"\sigma({0})", local=("∂y/∂a = y(1 − y)",))
_activation("tanh", np.tanh, lambda x: 1.0 - np.tanh(x) ** 2,
            lambda b, n: [b.op("mul", n.g, b.op("mul", -2.0, b.op("mul", b.op("tanh", n.args[0]), n.out)))],
            r"\tanh({0})", local=("∂y/∂a = 1 − y²",))
def ndtr(x):
    """The standard normal CDF, exact to the last bits (scipy's cephes ndtr).

    Imported on first use: scipy.special costs a third of a second to import,
    and only models that use gelu need it.
    """
    from scipy.special import ndtr as _ndtr
    return _ndtr(x)


_activation("gelu", lambda x: x * ndtr(x), lambda x: ndtr(x) + x * np.exp(-0.5 * x * x) / _SQRT_2PI,
            lambda b, n: [b.op("mul", n.g, b.op("gelu''", n.args[0]))], r"\mathrm{{gelu}}({0})")


def _gelu2_vjp(b, n):
    """d/dx gelu''(x) = phi(x) (x^3 - 4x), built from primitives so every order has a rule."""
    x = n.args[0]
    phi = b.op("mul", b.op("exp", b.op("mul", -0.5, b.op("square", x))), float(1.0 / _SQRT_2PI))
    return [b.op("mul", n.g, b.op("mul", phi, b.op("mul", x, b.op("sub", b.op("square", x), 4.0))))]


_unary("gelu''", lambda x: np.exp(-0.5 * x * x) / _SQRT_2PI * (2.0 - x * x), _gelu2_vjp,
       r"\mathrm{{gelu}}''({0})")
_unary("softplus", lambda x: np.logaddexp(0.0, x),
       lambda b, n: [b.op("mul", n.g, b.op("sigmoid", n.args[0]))], r"\mathrm{{softplus}}({0})",
       local=("∂y/∂a = sigmoid(a)",))
_unary("log_sigmoid", lambda x: -np.logaddexp(0.0, -x),
       lambda b, n: [b.op("mul", n.g, b.op("sigmoid", b.op("neg", n.args[0])))], r"\log\sigma({0})")


# ---- v2 elementwise functions --------------------------------------------------------------

def _erf(x):
    from scipy.special import erf  # lazy: scipy costs a quarter second at import
    return erf(x)


def _inverse_sqrt_one_minus_square(b, x):
    return b.op("reciprocal", b.op("sqrt", b.op("sub", 1.0, b.op("square", x))))


_unary("tan", np.tan, lambda b, n: [b.op("mul", n.g, b.op("add", 1.0, b.op("square", n.out)))], r"\tan({0})")
_unary("atan", np.arctan, lambda b, n: [b.op("div", n.g, b.op("add", 1.0, b.op("square", n.args[0])))],
       r"\arctan({0})")
_unary("asin", np.arcsin, lambda b, n: [b.op("mul", n.g, _inverse_sqrt_one_minus_square(b, n.args[0]))],
       r"\arcsin({0})")
_unary("acos", np.arccos,
       lambda b, n: [b.op("neg", b.op("mul", n.g, _inverse_sqrt_one_minus_square(b, n.args[0])))],
       r"\arccos({0})")
_unary("sinh", np.sinh, lambda b, n: [b.op("mul", n.g, b.op("cosh", n.args[0]))], r"\sinh({0})")
_unary("cosh", np.cosh, lambda b, n: [b.op("mul", n.g, b.op("sinh", n.args[0]))], r"\cosh({0})")
_unary("erf", _erf,
       lambda b, n: [b.op("mul", n.g, b.op("mul", float(2.0 / np.sqrt(np.pi)),
                                           b.op("exp", b.op("neg", b.op("square", n.args[0])))))],
       r"\mathrm{{erf}}({0})")
_unary("log2", np.log2, lambda b, n: [b.op("div", n.g, b.op("mul", float(np.log(2.0)), n.args[0]))],
       r"\log_2({0})")
_unary("log10", np.log10, lambda b, n: [b.op("div", n.g, b.op("mul", float(np.log(10.0)), n.args[0]))],
       r"\log_{{10}}({0})")
# Piecewise constant: gradient zero, as PyTorch. round is half to even (NumPy and PyTorch agree).
_unary("floor", np.floor, None, r"\lfloor {0} \rfloor", differentiable=False)
_unary("ceil", np.ceil, None, r"\lceil {0} \rceil", differentiable=False)
_unary("round", np.round, None, r"\mathrm{{round}}({0})", differentiable=False)

"""Elementwise functions composed from ONNX ops that onnxruntime runs in float64.

onnxruntime (1.2x, CPU) has no double kernel for Erf, Tan, Atan, Asin, Acos,
Sinh, Cosh, Softplus, Elu and LeakyRelu, ONNX has no Expm1 or Log1p, and its
double Sigmoid loses the tail (1e-3 relative at x = -30). Each function here is
built from Exp, Log, Sin, Cos, Sqrt, Mul, Add, Div and Where, which it does run
in double, in the forms NumPy and SciPy compute them, so the exported model
agrees with graphdsl to float64 rounding and not merely float32's.
"""
from __future__ import annotations

import math


def _poly(g, x, coeffs, leading_one=False):
    """c0 x^n + c1 x^(n-1) + ... (Horner); with leading_one an implicit 1 x^(n+1) first (Cephes' p1evl)."""
    acc = g.node("Add", [x, g.const(coeffs[0])]) if leading_one else g.const(coeffs[0])
    for c in coeffs[1:]:
        acc = g.node("Add", [g.node("Mul", [acc, x]), g.const(c)])
    return acc


def _where(g, cond, a, b):
    return g.node("Where", [cond, a, b])


def _lt(g, x, value):
    return g.node("Less", [x, g.const(value)])


# ---- expm1, log1p: Kahan's corrections of exp(x) - 1 and log(1 + x) (a few ulps, no Expm1/Log1p in ONNX) ----
def expm1(g, x):
    u = g.node("Exp", [x])
    um1 = g.node("Sub", [u, g.const(1.0)])
    ratio = g.node("Div", [g.node("Mul", [um1, x]), g.node("Log", [u])])
    exact = g.node("Or", [g.node("Equal", [um1, g.const(-1.0)]), g.node("IsInf", [u])])
    return _where(g, g.node("Equal", [um1, g.const(0.0)]), x, _where(g, exact, um1, ratio))


def log1p(g, x):
    u = g.node("Add", [x, g.const(1.0)])
    d = g.node("Sub", [u, g.const(1.0)])
    ratio = g.node("Div", [g.node("Mul", [g.node("Log", [u]), x]), d])
    exact = g.node("Or", [g.node("IsInf", [u]), g.node("Equal", [u, g.const(0.0)])])
    return _where(g, g.node("Equal", [d, g.const(0.0)]), x, _where(g, exact, g.node("Log", [u]), ratio))


# ---- the logistic function and its relatives, as graphdsl computes them ----------------------------
def _exp_minus_abs(g, x):
    return g.node("Exp", [g.node("Neg", [g.node("Abs", [x])])])


def sigmoid(g, x):
    """1 / (1 + e) for x >= 0 and e / (1 + e) below, e = exp(-|x|): never overflows, exact tails."""
    e = _exp_minus_abs(g, x)
    r = g.node("Reciprocal", [g.node("Add", [e, g.const(1.0)])])
    return _where(g, g.node("GreaterOrEqual", [x, g.const(0.0)]), r, g.node("Mul", [e, r]))


def sigmoid_slope(g, x):
    e = _exp_minus_abs(g, x)
    r = g.node("Reciprocal", [g.node("Add", [e, g.const(1.0)])])
    return g.node("Mul", [g.node("Mul", [e, r]), r])


def softplus(g, x):
    """log(1 + exp(x)) as NumPy's logaddexp(0, x): max(x, 0) + log1p(exp(-|x|))."""
    return g.node("Add", [g.node("Max", [x, g.const(0.0)]), log1p(g, _exp_minus_abs(g, x))])


# ---- trigonometric and hyperbolic functions ----------------------------------------------------------
_SINH_TAYLOR = [1.0 / math.factorial(2 * k + 1) for k in range(7, -1, -1)]  # x * P(x^2) for |x| < 1/2


def tan(g, x):
    return g.node("Div", [g.node("Sin", [x]), g.node("Cos", [x])])


def sinh(g, x):
    """Taylor's series below |x| = 1/2 (no cancellation of e^x - e^-x), the exponentials above."""
    series = g.node("Mul", [x, _poly(g, g.node("Mul", [x, x]), _SINH_TAYLOR)])
    big = g.node("Mul", [g.const(0.5), g.node("Sub", [g.node("Exp", [x]), g.node("Exp", [g.node("Neg", [x])])])])
    return _where(g, _lt(g, g.node("Abs", [x]), 0.5), series, big)


def cosh(g, x):
    return g.node("Mul", [g.const(0.5), g.node("Add", [g.node("Exp", [x]), g.node("Exp", [g.node("Neg", [x])])])])


# atan(t) for |t| <= tan(pi/64) = 0.0491: the alternating series to t^19 (the next term is below 1e-26)
_ATAN_SERIES = [(-1.0) ** k / (2 * k + 1) for k in range(9, -1, -1)]


def atan(g, x):
    """atan: |x| > 1 folded by atan(x) = pi/2 - atan(1/x), four halvings atan(t) = 2 atan(t / (1 + sqrt(1 + t^2))),
    then the series; exact to a few ulps for every x, infinities included."""
    a = g.node("Abs", [x])
    big = g.node("Greater", [a, g.const(1.0)])
    t = _where(g, big, g.node("Reciprocal", [a]), a)
    for _ in range(4):
        root = g.node("Sqrt", [g.node("Add", [g.node("Mul", [t, t]), g.const(1.0)])])
        t = g.node("Div", [t, g.node("Add", [root, g.const(1.0)])])
    small = g.node("Mul", [g.const(16.0), g.node("Mul", [t, _poly(g, g.node("Mul", [t, t]), _ATAN_SERIES)])])
    folded = _where(g, big, g.node("Sub", [g.const(math.pi / 2), small]), small)
    return g.node("Mul", [g.node("Sign", [x]), folded])


def _one_minus_square(g, x):
    """1 - x^2 as (1 - x)(1 + x): exact near |x| = 1, where 1 - x*x cancels."""
    return g.node("Mul", [g.node("Sub", [g.const(1.0), x]), g.node("Add", [g.const(1.0), x])])


def asin(g, x):
    return atan(g, g.node("Div", [x, g.node("Sqrt", [_one_minus_square(g, x)])]))


def acos(g, x):
    """2 atan(sqrt((1 - x) / (1 + x))): accurate near x = 1, where pi/2 - asin(x) cancels."""
    ratio = g.node("Div", [g.node("Sub", [g.const(1.0), x]), g.node("Add", [g.const(1.0), x])])
    return g.node("Mul", [g.const(2.0), atan(g, g.node("Sqrt", [ratio]))])


# ---- erf, erfc and the normal CDF: Cephes' rational approximations (S. L. Moshier), which SciPy's
# erf and ndtr evaluate, so gelu agrees with graphdsl's scipy.special.ndtr to the last bits -------------
_ERF_T = [9.60497373987051638749E0, 9.00260197203842689217E1, 2.23200534594684319226E3,
          7.00332514112805075473E3, 5.55923013010394962768E4]
_ERF_U = [3.35617141647503099647E1, 5.21357949780152679795E2, 4.59432382970980127987E3,
          2.26290000613890934246E4, 4.92673942608635921086E4]
_ERFC_P = [2.46196981473530512524E-10, 5.64189564831068821977E-1, 7.46321056442269912687E0,
           4.86371970985681366614E1, 1.96520832956077098242E2, 5.26445194995477358631E2,
           9.34528527171957607540E2, 1.02755188689515710272E3, 5.57535335369399327526E2]
_ERFC_Q = [1.32281951154744992508E1, 8.67072140885989742329E1, 3.54937778887819891062E2,
           9.75708501743205489753E2, 1.82390916687909736289E3, 2.24633760818710981792E3,
           1.65666309194161350182E3, 5.57535340817727675546E2]
_ERFC_R = [5.64189583547755073984E-1, 1.27536670759978104416E0, 5.01905042251180477414E0,
           6.16021097993053585195E0, 7.40974269950448939160E0, 2.97886665372100240670E0]
_ERFC_S = [2.26052863220117276590E0, 9.39603524938001434673E0, 1.20489539808096656605E1,
           1.70814450747565897222E1, 9.60896809063285878198E0, 3.36907645100081516050E0]


def _erf_small(g, x):
    """erf for |x| <= 1: x T(x^2) / U(x^2)."""
    z = g.node("Mul", [x, x])
    return g.node("Div", [g.node("Mul", [x, _poly(g, z, _ERF_T)]), _poly(g, z, _ERF_U, leading_one=True)])


def _erfc_tail(g, a):
    """erfc(a) for a >= 1: exp(-a^2) P(a) / Q(a) below 8, R(a) / S(a) above."""
    near = g.node("Div", [_poly(g, a, _ERFC_P), _poly(g, a, _ERFC_Q, leading_one=True)])
    far = g.node("Div", [_poly(g, a, _ERFC_R), _poly(g, a, _ERFC_S, leading_one=True)])
    ratio = _where(g, _lt(g, a, 8.0), near, far)
    return g.node("Mul", [g.node("Exp", [g.node("Neg", [g.node("Mul", [a, a])])]), ratio])


def erf(g, x):
    a = g.node("Abs", [x])
    outer = g.node("Mul", [g.node("Sign", [x]), g.node("Sub", [g.const(1.0), _erfc_tail(g, a)])])
    return _where(g, g.node("LessOrEqual", [a, g.const(1.0)]), _erf_small(g, x), outer)


def ndtr(g, x):
    """The standard normal CDF as Cephes' ndtr: 1/2 + erf(x/sqrt 2)/2 near 0, erfc in the tails (no cancellation)."""
    half_sqrt2 = math.sqrt(0.5)
    s = g.node("Mul", [x, g.const(half_sqrt2)])
    z = g.node("Abs", [s])
    centre = g.node("Add", [g.const(0.5), g.node("Mul", [g.const(0.5), _erf_small(g, s)])])
    # erfc(z) for z >= 1/sqrt 2: 1 - erf(z) on [1/sqrt 2, 1], the tail formula above
    erfc = _where(g, _lt(g, z, 1.0), g.node("Sub", [g.const(1.0), _erf_small(g, z)]), _erfc_tail(g, z))
    y = g.node("Mul", [g.const(0.5), erfc])
    tail = _where(g, g.node("Greater", [s, g.const(0.0)]), g.node("Sub", [g.const(1.0), y]), y)
    return _where(g, _lt(g, z, half_sqrt2), centre, tail)


def normal_pdf(g, x):
    """exp(-x^2 / 2) / sqrt(2 pi)."""
    e = g.node("Exp", [g.node("Mul", [g.const(-0.5), g.node("Mul", [x, x])])])
    return g.node("Div", [e, g.const(math.sqrt(2 * math.pi))])

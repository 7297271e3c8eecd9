"""Symbolic expressions for equations, and the smart constructors that simplify them.

Expressions are immutable and compared structurally (by `key`). They are built
bottom-up through the constructors below (`add`, `mul`, `matmul`, ...), which
fold numbers, cancel equal factors, collect like terms and pull scalar factors
out of matrix products, so that the printers never have to simplify.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

# How tightly each kind of expression binds; a printer parenthesises a child
# whose precedence is below what its place demands. FACTOR_PREC is demanded of
# a factor that stands beside others, so that a product inside it is bracketed.
SUM_PREC, PROD_PREC, FACTOR_PREC, POSTFIX_PREC, ATOM_PREC = 1, 2, 3, 4, 5
APP_PREC = {"matmul": PROD_PREC, "transpose": POSTFIX_PREC, "pow": POSTFIX_PREC,
            **{op: PROD_PREC for op in ("conv1d", "conv2d", "conv", "conv_input_grad", "conv_weight_grad")}}


class Ex:
    """An immutable expression; `key` gives structural equality."""

    __slots__ = ("key", "scalar", "size", "depth")
    prec = ATOM_PREC

    def __eq__(self, other):
        return isinstance(other, Ex) and self.key == other.key

    def __hash__(self):
        return hash(self.key)

    def children(self) -> tuple:
        return ()

    def refs(self) -> list:
        """Every Sym in the expression (with an explicit stack: expressions may be deep)."""
        found, stack = [], [self]
        while stack:
            e = stack.pop()
            if isinstance(e, Sym):
                found.append(e)
            stack.extend(e.children())
        return found

    def _measure(self, scalar, parts):
        """Set scalar, size and depth from the sub-expressions (`parts`)."""
        self.scalar = scalar
        self.size = 1 + sum(p.size for p in parts)
        self.depth = 1 + max((p.depth for p in parts), default=0)


class Num(Ex):
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = exact(value)
        self.key = ("n", self.value)
        self._measure(True, ())


class Sym(Ex):
    """A reference: a named value, a dim, an adjoint dJ/dv or an auxiliary."""

    __slots__ = ("name", "tex", "adjoint")

    def __init__(self, name, tex, scalar, adjoint=False):
        self.name, self.tex, self.adjoint = name, tex, adjoint
        self.key = ("s", name)
        self._measure(scalar, ())


class Lit(Ex):
    """An anonymous array constant (a literal in the model)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = np.asarray(value, dtype=np.float64)
        self.key = ("l", self.value.shape, self.value.tobytes())
        self._measure(self.value.ndim == 0, ())


class Sum(Ex):
    __slots__ = ("terms",)
    prec = SUM_PREC

    def __init__(self, terms):
        self.terms = tuple(terms)
        self.key = ("+",) + tuple(t.key for t in self.terms)
        self._measure(all(t.scalar for t in self.terms), self.terms)

    def children(self):
        return self.terms


class Prod(Ex):
    """coeff * factor1^p1 * factor2^p2 ..., p = +1 or -1 (elementwise)."""

    __slots__ = ("coeff", "factors")
    prec = PROD_PREC

    def __init__(self, coeff, factors):
        self.coeff = exact(coeff)
        self.factors = tuple(factors)
        self.key = ("*", self.coeff) + tuple((f.key, p) for f, p in self.factors)
        self._measure(all(f.scalar for f, _ in self.factors), self.children())

    def children(self):
        return tuple(f for f, _ in self.factors)


class App(Ex):
    """An operator applied to arguments; attrs is a tuple of (key, value)."""

    __slots__ = ("op", "args", "attrs")

    def __init__(self, op, args, attrs=(), scalar=False):
        self.op, self.args, self.attrs = op, tuple(args), tuple(attrs)
        self.key = ("a", op, _hashable(self.attrs)) + tuple(a.key for a in self.args)
        self._measure(scalar, self.args)

    def children(self):
        return self.args

    @property
    def prec(self):
        return APP_PREC.get(self.op, ATOM_PREC)


def _hashable(value):
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, slice):
        return ("slice", value.start, value.stop, value.step)
    if isinstance(value, np.ndarray):
        return ("arr", value.shape, value.tobytes())
    return value


def exact(v):
    """Numbers as exact fractions where that is what they are (0.5 -> 1/2), else floats."""
    if isinstance(v, Fraction):
        return v if v.denominator != 1 else Fraction(v.numerator)
    v = float(v)
    if not math.isfinite(v):
        return v
    if v.is_integer() and abs(v) < 1e15:
        return Fraction(int(v))
    f = Fraction(v).limit_denominator(100000)
    return f if float(f) == v else v


ZERO, ONE = Num(0), Num(1)


def is_num(e, value=None) -> bool:
    return isinstance(e, Num) and (value is None or e.value == value)


def is_negative(e) -> bool:
    """Whether the expression prints with a leading minus sign."""
    if isinstance(e, Num):
        return e.value < 0
    if isinstance(e, Prod):
        return e.coeff < 0
    return False


# ---- smart constructors: the simplifier ------------------------------------------------------

def _as_prod(e):
    """(coefficient, [(factor, power)]) of any expression."""
    if isinstance(e, Prod):
        return e.coeff, list(e.factors)
    if isinstance(e, Num):
        return e.value, []
    return Fraction(1), [(e, 1)]


def mul(a, b, inverse_b=False):
    """a * b (or a / b), elementwise, with numbers folded and equal factors cancelled."""
    coeff_a, factors = _as_prod(a)
    coeff_b, factors_b = _as_prod(b)
    if inverse_b:
        if coeff_b == 0:  # a / 0 stays as written rather than folding to inf
            return App("div", (a, b), scalar=a.scalar and b.scalar)
        coeff_b = 1 / coeff_b if isinstance(coeff_b, Fraction) else 1.0 / coeff_b
        factors_b = [(f, -p) for f, p in factors_b]
    coeff = coeff_a * coeff_b
    if coeff == 0:
        return ZERO
    for f, p in factors_b:
        _multiply_in(factors, f, p)
    return make_prod(coeff, factors)


def _multiply_in(factors, f, p):
    """Append f^p to the factor list, cancelling against an f^-p already there."""
    for k, (g, q) in enumerate(factors):
        if q == -p and g == f:
            del factors[k]
            return
    factors.append((f, p))


def make_prod(coeff, factors):
    if not factors:
        return Num(coeff)
    if coeff == 1 and len(factors) == 1 and factors[0][1] == 1:
        return factors[0][0]
    return Prod(coeff, factors)


def neg(a):
    if isinstance(a, Sum):
        out = ZERO
        for t in a.terms:
            out = add(out, mul(Num(-1), t))
        return out
    return mul(Num(-1), a)


def _terms(e) -> list:
    return list(e.terms) if isinstance(e, Sum) else [e]


def add(a, b):
    """a + b with numbers summed and like terms (the same factors) collected."""
    const = Fraction(0)
    like: dict = {}  # signature of the factors -> [coeff, factors], in first-seen order
    for term in _terms(a) + _terms(b):
        if isinstance(term, Num):
            const = const + term.value
            continue
        coeff, factors = _as_prod(term)
        signature = tuple(sorted((repr(f.key), p) for f, p in factors))
        if signature in like:
            like[signature][0] = like[signature][0] + coeff
        else:
            like[signature] = [coeff, factors]
    out = [make_prod(coeff, factors) for coeff, factors in like.values() if coeff != 0]
    if const != 0:
        out.append(Num(const))
    if not out:
        return ZERO
    return out[0] if len(out) == 1 else Sum(out)


def _split_scalars(e):
    """(scalar part, array part) of a product, so that c X @ Y reads c (X Y)."""
    if isinstance(e, Prod) and not e.scalar:
        scalars = make_prod(e.coeff, [(f, p) for f, p in e.factors if f.scalar])
        arrays = make_prod(Fraction(1), [(f, p) for f, p in e.factors if not f.scalar])
        return scalars, arrays
    return ONE, e


def matmul(a, b, scalar=False):
    scalar_a, a = _split_scalars(a)
    scalar_b, b = _split_scalars(b)
    if is_num(a, 0) or is_num(b, 0):
        return ZERO
    return mul(mul(scalar_a, scalar_b), App("matmul", (a, b), scalar=scalar))


def transpose(a, axes=None, two_d=False):
    """aᵀ; with two_d (a is a matrix) also (A B)ᵀ = Bᵀ Aᵀ."""
    if axes is not None:
        return App("transpose", (a,), (("axes", tuple(axes)),), scalar=a.scalar)
    scalars, arrays = _split_scalars(a)
    if not is_num(scalars, 1):
        return mul(scalars, transpose(arrays, two_d=two_d))
    if isinstance(a, App) and a.op == "transpose" and not a.attrs:
        return a.args[0]
    if two_d and isinstance(a, App) and a.op == "matmul":
        return matmul(transpose(a.args[1]), transpose(a.args[0]), a.scalar)
    if a.scalar:
        return a
    return App("transpose", (a,), scalar=False)


def power(a, b, scalar):
    if is_num(b, 1):
        return a
    if is_num(b, 0):
        return ONE
    if is_num(b, -1):
        return mul(ONE, a, inverse_b=True)
    return App("pow", (a, b), scalar=scalar)

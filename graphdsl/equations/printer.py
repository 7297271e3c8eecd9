"""What the text and LaTeX printers share: layout of sums and products, numbers, keys.

A printer renders an expression with `render(e, prec)`, bracketing it when it
binds less tightly than its place demands. The subclasses supply the notation:
`paren`, `number`, `literal`, `fraction`, and the forms of operator
applications (`FORMS`, falling back on `function`).
"""
from __future__ import annotations

import math
from fractions import Fraction

from .expr import (ATOM_PREC, FACTOR_PREC, PROD_PREC, SUM_PREC, App, Lit, Num, Prod, Sum, Sym, exact, is_negative,
                   neg)


class Printer:
    latex = False
    odot = " ⊙ "
    minus = " - "
    plus = " + "
    times = " "  # between factors of a product and operands of a matrix product (explain writes ·)

    def render(self, e, prec=0) -> str:
        s = self._render(e)
        if e.prec < prec or (isinstance(e, Num) and prec > SUM_PREC and is_negative(e)):
            return self.paren(s)
        return s

    def _render(self, e) -> str:
        if isinstance(e, Num):
            return self.number(e.value)
        if isinstance(e, Sym):
            return e.tex if self.latex else e.name
        if isinstance(e, Lit):
            return self.literal(e.value)
        if isinstance(e, Sum):
            return self.sum(e)
        if isinstance(e, Prod):
            return self.prod(e)
        return self.FORMS.get(e.op, type(self).function)(self, e)

    def sum(self, e) -> str:
        # adjoint terms first (dJ/do hᵀ + lam W2), and a positive term first where there is one
        terms = sorted(e.terms, key=lambda t: not any(r.adjoint for r in t.refs()))
        if is_negative(terms[0]):
            first = next((k for k, t in enumerate(terms) if not is_negative(t)), 0)
            terms.insert(0, terms.pop(first))
        out = ""
        for k, t in enumerate(terms):
            if is_negative(t):
                out += ("-" if k == 0 else self.minus) + self.render(neg(t), PROD_PREC)
            else:
                out += ("" if k == 0 else self.plus) + self.render(t, PROD_PREC)
        return out

    def prod(self, e) -> str:
        sign = "-" if is_negative(e) else ""
        cnum, cden = split_coeff(e.coeff)
        # scalar factors lead, names before other scalars; arrays follow, joined by ⊙
        num_s = sorted((f for f, p in e.factors if p > 0 and f.scalar), key=lambda f: not isinstance(f, Sym))
        num_a = [f for f, p in e.factors if p > 0 and not f.scalar]
        den = [f for f, p in e.factors if p < 0]
        parts = ([self.number(cnum)] if cnum != 1 else [])
        crowded = (len(num_s) + len(num_a) > 1 or cnum != 1) if self.latex else (len(e.factors) > 1 or cnum != 1)
        alone = self.latex and not crowded and bool(den or cden != 1)  # sole numerator of \frac{}{}
        parts += [self.render(f) if alone else self.factor(f, crowded) for f in num_s]
        arrays = [self.render(f) if alone else self.factor(f, True, len(num_a) > 1) for f in num_a]
        dparts = ([self.number(cden)] if cden != 1 else []) + [self.factor(f, True, True) for f in den]
        numerator = self.times.join(parts + ([self.odot.join(arrays)] if arrays else []))
        if not dparts:
            return sign + (numerator or "1")
        single = len(parts) + len(arrays) == 1
        only = (num_s + num_a)[0] if len(num_s + num_a) == 1 else None
        return sign + self.fraction(numerator or "1", self.times.join(dparts), single, len(dparts) == 1, only)

    def factor(self, f, crowded, strict=False) -> str:
        if isinstance(f, App) and f.op == "matmul":
            return self.paren(self.render(f)) if strict else self.render(f)
        return self.render(f, FACTOR_PREC if crowded else PROD_PREC)

    def operand(self, a) -> str:
        """A side of a matrix product: a product on either side needs brackets, a matrix product not."""
        if isinstance(a, App) and a.op == "matmul":
            return self.render(a)
        return self.render(a, FACTOR_PREC)

    def postfix(self, a) -> str:
        """The base of a postfix form (Wᵀ, x², x[0])."""
        s = self.render(a, ATOM_PREC)
        if self.compound(a) or isinstance(a, Num) and a.value < 0:
            return self.paren(s)
        return s

    def _matmul(self, e) -> str:
        return f"{self.operand(e.args[0])}{self.times}{self.operand(e.args[1])}"

    def _index(self, e) -> str:
        return self.postfix(e.args[0]) + key_text(dict(e.attrs).get("key", ()))

    def _conv(self, e) -> str:
        """A convolution as the textbook writes it, x ⋆ w (LaTeX x \\star w); ⋆ᵀ is its transpose
        (the input gradient); stride, padding, ... that differ from 1, 0, ... subscript the star."""
        star = r"\star" if self.latex else "⋆"
        if e.op == "conv_input_grad":
            star += r"^{\top}" if self.latex else "ᵀ"
        shown = [(k, v) for k, v in e.attrs if k != "nd"]
        if shown:
            if self.latex:
                star += "_{" + r",\,".join(rf"\mathrm{{{k}}}={attr_text(v)}" for k, v in shown) + "}"
            else:
                star += "[" + ", ".join(f"{k}={attr_text(v)}" for k, v in shown) + "]"
        return f"{self.operand(e.args[0])} {star} {self.operand(e.args[1])}"

    def _einsum(self, e) -> str:
        """einsum("ij,jk->ik", a, b) as the model writes it; in LaTeX the spec as a subscript, ij,jk → ik."""
        attrs = dict(e.attrs)
        spec = str(attrs.pop("spec", ""))
        args = ", ".join([self.render(a) for a in e.args] + [f"{k}={attr_text(v)}" for k, v in attrs.items()])
        if self.latex:
            return r"\mathrm{einsum}_{" + spec.replace("->", r" \to ") + "}(" + args + ")"
        return f'einsum("{spec}", {args})'

    FORMS = {"matmul": _matmul, "index": _index, "einsum": _einsum,
             **dict.fromkeys(("conv1d", "conv2d", "conv", "conv_input_grad", "conv_weight_grad"), _conv)}


def render_lines(eqs, printer) -> list:
    """(left side, the right sides joined by ` = `, equation) for each equation."""
    return [(printer.render(eq.lhs), " = ".join(printer.render(r) for r in eq.rhs), eq) for eq in eqs]


def fmt_number(v) -> str:
    if isinstance(v, Fraction):
        if v.denominator == 1:
            return str(v.numerator)
        text = repr(float(v))
        return text if len(text) <= 8 else f"{float(v):.6g}"
    if not math.isfinite(v):
        return "inf" if v > 0 else "-inf" if v < 0 else "nan"
    return f"{v:.6g}"


def split_coeff(c):
    """(numerator, denominator) to show for a coefficient: 1/2 and 1/6 stay fractions, 0.1 a decimal."""
    c = abs(c)
    if isinstance(c, Fraction) and c.denominator != 1 and c.numerator <= 12 and \
            (c.denominator <= 4 or len(repr(float(c))) > 5):
        return Fraction(c.numerator), Fraction(c.denominator)
    return c, Fraction(1)


def key_text(key) -> str:
    """An index key as the model writes it: [0, 1:3]."""
    return "[" + ", ".join(_slice_text(k) if isinstance(k, slice) else str(k) for k in key) + "]"


def _slice_text(k: slice) -> str:
    text = ":".join("" if x is None else str(x) for x in (k.start, k.stop))
    return text if k.step is None else f"{text}:{k.step}"


def attr_text(v) -> str:
    """A static argument as the model writes it."""
    if isinstance(v, tuple):
        return "[" + ", ".join(attr_text(x) for x in v) + "]"
    if hasattr(v, "name") and hasattr(v, "size"):  # a Dim
        return v.name or str(v.size)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return fmt_number(exact(v))
    return str(v)

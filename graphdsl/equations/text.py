"""The equations as plain text: dJ/dW2 = dJ/do hᵀ + lam W2."""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..ops import REGISTRY
from .expr import ATOM_PREC, PROD_PREC, Num, Sum, Sym
from .printer import Printer, attr_text, fmt_number, key_text
from .rolled import rolled_rows

SUPERSCRIPTS = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
DELIMITED = {"sqnorm": ("‖", "‖²"), "norm": ("‖", "‖"), "abs": ("|", "|")}  # ‖x‖² rather than sqnorm(x)
COMPARISONS = {"lt", "le", "gt", "ge", "eq", "ne"}  # written [a < b], with the table's symbol


class TextPrinter(Printer):
    def paren(self, s):
        return f"({s})"

    def number(self, v):
        return fmt_number(v)

    def literal(self, value):
        if value.size <= 6:
            flat = np.array2string(value, separator=", ", max_line_width=10 ** 6).replace("\n", "")
            return flat.replace(" ", "").replace(",", ", ")
        return "[" + "×".join(map(str, value.shape)) + " const]"

    def fraction(self, num, den, single, den_single, only):
        # brackets that keep the numerator in one piece: (o - y) / b, (dJ/do) / b
        if single and only is not None and (isinstance(only, Sum) or (isinstance(only, Sym) and "/" in only.name)):
            num = num if num.startswith("(") else f"({num})"
        elif not single and "/" in num.split("(")[0]:
            num = f"({num})"
        return f"{num} / {den if den_single else '(' + den + ')'}"

    def compound(self, a) -> bool:
        return isinstance(a, Sym) and "/" in a.name  # dJ/dW reads (dJ/dW)ᵀ

    def _transpose(self, e):
        if e.attrs:
            return f"transpose({self.render(e.args[0])}, axes={list(dict(e.attrs)['axes'])})"
        return self.postfix(e.args[0]) + "ᵀ"

    def _pow(self, e):
        base, exponent = self.postfix(e.args[0]), e.args[1]
        if isinstance(exponent, Num) and isinstance(exponent.value, Fraction) and \
                exponent.value.denominator == 1 and 0 <= exponent.value < 10:
            return base + str(exponent.value.numerator).translate(SUPERSCRIPTS)
        return f"{base}^{self.render(exponent, ATOM_PREC)}"

    def _sum_to(self, e):
        over = dict(e.attrs).get("over")
        return f"sum_{''.join(over)}({self.render(e.args[0])})" if over else self.render(e.args[0])

    def _index_grad(self, e):
        return f"scatter({self.render(e.args[0])}, {key_text(dict(e.attrs).get('key', ()))})"

    def function(self, e):
        if e.op in DELIMITED and not e.attrs:
            left, right = DELIMITED[e.op]
            return left + self.render(e.args[0]) + right
        if e.op in COMPARISONS:
            a, b = (self.render(x, PROD_PREC) for x in e.args)
            return f"[{a} {REGISTRY[e.op].symbol} {b}]"
        name = e.op[5:] if e.op.startswith("call:") else e.op
        inner = [self.render(a) for a in e.args] + [f"{k}={attr_text(v)}" for k, v in e.attrs]
        return f"{name}({', '.join(inner)})"

    FORMS = {**Printer.FORMS, "transpose": _transpose, "pow": _pow, "sum_to": _sum_to, "index_grad": _index_grad}


def text_lines(eqs, roller=None) -> list:
    """One line per equation; with a Roller, a loop's equations once, under `for t = 1..T:`."""
    out = []
    for row in rolled_rows(eqs, TextPrinter(), roller):
        pad = "    " * row.depth
        if row.left is None:
            out.append(f"{pad}for {row.right} = {row.note}:")
        else:
            out.append(f"{pad}{row.left} = {row.right}" + (f"    ({row.note})" if row.note else ""))
    return out


def format_text(eqs) -> str:
    lines = [f"# equations of {eqs.name}", "", "forward:"]
    lines += ["  " + line for line in text_lines(eqs.forward, eqs.roller(backward=False))]
    if eqs.of is not None and (eqs.backward or eqs.error is None):
        lines += ["", f"backward (reverse mode, d{eqs.of}/dv for each value v between the parameters and "
                      f"{eqs.of}, last to first):"]
        lines += ["  " + line for line in text_lines(eqs.backward, eqs.roller(backward=True))]
    return "\n".join(lines) + "\n"

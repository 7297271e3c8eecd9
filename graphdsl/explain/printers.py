"""The equations package's printers, writing products with a visible dot, and their
substituting variants: a name is replaced by its number (a scalar) or by its shape (an array)."""
from __future__ import annotations

import numpy as np

from ..equations import LatexPrinter, TextPrinter, tex_name
from ..equations.expr import Sym
from .numbers import num, tex_num


class DotText(TextPrinter):
    times = "·"


class DotLatex(LatexPrinter):
    times = r" \cdot "


class _Substituting:
    """Mixin over a printer: known names print as numbers or shapes."""

    def __init__(self, lookup):
        self.lookup = lookup

    def _render(self, e):
        entry = self.lookup.get(e.name) if isinstance(e, Sym) else None
        if entry is None:
            return super()._render(e)
        value = np.asarray(entry.value)
        if value.ndim == 0 and not entry.shape:
            return self.scalar(float(value))
        return self.shape(entry.shape, value)


class NumberText(_Substituting, DotText):
    def scalar(self, v):
        return self.paren(num(v)) if v < 0 else num(v)

    def shape(self, dims, value):
        return shape_text(dims, value)


class NumberLatex(_Substituting, DotLatex):
    def scalar(self, v):
        return self.paren(tex_num(v)) if v < 0 else tex_num(v)

    def shape(self, dims, value):
        return shape_tex(dims, value)


def _names(dims, value) -> list:
    if dims is None:
        return [str(s) for s in np.shape(value)]
    return [d.name if d.name is not None else str(d.size) for d in dims]


def shape_text(dims, value) -> str:
    """[q, b]: the dims by name where they have one, else by size."""
    return "[" + ", ".join(_names(dims, value)) + "]"


def shape_tex(dims, value) -> str:
    parts = [tex_name(n) if not n.isdigit() else n for n in _names(dims, value)]
    return r"[" + ", ".join(parts) + "]"


def render_number_form(printer, expr) -> str:
    """The last form with the numbers in: a lone negative number keeps no brackets."""
    text = printer.render(expr)
    if isinstance(expr, Sym) and text.startswith("(") and text.endswith(")"):
        return text[1:-1]
    return text

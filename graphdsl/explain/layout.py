"""A step's pieces as strings, for one notation (text or LaTeX): what every writer lays out."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .numbers import tex_value, text_value
from .printers import DotLatex, DotText, NumberLatex, NumberText, render_number_form, shape_tex, shape_text


@dataclass
class Pieces:
    lhs: str
    forms: list  # the symbolic right-hand sides
    numbers: str | None  # the numbered form, None when it would repeat a symbolic one
    arrow: str | None  # the result's shape, for a step on arrays
    result: str | None  # the value, None when it would repeat the numbered form
    parts: list  # [(via, form, numbers, value)] at a fan-out


def numbered_form(step):
    """The form the numbers go into: the chain-rule product for a gradient, else the most explicit form."""
    return step.forms[0] if step.kind == "backward" else step.forms[-1]


def pieces(step, lookup, latex: bool = False) -> Pieces:
    sym, numbered = (DotLatex(), NumberLatex(lookup)) if latex else (DotText(), NumberText(lookup))
    value_of = tex_value if latex else text_value
    forms = [sym.render(f) for f in step.forms]
    form = numbered_form(step)
    numbers = render_number_form(numbered, form)
    array_step = np.ndim(step.value) > 0 or any(np.ndim(lookup[r.name].value) > 0
                                                for r in form.refs() if r.name in lookup)
    arrow = (shape_tex if latex else shape_text)(step.shape, step.value) if array_step else None
    result = value_of(step.value)
    if numbers in forms:
        numbers = None
    if arrow is None and result == (numbers or forms[-1]):
        result = None
    parts = []
    for part in step.parts:
        if part.expr is None:
            continue
        parts.append((", ".join(part.via), sym.render(part.expr), render_number_form(numbered, part.expr),
                      value_of(part.value)))
    return Pieces(sym.render(step.lhs), forms, numbers, arrow, result, parts)

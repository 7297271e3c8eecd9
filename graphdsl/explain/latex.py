"""The walkthrough in LaTeX (amsmath align* blocks), and the rows the Markdown writer shares."""
from __future__ import annotations

import numpy as np

from ..equations import tex_escape, tex_name
from .layout import pieces
from .numbers import tex_num, tex_value

ONE_ROW = 110  # a step whose text is longer than this gets one row per form


def step_rows(step, lookup, arrow=r"=") -> list:
    """The step as align rows: `lhs &= form = numbers \\to [shape] = result`, split when long."""
    p = pieces(step, lookup, latex=True)
    rest = list(p.forms) + ([p.numbers] if p.numbers else [])
    if p.arrow:
        rest[-1] = rf"{rest[-1]} \to {p.arrow}"
    if p.result is not None:
        rest.append(p.result)
    plain = pieces(step, lookup)
    short = np.size(step.value) <= 1 and len(" = ".join(plain.forms + [plain.numbers or ""])) <= ONE_ROW
    if short:
        rows = [f"{p.lhs} &{arrow} " + " = ".join(rest)]
    else:
        rows = [f"{p.lhs} &{arrow} {rest[0]}"] + [f"&= {r}" for r in rest[1:]]
    for via, form, numbers, value in p.parts:
        rows.append(rf"&\qquad \text{{through }} {via}: \ {form} = {numbers} = {value}" if via
                    else rf"&\qquad {form} = {numbers} = {value}")
    return rows


def sections(walk):
    """(title, [(rows, note)]) in the tutorials' order; the writers lay them out."""
    start = [([rf"{tex_name(name)} &= {tex_value(value)}"], "") for name, _, _, value in walk.start]
    out = [("Starting values", start),
           ("Forward pass", [(step_rows(s, walk.lookup), s.note) for s in walk.forward]),
           ("Loss", [([rf"{tex_name(walk.of)} &= {tex_num(walk.loss)}"], "")]),
           (f"Backward pass: the gradient of {walk.of} from {walk.of} back to the params",
            [([rf"\frac{{\partial {tex_name(walk.of)}}}{{\partial {tex_name(walk.of)}}}"
               " &= 1"], "")] + [(step_rows(s, walk.lookup), s.note) for s in walk.backward])]
    if walk.lr is not None:
        out.append((f"Update: gradient descent with learning rate {walk.lr:g}",
                    [(step_rows(s, walk.lookup, r"\leftarrow"), "") for s in walk.updates]))
        out.append(("Loss after the step", [([rf"{tex_name(walk.of)} &= {tex_num(walk.loss_after)}"],
                                             "")]))
    return out


def format_latex(walk, standalone: bool = False) -> str:
    lines = []
    if standalone:
        lines += [r"\documentclass{article}", r"\usepackage{amsmath}", r"\usepackage[margin=2cm]{geometry}",
                  r"\allowdisplaybreaks", r"\begin{document}", ""]
    lines.append(f"% Backpropagation step by step: {tex_escape(walk.name)}")
    for title, blocks in sections(walk):
        lines += ["", rf"\paragraph{{{tex_escape(title)}}}"]
        rows = []
        for step_rows_, note in blocks:
            rows += step_rows_
            if note:
                rows.append(r"\intertext{\small " + tex_escape(note) + "}")
        lines += _align_with_text(rows)
    if standalone:
        lines += ["", r"\end{document}"]
    return "\n".join(lines) + "\n"


def _align_with_text(rows) -> list:
    """An align* block; \\intertext rows take no line break of their own before the next row."""
    out = [r"\begin{align*}"]
    for k, r in enumerate(rows):
        last = k == len(rows) - 1
        out.append("  " + r + ("" if last or r.startswith(r"\intertext") else r" \\"))
    return out + [r"\end{align*}"]

"""The walkthrough as plain text, for a terminal."""
from __future__ import annotations

import textwrap

from .layout import pieces
from .numbers import num, shape_of, text_value

WIDTH = 100  # a step longer than this is written one form per line


def format_text(walk) -> str:
    out = [f"Backpropagation step by step: {walk.name}", ""]
    out += ["Starting values:"]
    for name, role, _, value in walk.start:
        shape = f" : {shape_of(value)}" if value.ndim else ""
        head = f"  {role} {name}{shape} = "
        out.append(head + text_value(value, " " * len(head)))
    out += ["", "Forward pass (one line per named value: equation, with the numbers, result):"]
    for step in walk.forward:
        out += step_lines(step, walk.lookup)
    out += ["", f"Loss: {walk.of} = {num(walk.loss)}", ""]
    out += [f"Backward pass (d{walk.of}/dv for each value v, from {walk.of} back to the params, "
            "each as the chain rule: the gradient arriving times the local derivative):"]
    out += [f"  d{walk.of}/d{walk.of} = 1"]
    for step in walk.backward:
        out += step_lines(step, walk.lookup)
    if walk.lr_asked and not walk.updates:
        out += ["", "Update: none of the values differentiated is a param, so nothing is updated."]
    if walk.updates:
        out += ["", f"Update (gradient descent, learning rate η = {num(walk.lr)}):"]
        for step in walk.updates:
            out += step_lines(step, walk.lookup, arrow="←")
        out += ["", f"Loss after the step: {walk.of} = {num(walk.loss_after)} (before: {num(walk.loss)})"]
    return "\n".join(out) + "\n"


def step_lines(step, lookup, arrow="=", notes=True) -> list:
    p = pieces(step, lookup)
    head = f"  {p.lhs} {arrow} "
    rest = list(p.forms) + ([p.numbers] if p.numbers else [])
    if p.arrow:
        rest[-1] = f"{rest[-1]} → {p.arrow}"
    pad = " " * (len(head) - 2)
    if p.result is not None:
        rest.append(p.result.replace("\n", "\n" + pad + "  "))
    one = head + " = ".join(rest)
    if len(one) <= WIDTH and "\n" not in one:
        lines = [one]
    else:
        lines = [head + rest[0]] + [pad + "= " + r for r in rest[1:]]
    if p.parts:
        lines.append(f"{pad}the sum of {len(p.parts)} contributions:")
        for via, form, numbers, value in p.parts:
            source = f"through {via}: " if via else ""
            head = f"{pad}  {source}{form} = {numbers} = "
            lines.append(head + value.replace("\n", "\n" + " " * len(head)))
    if step.note and notes:
        lines += textwrap.wrap(step.note, WIDTH, initial_indent=pad + "  ", subsequent_indent=pad + "  ")
    return lines

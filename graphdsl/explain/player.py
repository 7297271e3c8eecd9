"""The backward-pass player: the model's picture and the walkthrough, one step at a time.

One self-contained page (a Content-Security-Policy forbids every fetch): the
renderer's SVG of the forward graph, drawn without numbers, and a JSON list of
steps. Each step names the node it computes, the nodes it reads, and the value
or gradient labels it adds; the page replays steps 0..k to show step k, so a
gradient is drawn only from the step that computes it. A value used several
times gets one step per contribution arriving, then the step that sums them.
"""
from __future__ import annotations

import numpy as np

from ..render.html import fill, inline_svg, script_json
from ..render.labels import esc_html
from .layout import pieces
from .numbers import num, shape_of
from .player_page import TEMPLATE
from .printers import DotText
from .text import step_lines


def player_page(walk, model, values=None, seed=0) -> str:
    # every node drawn (no automatic blocks, loops unrolled): each step highlights nodes by their ids, and
    # the walkthrough has a step for each iteration
    picture = model.render(values=values, view="forward", seed=seed, show_values=False, show_grads=False,
                           legend=False, expand=("all",), unroll=True)
    title = f"Backpropagation step by step: {walk.name}"
    return fill(TEMPLATE, {"TITLE": esc_html(title), "DATA": script_json(player_steps(walk)),
                           "SVG": inline_svg(picture.svg())})


def label(value) -> str:
    """A short tag for a node: the number, or an array's shape and norm."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 1:
        return num(arr.reshape(-1)[0])
    return f"{shape_of(arr)} ‖·‖ {num(np.linalg.norm(arr))}" if np.all(np.isfinite(arr)) else shape_of(arr)


def _reads(step) -> list:
    return [[node, "grad" if kind == "grad" else "value"] for node, kind in step.reads if kind != "rate"]


def _entry(phase, title, text, node, reads=(), values=None, grads=None, note=""):
    return {"phase": phase, "title": title, "text": text, "node": node, "reads": list(reads),
            "values": values or {}, "grads": grads or {}, "note": note}


def player_steps(walk) -> list:
    start = "\n".join(f"{role} {name} = {label(v)}" for name, role, _, v in walk.start)
    out = [_entry("start", "Starting values", start, None, values={n: label(v) for _, _, n, v in walk.start})]
    for s in walk.forward:
        out.append(_entry("forward", f"Forward: {_lhs(s)}", _text(s, walk), s.node, _reads(s),
                          values={s.node: label(s.value)}, note=s.note))
    out.append(_entry("loss", f"Loss: {walk.of}", f"{walk.of} = {num(walk.loss)}", walk.of_node,
                      values={walk.of_node: label(walk.loss)}))
    out.append(_entry("backward", f"Backward: d{walk.of}/d{walk.of}", f"d{walk.of}/d{walk.of} = 1", walk.of_node,
                      grads={walk.of_node: "1"}))
    for s in walk.backward:
        out += _backward(s, walk)
    for s in walk.updates:
        out.append(_entry("update", f"Update: {_lhs(s)}", _text(s, walk, "←"), s.node, _reads(s),
                          values={s.node: "new " + label(s.value)}))
    if walk.lr is not None:
        out.append(_entry("update", "Loss after the step", f"{walk.of} = {num(walk.loss_after)} "
                                                            f"(before: {num(walk.loss)})", walk.of_node,
                          values={walk.of_node: "after " + label(walk.loss_after)}))
    return out


def _backward(s, walk) -> list:
    if s.kind == "local":
        return [_entry("local", f"Local derivative: {_lhs(s)}", _text(s, walk), s.node, _reads(s))]
    if s.kind != "backward":
        return [_entry("backward", _lhs(s), _text(s, walk), s.node, _reads(s), values={s.node: label(s.value)})]
    out = []
    lookup = walk.lookup
    shown = pieces(s, lookup).parts
    for k, (part, (via, form, numbers, value)) in enumerate(zip(s.parts, shown), 1):
        reads = [[lookup[v].node, "grad"] for v in part.via if v in lookup]
        line = (f"through {via}: " if via else "") + f"{form}\n= {numbers}\n= {value}"
        out.append(_entry("arrive", f"Contribution {k} of {len(shown)} to {_lhs(s)}", line, s.node, reads,
                          grads={s.node: f"{k} of {len(shown)} arrived"}, note=s.note if k == 1 else ""))
    out.append(_entry("backward", f"Backward: {_lhs(s)}", _text(s, walk), s.node, _reads(s),
                      grads={s.node: "∂ " + label(s.value)}, note=s.note))
    return out


def _lhs(s) -> str:
    return DotText().render(s.lhs)


def _text(s, walk, arrow="=") -> str:
    lines = "\n".join(step_lines(s, walk.lookup, arrow, notes=False)).split("\n")
    return "\n".join(line[2:] if line.startswith("  ") else line for line in lines)

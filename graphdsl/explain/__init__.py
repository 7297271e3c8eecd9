"""Backpropagation step by step: the worked example of one training step of a model.

    collect   the steps: equations from graphdsl.equations, every number from the engine
    numbers   one way to print numbers and arrays
    printers  the equation printers with a visible product dot, and with numbers substituted
    layout    a step's pieces as strings in one notation
    text, latex, markdown   the writers
    player    the HTML backward-pass player
    result    Explanation, what Model.explain returns
"""
from __future__ import annotations

from .collect import collect
from .result import FORMATS, Explanation


def explain(model, values=None, of=None, wrt=None, lr=None, seed=0, dims=None, check_finite=True) -> Explanation:
    return Explanation(collect(model, values, of=of, wrt=wrt, lr=lr, seed=seed, dims=dims,
                               check_finite=check_finite), model, values, seed)


__all__ = ["explain", "Explanation", "FORMATS"]

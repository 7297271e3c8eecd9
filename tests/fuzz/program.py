"""A generated program, and NumPy values written as literals."""
from __future__ import annotations

import numpy as np


class Program:
    """The text of a generated program, its input values, and what it uses."""

    def __init__(self, text, values, target, wrt, features, unrolled=None):
        self.text, self.values, self.target, self.wrt, self.features = text, values, target, wrt, features
        self.unrolled = unrolled  # a loop program written out by hand: the same model

    def __repr__(self):  # hypothesis prints this for a failing example
        vals = {k: np.round(v, 4).tolist() for k, v in self.values.items()}
        return f"Program(\n{self.text}\nvalues={vals})"


def literal(value) -> str:
    value = np.asarray(value)
    if value.ndim == 0:
        return repr(float(value))
    return "[" + ", ".join(literal(v) for v in value) + "]"

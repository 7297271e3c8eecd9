"""Model.grad's route for a call that repeats the one before: same names, shapes, of and wrt.

A training loop calls `Model.grad` thousands of times with arrays that differ only in
their numbers. The general route converts the values, finds the compiled graph by their
names and shapes, builds the dict of every leaf's value and fills the program's slots
from it: for the tiny D2L step that took a fifth as long as the program itself
(docs/performance.md, "The tiny step"). A `Route` remembers where each given value goes
among the program's slots, so a call whose values have the same names and shapes, in the
same order, and are C-ordered once converted to float64, goes straight to the program.
Nothing is remembered about the arrays themselves (a training loop updates them in
place): they are looked at, and checked for NaN and Inf, on every call, and so are the
results.

Anything else (another shape, an array not C-ordered, a NaN or Inf, NumPy refusing the
data) makes the route answer None and `Model.grad` takes the general route, which runs
the same program on the same arrays and reports what is wrong as it always has.
"""
from __future__ import annotations

import numpy as np

from .arrays import all_finite, is_c_ordered
from .valuefiles import as_array

_F64 = np.dtype(np.float64)  # a float64 array's dtype is this very object (unless its byte order is swapped)


def as_answer(results, wrt) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Model.grad's answer from its plan's results: (value of `of`, {name in wrt: its gradient})."""
    return np.asarray(results[0]), {w: np.asarray(r) for w, r in zip(wrt, results[1:])}


class Route:
    """Where the given values and the constants go among the program's slots, for one (of, wrt)."""

    __slots__ = ("names", "shapes", "overrides", "plan", "wrt", "constants", "take", "scalar")

    def __init__(self, names, shapes, overrides, plan, wrt, constants, take, scalar):
        self.names, self.shapes = names, shapes  # of the given values, in order
        self.overrides = overrides  # Model.dim_overrides when the route was made
        self.plan, self.wrt = plan, wrt
        self.constants = constants  # leaf values that are not given: the same arrays on every call
        # each program leaf: its index in the given arrays followed by the constants (None: that very order)
        self.take = None if take == list(range(len(names) + len(constants))) else take
        self.scalar = scalar  # the program runs on Python floats

    @classmethod
    def make(cls, given: dict, leaves: dict, plan, wrt, overrides: dict) -> "Route | None":
        """The route of a call that took the general route with `given`, whose leaf values were `leaves`
        (values.known_values: nothing drawn), or None when a program leaf has no C-ordered value
        there (_Program.fill's general case).

        Each program leaf takes what `leaves` held: a given array (found by identity), or the same
        constant on every call."""
        position = {id(value): k for k, value in enumerate(given.values())}
        constants, take = [], []
        prog = plan.program
        for name in prog.leaves:
            value = leaves.get(name)
            if value is None or not is_c_ordered(value):
                return None
            k = position.get(id(value))
            if k is None:
                k = len(given) + len(constants)
                constants.append(value)
            take.append(k)
        return cls(tuple(given), _shapes(given), dict(overrides), plan, wrt, constants, take, prog.scalar)

    def fits(self, given: dict, plan, overrides: dict) -> bool:
        """Whether this is the route of a call with `given` (the values converted) that ran `plan`."""
        return plan is self.plan and overrides == self.overrides and tuple(given) == self.names \
            and _shapes(given) == self.shapes

    def arrays(self, values) -> list | None:
        """The given values as `Model.compile` converts them, when they have the route's names and shapes and
        are C-ordered; else None."""
        if values is None:
            values = {}
        if type(values) is not dict or tuple(values) != self.names:
            return None
        arrays = list(values.values())
        for k, value in enumerate(arrays):
            if type(value) is not np.ndarray or value.dtype is not _F64:  # (as_array's own first test, inlined)
                value = arrays[k] = as_array(value, self.names[k])  # (E306 for a string, as compile raises it)
            if value.shape != self.shapes[k] or not value.flags.c_contiguous:
                return None
        return arrays

    def answer(self, arrays: list, check_finite: bool):
        """Model.grad's answer from the given values as `arrays` gives them, or None to take the general route."""
        if check_finite and not all_finite(arrays):
            return None
        slots = row = arrays + self.constants  # (a new list: the program empties its slots as it goes)
        if self.take is not None:
            slots = [row[k] for k in self.take]
        if self.scalar:
            slots = [float(v) for v in slots]
        try:
            results = self.plan.run_filled(slots)
        except (ValueError, ArithmeticError):  # NumPy refused the data: the general route says where
            return None
        if check_finite and not all_finite(results):
            return None
        return as_answer(results, self.wrt)


def _shapes(given: dict) -> list:
    return [value.shape for value in given.values()]

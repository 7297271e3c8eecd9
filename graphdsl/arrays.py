"""Array layout shared by the reference schedule (plan.py) and the compiled program (codegen.py); the finite check.

NumPy's sums over an axis add in an order that follows memory layout, so both
schedules see every leaf value C-ordered: then the compiled program's buffer
reuse cannot change a last bit (see docs/performance.md).
"""
from __future__ import annotations

import math

import numpy as np

_add_reduce = np.add.reduce
SUM_IN_PYTHON = 64  # up to this many elements a Python sum is quicker than a ufunc call (about 1 µs)


def is_c_ordered(value) -> bool:
    """A C-ordered array, or not an array at all (a number)."""
    return not isinstance(value, np.ndarray) or value.flags.c_contiguous


def c_ordered(value):
    """The value as a C-ordered array (numbers and C-ordered arrays as they are)."""
    return value if is_c_ordered(value) else np.ascontiguousarray(value)


def all_finite(values) -> bool:
    """Whether every element of every float64 array (or number) in `values` is finite.

    A sum is finite whenever every element is (unless it overflows: only then are the
    arrays looked at element by element), so one running sum over all of them decides,
    with no temporary; up to SUM_IN_PYTHON elements are summed as Python floats, which
    is quicker than a ufunc call. Model.grad checks its given values and its results
    with it on every call, so it stays cheap.
    """
    total = 0.0
    for value in values:
        if isinstance(value, float):
            total += float(value)  # (a NumPy scalar would warn on inf - inf; a Python float does not)
        elif value.size <= SUM_IN_PYTHON:  # (0-d arrays too: ravel gives their one element)
            total += sum(value.ravel().tolist())
        else:  # one pass, one thread (BLAS's threaded dot stalls when the cores are busy), no overflow warning
            with np.errstate(over="ignore", invalid="ignore"):
                total += float(_add_reduce(value, None))
    return math.isfinite(total) or all(bool(np.isfinite(value).all()) for value in values)

"""Array layout shared by the reference schedule (plan.py) and the compiled program (codegen.py).

NumPy's sums over an axis add in an order that follows memory layout, so both
schedules see every leaf value C-ordered: then the compiled program's buffer
reuse cannot change a last bit (see docs/performance.md).
"""
from __future__ import annotations

import numpy as np


def is_c_ordered(value) -> bool:
    """A C-ordered array, or not an array at all (a number)."""
    return not isinstance(value, np.ndarray) or value.flags.c_contiguous


def c_ordered(value):
    """The value as a C-ordered array (numbers and C-ordered arrays as they are)."""
    return value if is_c_ordered(value) else np.ascontiguousarray(value)

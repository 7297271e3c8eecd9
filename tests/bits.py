"""Bit-for-bit equality of float64 arrays, shared by the tests of the compiled program."""
from __future__ import annotations

import numpy as np


def same_bits(a, b) -> bool:
    """Bit for bit, signs of zero included; a NaN matches any NaN (its sign bit is the CPU's choice)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    nan = np.isnan(a)
    return bool(np.array_equal(nan, np.isnan(b)) and np.array_equal(a[~nan].view(np.int64), b[~nan].view(np.int64)))

"""The compiled program's instructions, and the facts about ops its passes share.

codegen.py builds a program of these instructions from a Plan; rewrites.py, buffers.py
and pysource.py are its passes (exact rewrites; order and buffer reuse; the Python source).
"""
from __future__ import annotations

import math

import numpy as np


_BINARY = {"add": ("+", "np.add"), "sub": ("-", "np.subtract"), "mul": ("*", "np.multiply"),
           "div": ("/", "np.divide")}
_MASKS = {"relu'": ">", "gt": ">", "ge": ">=", "lt": "<", "le": "<=", "eq": "==", "ne": "!="}
_PURE = ("binary", "neg", "square", "relu", "mask", "abs")  # forms a scalar program runs on Python floats
_REDUCTIONS = ("sum", "mean", "max", "min", "sqnorm", "norm", "logsumexp", "var")
# ops whose result is a new array (never a view of an input) when it has at least one axis
_FRESH = {"matmul", "outer", "softmax", "log_softmax", "index_grad", *_REDUCTIONS}


# ops whose result may be a view that is not C-ordered (a transposed, sliced or broadcast array)
_VIEWS = {"transpose", "index", "broadcast_to", "unreduce", "opaque"}


class _Ins:
    """One instruction: out = form(ins). `form` says how to emit it; `fn` is the reference forward."""

    __slots__ = ("op_id", "op", "fn", "ins", "out", "kw", "form", "arg", "inplace")

    def __init__(self, op_id, op, fn, ins, out, kw, form=None, arg=None):
        self.op_id, self.op, self.fn, self.ins, self.out, self.kw = op_id, op, fn, list(ins), out, kw
        self.form, self.arg, self.inplace = form, arg, None


def _np_axis(axis):
    return None if axis is None else tuple(int(a) for a in axis) if isinstance(axis, (list, tuple)) else int(axis)


def _is_pow2(c) -> bool:
    if np.ndim(c) != 0:
        return False
    c = float(c)
    return c != 0.0 and math.isfinite(c) and abs(math.frexp(c)[0]) == 0.5

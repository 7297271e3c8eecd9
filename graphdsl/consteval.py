"""Constant expressions: dim sizes, initialisers, static arguments (`axis=0`).

They are evaluated once, outside the graph, with the operator table's own NumPy
forwards, so a constant means the same thing here as in the graph.
"""
from __future__ import annotations

import math

import numpy as np

from . import ast as A
from .diagnostics import Span
from .ops import REGISTRY

BIN = {"+": "add", "-": "sub", "*": "mul", "/": "div", "@": "matmul", "**": "pow",
       "<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"}


class NotConstant(Exception):
    """The expression needs a run-time value; carries the span that does."""

    def __init__(self, message: str, span: Span | None):
        super().__init__(message)
        self.message, self.span = message, span


def literal_array(node: A.ArrayLit, elements: list) -> np.ndarray:
    shapes = {np.shape(e) for e in elements}
    if len(shapes) > 1:
        raise NotConstant("array literal is not rectangular: its rows differ in length", node.span)
    return np.array(elements, dtype=np.float64)


# Named literals: a name that the program does not define itself means these numbers.
LITERALS = {"inf": float("inf"), "pi": float(np.pi)}


def const_eval(expr, lookup, call=None):
    """Evaluate `expr`; `lookup(Name)` gives a name's value, `call(Call, args, kwargs)` a call's."""

    def kids(node):
        if isinstance(node, A.Call):
            return tuple(node.args) + tuple(k.value for k in node.kwargs)
        return A.children(node)

    def visit(node, vals):
        if isinstance(node, A.Num):
            return node.value
        if isinstance(node, A.Bool):
            return node.value
        if isinstance(node, A.Name):
            return lookup(node)
        if isinstance(node, A.ArrayLit):
            return literal_array(node, vals)
        if isinstance(node, A.UnaryOp):
            return -vals[0] if node.op == "-" else vals[0]
        if isinstance(node, A.BinOp):
            try:
                with np.errstate(all="ignore"):
                    return REGISTRY[BIN[node.op]].forward(np.asarray(vals[0], float), np.asarray(vals[1], float))
            except ValueError:  # shapes that do not fit (`2 @ 3`, `[1, 2] + [1, 2, 3]`): located, not a traceback
                shapes = " and ".join(str(list(np.shape(v))) for v in vals)
                raise NotConstant(f"`{node.op}` does not apply to shapes {shapes}", node.span) from None
        if isinstance(node, A.Transpose):
            return np.transpose(vals[0])
        if isinstance(node, A.Slice):
            parts = _slice_parts(node, vals)
            if parts[2] == 0:
                raise NotConstant("a slice step cannot be zero", node.span)
            return slice(*parts)
        if isinstance(node, A.Index):
            try:
                return np.asarray(vals[0])[tuple(_int_index(v, node.span) for v in vals[1:])]
            except IndexError as err:
                raise NotConstant(f"index out of range: {err}", node.span) from None
        if isinstance(node, A.Call):
            n = len(node.args)
            kwargs = {k.name: v for k, v in zip(node.kwargs, vals[n:])}
            if call is None:
                raise NotConstant(f"`{node.func}(...)` is not a constant", node.span)
            return call(node, vals[:n], kwargs)
        raise NotConstant("not a constant expression", getattr(node, "span", None))

    return A.postorder(expr, visit, kids)


def _slice_parts(node: A.Slice, vals):
    it = iter(vals)
    return tuple(_int_index(next(it), node.span) if part is not None else None
                 for part in (node.start, node.stop, node.step))


LARGEST_WHOLE = 2 ** 53  # beyond this a float64 no longer tells whole numbers apart


def whole(value) -> int | None:
    """value as an int when it is one finite whole number of sensible size, else None."""
    if type(value) is float or type(value) is int:  # the common case (an index), without NumPy's calls
        return int(value) if math.isfinite(value) and value == math.floor(value) and abs(value) <= LARGEST_WHOLE \
            else None
    try:
        if np.ndim(value) != 0:
            return None
        f = float(value)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(f) or f != np.floor(f) or abs(f) > LARGEST_WHOLE:
        return None
    return int(f)


def _int_index(v, span):
    if isinstance(v, slice):
        return v
    k = whole(v)
    if k is None:
        raise NotConstant(f"an index must be a whole number, not {v}", span)
    return k


"""Forms: elementwise functions, binary operations, matmul, reductions, softmax, losses, transpose."""
from __future__ import annotations

import math
import re

import numpy as np
from hypothesis import strategies as st

from fuzz.tables import *  # noqa: F401,F403 - the form tables
from fuzz.program import literal  # noqa: F401


class ArithmeticForms:
    """Forms: elementwise functions, binary operations, matmul, reductions, softmax, losses, transpose. A mixin of Gen: uses GenCore's choices, leaves and expr."""

    def f_leaf(self, shape, depth):
        return self.leaf(shape)

    def f_unary(self, shape, depth):
        fmt = self.pick(SMOOTH_UNARY)
        if fmt.startswith("stop_gradient_free"):  # a def call: an elementwise def of one argument
            return self.f_call(shape, depth)
        return fmt.format(self.expr(shape, depth))

    def f_stop_gradient(self, shape, depth):
        """Compared with PyTorch's detach only: finite differences see the identity."""
        return f"(stop_gradient({self.expr(shape, depth)}) * {self.expr(self.partner(shape), depth)})"

    def f_kinked_unary(self, shape, depth):
        return self.pick(KINKED_UNARY).format(self.expr(shape, depth))

    def f_unsafe_unary(self, shape, depth):
        return self.pick(UNSAFE_UNARY).format(self.expr(shape, depth))

    def partner(self, shape):
        """A shape that broadcasts against `shape` to give `shape`."""
        out = list(shape)
        if out and self.chance(0.5):
            out = out[self.draw(st.integers(0, len(out))):]  # drop leading axes
        return tuple(("1", 1) if self.chance(0.25) else ax for ax in out)

    def binary(self, table, shape, depth):
        fmt = self.pick(table)
        a, b = shape, shape
        if self.chance(0.5):
            if self.chance(0.5):
                b = self.partner(shape)
            else:
                a = self.partner(shape)
        ea, eb = self.expr(a, depth), self.expr(b, depth)
        if fmt.count("{}") == 3:
            return fmt.format(ea, eb, eb)
        return fmt.format(ea, eb)

    def f_binary(self, shape, depth):
        return "(" + self.binary(SMOOTH_BINARY, shape, depth) + ")"

    def f_kinked_binary(self, shape, depth):
        return "(" + self.binary(KINKED_BINARY, shape, depth) + ")"

    def f_unsafe_binary(self, shape, depth):
        return "(" + self.binary(UNSAFE_BINARY, shape, depth) + ")"

    def f_broadcast(self, shape, depth):
        """Scalar with array: a number, a const or a dim used as a scalar."""
        return f"({self.expr((), depth)} * {self.expr(shape, depth)})"

    def f_matmul(self, shape, depth):
        k = self.axis()
        op = self.pick(["@", "@", "matmul", "dot"])
        if len(shape) == 0:
            a, b = (k,), (k,)
        elif len(shape) == 1:
            a, b = ((shape[0], k), (k,)) if self.chance(0.5) else ((k,), (k, shape[0]))
        else:
            batch = shape[:-2]
            if batch and self.chance(0.5):
                batch = batch[self.draw(st.integers(0, len(batch))):]
            a, b = shape[:-1] + (k,), batch + (k, shape[-1])
            if self.chance(0.5):
                a, b = batch + (shape[-2], k), shape[:-2] + (k, shape[-1])
        ea, eb = self.expr(a, depth), self.expr(b, depth)
        return f"({ea} @ {eb})" if op == "@" else f"{op}({ea}, {eb})"

    def reduce(self, ops, shape, depth):
        op = self.pick(ops)
        if shape == () and self.chance(0.5):
            return f"{op}({self.expr(self.shape(), depth)})"
        i = self.draw(st.integers(0, len(shape)))
        inner = shape[:i] + (self.axis(),) + shape[i:]
        axis = i if self.chance(0.5) else i - len(inner)
        if len(shape) < 2 and self.chance(0.3):  # two axes at once
            j = self.draw(st.integers(0, len(inner)))
            inner2 = inner[:j] + (self.axis(),) + inner[j:]
            axes = sorted({i if i < j else i + 1, j})
            axes = [a - len(inner2) if self.chance(0.4) else a for a in axes]  # negative axes in the list
            keep = ""
            if self.chance(0.3):  # keepdims: the kept axes are squeezed away again
                keep = ", keepdims=true"
                self.features["keepdims_list"] += 1
                return f"squeeze({op}({self.expr(inner2, depth)}, axis={axes}{keep}), axis={axes})"
            return f"{op}({self.expr(inner2, depth)}, axis={axes})"
        return f"{op}({self.expr(inner, depth)}, axis={axis})"

    def f_reduce(self, shape, depth):
        return self.reduce(SMOOTH_REDUCE, shape, depth)

    def f_kinked_reduce(self, shape, depth):
        return self.reduce(KINKED_REDUCE, shape, depth)

    def f_keepdims(self, shape, depth):
        ones = [i for i, (t, _) in enumerate(shape) if t == "1"]
        i = self.pick(ones)
        inner = shape[:i] + (self.axis(),) + shape[i + 1:]
        op = self.pick(SMOOTH_REDUCE + (KINKED_REDUCE if self.mode != "smooth" else []))
        return f"{op}({self.expr(inner, depth)}, axis={i}, keepdims=true)"

    def f_softmax(self, shape, depth):
        op = self.pick(["softmax", "log_softmax"])
        i = self.draw(st.integers(-len(shape), len(shape) - 1))
        arg = self.expr(shape, depth)
        return f"{op}({arg})" if i == -1 and self.chance(0.5) else f"{op}({arg}, axis={i})"

    def f_loss(self, shape, depth):
        kind = self.pick(["mse", "bce", "bce_with_logits", "cross_entropy"])
        inner = self.shape(max_rank=2)
        if kind == "mse":  # the target may broadcast against the prediction
            return f"mse({self.expr(inner, depth)}, {self.expr(self.partner(inner), depth)})"
        if kind == "bce":
            return f"bce(sigmoid({self.expr(inner, depth)}), sigmoid({self.expr(inner, depth)}))"
        if kind == "bce_with_logits":
            return f"bce_with_logits({self.expr(inner, depth)}, sigmoid({self.expr(inner, depth)}))"
        inner = inner or (self.axis(),)
        i = self.draw(st.integers(0, len(inner) - 1))
        rest = inner[:i] + inner[i + 1:]
        if self.chance(0.4) and inner[i][1] >= 1 and all(self.fixed(a) for a in inner) and \
                0 < math.prod(self.sizes(rest)) <= 12:  # integer class labels, the class axis left out
            labels = self.index_const(rest, inner[i][1])
            self.features["cross_entropy_labels"] += 1
            axis = "" if i == len(inner) - 1 and self.chance(0.5) else f", axis={self.pick([i, i - len(inner)])}"
            return f"cross_entropy({self.expr(inner, depth)}, {labels}{axis})"
        return f"cross_entropy({self.expr(inner, depth)}, softmax({self.expr(inner, depth)}, axis={i}), axis={i})"

    def f_trace(self, shape, depth):
        k = self.axis()
        return f"trace({self.expr((k, k), depth)})"

    def f_dot(self, shape, depth):
        k = self.axis()
        return f"dot({self.expr((k,), depth)}, {self.expr((k,), depth)})"

    def f_outer(self, shape, depth):
        return f"outer({self.expr(shape[:1], depth)}, {self.expr(shape[1:], depth)})"

    def f_transpose(self, shape, depth):
        if self.chance(0.5):  # .T and transpose(x) reverse the axes, at any rank
            self.features[f"T_rank{len(shape)}"] += 1
            inner = self.expr(shape[::-1], depth)
            return f"{self.postfix(inner)}.T" if self.chance(0.7) else f"transpose({inner})"
        perm = list(self.rng.permutation(len(shape)))
        inner = [None] * len(shape)
        for i, p in enumerate(perm):
            inner[p] = shape[i]
        return f"transpose({self.expr(tuple(inner), depth)}, axes={[int(p) for p in perm]})"

    def postfix(self, e):
        return e if re.fullmatch(r"[A-Za-z_]\w*", e) else f"({e})"

"""Forms: concat, stack, indexing and slices, reshape, axes inserted and removed, where, clip."""
from __future__ import annotations

import math
import re

import numpy as np
from hypothesis import strategies as st

from fuzz.tables import *  # noqa: F401,F403 - the form tables
from fuzz.program import literal  # noqa: F401


class ShapeForms:
    """Forms: concat, stack, indexing and slices, reshape, axes inserted and removed, where, clip. A mixin of Gen: uses GenCore's choices, leaves and expr."""

    def f_concat(self, shape, depth):
        fixed = [i for i, ax in enumerate(shape) if self.fixed(ax) and ax[1] >= 2]
        if not fixed:
            return self.f_unary(shape, depth)
        i = self.pick(fixed)
        p = self.draw(st.integers(1, shape[i][1] - 1))
        a = shape[:i] + ((str(p), p),) + shape[i + 1:]
        b = shape[:i] + ((str(shape[i][1] - p), shape[i][1] - p),) + shape[i + 1:]
        axis = i if self.chance(0.6) else i - len(shape)
        return f"concat([{self.expr(a, depth)}, {self.expr(b, depth)}], axis={axis})"

    def f_stack(self, shape, depth):
        fixed = [i for i, ax in enumerate(shape) if self.fixed(ax) and 1 <= ax[1] <= 3]
        if not fixed:
            return self.f_unary(shape, depth)
        i = self.pick(fixed)
        inner = shape[:i] + shape[i + 1:]
        parts = ", ".join(self.expr(inner, depth) for _ in range(shape[i][1]))
        return f"stack([{parts}], axis={i if self.chance(0.6) else i - len(shape)})"

    def f_index(self, shape, depth):
        ax = (self.axis(allow_free=False),)
        if ax[0][1] == 0:  # nothing to index
            return self.f_unary(shape, depth)
        j = self.draw(st.integers(-ax[0][1], ax[0][1] - 1))
        if self.chance(0.4) and shape and self.fixed(shape[0]) and shape[0][1] > 0:
            return self.stepped_slice(shape, depth)
        if self.chance(0.3) and shape and self.fixed(shape[0]):  # a slice of a longer axis
            extra = self.draw(st.integers(0, 2))
            start = self.draw(st.integers(0, extra))
            big = ((str(shape[0][1] + extra), shape[0][1] + extra),) + shape[1:]
            return f"{self.postfix(self.expr(big, depth))}[{start}:{start + shape[0][1]}]"
        if self.chance(0.3) and shape:  # index the second axis: x[:, j]
            inner = shape[:1] + ax + shape[1:]
            return f"{self.postfix(self.expr(inner, depth))}[:, {j}]"
        return f"{self.postfix(self.expr(ax + shape, depth))}[{j}]"

    def stepped_slice(self, shape, depth):
        """x[a:b:k] (or x[:, a:b:k]) with a step k of either sign and indices of either sign."""
        size = shape[0][1]
        step = self.pick([1, 2, 3, -1, -2, -3])
        extra = self.draw(st.integers(0, 2))
        n = size * abs(step) + extra  # the axis sliced
        span = (size - 1) * abs(step)
        if step > 0:
            start = self.draw(st.integers(0, n - 1 - span))
            stop = start + span + 1
        else:
            start = self.draw(st.integers(span, n - 1))
            stop = start - span - 1
        text_start = str(start - n) if self.chance(0.4) else str(start)
        if stop in (-1, n):  # past either end: only an omitted bound says it (-1 is the last element)
            text_stop = "" if stop == -1 or self.chance(0.5) else str(n)
        else:
            text_stop = str(stop - n) if self.chance(0.4) else str(stop)
        key = f"{text_start}:{text_stop}:{step}" if step != 1 or self.chance(0.5) else f"{text_start}:{text_stop}"
        self.features["slice_step" if step != 1 else "slice"] += 1
        if len(shape) >= 2 and self.chance(0.3):  # the same on the second axis, then swapped back
            inner = shape[1:2] + ((str(n), n),) + shape[2:]
            perm = [1, 0] + list(range(2, len(shape)))
            return f"transpose({self.postfix(self.expr(inner, depth))}[:, {key}], axes={perm})"
        return f"{self.postfix(self.expr(((str(n), n),) + shape[1:], depth))}[{key}]"

    def f_broadcast_to(self, shape, depth):
        return f"broadcast_to({self.expr(self.partner(shape), depth)}, {self.fmt_shape(shape)})"

    def f_reshape(self, shape, depth):
        if not all(self.fixed(a) for a in shape):
            return self.f_unary(shape, depth)
        size = math.prod(self.sizes(shape))
        inner = self.pick([((str(size), size),), shape[::-1], shape + (("1", 1),)])
        target = self.fmt_shape(shape)
        if len(shape) >= 1 and self.chance(0.3):  # one -1
            i = self.draw(st.integers(0, len(shape) - 1))
            target = "[" + ", ".join("-1" if k == i else t for k, (t, _) in enumerate(shape)) + "]"
        return f"reshape({self.expr(inner, depth)}, {target})"

    def f_expand_dims(self, shape, depth):
        ones = [i for i, (t, _) in enumerate(shape) if t == "1"]
        i = self.pick(ones)
        axis = i if self.chance(0.6) else i - len(shape)
        inner = self.expr(shape[:i] + shape[i + 1:], depth)
        return f"expand_dims({inner}, {axis})" if self.chance(0.6) else f"expand_dims({inner}, axis={axis})"

    def f_squeeze(self, shape, depth):
        i = self.draw(st.integers(0, len(shape)))
        inner = shape[:i] + (("1", 1),) + shape[i:]
        axis = i if self.chance(0.6) else i - len(inner)
        e = self.expr(inner, depth)
        return f"squeeze({e}, {axis})" if self.chance(0.6) else f"squeeze({e}, axis={axis})"

    def f_where(self, shape, depth):
        cond = f"{self.expr(shape, depth)} > {self.expr(self.partner(shape), depth)}"
        return f"where({cond}, {self.expr(shape, depth)}, {self.expr(self.partner(shape), depth)})"

    def f_clip(self, shape, depth):
        if self.chance(0.5):  # bounds that are values of their own, broadcast against x (lo < hi)
            lo = self.expr(self.partner(shape), max(0, depth - 1))
            gap = self.pick([str(self.num(0.1, 2)), f"(0.1 + square({self.expr(self.partner(shape), 0)}))"])
            self.features["clip_bounds_values"] += 1
            return f"clip({self.expr(shape, depth)}, {lo}, {lo} + {gap})"
        lo = self.num(-1, 0)
        return f"clip({self.expr(shape, depth)}, {lo}, {round(lo + self.num(0.1, 2), 3)})"

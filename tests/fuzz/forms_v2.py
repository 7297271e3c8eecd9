"""Forms: the v2 builtins (convolution, pooling, gather, einsum, constructors, ...)."""
from __future__ import annotations

import math
import re

import numpy as np
from hypothesis import strategies as st

from fuzz.tables import *  # noqa: F401,F403 - the form tables
from fuzz.program import literal  # noqa: F401


class V2Forms:
    """Forms: the v2 builtins (convolution, pooling, gather, einsum, constructors, ...). A mixin of Gen: uses GenCore's choices, leaves and expr."""

    # -- v2 builtins (issue 15): convolution, pooling, gather, einsum, constructors, ...
    def f_v2(self, shape, depth):
        """One of the v2 builtins that can give `shape`; as a group, so the older forms keep their share."""
        forms = ["einsum", "dropout"] + (["grad_v2"] if self.mode in ("smooth", "any") else [])
        if shape:
            forms += ["take", "cumsum", "pad", "flatten", "construct"]
        if len(shape) >= 2:
            forms += ["triangle"]
        if len(shape) in (2, 3, 4):  # conv1d, conv2d or a pool, flattened to rank 2 or 3
            forms += ["conv", "conv", "conv", "pool", "pool"]
        form = self.pick(forms)
        self.features[form] += 1
        return getattr(self, "f_" + form)(shape, depth)

    def spatial_ok(self, shape):
        """Every axis after the batch axis fixed and not empty: a window's arithmetic needs its size."""
        return all(self.fixed(a) and a[1] >= 1 for a in shape[1:])

    def window_input(self, out, k, stride, pad, dil):
        """An input size n with floor((n + 2 pad - dil (k - 1) - 1) / stride) + 1 == out (the rest dropped)."""
        for p in (pad, 0):
            n = (out - 1) * stride + dil * (k - 1) + 1 - 2 * p + int(self.rng.integers(stride))
            if n >= 1:
                return n, p
        raise AssertionError("unreachable: with no padding the input is at least the window")

    def spatial_arg(self, name, values, default):
        """`, stride=2` or `, stride=[1, 2]`, or nothing for the default."""
        if all(v == default for v in values) and self.chance(0.6):
            return ""
        if len(set(values)) == 1 and self.chance(0.7):
            return f", {name}={values[0]}"
        return f", {name}={list(values)}"

    def unflattened(self, shape, rank):
        """A shape of `rank` that flatten(..., start=len(shape) - 1) turns into `shape` (the last axis split)."""
        m = shape[-1][1]
        parts = []
        for _ in range(rank - len(shape)):  # the first splits of the last axis, then what is left
            parts.append(self.pick([d for d in range(1, m + 1) if m % d == 0]))
            m //= parts[-1]
        return shape[:-1] + tuple((str(v), v) for v in parts + [m])

    def flattened(self, shape, make, rank, depth):
        """flatten(make(out, depth), start) giving `shape` from an `out` of `rank`."""
        start = len(shape) - 1
        inner = make(self.unflattened(shape, rank), depth)
        self.features["flatten_spatial"] += 1
        return f"flatten({inner})" if start == 1 and self.chance(0.5) else f"flatten({inner}, start={start})"

    def f_conv(self, shape, depth):
        """conv1d/conv2d of the shape, or flattened from a convolution's [N, O, L] or [N, O, H, W]."""
        if not self.spatial_ok(shape):
            return self.f_unary(shape, depth)
        if len(shape) == 4 or (len(shape) == 3 and self.chance(0.5)):
            return self.conv(shape, depth)
        rank = 4 if len(shape) == 3 else self.pick([3, 4])
        return self.flattened(shape, self.conv, rank, depth)

    def conv(self, out, depth):
        """conv1d or conv2d giving `out` ([N, O, L] or [N, O, H, W]): kernel, stride, padding, dilation, groups."""
        o = out[1][1]
        groups = self.pick([g for g in (1, 1, 2, 3, 4) if o % g == 0])
        per_group = self.pick([1, 1, 2])
        ks, strides, pads, dils, sizes = [], [], [], [], []
        for _, size in out[2:]:
            k, s, d = int(self.rng.integers(1, 4)), self.pick([1, 1, 2]), self.pick([1, 1, 2])
            n, p = self.window_input(size, k, s, self.pick([0, 0, 1, 2]), d)
            ks.append(k), strides.append(s), pads.append(p), dils.append(d), sizes.append(n)
        x_shape = (out[0], (str(groups * per_group), groups * per_group)) + tuple((str(n), n) for n in sizes)
        w_shape = (out[1], (str(per_group), per_group)) + tuple((str(k), k) for k in ks)
        args = self.spatial_arg("stride", strides, 1) + self.spatial_arg("padding", pads, 0)
        args += self.spatial_arg("dilation", dils, 1) + ("" if groups == 1 and self.chance(0.7) else f", groups={groups}")
        x = self.f_pool(x_shape, depth) if len(out) == 4 and self.chance(0.4) else self.expr(x_shape, depth)
        op = "conv1d" if len(out) == 3 else "conv2d"
        self.features[op] += 1
        return f"{op}({x}, {self.expr(w_shape, depth)}{args})"

    def f_pool(self, shape, depth):
        """max_pool2d or avg_pool2d giving [N, C, Ho, Wo]: windows that divide the input or leave a rest."""
        if not self.spatial_ok(shape):
            return self.f_unary(shape, depth)
        if len(shape) in (2, 3):
            return self.flattened(shape, self.f_pool, 4, depth)
        op = "avg_pool2d" if self.mode == "smooth" else self.pick(["avg_pool2d", "max_pool2d"])
        ks = [int(self.rng.integers(1, 4)) for _ in range(2)]
        strides = ks if self.chance(0.5) else [self.pick([1, 2]) for _ in range(2)]
        explicit_stride = strides is not ks
        pads, sizes = [], []
        for (_, size), k, s in zip(shape[2:], ks, strides):
            n, p = self.window_input(size, k, s, int(self.rng.integers(0, k // 2 + 1)), 1)
            pads.append(p), sizes.append(n)
        inner = shape[:2] + tuple((str(n), n) for n in sizes)
        k_text = str(ks[0]) if ks[0] == ks[1] and self.chance(0.7) else str(ks)
        args = (self.spatial_arg("stride", strides, None) if explicit_stride else "") + self.spatial_arg(
            "padding", pads, 0)
        self.features[op] += 1
        return f"{op}({self.expr(inner, depth)}, {k_text}{args})"

    def f_flatten(self, shape, depth):
        """flatten(x, start) whose merged axes give the last axis of `shape`."""
        last = shape[-1]
        if not self.fixed(last):
            return self.f_unary(shape, depth)
        m = last[1]
        splits = [(m,), (1, m), (m, 1)] + [(d, m // d) for d in range(2, m) if m % d == 0]
        if m == 4:
            splits.append((2, 1, 2))
        split = self.pick(splits)
        inner = shape[:-1] + tuple((str(v), v) for v in split)
        start = len(shape) - 1
        if start == 1 and self.chance(0.4):
            return f"flatten({self.expr(inner, depth)})"
        return f"flatten({self.expr(inner, depth)}, start={start if self.chance(0.5) else start - len(inner)})"

    def index_const(self, idx_shape, high, low=0):
        """A const of whole numbers from low to high - 1 (negative ones count from the end): indices, labels."""
        values = self.rng.integers(low, high, self.sizes(idx_shape)).astype(float)
        name = self.fresh("c")
        self.decls.append(f"const {name} = {literal(values)}")
        self.leaves.append((name, idx_shape, "const"))
        return name

    def f_take(self, shape, depth):
        """take(x, idx, axis): idx's shape (rank 0 to 2) takes the place of the axis; indices repeat, count back."""
        r = self.draw(st.integers(0, min(2, len(shape))))
        i = self.draw(st.integers(0, len(shape) - r))
        idx_shape = shape[i:i + r]
        ax = self.axis(allow_free=False)
        if ax[1] == 0 or not all(self.fixed(a) for a in idx_shape) or not 0 < math.prod(self.sizes(idx_shape)) <= 12:
            return self.f_unary(shape, depth)
        idx = self.index_const(idx_shape, ax[1], -ax[1])
        inner = shape[:i] + (ax,) + shape[i + r:]
        axis = i if self.chance(0.6) else i - len(inner)
        x = self.expr(inner, depth)
        return f"take({x}, {idx})" if axis == 0 and self.chance(0.5) else f"take({x}, {idx}, axis={axis})"

    def f_einsum(self, shape, depth):
        """einsum of one to three operands: each term a random set of the output's and contracted letters."""
        letters = [str(c) for c in self.rng.permutation(list("abcdefghijklmnopqrstuvwxyz"))]
        out = letters[:len(shape)]
        axes = dict(zip(out, shape))
        for letter in letters[len(shape):len(shape) + self.draw(st.integers(0, 2))]:  # contracted
            axes[letter] = self.axis()
        names = list(axes)
        terms = []
        for _ in range(self.pick([1, 2, 2, 3])):
            k = int(self.rng.integers(0, min(3, len(names)) + 1))
            terms.append([str(c) for c in self.rng.permutation(names)[:k]])
        for letter in out:  # every output letter in some operand
            if not any(letter in t for t in terms):
                t = self.pick(terms)
                t.insert(int(self.rng.integers(len(t) + 1)), letter)
        spec = ",".join("".join(t) for t in terms) + "->" + "".join(out)
        args = ", ".join(self.expr(tuple(axes[c] for c in t), depth) for t in terms)
        self.features["einsum_operands%d" % len(terms)] += 1
        return f'einsum("{spec}", {args})'

    def f_cumsum(self, shape, depth):
        axis = self.draw(st.integers(-len(shape), len(shape) - 1))
        x = self.expr(shape, depth)
        return f"cumsum({x}, {axis})" if self.chance(0.5) else f"cumsum({x}, axis={axis})"

    def f_pad(self, shape, depth):
        """pad(x, [[before, after], ...], value): x is `shape` less the widths on its fixed axes."""
        widths = []
        for ax in shape:
            room = ax[1] if self.zero_sizes else ax[1] - 1  # x's axis may be empty only where sizes may be 0
            total = int(self.rng.integers(0, min(room, 2) + 1)) if self.fixed(ax) and room > 0 else 0
            before = int(self.rng.integers(0, total + 1))
            widths.append([before, total - before])
        inner = tuple(ax if sum(w) == 0 else (str(ax[1] - sum(w)), ax[1] - sum(w)) for ax, w in zip(shape, widths))
        value = "" if self.chance(0.5) else f", value={self.num(-2, 2)}"
        return f"pad({self.expr(inner, depth)}, {widths}{value})"

    def f_triangle(self, shape, depth):
        op, k = self.pick(["tril", "triu"]), self.draw(st.integers(-2, 2))
        x = self.expr(shape, depth)
        return self.pick([f"{op}({x})", f"{op}({x}, {k})", f"{op}({x}, k={k})"])

    def f_construct(self, shape, depth):
        """A constructed constant (arange, ones, zeros, eye; sizes may be dims) with a value of the shape."""
        kinds = ["ones", "zeros"] + (["arange"] if len(shape) == 1 else [])
        if len(shape) == 2:
            kinds.append("eye")
        kind = self.pick(kinds)
        if kind == "eye":  # the identity of the first axis, times a matrix of the shape
            return f"(eye({shape[0][0]}) @ {self.expr(shape, depth)})"
        made = {"ones": f"ones({self.fmt_shape(shape)})", "zeros": f"zeros({self.fmt_shape(shape)})",
                "arange": f"arange({shape[0][0]})"}[kind]
        return f"({made} {self.pick(['*', '+', '-'])} {self.expr(self.partner(shape), depth)})"

    def f_argreduce(self, shape, depth):
        """argmax/argmin over an inserted axis (or of the whole array): a step function, gradient zero."""
        op = self.pick(["argmax", "argmin"])
        if shape == () and self.chance(0.3):
            return f"({op}({self.expr(self.shape(), depth)}) * {self.expr((), depth)})"
        i = self.draw(st.integers(0, len(shape)))
        inner = shape[:i] + (self.axis(),) + shape[i:]
        axis = i if self.chance(0.5) else i - len(inner)
        call = f"{op}({self.expr(inner, depth)}, {axis})" if self.chance(0.5) else \
            f"{op}({self.expr(inner, depth)}, axis={axis})"
        return f"({call} * {self.expr(self.partner(shape), depth)})"

    def f_dropout(self, shape, depth):
        """dropout in eval mode (the identity): the API and the gradient properties run in eval mode."""
        p = self.pick([0.0, 0.1, 0.5, 0.9])
        x = self.expr(shape, depth)
        return f"dropout({x}, {p})" if self.chance(0.5) else f"dropout({x}, p={p})"

    def f_onehot(self, shape, depth):
        """onehot(labels, k, axis) of const labels (whole numbers), times a value of the same shape."""
        axes = [i for i, ax in enumerate(shape) if self.fixed(ax) and ax[1] >= 1]
        rest_fixed = lambda i: all(self.fixed(a) for k, a in enumerate(shape) if k != i)  # noqa: E731
        axes = [i for i in axes if rest_fixed(i) and 0 < math.prod(s for k, (_, s) in enumerate(shape) if k != i) <= 12]
        if not axes:
            return self.f_unary(shape, depth)
        i = self.pick(axes)
        k = shape[i]
        labels = self.rng.integers(0, k[1], tuple(s for j, (_, s) in enumerate(shape) if j != i)).astype(float)
        name = self.fresh("c")
        self.decls.append(f"const {name} = {literal(labels)}")
        self.leaves.append((name, tuple(a for j, a in enumerate(shape) if j != i), "const"))
        axis = i if self.chance(0.5) else i - len(shape)
        call = f"onehot({name}, {k[0]})" if axis == -1 and self.chance(0.5) else f"onehot({name}, {k[0]}, axis={axis})"
        return f"({call} * {self.expr(shape, depth)})"

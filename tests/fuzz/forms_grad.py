"""Forms: in-language grad (nested, through the v2 builtins), def calls and new defs."""
from __future__ import annotations

import math
import re

import numpy as np
from hypothesis import strategies as st

from fuzz.tables import *  # noqa: F401,F403 - the form tables
from fuzz.program import literal  # noqa: F401


class GradForms:
    """Forms: in-language grad (nested, through the v2 builtins), def calls and new defs. A mixin of Gen: uses GenCore's choices, leaves and expr."""

    def f_grad(self, shape, depth):
        """grad(y, x) inside the program: x a declared name of this shape, y a scalar that uses it."""
        x = self.declare(shape) if self.chance(0.5) else self.leaf(shape)
        kinds = {n: k for n, _, k in self.leaves}
        if not re.fullmatch(r"[A-Za-z_]\w*", x) or x in self.dims or kinds.get(x) == "implicit":
            return self.expr(shape, depth)
        through = self.v2_of(x, shape, depth) if self.chance(0.3) else None
        if through is not None:  # y through a v2 operation of x: its gradient's operators are built, then theirs
            text, out = through
            y = f"sum(tanh({text}) * {self.expr(out, max(0, depth - 1))})"
        else:
            body = self.pick(GRAD_BODIES + (GRAD_BODIES_KINKED if self.mode != "smooth" else []))
            inner = x
            if self.chance(0.8):  # through an activation, so that its derivative's own rule is differentiated
                inner = self.pick(GRAD_INNER + (GRAD_INNER_KINKED if self.mode != "smooth" else [])).format(x)
            big = self.expr((("2", 2),) + shape, 0) if "{big}" in body else ""  # x broadcast: its cotangent summed
            y = body.format(x=inner, e=self.expr(shape, max(0, depth - 1)), big=big)
        order = self.pick([1, 1, 2, 2, 3])  # grad of a contraction of grad: second and third derivatives
        self.features[f"grad_order{order}"] += 1
        for _ in range(order - 1):
            y = f"sum(grad({y}, {x}) * {self.expr(shape, 0)})"
        return f"grad({y}, {x})"

    def f_grad_v2(self, shape, depth):
        """A scalar of grad(y, x) for x of rank 3 or 4 and y through a convolution or a pool of x, times a
        value of the shape: the target shapes seldom have the rank that would bring these about in f_grad."""
        sizes = [self.pick([1, 2]), self.pick([1, 2, 4])] + [int(self.rng.integers(2, 6))
                                                             for _ in range(self.pick([1, 2]))]
        xs = tuple((str(v), v) for v in sizes)
        x = self.declare(xs)
        if {n: k for n, _, k in self.leaves}.get(x) == "implicit":
            return self.f_unary(shape, depth)
        text, out = self.v2_of(x, xs, depth, spatial=True)
        y = f"sum(tanh({text}) * {self.expr(out, 0)})"
        for _ in range(self.pick([0, 1, 1, 2])):  # second and third derivatives: the gradients' gradients
            y = f"sum(grad({y}, {x}) * {self.expr(xs, 0)})"
        return f"(sum(grad({y}, {x}) * {self.expr(xs, 0)}) * {self.expr(shape, depth)})"

    def v2_of(self, x, shape, depth, spatial=False):
        """(text, shape) of a v2 operation of the name x of `shape`: conv (x as input or weight), pool, take,
        cumsum; None when none fits. Written by f_grad, so that in-language grad builds conv_input_grad,
        conv_weight_grad, max_pool2d_grad, pool_select, avg_pool2d_grad, take_grad, rev_cumsum."""
        kinds = []
        if shape and self.fixed(shape[0]) and shape[0][1] >= 1 and not spatial:
            kinds += ["take", "cumsum"]
        if len(shape) in (3, 4) and all(self.fixed(a) and a[1] >= 1 for a in shape):
            kinds += ["conv_input", "conv_weight"] + (["pool"] if len(shape) == 4 else [])
        if not kinds:
            return None
        kind = self.pick(kinds)
        self.features["grad_through_" + kind] += 1
        if kind == "cumsum":
            return f"cumsum({x}, {self.draw(st.integers(-len(shape), len(shape) - 1))})", shape
        if kind == "take":  # along the first axis: indices repeat and count from the end
            n = shape[0][1]
            idx_shape = (("3", 3),)
            return f"take({x}, {self.index_const(idx_shape, n, -n)})", idx_shape + shape[1:]
        if kind == "pool":
            op = "avg_pool2d" if self.mode == "smooth" else self.pick(["avg_pool2d", "max_pool2d"])
            k, stride = self.pick([1, 2, 3]), self.pick([None, 1, 2])
            if min(s for _, s in shape[2:]) < k:
                k = 1
            pad = int(self.rng.integers(0, k // 2 + 1))
            out = shape[:2] + tuple((str(v), v) for v in
                                    ((n + 2 * pad - k) // (stride or k) + 1 for _, n in shape[2:]))
            args = ("" if stride is None else f", stride={stride}") + (f", padding={pad}" if pad else "")
            return f"{op}({x}, {k}{args})", out
        nd = len(shape) - 2
        op = "conv1d" if nd == 1 else "conv2d"
        if kind == "conv_weight":  # x is the weight [O, C/groups, *k]
            o, per_group = shape[0][1], shape[1][1]
            groups = self.pick([g for g in (1, 2) if o % g == 0])
            sizes = [self.window_input(int(self.rng.integers(1, 3)), k, 1, 0, 1)[0] for _, k in shape[2:]]
            inp = ((str(2), 2), (str(groups * per_group), groups * per_group)) + tuple((str(n), n) for n in sizes)
            out = (("2", 2), shape[0]) + tuple((str(n - k + 1), n - k + 1) for n, (_, k) in zip(sizes, shape[2:]))
            return f"{op}({self.expr(inp, 0)}, {x}, groups={groups})", out
        c = shape[1][1]  # x is the input [N, C, *spatial]
        groups = self.pick([g for g in (1, 2) if c % g == 0])
        k, stride, pad, dil = self.pick([1, 2, 3]), self.pick([1, 2]), self.pick([0, 1]), self.pick([1, 2])
        if min(n for _, n in shape[2:]) + 2 * pad < dil * (k - 1) + 1:
            k = 1
        o = groups * self.pick([1, 2])
        w_shape = ((str(o), o), (str(c // groups), c // groups)) + ((str(k), k),) * nd
        out = (shape[0], w_shape[0]) + tuple((str(v), v) for v in
                                             ((n + 2 * pad - dil * (k - 1) - 1) // stride + 1 for _, n in shape[2:]))
        args = f", stride={stride}, padding={pad}, dilation={dil}, groups={groups}"
        return f"{op}({x}, {self.expr(w_shape, 0)}{args})", out

    def f_call(self, shape, depth):
        """A call of a def: elementwise in its arguments, so it fits any shape."""
        if not self.defs or self.chance(0.4):
            self.new_def()
        name = self.pick(sorted(self.def_arity))
        args = ", ".join(self.expr(shape, depth) for _ in range(self.def_arity[name]))
        self.features["def_call"] += 1
        return f"{name}({args})"

    def new_def(self):
        name = self.fresh("f")
        arity = self.draw(st.integers(1, 3))
        params = ["p", "q", "r"][:arity]
        table = SMOOTH_UNARY[:-1] + (KINKED_UNARY if self.mode != "smooth" else [])
        terms = []
        for _ in range(self.draw(st.integers(1, 3))):
            p = self.pick(params)
            terms.append(self.pick(table).format(p))
        for p in params:  # every parameter used
            if not any(re.search(rf"\b{p}\b", t) for t in terms):
                terms.append(p)
        if self.defs and self.chance(0.3):  # call an earlier def
            other = self.pick(sorted(self.def_arity))
            terms.append(f"{other}({', '.join([params[0]] * self.def_arity[other])})")
        scalars = [n for n, s, k in self.leaves if s == () and k in ("param", "const")]
        if scalars and self.chance(0.3):  # a declared name seen from inside the body
            terms.append(f"{self.pick(scalars)} * {params[0]}")
        sign = lambda: self.pick([" + ", " - ", " * "])  # noqa: E731
        body = terms[0]
        for t in terms[1:]:
            body += sign() + t
        if self.chance(0.4):
            self.defs.append(f"def {name}({', '.join(params)}) {{\n    t = {body}\n"
                             f"    return t * 0.5 + {params[0]}\n}}")
        else:
            ps = ", ".join(params)
            self.defs.append(f"def {name}({ps}) = {body}")
        self.def_arity[name] = arity

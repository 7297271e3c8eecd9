"""Property tests over generated *valid* programs, and mutation fuzzing through the CLI.

The generator builds well-typed programs by construction: it is asked for an
expression of a given shape and picks a form that yields it (an elementwise
function of the same shape, a matmul with a matching inner dim, a reduction
over an inserted axis, a softmax, a transpose of the permuted shape, ...),
declaring inputs, params and consts of the shapes it needs on the way. Then:

* `check` accepts every generated program (it is valid by construction), and
  never raises anything but GraphDSLError;
* evaluation succeeds or raises GraphDSLError (never another exception);
* for smooth programs, `Model.grad` agrees with central finite differences;
  kinked ops (relu, abs, max, clip, maximum, where, comparisons) get their own
  gradient property that first evaluates every kinked op's arguments and skips
  the example when one lies within 1e-3 of its kink;
* every command (check, eval, grad, gradcheck, equations, render, train) on
  generated programs and their data, and `check`/`eval` on mutations of
  generated programs and of the examples (delete, insert, replace, swap and
  duplicate tokens or characters; random bytes; invalid UTF-8), give only clean
  results through the CLI: exit 0 or 1, never 3, never a traceback, and JSON
  (`--json`, `--error-format json`) that is strict RFC 8259.

A bug found here in code owned elsewhere gets a strict xfail in
tests/test_hostile.py and a label in KNOWN_BUGS, so that a campaign counts it
and goes on; the label goes when the bug is fixed.

CI runs a few hundred examples. The dedicated run generates at least 10,000
programs:

    GRAPHDSL_FUZZ_PROGRAMS=10000 pytest -q -m slow tests/test_fuzz_programs.py -s
"""
from __future__ import annotations

import difflib
import io
import json
import math
import os
import re
import time
import traceback
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import graphdsl
from graphdsl import GraphDSLError
from graphdsl.cli import main
from graphdsl.plan import Plan

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.gdsl"))
EXAMPLE_TEXTS = [p.read_text(encoding="utf-8") for p in EXAMPLES]
DEDICATED = int(os.environ.get("GRAPHDSL_FUZZ_PROGRAMS", "10000"))

# ---- the generator ------------------------------------------------------------------------------
#
# A shape is a tuple of axes; an axis is (token, size): the token is how the
# axis is written in a declaration (a dim name, or a number).

SMOOTH_UNARY = [
    "tanh({})", "sigmoid({})", "sin({})", "cos({})", "softplus({})", "log_sigmoid({})", "gelu({})",
    "square({})", "({}) ** 2", "({}) ** 3", "exp(tanh({}))", "expm1(tanh({}))", "log1p(square({}))",
    "log(1 + square({}))", "sqrt(1 + square({}))", "reciprocal(2 + sin({}))", "exp(-square({}))",
    "elu({}, alpha=1)", "-({})", "+({})", "stop_gradient_free({})",
]
KINKED_UNARY = ["relu({})", "abs({})", "leaky_relu({}, alpha=0.1)", "leaky_relu({})"]
UNSAFE_UNARY = ["log({})", "sqrt({})", "reciprocal({})", "exp({})", "({}) ** 0.5", "({}) ** -1", "sign({})",
                "stop_gradient({})", "exp(exp({}))", "elu({}, alpha=0.5)"]
SMOOTH_BINARY = ["{} + {}", "{} - {}", "{} * {}", "{} / (1.5 + sin({}))"]
KINKED_BINARY = ["maximum({}, {})", "minimum({}, {})", "({} > {}) * 1.5", "({} <= {}) + 0"]
UNSAFE_BINARY = ["{} / {}", "{} ** {}", "({} == {}) * 2", "({} != {})"]
SMOOTH_REDUCE = ["sum", "mean", "logsumexp", "var", "norm", "sqnorm"]
KINKED_REDUCE = ["max", "min"]
KINK_OPS = {"relu", "abs", "leaky_relu", "maximum", "minimum", "max", "min", "clip", "gt", "ge", "lt", "le",
            "eq", "ne", "sign", "where", "elu"}


class Program:
    """The text of a generated program, its input values, and what it uses."""

    def __init__(self, text, values, target, wrt, features):
        self.text, self.values, self.target, self.wrt, self.features = text, values, target, wrt, features

    def __repr__(self):  # hypothesis prints this for a failing example
        vals = {k: np.round(v, 4).tolist() for k, v in self.values.items()}
        return f"Program(\n{self.text}\nvalues={vals})"


class Gen:
    """Draws a valid program. `mode`: "smooth" (differentiable everywhere), "kinked" or "any"."""

    def __init__(self, draw, mode="any"):
        self.draw = draw
        self.mode = mode
        self.rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
        self.dims: dict[str, int] = {}
        self.free: dict[str, int] = {}  # free dims: their size comes from the data
        self.decls: list[str] = []
        self.defs: list[str] = []
        self.def_arity: dict[str, int] = {}
        self.stmts: list[str] = []
        self.values: dict[str, np.ndarray] = {}
        self.leaves: list[tuple[str, tuple, str]] = []  # (name, shape, kind)
        self.assigned: list[tuple[str, tuple]] = []
        self.features: Counter = Counter()
        self.n = 0
        self.budget = draw(st.integers(3, 30))  # nodes left to spend
        self.zero_sizes = mode == "any" and self.chance(0.1)  # axes of size 0 (empty arrays)

    # -- helpers
    def pick(self, seq):
        return seq[self.draw(st.integers(0, len(seq) - 1))]

    def chance(self, p):
        return self.draw(st.integers(0, 999)) < p * 1000

    def fresh(self, prefix):
        self.n += 1
        return f"{prefix}{self.n}"

    def num(self, lo=-2.0, hi=2.0):
        v = round(float(self.rng.uniform(lo, hi)), 3)
        return v

    def sizes(self, shape):
        return tuple(s for _, s in shape)

    def fmt_shape(self, shape):
        return "[" + ", ".join(t for t, _ in shape) + "]"

    # -- axes and shapes
    def axis(self, allow_free=True):
        """A new or existing axis: a fixed dim, a free dim (bound from data) or a number."""
        r = self.draw(st.integers(0, 9))
        if r <= 4:
            if self.dims and self.chance(0.6):
                name = self.pick(sorted(self.dims))
                return (name, self.dims[name])
            if len(self.dims) < 4:
                name = self.pick(["a", "b", "c", "d", "e", "k", "m", "q"])
                if name not in self.dims and name not in self.free:
                    self.dims[name] = self.draw(st.integers(0 if self.zero_sizes else 1, 4))
                if name in self.dims:
                    return (name, self.dims[name])
        if r <= 6 and allow_free:
            if self.free and self.chance(0.7):
                name = self.pick(sorted(self.free))
                return (name, self.free[name])
            if len(self.free) < 2:
                name = self.pick(["n", "bs"])
                if name not in self.free and name not in self.dims:
                    self.free[name] = self.draw(st.integers(0 if self.zero_sizes else 1, 3))
                if name in self.free:
                    return (name, self.free[name])
        size = self.draw(st.integers(0 if self.zero_sizes else 1, 4))
        if size == 0:
            self.features["zero_size"] += 1
        return (str(size), size)

    def shape(self, max_rank=3):
        return tuple(self.axis() for _ in range(self.draw(st.integers(0, max_rank))))

    def fixed(self, ax):
        """Is the axis's size known before the run (not a free dim)?"""
        return ax[0] not in self.free

    # -- leaves
    def leaf(self, shape):
        self.budget -= 1
        same = [n for n, s, _ in self.leaves if s == shape] + [n for n, s in self.assigned if s == shape]
        r = self.draw(st.integers(0, 9))
        if same and r < 4:
            return self.pick(same)
        if shape == () and r < 6:
            if self.chance(0.5):
                return repr(self.num(-3, 3))
            if self.dims and self.chance(0.5):
                self.features["dim_as_scalar"] += 1
                return self.pick(sorted(self.dims))
        return self.declare(shape)

    def declare(self, shape):
        sizes = self.sizes(shape)
        kind = self.pick(["input", "input", "param", "param", "const", "implicit"])
        if kind == "const" and any(not self.fixed(a) for a in shape):
            kind = "input"
        if kind == "const" and not 0 < math.prod(sizes) <= 12:  # a literal: small, and not empty
            kind = "param"
        if kind == "implicit" and not self.chance(0.3):
            kind = "input"
        name = self.fresh({"input": "x", "param": "w", "const": "c", "implicit": "u"}[kind])
        if kind == "implicit":  # far from every other name, or it would be a did-you-mean error
            name = self.implicit_name()
        decl_shape = self.fmt_shape(shape)
        self.features[kind] += 1
        if kind == "implicit":
            self.values[name] = self.rng.standard_normal(sizes)
            self.leaves.append((name, shape, "implicit"))  # binds no dim: its shape is not declared
            return name
        if kind == "input":
            if all(self.fixed(a) for a in shape) and 0 < math.prod(sizes) <= 8 and self.chance(0.2):
                value = np.round(self.rng.standard_normal(sizes), 3)
                self.decls.append(f"input {name} : {decl_shape} = {literal(value)}")
                self.features["input_default"] += 1
            else:
                unshaped = not shape and self.chance(0.5)  # `input x` takes its shape from the data
                self.decls.append(f"input {name}" if unshaped else f"input {name} : {decl_shape}")
                kind = "implicit" if unshaped else kind
                self.values[name] = self.rng.standard_normal(sizes)
            self.leaves.append((name, shape, kind))
            return name
        if kind == "param":
            init = self.pick(["randn()", "randn(std=0.5)", "randn(mean=0.1, std=2)", "uniform()",
                              "uniform(low=-0.5, high=0.5)", "glorot()", "he()", "full(0.7)", "LIT"])
            if init == "LIT" and (any(not self.fixed(a) for a in shape) or not 0 < math.prod(sizes) <= 12):
                init = "randn()"
            if init == "LIT":
                value = np.round(self.rng.standard_normal(sizes), 3)
                if self.chance(0.5):
                    self.decls.append(f"param {name} = {literal(value)}")
                else:
                    self.decls.append(f"param {name} : {decl_shape} = {literal(value)}")
            else:
                self.decls.append(f"param {name} : {decl_shape} = {init}")
                self.features["init_" + init.split("(")[0]] += 1
            self.leaves.append((name, shape, "param"))
            return name
        value = np.round(self.rng.standard_normal(sizes), 3)
        self.decls.append(f"const {name} = {literal(value)}" if self.chance(0.5) or not shape
                          else f"const {name} : {decl_shape} = {literal(value)}")
        self.leaves.append((name, shape, "const"))
        return name

    def implicit_name(self):
        """A random name that no other name is close to (difflib's did-you-mean cutoff is 0.6)."""
        known = [n for n, _, _ in self.leaves]
        for _ in range(50):
            name = "u" + "".join(self.rng.choice(list("bcdfghjklmnpqrstvwxz"), 9))
            if all(max(difflib.SequenceMatcher(None, a, b).ratio() for a, b in ((name, k), (k, name))) < 0.5
                   for k in known):  # ratio() is not symmetric
                return name
        return name

    # -- expressions of a given shape
    def expr(self, shape, depth):
        if depth <= 0 or self.budget <= 0:
            return self.leaf(shape)
        self.budget -= 1
        forms = ["leaf", "unary", "unary", "binary", "binary", "broadcast", "matmul", "reduce", "reduce"]
        if shape:
            forms += ["softmax", "transpose", "concat", "stack", "index", "broadcast_to", "reshape"]
        if any(t == "1" for t, _ in shape):
            forms += ["expand_dims", "keepdims"]
        forms += ["squeeze", "call", "call"] + (["outer"] if len(shape) == 2 else [])
        if shape == ():
            forms += ["loss", "loss", "trace", "dot"]
        if self.mode == "smooth":
            forms += ["grad"]
        if self.mode in ("kinked", "any"):
            forms += ["kinked_unary", "kinked_binary", "where", "clip", "kinked_reduce"]
        if self.mode == "any":
            forms += ["unsafe_unary", "unsafe_binary"]
        form = self.pick(forms)
        self.features[form] += 1
        return getattr(self, "f_" + form)(shape, depth - 1)

    def f_leaf(self, shape, depth):
        return self.leaf(shape)

    def f_unary(self, shape, depth):
        fmt = self.pick(SMOOTH_UNARY)
        if fmt.startswith("stop_gradient_free"):  # a def call: an elementwise def of one argument
            return self.f_call(shape, depth)
        return fmt.format(self.expr(shape, depth))

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
            return f"{op}({self.expr(inner2, depth)}, axis=[{axes[0]}, {axes[1]}])"
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
        if kind == "mse":
            return f"mse({self.expr(inner, depth)}, {self.expr(inner, depth)})"
        if kind == "bce":
            return f"bce(sigmoid({self.expr(inner, depth)}), sigmoid({self.expr(inner, depth)}))"
        if kind == "bce_with_logits":
            return f"bce_with_logits({self.expr(inner, depth)}, sigmoid({self.expr(inner, depth)}))"
        inner = inner or (self.axis(),)
        i = self.draw(st.integers(0, len(inner) - 1))
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
        if len(shape) == 2 and self.chance(0.5):
            return f"{self.postfix(self.expr(shape[::-1], depth))}.T"
        perm = list(self.rng.permutation(len(shape)))
        inner = [None] * len(shape)
        for i, p in enumerate(perm):
            inner[p] = shape[i]
        return f"transpose({self.expr(tuple(inner), depth)}, axes={[int(p) for p in perm]})"

    def postfix(self, e):
        return e if re.fullmatch(r"[A-Za-z_]\w*", e) else f"({e})"

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
        return f"stack([{parts}], axis={i})"

    def f_index(self, shape, depth):
        ax = (self.axis(allow_free=False),)
        if ax[0][1] == 0:  # nothing to index
            return self.f_unary(shape, depth)
        j = self.draw(st.integers(-ax[0][1], ax[0][1] - 1))
        if self.chance(0.3) and shape and self.fixed(shape[0]):  # a slice of a longer axis
            extra = self.draw(st.integers(0, 2))
            start = self.draw(st.integers(0, extra))
            big = ((str(shape[0][1] + extra), shape[0][1] + extra),) + shape[1:]
            return f"{self.postfix(self.expr(big, depth))}[{start}:{start + shape[0][1]}]"
        if self.chance(0.3) and shape:  # index the second axis: x[:, j]
            inner = shape[:1] + ax + shape[1:]
            return f"{self.postfix(self.expr(inner, depth))}[:, {j}]"
        return f"{self.postfix(self.expr(ax + shape, depth))}[{j}]"

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
        return f"expand_dims({self.expr(shape[:i] + shape[i + 1:], depth)}, {i})"

    def f_squeeze(self, shape, depth):
        i = self.draw(st.integers(0, len(shape)))
        inner = shape[:i] + (("1", 1),) + shape[i:]
        return f"squeeze({self.expr(inner, depth)}, {i})"

    def f_where(self, shape, depth):
        cond = f"{self.expr(shape, depth)} > {self.expr(self.partner(shape), depth)}"
        return f"where({cond}, {self.expr(shape, depth)}, {self.expr(self.partner(shape), depth)})"

    def f_clip(self, shape, depth):
        lo = self.num(-1, 0)
        return f"clip({self.expr(shape, depth)}, {lo}, {round(lo + self.num(0.1, 2), 3)})"

    def f_grad(self, shape, depth):
        """grad(y, x) inside the program: x a declared name of this shape, y a scalar that uses it."""
        x = self.declare(shape) if self.chance(0.5) else self.leaf(shape)
        kinds = {n: k for n, _, k in self.leaves}
        if not re.fullmatch(r"[A-Za-z_]\w*", x) or x in self.dims or kinds.get(x) == "implicit":
            return self.expr(shape, depth)
        body = self.pick(["sum(tanh({x}) * {e})", "sum(({x}) ** 2 * {e})", "sqnorm({x} * {e})",
                          "mean(sigmoid({x} * {e}))"])
        return "grad(" + body.format(x=x, e=self.expr(shape, max(0, depth - 1))) + f", {x})"

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

    # -- the program
    def program(self) -> Program:
        nstmts = self.draw(st.integers(1, 4))
        for _ in range(nstmts - 1):
            shape = self.shape()
            e = self.expr(shape, self.draw(st.integers(1, 3)))
            name = self.fresh("t")
            self.stmts.append(f"{name} = {e}")
            self.assigned.append((name, shape))
        final_shape = self.shape(max_rank=2)
        e = self.expr(final_shape, self.draw(st.integers(1, 4)))
        if final_shape:
            w = self.declare(final_shape)
            self.stmts.append(f"y = {e}")
            self.stmts.append(f"L = sum(y * {w})" if self.chance(0.7) else "L = mean(y) + sqnorm(y) * 0.1")
        else:
            self.stmts.append(f"L = {e}")
        self.stmts.append("output L")
        # a free dim used only by params or consts still needs a value that fills it
        for name, size in self.free.items():
            if not any(k == "input" and any(t == name for t, _ in s) for _, s, k in self.leaves):
                self.decls.append(f"input fill_{name} : [{name}]")
                self.values[f"fill_{name}"] = self.rng.standard_normal(size)
        if 0 in self.dims.values() or 0 in self.free.values():
            self.features["zero_size"] += 1
        lines = []
        if self.dims:
            lines.append("dim " + ", ".join(f"{k} = {v}" for k, v in self.dims.items()))
        for name in self.free:
            lines.append(f"dim {name}")
        text = "\n".join(lines + self.decls + self.defs + self.stmts) + "\n"
        used = set(re.findall(r"[A-Za-z_]\w*", "\n".join(self.defs + self.stmts)))
        # an implicit input that an abandoned form drew but never wrote is not in the model
        declared = {d.split()[1] for d in self.decls}
        values = {k: v for k, v in self.values.items() if k in used or k in declared}
        wrt = [n for n, _, k in self.leaves if k in ("input", "param", "implicit") and n in used]
        return Program(text, values, "L", wrt, self.features)


def literal(value) -> str:
    value = np.asarray(value)
    if value.ndim == 0:
        return repr(float(value))
    return "[" + ", ".join(literal(v) for v in value) + "]"


@st.composite
def programs(draw, mode="any"):
    return Gen(draw, mode).program()



# ---- known bugs ---------------------------------------------------------------------------------
#
# Bugs found by this file in code owned elsewhere, each with a strict xfail in
# tests/test_hostile.py. The fuzzer counts them (and reports the counts)
# rather than stopping at them, so that a campaign still finds the others;
# once fixed, a label simply stops being counted.

def _in_frames(err, name) -> bool:
    return any(fr.name == name for fr in traceback.extract_tb(err.__traceback__))


KNOWN_BUGS: dict = {
    # None open. Fixed since they were found here (tests/test_hostile.py keeps a regression test for
    # each): autodiff renaming a cotangent another list still held, GraphBuilder.bind renaming a def's
    # literal argument, the losses' reverse-mode rules needing every size at build time, render/train
    # running plans without locating NumPy's refusals (an empty axis), reverse-mode rules taking len()
    # of unknown shapes, and reshape/broadcast_to without their shape argument.
}


# The same, seen from the command line (an "internal error" line on stderr).
KNOWN_CLI_BUGS: dict = {}  # none open


def known_cli_bug(argv, err) -> str | None:
    if "internal error" not in err:
        return None
    for label, test in KNOWN_CLI_BUGS.items():
        if test(argv, err):
            return label
    return None


def known_bug(err) -> str | None:
    for label, test in KNOWN_BUGS.items():
        if test(err):
            return label
    return None


def guarded(prop, *args):
    """Run a property; a known bug is counted instead of failing the example."""
    try:
        prop(*args)
    except Exception as err:
        label = known_bug(err)
        if label is None:
            raise
        STATS["known_bug:" + label] += 1


# ---- invariants -------------------------------------------------------------------------------

STATS: Counter = Counter()


def load(prog: Program) -> graphdsl.Model | None:
    """A generated program is valid: it must check without error.

    The one exception: with axes of size 0, a max/min over an empty axis or a
    reshape with -1 is rightly refused (E204).
    """
    STATS["programs"] += 1
    try:
        model = graphdsl.parse(prog.text, "gen.gdsl")
    except GraphDSLError as err:
        codes = {d.code for d in err.errors}
        if prog.features["zero_size"] and codes <= {"E204"}:
            STATS["check_E204_empty"] += 1
            return None
        raise AssertionError(f"a valid generated program was refused:\n{err.format()}") from None
    STATS["checked"] += 1
    STATS["nodes"] += model.graph.number_of_nodes()
    return model


def evaluate(model, prog, **kw):
    """eval: a result or a GraphDSLError, never another exception."""
    try:
        out = model.eval(prog.values, **kw)
    except GraphDSLError as err:
        assert err.diagnostics and err.errors
        err.format()
        json.loads(err.to_json(), parse_constant=_reject)
        STATS["eval_" + err.errors[0].code] += 1
        return None
    STATS["eval_ok"] += 1
    for v in out.values():
        assert np.asarray(v).dtype == np.float64
    return out


def grad_agrees(model, prog, *, kink_guard=False):
    """Reverse mode against central differences along one random direction of every wrt value."""
    try:
        value, grads = model.grad(prog.values, of=prog.target, wrt=prog.wrt)
    except GraphDSLError as err:
        STATS["grad_" + err.errors[0].code] += 1
        assume(False)
    leaves = leaf_values(model, prog)
    f0 = float(value)
    assume(abs(f0) < 1e4 and all(np.all(np.abs(g) < 1e4) for g in grads.values()))
    if kink_guard and not away_from_kinks(model, prog, leaves):
        STATS["fd_skipped_near_kink"] += 1
        assume(False)
    rng = np.random.default_rng(len(prog.text))
    direction = {w: rng.standard_normal(np.shape(leaves[w])) for w in prog.wrt}
    h = 1e-6

    def f(t):
        vals = {**leaves, **{w: leaves[w] + t * direction[w] for w in prog.wrt}}
        return float(model.eval(vals, outputs=[prog.target], check_finite=False)[prog.target])

    numeric = (f(h) - f(-h)) / (2 * h)
    analytic = float(sum(np.sum(grads[w] * direction[w]) for w in prog.wrt))
    assume(math.isfinite(numeric))
    # central differences: truncation ~h^2 f''', cancellation ~eps |f| / h
    tol = 1e-6 + 1e-4 * max(abs(numeric), abs(analytic)) + 1e-8 * abs(f0)
    STATS["fd_checked"] += 1
    assert abs(numeric - analytic) <= tol, (
        f"reverse mode {analytic!r} != finite differences {numeric!r} (|diff| {abs(numeric - analytic):.3e})")


def leaf_values(model, prog):
    """Every input and param value the program runs with (given data and drawn initialisers)."""
    compiled, given = model.compile(prog.values)
    leaves = model.leaf_values(compiled, given, 0)
    return {k: np.asarray(v, dtype=np.float64) for k, v in leaves.items()}


def away_from_kinks(model, prog, leaves, margin=1e-3) -> bool:
    """Evaluate the arguments of every kinked op; False if one is within `margin` of its kink."""
    compiled, _ = model.compile(prog.values)
    g = compiled.built.graph
    kinked = [(n, d) for n, d in g.nodes(data=True) if d["kind"] == "op" and d["op"] in KINK_OPS]
    if not kinked:
        return True
    args = {n: [u for u, _, _ in sorted(g.in_edges(n, keys=True), key=lambda e: e[2])] for n, _ in kinked}
    targets = sorted({a for a_s in args.values() for a in a_s})
    vals = dict(zip(targets, Plan(g, targets, model.source).run_reference(leaves)))
    for n, d in kinked:
        xs = [np.asarray(vals[a], dtype=np.float64) for a in args[n]]
        op = d["op"]
        if op in ("relu", "abs", "leaky_relu", "sign", "elu"):
            gap = np.abs(xs[0])
        elif op in ("maximum", "minimum", "gt", "ge", "lt", "le", "eq", "ne"):
            gap = np.abs(xs[0] - xs[1])
        elif op == "clip":
            gap = np.minimum(np.abs(xs[0] - xs[1]), np.abs(xs[0] - xs[2]))
        elif op == "where":
            continue  # its condition is a comparison, checked on its own
        else:  # max/min reductions: the top two along the axes must differ
            x, axis = xs[0], d["attrs"].get("axis")
            axes = tuple(range(x.ndim)) if axis is None else ((axis,) if np.ndim(axis) == 0 else tuple(axis))
            axes = tuple(a % max(1, x.ndim) for a in axes)
            rest = tuple(s for i, s in enumerate(x.shape) if i not in axes)
            flat = np.moveaxis(x, axes, tuple(range(-len(axes), 0))).reshape(rest + (-1,)) if x.ndim else x.reshape(1)
            if flat.shape[-1] < 2:
                continue
            top = np.sort(flat, axis=-1)
            gap = top[..., -1] - top[..., -2] if op == "max" else top[..., 1] - top[..., 0]
        if np.size(gap) and float(np.min(gap)) < margin:
            return False
    return True


def _reject(name):
    raise ValueError(f"not RFC 8259 JSON: {name}")


def strict_json(text: str):
    """json.loads that refuses NaN/Infinity tokens, which RFC 8259 does not allow."""
    return json.loads(text, parse_constant=_reject)


# ---- the CLI, in process ------------------------------------------------------------------------

def run_cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse: usage errors and --help
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def clean(code, out, err, argv):
    """The CLI's promise: exit 0 or 1 (2 for usage), diagnostics, never a traceback or an internal error."""
    STATS[f"cli_exit_{code}"] += 1
    assert "Traceback" not in out + err, f"traceback from {argv}:\n{err}"
    label = known_cli_bug(argv, err)
    if label is not None:
        STATS["known_bug:" + label] += 1
        return
    assert "internal error" not in err, f"internal error from {argv}:\n{err}"
    assert code in (0, 1), f"exit {code} from {argv}:\n{err}"
    if "--error-format" in argv and code == 1:
        data = strict_json(err)
        assert data["diagnostics"], err
    if "--json" in argv and code == 0:
        strict_json(out)


# ---- mutations --------------------------------------------------------------------------------

TOKEN = re.compile(r"[ \t]+|\r?\n|#[^\n]*|[A-Za-z_]\w*|\d+\.?\d*(?:[eE][+-]?\d+)?|\*\*|[<>=!]=|.", re.S)
EXTRA_TOKENS = ["dim", "input", "param", "const", "def", "return", "output", "true", "false", "grad", "(", ")",
                "[", "]", "{", "}", ",", ";", "\n", "=", "**", "@", ".T", "_", ":", "#", "\t", "\r\n", "\r", "'",
                "^", "\\", "&&", "1e999", "0", "-1", "1e-400", "0/0", "\x00", "\ufeff", "é", "中", "\x1b[2J",
                "\u202e", "\x0c", "\u2028", "99999999999999999999", "[" * 300, "(" * 300, "x" * 300]


@st.composite
def token_mutants(draw, sources=None):
    """A program (generated or an example) with tokens or characters deleted, inserted, swapped or duplicated."""
    if sources is None and draw(st.booleans()):
        text = draw(programs("any")).text
    else:
        text = draw(st.sampled_from(sources or EXAMPLE_TEXTS))
    by_char = draw(st.booleans())  # mutate characters, or whole tokens
    toks = list(text) if by_char else TOKEN.findall(text)
    vocab = sorted(set(toks)) + EXTRA_TOKENS
    for _ in range(draw(st.integers(1, 5))):
        if not toks:
            toks = [draw(st.sampled_from(vocab))]
        i = draw(st.integers(0, len(toks) - 1))
        kind = draw(st.sampled_from(["delete", "insert", "swap", "duplicate", "replace"]))
        if kind == "delete":
            del toks[i: i + draw(st.integers(1, 3))]
        elif kind == "insert":
            toks.insert(i, draw(st.sampled_from(vocab)))
        elif kind == "replace":
            toks[i] = draw(st.sampled_from(vocab))
        elif kind == "swap":
            j = draw(st.integers(0, len(toks) - 1))
            toks[i], toks[j] = toks[j], toks[i]
        else:
            toks[i:i] = toks[i: i + draw(st.integers(1, 8))]
    return "".join(toks)


@st.composite
def byte_mutants(draw):
    """Bytes that are mostly not valid UTF-8: random bytes, or an example with bad bytes spliced in."""
    kind = draw(st.sampled_from(["random", "splice", "splice", "truncate"]))
    if kind == "random":
        return draw(st.binary(max_size=300))
    data = bytearray(draw(st.sampled_from(EXAMPLE_TEXTS)).encode("utf-8"))
    if kind == "truncate":  # cut inside a multi-byte character, or anywhere
        data += "é中".encode("utf-8")
        return bytes(data[: len(data) - draw(st.integers(1, 4))])
    bad = [b"\xff", b"\xfe", b"\xc3", b"\xe4\xb8", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80",
           b"\x00", b"\xef\xbb\xbf", b"\r", b"\x1b"]
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.sampled_from(bad)) if draw(st.booleans()) else draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


COMMANDS = [["check"], ["check", "--strict"], ["eval", "--json"], ["eval"], ["grad", "--json"], ["grad"],
            ["gradcheck"], ["equations"], ["render", "-o", "{dir}/out.dot"], ["render", "-o", "{dir}/out.json"],
            ["train", "--steps", "2", "--lr", "0.01", "--quiet", "--json", "--save", "{dir}/p.npz"]]


def cli_on(folder: Path, text_or_bytes, values: dict | None, command: list, json_errors: bool):
    path = folder / "m.gdsl"
    if isinstance(text_or_bytes, bytes):
        path.write_bytes(text_or_bytes)
    else:
        path.write_bytes(text_or_bytes.encode("utf-8", "surrogatepass"))
    argv = [command[0], path] + [c.replace("{dir}", str(folder)) for c in command[1:]]
    if values and command[0] != "check":
        np.savez(folder / "v.npz", **values)
        argv += ["--load", folder / "v.npz"]
    if json_errors:
        argv += ["--error-format", "json"]
    argv = [str(a) for a in argv]
    code, out, err = run_cli(*argv)
    clean(code, out, err, argv)
    return code


# ---- properties -------------------------------------------------------------------------------------

def prop_check_and_eval(prog):
    model = load(prog)
    if model is not None:
        evaluate(model, prog)


def prop_smooth_gradients(prog):
    model = load(prog)
    grad_agrees(model, prog)


def prop_kinked_gradients(prog):
    model = load(prog)
    grad_agrees(model, prog, kink_guard=True)


def prop_cli_generated(folder, prog, command, json_errors):
    cli_on(folder, prog.text, prog.values, command, json_errors)
    STATS["programs"] += 1
    STATS["cli_programs"] += 1


def prop_cli_mutant(folder, text, command, json_errors):
    cli_on(folder, text, None, command, json_errors)
    STATS["mutants"] += 1


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _settings(n):
    return settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck))


# Each property is made for a number of examples: a few hundred in all for CI
# (about 30 s here), many more for the dedicated campaign.

def property_test(mode, prop, n):
    """A hypothesis test of `prop` over n generated programs of the given mode."""
    @_settings(n)
    @given(prog=programs(mode))
    def test(prog):
        guarded(prop, prog)
    return test


def check_and_eval_test(n):
    return property_test("any", prop_check_and_eval, n)


def smooth_gradients_test(n):
    return property_test("smooth", prop_smooth_gradients, n)


def kinked_gradients_test(n):
    return property_test("kinked", prop_kinked_gradients, n)


def cli_generated_test(n):
    @_settings(n)
    @given(prog=programs("any"), command=st.sampled_from(COMMANDS), json_errors=st.booleans())
    def test(folder, prog, command, json_errors):
        guarded(prop_cli_generated, folder, prog, command, json_errors)
    return test


def cli_token_mutants_test(n):
    @_settings(n)
    @given(text=token_mutants(), command=st.sampled_from(COMMANDS[:4]), json_errors=st.booleans())
    def test(folder, text, command, json_errors):
        guarded(prop_cli_mutant, folder, text, command, json_errors)
    return test


def cli_bytes_test(n):
    @_settings(n)
    @given(data=byte_mutants(), json_errors=st.booleans())
    def test(folder, data, json_errors):
        guarded(prop_cli_mutant, folder, data, ["check"], json_errors)
    return test


test_generated_programs_check_and_evaluate = check_and_eval_test(150)
test_gradients_of_smooth_programs_match_finite_differences = smooth_gradients_test(80)
test_gradients_away_from_kinks_match_finite_differences = kinked_gradients_test(40)
test_cli_on_generated_programs = cli_generated_test(25)
test_cli_on_token_mutants = cli_token_mutants_test(80)
test_cli_on_invalid_utf8_and_random_bytes = cli_bytes_test(50)


# ---- the dedicated campaign (not in CI) ----------------------------------------------------------------

@pytest.mark.slow
def test_dedicated_campaign(folder):
    """At least GRAPHDSL_FUZZ_PROGRAMS (default 10,000) generated programs, plus mutants; prints the counts."""
    n = DEDICATED
    STATS.clear()
    t0 = time.perf_counter()
    failures = []
    for name, test, args in [("generated programs: check and eval", check_and_eval_test(n * 6 // 10), ()),
                             ("smooth gradients", smooth_gradients_test(n * 25 // 100), ()),
                             ("gradients away from kinks", kinked_gradients_test(n * 15 // 100), ()),
                             ("CLI on generated programs", cli_generated_test(max(1, n // 10)), (folder,)),
                             ("CLI on token mutants", cli_token_mutants_test(max(1, n * 3 // 10)), (folder,)),
                             ("CLI on random bytes", cli_bytes_test(max(1, n // 10)), (folder,))]:
        try:  # each property runs to the end (or to its shrunk failure); the others still run
            test(*args)
        except BaseException as err:  # noqa: B902 - hypothesis raises ExceptionGroups for several failures
            if isinstance(err, KeyboardInterrupt):
                raise
            failures.append(f"{name}: {type(err).__name__}: {err}")
    report = "\n  ".join(f"{k}: {v}" for k, v in sorted(STATS.items()))
    print(f"\ndedicated fuzz campaign ({time.perf_counter() - t0:.0f} s):\n  {report}")
    for f in failures:
        print("\nFAILURE", f)
    assert not failures, f"{len(failures)} properties failed (see the output)"
    assert STATS["programs"] >= n, STATS

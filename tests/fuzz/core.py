"""GenCore: the generator's choices, axes, shapes, leaves, declarations, the expression dispatch and the program.

The expression forms (f_*) are in the forms_* mixins; Gen (gen.py) puts them together.
"""
from __future__ import annotations

import difflib
import math
import re
from collections import Counter

import numpy as np
from hypothesis import strategies as st

from fuzz.program import Program, literal  # noqa: F401 - literal used by declare

class GenCore:
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
        self.extreme = mode == "any" and self.chance(0.3)  # magnitudes from 1e-8 to 1e6, exact zeros

    # -- helpers
    # Choices come from the seeded generator, not from hypothesis draws: hypothesis skews small
    # integer draws (one of two reductions came out 28 times to 2 in 400 programs), which left
    # whole builtins unvisited. The seed is a draw, so a failing example still replays.
    def pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def chance(self, p):
        return bool(self.rng.uniform() < p)

    def fresh(self, prefix):
        self.n += 1
        return f"{prefix}{self.n}"

    def sample(self, sizes):
        """Values for a leaf: standard normal, or in extreme programs scaled by 1e-8 ... 1e6 or zero."""
        x = self.rng.standard_normal(sizes)
        if len(sizes) >= 2 and self.chance(0.2):  # column order: a value's layout must not change its bits
            x = np.asfortranarray(x)
            self.features["column_order"] += 1
        if not self.extreme:
            return x
        self.features["extreme_values"] += 1
        kind = self.pick(["tiny", "small", "large", "huge", "zeros", "mixed"])
        if kind == "zeros":
            return np.where(self.rng.uniform(size=sizes) < 0.5, 0.0, x)
        if kind == "mixed":  # every element its own magnitude
            return x * 10.0 ** self.rng.uniform(-8, 6, sizes)
        return x * {"tiny": 1e-8, "small": 1e-3, "large": 1e3, "huge": 1e6}[kind]

    def rounded(self, sizes):
        """Values for a literal: three decimals, unless the program is extreme."""
        x = self.sample(sizes)
        return x if self.extreme else np.round(x, 3)

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
            self.values[name] = self.sample(sizes)
            self.leaves.append((name, shape, "implicit"))  # binds no dim: its shape is not declared
            return name
        if kind == "input":
            if all(self.fixed(a) for a in shape) and 0 < math.prod(sizes) <= 8 and self.chance(0.2):
                value = self.rounded(sizes)
                self.decls.append(f"input {name} : {decl_shape} = {literal(value)}")
                self.features["input_default"] += 1
            else:
                unshaped = not shape and self.chance(0.5)  # `input x` takes its shape from the data
                self.decls.append(f"input {name}" if unshaped else f"input {name} : {decl_shape}")
                kind = "implicit" if unshaped else kind
                self.values[name] = self.sample(sizes)
            self.leaves.append((name, shape, kind))
            return name
        if kind == "param":
            init = self.pick(["randn()", "randn(std=0.5)", "randn(mean=0.1, std=2)", "uniform()",
                              "uniform(low=-0.5, high=0.5)", "glorot()", "he()", "full(0.7)", "LIT"])
            if init == "LIT" and (any(not self.fixed(a) for a in shape) or not 0 < math.prod(sizes) <= 12):
                init = "randn()"
            if init == "LIT":
                value = self.rounded(sizes)
                if self.chance(0.5):
                    self.decls.append(f"param {name} = {literal(value)}")
                else:
                    self.decls.append(f"param {name} : {decl_shape} = {literal(value)}")
            else:
                self.decls.append(f"param {name} : {decl_shape} = {init}")
                self.features["init_" + init.split("(")[0]] += 1
            self.leaves.append((name, shape, "param"))
            return name
        value = self.rounded(sizes)
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
            forms += ["softmax", "transpose", "concat", "stack", "index", "broadcast_to", "reshape", "onehot"]
        if any(t == "1" for t, _ in shape):
            forms += ["expand_dims", "keepdims"]
        forms += ["squeeze", "call", "call"] + (["outer"] if len(shape) == 2 else [])
        forms += ["v2"] * 5  # the builtins of issue 15, one choice among them (see f_v2)
        if shape == ():
            forms += ["loss", "loss", "trace", "dot"]
        if self.mode in ("smooth", "any"):  # "any": compared with PyTorch only, kinks and all
            forms += ["grad", "grad"]
        if self.mode in ("kinked", "any"):
            forms += ["kinked_unary", "kinked_binary", "where", "clip", "kinked_reduce", "argreduce"]
        if self.mode == "any":
            forms += ["unsafe_unary", "unsafe_binary", "stop_gradient"]
        form = self.pick(forms)
        self.features[form] += 1
        return getattr(self, "f_" + form)(shape, depth - 1)

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
        head = self.header()
        text = "\n".join(head + self.defs + self.stmts) + "\n"
        values, wrt = self.used_leaves("\n".join(self.defs + self.stmts))
        return Program(text, values, "L", wrt, self.features)

    def header(self) -> list[str]:
        """The dims and declarations, once every expression is drawn (a free dim gets a value that fills it)."""
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
        return lines + self.decls

    def used_leaves(self, body: str):
        """The values of the leaves the body uses or declares, and the leaves to differentiate for."""
        used = set(re.findall(r"[A-Za-z_]\w*", body))
        # an implicit input that an abandoned form drew but never wrote is not in the model
        declared = {d.split()[1] for d in self.decls}
        values = {k: v for k, v in self.values.items() if k in used or k in declared}
        wrt = [n for n, _, k in self.leaves if k in ("input", "param", "implicit") and n in used]
        return values, wrt

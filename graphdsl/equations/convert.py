"""Graph nodes to expressions: anonymous values inlined, named ones referred to by name.

Expressions are built in topological order, never by recursion per node; an
inlined expression that grows past MAX_SIZE or MAX_DEPTH is given an auxiliary
name (t1, t2, ...) and an equation of its own, so printing stays shallow
whatever the graph.
"""
from __future__ import annotations

import numpy as np

from ..ops import REGISTRY
from .equation import Equation
from .expr import ONE, ZERO, App, Lit, Num, Sym, add, matmul, mul, neg, power, transpose
from .nodes import inputs, is_scalar, rank, topological
from .texnames import tex_name

MAX_SIZE = 48  # largest inlined expression (nodes) before it gets a name of its own
MAX_DEPTH = 14
MIN_REPEATED_SIZE = 8  # a backward value this large, used twice or more, is named (t1, ...) not repeated

# Ops whose expression depends on their arguments' expressions alone.
BY_ARGS = {
    "add": lambda a: add(a[0], a[1]),
    "sub": lambda a: add(a[0], neg(a[1])),
    "mul": lambda a: mul(a[0], a[1]),
    "div": lambda a: mul(a[0], a[1], inverse_b=True),
    "neg": lambda a: neg(a[0]),
    "outer": lambda a: matmul(a[0], App("transpose", (a[1],))),
    "identity": lambda a: a[0],
    "broadcast_to": lambda a: a[0],  # elementwise notation broadcasts implicitly
    "zeros_like": lambda a: ZERO,
    "eye": lambda a: Sym("I", "I", False),
}


class Converter:
    """Expressions for graph nodes: `defn` (what computes a node) and `ref` (how it appears as an argument)."""

    def __init__(self, g, names):
        self.g, self.names = g, names
        self.ref: dict = {}  # node -> Ex used where the node is an argument
        self.defn: dict = {}  # node -> Ex of the op that computes it
        self.aux_order: list = []  # nodes given auxiliary names, in the order named
        self._twins: dict | None = None  # (op, inputs, attrs) -> the named forward value it computes

    def run(self, roots):
        """Make defn/ref for everything the roots need, stopping at named nodes."""
        wanted = set(roots)
        for n in topological(self.g, self._needed(roots, wanted)):
            if self.g.nodes[n]["kind"] == "var":
                self._var(n, n in wanted)

    def _needed(self, roots, wanted) -> dict:
        """The nodes the roots' expressions are made of, as an ordered set (a dict): the
        order decides the auxiliaries' numbers, which a set's would make vary from run to run."""
        need, stack = {}, list(roots)
        while stack:
            n = stack.pop()
            if n in need:
                continue
            need[n] = None
            if n not in wanted and (n in self.ref or self.names.is_named(n)):
                continue  # referred to as it is: its own inputs are not needed
            for op in self.g.predecessors(n):
                need[op] = None
                stack.extend(u for u in inputs(self.g, op) if u not in need)
        return need

    def _var(self, n, want_defn):
        named = self.names.is_named(n)
        ops = list(self.g.predecessors(n))
        if ops and (want_defn or not named) and n not in self.defn:
            self.defn[n] = self._op(ops[0], [self.ref_of(u) for u in inputs(self.g, ops[0])], n)
        if n in self.ref:
            return
        twin = None if named or not ops else self._twin(ops[0])
        if twin is not None:  # a backward rule recomputed a named value (var's mean is `mu`): say its name
            self.ref[n] = self.names.sym(twin)
        elif named:
            self.ref[n] = self.names.sym(n)
        elif not ops:
            self.ref[n] = self._leaf(n)
        else:
            self.ref[n] = self._inline_or_name(n, self.defn[n])

    def _repeated(self, n, e) -> bool:
        """A sizeable backward value used in several places (BPTT's dJ/dh ⊙ tanh'(...) of each
        step) gets a name once instead of being written out at every use."""
        return (e.size >= MIN_REPEATED_SIZE and self.g.nodes[n].get("phase") == "backward"
                and self.g.out_degree(n) > 1)

    def _twin(self, op):
        if self._twins is None:
            self._twins = {}
            for o, d in self.g.nodes(data=True):
                out = d.get("out")
                if d["kind"] == "op" and d.get("phase") == "forward" and self.names.is_named(out):
                    self._twins.setdefault(self._op_key(o), out)
        return self._twins.get(self._op_key(op))

    def _op_key(self, op):
        d = self.g.nodes[op]
        return d["op"], tuple(inputs(self.g, op)), repr(sorted(d.get("attrs", {}).items()))

    def _inline_or_name(self, n, e):
        if e.size > MAX_SIZE or e.depth > MAX_DEPTH or self._repeated(n, e):
            self.aux_order.append(n)
            return self.names.new_aux(n, e.scalar)
        return e

    def ref_of(self, u):
        if u not in self.ref:  # only leaves and named values can be missing here
            if self.names.is_named(u):
                self.ref[u] = self.names.sym(u)
            elif not self.g.in_degree(u):
                self.ref[u] = self._leaf(u)
            else:
                self.run([u])
        return self.ref[u]

    def _leaf(self, n):
        d = self.g.nodes[n]
        if d["role"] == "const" and d.get("value") is not None:
            v = np.asarray(d["value"])
            return Num(float(v)) if v.ndim == 0 else Lit(v)
        return self.names.sym(n)

    # ---- one op ----------------------------------------------------------------------------

    def _op(self, op, args, out):
        name = self.g.nodes[op]["op"]
        if name in BY_ARGS:
            return BY_ARGS[name](args)
        return self._SPECIAL.get(name, Converter._app)(self, op, args, out)

    def _matmul(self, op, args, out):
        if [rank(self.g, u) for u in inputs(self.g, op)] == [1, 2]:  # a row vector times a matrix: Mᵀ v
            return matmul(transpose(args[1]), args[0], is_scalar(self.g, out))
        return matmul(args[0], args[1], is_scalar(self.g, out))

    def _transpose(self, op, args, out):
        return transpose(args[0], self.g.nodes[op]["attrs"].get("axes"), two_d=rank(self.g, out) == 2)

    def _pow(self, op, args, out):
        return power(args[0], args[1], is_scalar(self.g, out))

    def _unreduce(self, op, args, out):
        attrs = self.g.nodes[op]["attrs"]
        if attrs.get("mean"):
            return mul(args[0], self._count(attrs.get("axis"), attrs["like"]), inverse_b=True)
        return args[0]

    def _count(self, axis, like):
        """How many elements a mean over `axis` of `like` averages, as dims: b, or m n."""
        shape = self.g.nodes[like]["shape"] or ()
        if axis is None:
            axes = range(len(shape))
        else:
            axes = [a % max(len(shape), 1) for a in (axis if isinstance(axis, (list, tuple)) else [axis])]
        return dims_product([shape[a] for a in axes])

    def _sum_to(self, op, args, out):
        have = self.g.nodes[inputs(self.g, op)[0]]["shape"]
        want = self.g.nodes[self.g.nodes[op]["attrs"]["like"]]["shape"]
        if have is None or want is None:
            return App("sum_to", (args[0],), scalar=is_scalar(self.g, out))
        lead = len(have) - len(want)
        axes = list(range(lead)) + [lead + i for i, d in enumerate(want)
                                    if d.size == 1 and have[lead + i].size != 1]
        over = tuple(have[a].name or str(a) for a in axes)
        return App("sum_to", (args[0],), (("over", over),), is_scalar(self.g, out))

    def _opaque(self, op, args, out):
        func = self.g.nodes[op]["attrs"].get("func", "?")
        return App("call:" + func, args, scalar=is_scalar(self.g, out))

    def _app(self, op, args, out):
        """Any other op, with the static arguments that differ from their defaults."""
        d = self.g.nodes[op]
        opdef = REGISTRY.get(d["op"])
        shown = () if opdef is None else tuple((k, v) for k, v in d["attrs"].items()
                                               if k != "like" and opdef.kwargs.get(k, object()) != v)
        return App(d["op"], args, shown, is_scalar(self.g, out))

    # ops whose expression depends on shapes or static arguments
    _SPECIAL = {"matmul": _matmul, "transpose": _transpose, "pow": _pow, "unreduce": _unreduce,
                "sum_to": _sum_to, "opaque": _opaque}

    # ---- auxiliaries -----------------------------------------------------------------------

    def with_aux(self, eqs) -> list:
        """The equations, each auxiliary's equation put before the first equation that uses it."""
        if not self.aux_order:
            return eqs
        aux = {self.names.aux[n].name: Equation(self.names.aux[n], [self.defn[n]], "aux", n)
               for n in self.aux_order}
        out, done = [], set()
        for eq in eqs:
            pending, emit = [eq], []
            while pending:  # depth-first over auxiliaries, iteratively
                e = pending.pop()
                emit.append(e)
                for r in (x for form in e.rhs for x in form.refs()):
                    if r.name in aux and r.name not in done:
                        done.add(r.name)
                        pending.append(aux[r.name])
            out.extend(reversed(emit))
        return out


def dims_product(dims):
    """The product of dims as a scalar expression: named dims by name, fixed ones by size."""
    out = ONE
    for d in dims:
        if d.name is not None:
            out = mul(out, Sym(d.name, tex_name(d.name), True))
        elif d.size is not None:
            out = mul(out, Num(d.size))
        else:
            out = mul(out, Sym("N", "N", True))
    return out

"""The equations a textbook writes by hand, read off the graph.

Forward equations are the model's named values in topological order; backward
equations are the adjoints that reverse mode built into the same graph
(graph.graph["adjoints"][of]), in reverse topological order. Anonymous
intermediates are inlined into expressions, named values and adjoints of named
values are referred to by name (dJ/dW1), and products are simplified (scalar
factors collected, `* 1` and `+ 0` dropped, transposes and broadcasts folded),
so that for Dive into Deep Learning's MLP the printout reads like section 5.3.3:

    dJ/dW2 = dJ/do hᵀ + lam W2        dJ/dz = dJ/dh ⊙ relu'(z)

Where a value v reaches a named scalar u through anonymous intermediates only,
the local derivative du/dv is printed too (ds/dW1 = lam W1, dL/do = (o - y) / b),
and when v's only consumer is such a scalar, dJ/dv is also written as the chain
rule dJ/du du/dv. Local derivatives are built by the same reverse mode, on a
scratch copy of the graph, so the model's own graph only ever holds the
adjoints of `of`.

Expressions are built bottom-up over a topological order (no recursion per
node); an inlined expression that grows past a size or depth limit is given an
auxiliary name (t1, t2, ...) and an equation of its own, so printing stays
shallow whatever the graph.
"""
from __future__ import annotations

import copy
import math
import re
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction

import networkx as nx
import numpy as np

from . import ast as A
from .autodiff import gradients
from .diagnostics import GraphDSLError
from .ops import REGISTRY

MAX_SIZE = 48  # largest inlined expression (nodes) before it gets a name of its own
MAX_DEPTH = 14

# ---- expressions -------------------------------------------------------------------------


class Ex:
    """An immutable expression; `key` gives structural equality."""

    __slots__ = ("key", "scalar", "size", "depth")
    prec = 5

    def __eq__(self, other):
        return isinstance(other, Ex) and self.key == other.key

    def __hash__(self):
        return hash(self.key)

    def refs(self):
        """Every Sym in the expression (iteratively)."""
        out, stack = [], [self]
        while stack:
            e = stack.pop()
            if isinstance(e, Sym):
                out.append(e)
            stack.extend(_children(e))
        return out


class Num(Ex):
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = _exact(value)
        self.key = ("n", self.value)
        self.scalar, self.size, self.depth = True, 1, 1


class Sym(Ex):
    """A reference: a named value, a dim, an adjoint dJ/dv or an auxiliary."""

    __slots__ = ("name", "tex", "adjoint")

    def __init__(self, name, tex, scalar, adjoint=False):
        self.name, self.tex, self.adjoint = name, tex, adjoint
        self.key = ("s", name)
        self.scalar, self.size, self.depth = scalar, 1, 1


class Lit(Ex):
    """An anonymous array constant (a literal in the model)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = np.asarray(value, dtype=np.float64)
        self.key = ("l", self.value.shape, self.value.tobytes())
        self.scalar, self.size, self.depth = self.value.ndim == 0, 1, 1


class Sum(Ex):
    __slots__ = ("terms",)
    prec = 1

    def __init__(self, terms):
        self.terms = tuple(terms)
        self.key = ("+",) + tuple(t.key for t in self.terms)
        self.scalar = all(t.scalar for t in self.terms)
        self.size = 1 + sum(t.size for t in self.terms)
        self.depth = 1 + max(t.depth for t in self.terms)


class Prod(Ex):
    """coeff * factor1^p1 * factor2^p2 ..., p = +1 or -1 (elementwise)."""

    __slots__ = ("coeff", "factors")
    prec = 2

    def __init__(self, coeff, factors):
        self.coeff = _exact(coeff)
        self.factors = tuple(factors)
        self.key = ("*", self.coeff) + tuple((f.key, p) for f, p in self.factors)
        self.scalar = all(f.scalar for f, _ in self.factors)
        self.size = 1 + sum(f.size for f, _ in self.factors)
        self.depth = 1 + max((f.depth for f, _ in self.factors), default=0)


class App(Ex):
    """An operator applied to arguments; attrs is a tuple of (key, value)."""

    __slots__ = ("op", "args", "attrs")

    def __init__(self, op, args, attrs=(), scalar=False):
        self.op, self.args, self.attrs = op, tuple(args), tuple(attrs)
        self.key = ("a", op, _hashable(self.attrs)) + tuple(a.key for a in self.args)
        self.scalar = scalar
        self.size = 1 + sum(a.size for a in self.args)
        self.depth = 1 + max((a.depth for a in self.args), default=0)

    @property
    def prec(self):
        return {"matmul": 2, "transpose": 4, "pow": 4}.get(self.op, 5)


def _children(e):
    if isinstance(e, Sum):
        return e.terms
    if isinstance(e, Prod):
        return tuple(f for f, _ in e.factors)
    if isinstance(e, App):
        return e.args
    return ()


def _hashable(value):
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, slice):
        return ("slice", value.start, value.stop, value.step)
    if isinstance(value, np.ndarray):
        return ("arr", value.shape, value.tobytes())
    return value


def _exact(v):
    """Numbers as exact fractions where that is what they are (0.5 -> 1/2), else floats."""
    if isinstance(v, Fraction):
        return v if v.denominator != 1 else Fraction(v.numerator)
    v = float(v)
    if not math.isfinite(v):
        return v
    if v.is_integer() and abs(v) < 1e15:
        return Fraction(int(v))
    f = Fraction(v).limit_denominator(100000)
    return f if float(f) == v else v


ZERO, ONE = Num(0), Num(1)


def is_num(e, value=None):
    return isinstance(e, Num) and (value is None or e.value == value)


# ---- smart constructors: the simplifier ------------------------------------------------------

def _as_prod(e):
    if isinstance(e, Prod):
        return e.coeff, list(e.factors)
    if isinstance(e, Num):
        return e.value, []
    return Fraction(1), [(e, 1)]


def mul(a, b, inverse_b=False):
    """a * b (or a / b), elementwise, with numbers folded and equal factors cancelled."""
    ca, fa = _as_prod(a)
    cb, fb = _as_prod(b)
    if inverse_b:
        if cb == 0:
            return App("div", (a, b), scalar=a.scalar and b.scalar)
        cb = 1 / cb if isinstance(cb, Fraction) else 1.0 / cb
        fb = [(f, -p) for f, p in fb]
    coeff = ca * cb
    if coeff == 0:
        return ZERO
    factors = list(fa)
    for f, p in fb:
        for k, (g, q) in enumerate(factors):
            if q == -p and g == f:
                del factors[k]
                break
        else:
            factors.append((f, p))
    return make_prod(coeff, factors)


def make_prod(coeff, factors):
    if not factors:
        return Num(coeff)
    if coeff == 1 and len(factors) == 1 and factors[0][1] == 1:
        return factors[0][0]
    return Prod(coeff, factors)


def neg(a):
    if isinstance(a, Sum):
        out = ZERO
        for t in a.terms:
            out = add(out, mul(Num(-1), t))
        return out
    return mul(Num(-1), a)


def add(a, b):
    terms = []
    for e in (a, b):
        terms.extend(e.terms if isinstance(e, Sum) else [e])
    const = Fraction(0)
    merged: list = []  # [coeff, factors, representative]
    for t in terms:
        if isinstance(t, Num):
            const = const + t.value
            continue
        c, fs = _as_prod(t)
        sig = sorted((repr(f.key), p) for f, p in fs)
        for m in merged:
            if m[0] == sig:
                m[1] = m[1] + c
                break
        else:
            merged.append([sig, c, fs])
    out = [make_prod(c, fs) for _, c, fs in merged if c != 0]
    if const != 0:
        out.append(Num(const))
    if not out:
        return ZERO
    if len(out) == 1:
        return out[0]
    return Sum(out)


def _split_scalars(e):
    """(scalar part, array part) of a product, so that c X @ Y reads c (X Y)."""
    if isinstance(e, Prod) and not e.scalar:
        s = make_prod(e.coeff, [(f, p) for f, p in e.factors if f.scalar])
        arr = make_prod(Fraction(1), [(f, p) for f, p in e.factors if not f.scalar])
        return s, arr
    return ONE, e


def matmul(a, b, scalar=False):
    sa, a = _split_scalars(a)
    sb, b = _split_scalars(b)
    if is_num(a, 0) or is_num(b, 0):
        return ZERO
    return mul(mul(sa, sb), App("matmul", (a, b), scalar=scalar))


def transpose(a, axes=None, two_d=False):
    """aᵀ; with two_d (a is a matrix) also (A B)ᵀ = Bᵀ Aᵀ."""
    if axes is None:
        s, arr = _split_scalars(a)
        if not is_num(s, 1):
            return mul(s, transpose(arr, two_d=two_d))
        if isinstance(a, App) and a.op == "transpose" and not a.attrs:
            return a.args[0]
        if two_d and isinstance(a, App) and a.op == "matmul":
            return matmul(transpose(a.args[1]), transpose(a.args[0]), a.scalar)
        if a.scalar:
            return a
        return App("transpose", (a,), scalar=a.scalar)
    return App("transpose", (a,), (("axes", tuple(axes)),), scalar=a.scalar)


def power(a, b, scalar):
    if is_num(b, 1):
        return a
    if is_num(b, 0):
        return ONE
    if is_num(b, -1):
        return mul(ONE, a, inverse_b=True)
    return App("pow", (a, b), scalar=scalar)


# ---- from the graph ------------------------------------------------------------------------------

@dataclass
class Equation:
    lhs: Sym
    rhs: list  # equal forms, most explicit last: [phi(z), relu(z)]
    kind: str = "forward"  # forward | backward | local | aux
    node: str | None = None


@dataclass
class Equations:
    """The forward and backward equations of one model (and one scalar `of`)."""

    name: str
    of: str | None
    forward: list = field(default_factory=list)
    backward: list = field(default_factory=list)
    error: GraphDSLError | None = None  # why the backward equations are missing, if they are

    def text(self) -> str:
        return format_text(self)

    def latex(self, standalone: bool = False) -> str:
        return format_latex(self, standalone)

    def markdown(self) -> str:
        return format_markdown(self)

    def format(self, fmt: str = "text", standalone: bool = False) -> str:
        if fmt == "latex":
            return self.latex(standalone)
        if fmt == "markdown":
            return self.markdown()
        return self.text()

    def __str__(self):
        return self.text()

    def _repr_markdown_(self):  # Jupyter
        return self.markdown()


def equations(model, values=None, of=None, wrt=None, dims=None, partial=False) -> Equations:
    """The equations of `model`: forward, then backward for d(of)/d(wrt).

    With values (or when every dim is fixed) the concrete graph is used;
    otherwise the symbolic one, with free dims left as names. With partial=True
    an error while deriving the backward equations is kept in `.error` instead
    of raised, so the forward equations can still be shown.
    """
    built = _graph_for(model, values, dims)
    g, gb = built.graph, built.gb
    target = model._resolve_of(built, of)
    if wrt is None:
        wrt = [n for n, d in built.decls.items() if d.kind == "param"] or \
              [n for n, d in built.decls.items() if d.kind == "input"]
    _, wrt = model.grad_targets(_Shim(built), of, wrt)
    names = _Names(g, model.program)
    result = Equations(model.source.name, names.display(target))
    result.forward = _forward(g, names, built, target)
    try:
        result.backward = _backward(gb, names, target, wrt)
    except GraphDSLError as err:
        err = err.with_source(model.source) if hasattr(err, "with_source") else err
        if not partial:
            raise err
        result.error = err
    return result


class _Shim:  # grad_targets wants something with .built
    def __init__(self, built):
        self.built = built


def _graph_for(model, values, dims):
    if values or dims:
        compiled, _ = model.compile(values, dims)
        return compiled.built
    try:
        return model.compile({}, None)[0].built
    except GraphDSLError as err:
        if all(d.code == "E304" for d in err.errors):  # free dims or inputs without data: symbolic
            return model.built
        raise


class _Names:
    """Which nodes are referred to by name, and their names in text and LaTeX."""

    def __init__(self, g, program):
        self.g = g
        self.adjoint_names: dict = {}  # backward node -> Sym, for the `of` being printed
        self.aux: dict = {}  # node -> Sym for auxiliaries
        self.assigns = {s.name: s for s in program.statements if isinstance(s, A.Assign)}
        counts: dict = {}
        for n, d in g.nodes(data=True):
            if d["kind"] == "var" and not d.get("anonymous") and d.get("phase") == "forward":
                counts[d.get("name") or n] = counts.get(d.get("name") or n, 0) + 1
        self.dupes = {k for k, v in counts.items() if v > 1}
        self.used = set(counts)

    def display(self, n) -> str:
        d = self.g.nodes[n]
        name = d.get("name") or n
        if name in self.dupes and d.get("call"):
            return n  # a def local seen in several calls: f#2.t
        return name

    def tex(self, n) -> str:
        d = self.g.nodes[n]
        name = d.get("name") or n
        if name in self.dupes and d.get("call"):
            return tex_name(name) + "^{(" + tex_escape(d["call"][-1]) + ")}"
        return tex_name(name)

    def is_named(self, n) -> bool:
        d = self.g.nodes[n]
        if d["kind"] != "var":
            return False
        if n in self.adjoint_names or n in self.aux:
            return True
        if d.get("phase") == "backward" and self.g.in_degree(n):
            return self._adjoint_of_named(n) is not None
        return not d.get("anonymous")

    def _adjoint_of_named(self, n):
        """(of, v) when n is d(of)/dv for named forward values of and v; else None (n is inlined)."""
        pair = self.g.nodes[n].get("adjoint_of")
        if not pair or any(p not in self.g or self.g.nodes[p].get("anonymous") or
                           self.g.nodes[p].get("phase") != "forward" for p in pair):
            return None
        return pair

    def sym(self, n) -> Sym:
        if n in self.adjoint_names:
            return self.adjoint_names[n]
        if n in self.aux:
            return self.aux[n]
        d = self.g.nodes[n]
        scalar = d["shape"] is not None and len(d["shape"]) == 0
        if d.get("phase") == "backward" and self.g.in_degree(n):
            of, v = self._adjoint_of_named(n)
            return adjoint_sym(self.display(of), self.tex(of), self.display(v), self.tex(v), scalar)
        return Sym(self.display(n), self.tex(n), scalar)

    def new_aux(self, n, scalar) -> Sym:
        k = len(self.aux) + 1
        name = f"t{k}"
        while name in self.used:
            k += 1
            name = f"t{k}"
        self.used.add(name)
        s = Sym(name, f"t_{{{k}}}", scalar)
        self.aux[n] = s
        return s


def adjoint_sym(of, of_tex, v, v_tex, scalar) -> Sym:
    return Sym(f"d{of}/d{v}", r"\frac{\partial " + of_tex + r"}{\partial " + v_tex + "}", scalar, adjoint=True)


class _Converter:
    """Expressions for graph nodes, built in topological order (no recursion)."""

    def __init__(self, g, names: _Names):
        self.g, self.names = g, names
        self.ref: dict = {}  # node -> Ex used where the node is an argument
        self.defn: dict = {}  # node -> Ex of the op that computes it
        self.aux_order: list = []

    def run(self, roots):
        """Make defn/ref for everything the roots need, stopping at named nodes."""
        g, names = self.g, self.names
        wanted = set(roots)
        need, stack = set(), list(roots)
        while stack:
            n = stack.pop()
            if n in need:
                continue
            need.add(n)
            if n in self.ref and n not in wanted:
                continue
            if names.is_named(n) and n not in wanted:
                continue  # referred to by name: its own inputs are not needed
            for op in g.predecessors(n):
                need.add(op)
                stack.extend(u for u in _inputs(g, op) if u not in need)
        for n in _topological(g, need):
            if g.nodes[n]["kind"] == "var":
                self._var(n, n in wanted)

    def _var(self, n, want_defn):
        g, names = self.g, self.names
        named = names.is_named(n)
        ops = list(g.predecessors(n))
        if ops and (want_defn or not named) and n not in self.defn:
            args = [self.ref_of(u) for u in _inputs(g, ops[0])]
            self.defn[n] = self._op(ops[0], args, n)
        if n in self.ref:
            return
        if named:
            self.ref[n] = names.sym(n)
        elif not ops:
            self.ref[n] = self._leaf(n, g.nodes[n])
        else:
            e = self.defn[n]
            if e.size > MAX_SIZE or e.depth > MAX_DEPTH:
                self.ref[n] = names.new_aux(n, e.scalar)
                self.aux_order.append(n)
            else:
                self.ref[n] = e

    def ref_of(self, u):
        if u not in self.ref:  # only leaves and named values can be missing here
            if self.names.is_named(u):
                self.ref[u] = self.names.sym(u)
            elif not self.g.in_degree(u):
                self.ref[u] = self._leaf(u, self.g.nodes[u])
            else:
                self.run([u])
        return self.ref[u]

    def _leaf(self, n, d):
        if d["role"] == "const" and d.get("value") is not None:
            v = np.asarray(d["value"])
            return Num(float(v)) if v.ndim == 0 else Lit(v)
        return self.names.sym(n)

    def _op(self, op, args, out):
        g = self.g
        d = g.nodes[op]
        name, attrs = d["op"], d["attrs"]
        shape = g.nodes[out]["shape"]
        scalar = shape is not None and len(shape) == 0
        if name == "add":
            return add(args[0], args[1])
        if name == "sub":
            return add(args[0], neg(args[1]))
        if name == "mul":
            return mul(args[0], args[1])
        if name == "div":
            return mul(args[0], args[1], inverse_b=True)
        if name == "neg":
            return neg(args[0])
        if name == "matmul":
            ranks = [len(g.nodes[u]["shape"]) if g.nodes[u]["shape"] is not None else None for u in _inputs(g, op)]
            if ranks == [1, 2]:  # a row vector times a matrix: written Mᵀ v
                return matmul(transpose(args[1]), args[0], scalar)
            return matmul(args[0], args[1], scalar)
        if name == "transpose":
            return transpose(args[0], attrs.get("axes"), two_d=shape is not None and len(shape) == 2)
        if name == "outer":
            return matmul(args[0], App("transpose", (args[1],)))
        if name == "pow":
            return power(args[0], args[1], scalar)
        if name in ("identity", "broadcast_to"):
            return args[0]
        if name == "unreduce":
            if attrs.get("mean"):
                return mul(args[0], self._count(attrs, attrs["like"]), inverse_b=True)
            return args[0]
        if name == "sum_to":
            return self._sum_to(args[0], _inputs(g, op)[0], attrs["like"], scalar)
        if name == "zeros_like":
            return ZERO
        if name == "eye":
            return Sym("I", "I", False)
        if name == "opaque":
            return App("call:" + attrs.get("func", "?"), args, scalar=scalar)
        opdef = REGISTRY.get(name)
        shown = tuple((k, v) for k, v in attrs.items()
                      if k != "like" and opdef is not None and opdef.kwargs.get(k, object()) != v)
        return App(name, args, shown, scalar)

    def _count(self, attrs, like):
        shape = self.g.nodes[like]["shape"] or ()
        axis = attrs.get("axis")
        axes = range(len(shape)) if axis is None else \
            [a % max(len(shape), 1) for a in (axis if isinstance(axis, (list, tuple)) else [axis])]
        return _dims_product([shape[a] for a in axes])

    def _sum_to(self, arg, src, like, scalar):
        have, want = self.g.nodes[src]["shape"], self.g.nodes[like]["shape"]
        if have is None or want is None:
            return App("sum_to", (arg,), scalar=scalar)
        lead = len(have) - len(want)
        axes = list(range(lead)) + [lead + i for i, d in enumerate(want)
                                    if d.size == 1 and have[lead + i].size != 1]
        over = tuple(have[a].name or str(a) for a in axes)
        return App("sum_to", (arg,), (("over", over),), scalar)


def _topological(g, nodes) -> list:
    """The nodes in a topological order of g (Kahn's algorithm over the induced subgraph)."""
    indeg = {n: sum(1 for u in g.predecessors(n) if u in nodes) for n in nodes}
    queue = deque(n for n, k in indeg.items() if k == 0)
    order = []
    while queue:
        n = queue.popleft()
        order.append(n)
        for m in g.successors(n):
            if m in indeg:
                indeg[m] -= 1
                if indeg[m] == 0:
                    queue.append(m)
    return order


def _dims_product(dims):
    out = ONE
    for d in dims:
        if d.name is not None:
            out = mul(out, Sym(d.name, tex_name(d.name), True))
        elif d.size is not None:
            out = mul(out, Num(d.size))
        else:
            out = mul(out, Sym("N", "N", True))
    return out


def _inputs(g, op):
    return [u for u, _, _ in sorted(g.in_edges(op, keys=True), key=lambda e: e[2])]


# ---- forward ----------------------------------------------------------------------------------------

def _forward(g, names: _Names, built, target) -> list:
    roots = set(built.outputs) | {target}
    upstream = set(roots)
    for r in roots:
        upstream |= nx.ancestors(g, r)
    order = [n for n in nx.lexicographical_topological_sort(g.subgraph(upstream), key=_source_position(g))
             if g.nodes[n]["kind"] == "var" and g.in_degree(n) and names.is_named(n)]
    conv = _Converter(g, names)
    conv.run(order)
    out = []
    for n in order:
        rhs = [conv.defn[n]]
        call = _call_form(g, names, built, n, conv)
        if call is not None and call != rhs[0]:
            rhs.insert(0, call)
        out.append(Equation(names.sym(n), rhs, "forward", n))
    return _with_aux(out, conv)


def _source_position(g):
    """Ties in a topological order go to what the source says first."""
    def key(n):
        span = g.nodes[n].get("span")
        return f"{span.start if span is not None else 10 ** 12:012d}{n}"
    return key


def _call_form(g, names, built, n, conv):
    """`phi(z)` for h = phi(z) where phi is a def: the call as the model wrote it."""
    d = g.nodes[n]
    stmt = names.assigns.get(d.get("name"))
    if not d.get("call") or stmt is None or built.assigned.get(stmt.name) != n:
        return None
    value = stmt.value
    if not isinstance(value, A.Call) or value.func not in built.defs or value.kwargs:
        return None
    args = []
    for a in value.args:
        if not isinstance(a, A.Name):
            return None
        node = built.assigned.get(a.id) or (a.id if a.id in built.decls else None) or \
            (f"dim:{a.id}" if f"dim:{a.id}" in g else None)
        if node is None or node not in g:
            return None
        args.append(conv.ref_of(node) if node in conv.ref else names.sym(node))
    return App("call:" + value.func, args, scalar=d["shape"] is not None and len(d["shape"]) == 0)


def _with_aux(eqs, conv) -> list:
    """Put each auxiliary's equation before the first equation that uses it."""
    if not conv.aux_order:
        return eqs
    aux = {conv.names.aux[n].name: Equation(conv.names.aux[n], [conv.defn[n]], "aux", n)
           for n in conv.aux_order}
    out, done = [], set()
    for eq in eqs:
        pending = [eq]
        emit = []
        while pending:  # depth-first over auxiliaries, iteratively
            e = pending.pop()
            emit.append(e)
            for r in (x for form in e.rhs for x in form.refs()):
                if r.name in aux and r.name not in done:
                    done.add(r.name)
                    pending.append(aux[r.name])
        out.extend(reversed(emit))
    return out


# ---- backward ---------------------------------------------------------------------------------------

def _backward(gb, names: _Names, target, wrt) -> list:
    g = gb.g
    table = dict(gradients(gb, target, list(wrt)))
    table.update(g.graph["adjoints"][target])
    upstream = nx.ancestors(g, target) | {target}
    reach = set(wrt)
    for w in wrt:
        reach |= nx.descendants(g, w)
    order = _reverse_order(g, target, upstream)
    printed = [v for v in order if v != target and v in reach and v in table and not g.nodes[v].get("anonymous")
               and g.nodes[v].get("phase") == "forward"]
    printed += [w for w in wrt if w not in printed and w in table]
    of_name, of_tex = names.display(target), names.tex(target)
    first_of: dict = {}
    for v in printed:
        a = table[v]
        ad = g.nodes[a]
        if ad.get("phase") == "backward" and ad["role"] != "const" and a not in first_of and g.in_degree(a):
            first_of[a] = v
            scalar = ad["shape"] is not None and len(ad["shape"]) == 0
            names.adjoint_names[a] = adjoint_sym(of_name, of_tex, names.display(v), names.tex(v), scalar)
    conv = _Converter(g, names)
    conv.run([table[v] for v in printed])
    locals_ = _local_derivatives(gb, names, target, printed, upstream)
    out = []
    for v in printed:
        a = table[v]
        lhs = adjoint_sym(of_name, of_tex, names.display(v), names.tex(v), _is_scalar(g, v))
        if first_of.get(a) == v:
            rhs = [conv.defn[a]]
        else:
            rhs = [conv.ref_of(a)]
        chain = _chain(g, names, table, v, _named_consumers(g, v, upstream), locals_, of_name, of_tex)
        out.extend(eq for _, eq in locals_.get(v, []))
        if chain is not None and chain != rhs[-1]:
            rhs.insert(0, chain)
        out.append(Equation(lhs, rhs, "backward", v))
    return _with_aux(out, conv)


def _is_scalar(g, v):
    s = g.nodes[v]["shape"]
    return s is not None and len(s) == 0


def _reverse_order(g, target, upstream) -> list:
    """Values from `of` back to the leaves: a value comes once all its consumers are done
    (Kahn's algorithm, first come first served, arguments in order)."""
    consumers = {}
    for n in upstream:
        if g.nodes[n]["kind"] == "var":
            consumers[n] = len({op for op in g.successors(n) if op in upstream})
    order, queue, seen = [], deque([target]), set()
    while queue:
        v = queue.popleft()
        if v in seen:
            continue
        seen.add(v)
        order.append(v)
        for op in g.predecessors(v):
            done = set()
            for u in _inputs(g, op):
                if u in done or u not in consumers:
                    continue
                done.add(u)
                consumers[u] -= 1
                if consumers[u] == 0:
                    queue.append(u)
    return order


def _named_consumers(g, v, upstream):
    """The first named values downstream of v along forward paths through anonymous values."""
    found, seen, queue = [], {v}, deque([v])
    while queue:
        x = queue.popleft()
        for op in g.successors(x):
            if op not in upstream or g.nodes[op].get("phase") != "forward":
                continue
            out = g.nodes[op]["out"]
            if out in seen or out not in upstream:
                continue
            seen.add(out)
            if g.nodes[out].get("anonymous"):
                queue.append(out)
            elif out not in found:
                found.append(out)
    return found


LOCAL_LIMIT = 300  # beyond this many adjoints, skip the local derivatives (a teaching aid)


def _local_derivatives(gb, names, target, printed, upstream) -> dict:
    """{v: [(u, Equation du/dv)]} for named scalars u that v reaches through anonymous values only.

    Each is built by reverse mode on a scratch graph holding only the few nodes
    between v and u, so the cost does not grow with the size of the model.
    """
    g = gb.g
    if len(printed) > LOCAL_LIMIT:
        return {}
    result: dict = {}
    for v in printed:
        us, ops = _region(g, v, upstream)
        pairs = [u for u in us if u != target and _is_scalar(g, u)
                 and not any(u in nx.descendants(g, w) for w in us if w != u)]  # else u is not local
        if not pairs:
            continue
        scratch = _scratch(gb, g, ops)
        snames = _Names(scratch.g, A.Program(()))
        snames.dupes, snames.used = names.dupes, names.used
        for u in pairs:
            try:
                a = gradients(scratch, u, [v])[v]
            except GraphDSLError:
                continue
            conv = _Converter(scratch.g, snames)
            conv.run([a])
            backward = scratch.g.nodes[a].get("phase") == "backward" and scratch.g.in_degree(a)
            expr = conv.defn.get(a) if backward else conv.ref_of(a)
            if expr is None or any(r.adjoint for r in expr.refs()) or snames.aux or \
                    any(r.name.startswith("%") for r in expr.refs()):
                snames.aux.clear()
                continue
            lhs = adjoint_sym(names.display(u), names.tex(u), names.display(v), names.tex(v), _is_scalar(g, v))
            result.setdefault(v, []).append((u, Equation(lhs, [expr], "local", v)))
    return result


def _region(g, v, upstream):
    """(the named values v reaches through anonymous ones, the forward ops on the way)."""
    found, ops, seen, queue = [], [], {v}, deque([v])
    while queue:
        x = queue.popleft()
        for op in g.successors(x):
            if op not in upstream or g.nodes[op].get("phase") != "forward" or op in seen:
                continue
            seen.add(op)
            ops.append(op)
            out = g.nodes[op]["out"]
            if out in seen:
                continue
            seen.add(out)
            if g.nodes[out].get("anonymous"):
                queue.append(out)
            else:
                found.append(out)
    return found, ops


def _scratch(gb, g, ops):
    """A throwaway graph builder over the ops, their inputs and the anonymous values those come from."""
    nodes = set()
    stack = []
    for op in ops:
        nodes.add(op)
        nodes.add(g.nodes[op]["out"])
        stack.extend(g.predecessors(op))
    while stack:
        n = stack.pop()
        if n in nodes:
            continue
        nodes.add(n)
        if g.nodes[n]["kind"] == "op" or (g.nodes[n].get("anonymous") and g.nodes[n].get("phase") == "forward"):
            stack.extend(g.predecessors(n))
    other = copy.copy(gb)
    other.g = g.subgraph(nodes).copy()
    other.g.graph["adjoints"] = {}
    return other


def _chain(g, names, table, v, consumers, locals_, of_name, of_tex):
    """dJ/dv = dJ/du du/dv when v's only named consumer u is a scalar with a local derivative."""
    pairs = locals_.get(v, [])
    if len(consumers) != 1 or len(pairs) != 1 or pairs[0][0] != consumers[0]:
        return None
    u, eq = pairs[0]
    du = table.get(u)
    node = g.nodes[du] if du is not None else {}
    if node.get("role") == "const" and node.get("value") is not None and np.ndim(node["value"]) == 0 \
            and float(node["value"]) == 1.0:
        return eq.lhs
    return mul(adjoint_sym(of_name, of_tex, names.display(u), names.tex(u), True), eq.lhs)


# ---- text ---------------------------------------------------------------------------------------------

SUPERSCRIPTS = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
TEXT_FUNCS = {"sqnorm": ("‖", "‖²"), "norm": ("‖", "‖"), "abs": ("|", "|")}
COMPARE = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}


def fmt_number(v) -> str:
    if isinstance(v, Fraction):
        if v.denominator == 1:
            return str(v.numerator)
        f = float(v)
        text = repr(f)
        return text if len(text) <= 8 else f"{f:.6g}"
    if not math.isfinite(v):
        return "inf" if v > 0 else "-inf" if v < 0 else "nan"
    return f"{v:.6g}"


def _split_coeff(c):
    """(numerator, denominator) to show for a coefficient: 1/2 and 1/6 stay fractions, 0.1 a decimal."""
    c = abs(c)
    if isinstance(c, Fraction) and c.denominator != 1 and c.numerator <= 12 and \
            (c.denominator <= 4 or len(repr(float(c))) > 5):
        return Fraction(c.numerator), Fraction(c.denominator)
    return c, Fraction(1)


class _Printer:
    """Text and LaTeX renderings share the layout logic; these hooks differ."""

    latex = False
    odot = " ⊙ "
    minus = " - "
    plus = " + "

    def render(self, e, prec=0) -> str:
        s = self._render(e)
        return self.paren(s) if e.prec < prec or (isinstance(e, Num) and prec > 1 and _negative(e)) else s

    def _render(self, e) -> str:
        if isinstance(e, Num):
            return self.number(e.value)
        if isinstance(e, Sym):
            return e.tex if self.latex else e.name
        if isinstance(e, Lit):
            return self.literal(e.value)
        if isinstance(e, Sum):
            return self.sum(e)
        if isinstance(e, Prod):
            return self.prod(e)
        return self.app(e)

    def sum(self, e) -> str:
        terms = sorted(e.terms, key=lambda t: not any(r.adjoint for r in t.refs()))
        if _negative(terms[0]):
            first = next((k for k, t in enumerate(terms) if not _negative(t)), 0)
            terms.insert(0, terms.pop(first))
        out = ""
        for k, t in enumerate(terms):
            if _negative(t):
                out += ("-" if k == 0 else self.minus) + self.render(neg(t), 2)
            else:
                out += ("" if k == 0 else self.plus) + self.render(t, 2)
        return out

    def prod(self, e) -> str:
        sign = "-" if _negative(e) else ""
        cnum, cden = _split_coeff(e.coeff)
        num_s = sorted((f for f, p in e.factors if p > 0 and f.scalar), key=lambda f: not isinstance(f, Sym))
        num_a = [f for f, p in e.factors if p > 0 and not f.scalar]
        den = [f for f, p in e.factors if p < 0]
        parts = ([self.number(cnum)] if cnum != 1 else [])
        crowded = (len(num_s) + len(num_a) > 1 or cnum != 1) if self.latex else (len(e.factors) > 1 or cnum != 1)
        alone = self.latex and not crowded and bool(den or cden != 1)  # sole numerator of \frac{}{}
        parts += [self.render(f) if alone else self.factor(f, crowded) for f in num_s]
        arrays = [self.render(f) if alone else self.factor(f, True, len(num_a) > 1) for f in num_a]
        dparts = ([self.number(cden)] if cden != 1 else []) + [self.factor(f, True, True) for f in den]
        numerator = " ".join(parts + ([self.odot.join(arrays)] if arrays else []))
        if not dparts:
            return sign + (numerator or "1")
        single = len(parts) + len(arrays) == 1
        return sign + self.fraction(numerator or "1", " ".join(dparts), single, len(dparts) == 1,
                                    _lonely(e, num_s + num_a))

    def factor(self, f, crowded, strict=False) -> str:
        if isinstance(f, App) and f.op == "matmul":
            return self.paren(self.render(f)) if strict else self.render(f)
        return self.render(f, 3 if crowded else 2)


def _lonely(e, nums):
    return nums[0] if len(nums) == 1 else None


def _negative(e) -> bool:
    if isinstance(e, Num):
        return e.value < 0
    if isinstance(e, Prod):
        return e.coeff < 0
    return False


class TextPrinter(_Printer):
    def paren(self, s):
        return f"({s})"

    def number(self, v):
        return fmt_number(v)

    def literal(self, value):
        if value.size <= 6:
            return np.array2string(value, separator=", ", max_line_width=10 ** 6).replace("\n", "").replace(" ", "") \
                .replace(",", ", ")
        return "[" + "×".join(map(str, value.shape)) + " const]"

    def fraction(self, num, den, single, den_single, only):
        if single and only is not None and (isinstance(only, Sum) or (isinstance(only, Sym) and "/" in only.name)):
            num = num if num.startswith("(") else f"({num})"
        elif not single and "/" in num.split("(")[0]:
            num = f"({num})"
        return f"{num} / {den if den_single else '(' + den + ')'}"

    def app(self, e) -> str:
        op, args = e.op, e.args
        if op == "matmul":
            return f"{self.operand(args[0])} {self.operand(args[1])}"
        if op == "transpose":
            if e.attrs:
                return f"transpose({self.render(args[0])}, axes={list(dict(e.attrs)['axes'])})"
            return self.postfix(args[0]) + "ᵀ"
        if op == "pow":
            base = self.postfix(args[0])
            if isinstance(args[1], Num) and isinstance(args[1].value, Fraction) and \
                    args[1].value.denominator == 1 and 0 <= args[1].value < 10:
                return base + str(args[1].value.numerator).translate(SUPERSCRIPTS)
            return f"{base}^{self.render(args[1], 5)}"
        if op in TEXT_FUNCS and not e.attrs:
            left, right = TEXT_FUNCS[op]
            return left + self.render(args[0]) + right
        if op in COMPARE:
            return f"[{self.render(args[0], 2)} {COMPARE[op]} {self.render(args[1], 2)}]"
        if op == "sum_to":
            over = dict(e.attrs).get("over")
            return f"sum_{''.join(over)}({self.render(args[0])})" if over else self.render(args[0])
        if op == "index":
            return self.postfix(args[0]) + _key_text(dict(e.attrs).get("key", ()))
        if op == "index_grad":
            return f"scatter({self.render(args[0])}, {_key_text(dict(e.attrs).get('key', ()))})"
        name = op[5:] if op.startswith("call:") else op
        inner = [self.render(a) for a in args] + [f"{k}={_attr_text(v)}" for k, v in e.attrs]
        return f"{name}({', '.join(inner)})"

    def operand(self, a):
        if isinstance(a, App) and a.op == "matmul":
            return self.render(a)
        return self.render(a, 3)

    def postfix(self, a):
        s = self.render(a, 5)
        if isinstance(a, Sym) and "/" in a.name or isinstance(a, Num) and a.value < 0:
            return f"({s})"
        return s


def _key_text(key) -> str:
    items = []
    for k in key:
        if isinstance(k, slice):
            parts = ["" if x is None else str(x) for x in (k.start, k.stop)]
            s = ":".join(parts)
            if k.step is not None:
                s += f":{k.step}"
            items.append(s)
        else:
            items.append(str(k))
    return "[" + ", ".join(items) + "]"


def _attr_text(v) -> str:
    if isinstance(v, tuple):
        return "[" + ", ".join(_attr_text(x) for x in v) + "]"
    if hasattr(v, "name") and hasattr(v, "size"):
        return v.name or str(v.size)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return fmt_number(_exact(v))
    return str(v)


# ---- LaTeX ----------------------------------------------------------------------------------------------

GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda",
         "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
         "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}
ALIASES = {"lam": "lambda", "lmbda": "lambda", "eps": "epsilon"}
LATEX_FUNCS = {  # ops whose table LaTeX does not suit, or that need argument-aware forms
    "sqnorm": r"\|{0}\|^{{2}}", "norm": r"\|{0}\|", "abs": r"|{0}|", "sum": r"\sum {0}",
    "le": r"[{0} \leq {1}]", "ge": r"[{0} \geq {1}]", "ne": r"[{0} \neq {1}]",
}
_SPECIALS = {"#": r"\#", "_": r"\_", "%": r"\%", "&": r"\&", "$": r"\$", "{": r"\{", "}": r"\}",
             "^": r"\hat{}", "~": r"\sim{}", "\\": r"\backslash{}", "'": "'"}


def tex_escape(s: str) -> str:
    return "".join(_SPECIALS.get(c, c) for c in s)


def tex_name(name: str) -> str:
    """W1 -> W_{1}, x_t -> x_{t}, alpha -> \\alpha, lam -> \\lambda, logits -> \\mathrm{logits}."""
    if "." in name:
        return tex_escape(name)
    base, _, sub = name.partition("_")
    m = re.fullmatch(r"([A-Za-z]+?)(\d+)", base)
    digits = ""
    if m and not sub:
        base, digits = m.group(1), m.group(2)
    word = ALIASES.get(base, base)
    if word in GREEK:
        head = "\\" + word
    elif len(base) == 1:
        head = base
    else:
        head = r"\mathrm{" + tex_escape(base) + "}"
    if sub:
        return head + "_{" + (tex_name(sub) if sub else "") + "}"
    if digits:
        return head + "_{" + digits + "}"
    return head


class LatexPrinter(_Printer):
    latex = True
    odot = r" \odot "

    def paren(self, s):
        if "\\frac" in s or "\\sum" in s:
            return r"\left(" + s + r"\right)"
        return "(" + s + ")"

    def number(self, v):
        text = fmt_number(v)
        if "e" in text and not text.startswith(("inf", "-inf", "nan")):
            mant, exp = text.split("e")
            return f"{mant} \\times 10^{{{int(exp)}}}"
        return r"\infty" if text == "inf" else r"-\infty" if text == "-inf" else text

    def literal(self, value):
        if value.ndim == 1 and value.size <= 6:
            return r"\left[" + ", ".join(self.number(_exact(x)) for x in value) + r"\right]"
        return r"\mathrm{const}_{" + r" \times ".join(map(str, value.shape)) + "}"

    def fraction(self, num, den, single, den_single, only):
        return r"\frac{" + num + "}{" + den + "}"

    def app(self, e) -> str:
        op, args = e.op, e.args
        if op == "matmul":
            return f"{self.operand(args[0])} {self.operand(args[1])}"
        if op == "transpose":
            if e.attrs:
                return r"\mathrm{transpose}\left(" + self.render(args[0]) + r"\right)"
            return _braced(self.postfix(args[0])) + r"^\top"
        if op == "pow":
            return _braced(self.postfix(args[0])) + "^{" + self.render(args[1]) + "}"
        if op == "sum_to":
            over = dict(e.attrs).get("over")
            if not over:
                return self.render(args[0])
            return r"\sum_{" + ", ".join(tex_name(o) if not o.isdigit() else o for o in over) + "} " + \
                self.render(args[0], 5)
        if op == "index":
            return self.postfix(args[0]) + _key_text(dict(e.attrs).get("key", ()))
        if op == "index_grad":
            return r"\mathrm{scatter}_{" + _key_text(dict(e.attrs).get("key", ())) + "}" + \
                self.paren(self.render(args[0]))
        if op.startswith("call:"):
            return self._call(tex_name(op[5:]), args, e.attrs)
        fmt = LATEX_FUNCS.get(op) or (REGISTRY[op].latex if op in REGISTRY else None)
        if fmt is None or e.attrs or any("{%d}" % k not in fmt for k in range(len(args))):
            return self._call(r"\mathrm{" + tex_escape(op.replace("'", "")) + "}" + "'" * op.count("'"),
                              args, e.attrs)
        slots = [self._slot(fmt, k, a) for k, a in enumerate(args)]
        try:  # the table mixes str.format strings (\sqrt{{{0}}}) and plain ones (\mathrm{relu}({0}))
            return fmt.format(*slots)
        except (KeyError, IndexError, ValueError):
            out = fmt
            for k, text in enumerate(slots):
                out = out.replace("{%d}" % k, "\x00%d\x00" % k)
            for k, text in enumerate(slots):
                out = out.replace("\x00%d\x00" % k, text)
            return out

    def _call(self, head, args, attrs):
        inner = [self.render(a) for a in args] + [rf"\mathrm{{{tex_escape(k)}}}={tex_escape(_attr_text(v))}"
                                                  for k, v in attrs]
        return head + self.paren(", ".join(inner))

    def _slot(self, fmt, k, a):
        """An argument in a table format: parenthesised unless the format encloses it."""
        token = "{" + str(k) + "}"
        at = fmt.find(token)
        before = fmt[:at].rstrip()
        after = fmt[at + len(token):].lstrip()
        enclosed = before.endswith(("(", "{", "[", ",", "|", r"\|")) and after.startswith((")", "}", "]", ",", "|",
                                                                                         r"\|"))
        return self.render(a) if enclosed else self.render(a, 4)

    def operand(self, a):
        if isinstance(a, App) and a.op == "matmul":
            return self.render(a)
        return self.render(a, 3)

    def postfix(self, a):
        s = self.render(a, 5)
        if isinstance(a, Sym) and a.adjoint or isinstance(a, Num) and a.value < 0:
            return self.paren(s)
        return s


def _braced(s):
    return s if re.fullmatch(r"\\?[A-Za-z]+(_\{[^{}]*\})?", s) else "{" + s + "}"


def _lines(eqs, printer, sep=" = "):
    out = []
    for eq in eqs:
        left = printer.render(eq.lhs)
        right = sep.join(printer.render(r) for r in eq.rhs)
        out.append((left, right, eq))
    return out


def format_text(eqs: Equations) -> str:
    p = TextPrinter()
    lines = [f"# equations of {eqs.name}", "", "forward:"]
    lines += [f"  {left} = {right}" for left, right, _ in _lines(eqs.forward, p)]
    if eqs.of is not None and (eqs.backward or eqs.error is None):
        lines += ["", f"backward (reverse mode, d{eqs.of}/dv for each value v between the parameters and "
                      f"{eqs.of}, last to first):"]
        lines += [f"  {left} = {right}" for left, right, _ in _lines(eqs.backward, p)]
    return "\n".join(lines) + "\n"


def _latex_block(eqs, env="align*"):
    p = LatexPrinter()
    rows = [f"  {left} &= " + " = ".join(p.render(r) for r in eq.rhs) for left, _, eq in _lines(eqs, p)]
    return [rf"\begin{{{env}}}"] + [r + r" \\" for r in rows[:-1]] + rows[-1:] + [rf"\end{{{env}}}"]


def format_latex(eqs: Equations, standalone=False) -> str:
    lines = []
    if standalone:
        lines += [r"\documentclass{article}", r"\usepackage{amsmath}", r"\begin{document}", ""]
    lines += [f"% equations of {_comment(eqs.name)}", "% forward"]
    lines += _latex_block(eqs.forward) if eqs.forward else []
    if eqs.backward:
        lines += ["", f"% backward (reverse mode, d{_comment(eqs.of)}/dv, last to first)"]
        lines += _latex_block(eqs.backward)
    if standalone:
        lines += ["", r"\end{document}"]
    return "\n".join(lines) + "\n"


def _comment(s) -> str:
    return str(s).replace("\n", " ")


def format_markdown(eqs: Equations) -> str:
    p = TextPrinter()
    lines = [f"# Equations of `{eqs.name}`", "", "## Forward", ""]
    lines += _md_block(eqs.forward)
    lines += ["", "As text:", "", "```"] + [f"{left} = {right}" for left, right, _ in _lines(eqs.forward, p)] + ["```"]
    if eqs.backward:
        lines += ["", f"## Backward (reverse mode, d{eqs.of}/dv, last to first)", ""]
        lines += _md_block(eqs.backward)
        lines += ["", "As text:", "", "```"]
        lines += [f"{left} = {right}" for left, right, _ in _lines(eqs.backward, p)] + ["```"]
    return "\n".join(lines) + "\n"


def _md_block(eqs):
    if not eqs:
        return ["(none)"]
    return ["$$"] + _latex_block(eqs, "aligned") + ["$$"]

"""AST -> graph: names resolved, defs inlined, shapes checked as nodes are added.

`build(program, source, dims, input_shapes)` is used twice: once symbolically
for `check` (free dims unknown) and once per set of bound dims for evaluation,
where every shape is concrete.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from . import ast as A
from .consteval import BIN, LITERALS, NotConstant, const_eval, whole
from .bounds import DEFAULT_MAX_OPS, too_many_ops
from .calls import CallLowering
from .declarations import Decl, DeclarationLowering
from .diagnostics import Reporter, Source, suggest
from .graph import GraphBuilder, source_text
from .loops import Body, Frame, fixed_dims, sequence_names, trip_count
from .ops import ALIASES, BUILTINS, REGISTRY, concrete

SUGGEST_WORK = 300_000  # names compared for did-you-mean hints in one build (well under a second)


@dataclass
class Built:
    graph: object
    gb: GraphBuilder
    source: Source
    diagnostics: list
    dims: dict  # name -> size (None while free), after binding to literal values
    decls: dict  # name -> Decl, in declaration order
    outputs: list
    defs: dict = field(default_factory=dict)
    assigned: dict = field(default_factory=dict)
    declared_dims: dict = field(default_factory=dict)  # name -> size as declared (None: free)
    dim_spans: dict = field(default_factory=dict)
    sequences: dict = field(default_factory=dict)  # top-level sequence name -> loops.Sequence
    finished_at: tuple = ()  # (nodes, the builder's count) when the build ended: what was added since shows

    def dim_span(self, name):
        return self.dim_spans.get(name)

    def as_built(self) -> bool:
        """Nothing added to the graph since the build (reverse mode, for equations, adds to it)."""
        return self.finished_at == (len(self.graph), self.gb.count) and "adjoint_walks" not in self.graph.graph


def as_concrete(built: Built, dims: dict, input_shapes: dict, free_counts: bool = False) -> Built | None:
    """A copy of `built` (the symbolic build) when a concrete build with these dims and input
    shapes would add the same nodes with the same attributes in the same order, else None.

    That is when nothing was left to the data: every dim declared with a size, the one bound; every
    declaration has a shape (none implicit) with every size known; each given value has
    exactly its declaration's shape and replaces no literal value (a literal's shape takes
    part in the symbolic build); and nothing was added to the graph since it was built.
    Copying costs a tenth of building (models with fixed dims: a scalar chain, the seeds'
    one-neuron nets).
    """
    if free_counts or not dims == built.dims == built.declared_dims or None in dims.values() \
            or not built.as_built():
        return None
    for name, decl in built.decls.items():
        if decl.implicit or concrete(decl.shape) is None:
            return None
        if name in input_shapes and (decl.value is not None or tuple(input_shapes[name]) != concrete(decl.shape)):
            return None
    gb = built.gb.with_graph(built.graph.copy())
    return dataclasses.replace(built, graph=gb.g, gb=gb, diagnostics=gb.reporter.diagnostics)


def build(program: A.Program, source: Source, dims=None, input_shapes=None, strict=False,
          max_ops: int | None = DEFAULT_MAX_OPS, free_counts: bool = False) -> Built:
    builder = _Builder(program, source, dims or {}, input_shapes or {}, strict, max_ops)
    builder.free_counts = free_counts  # see GraphBuilder.free_dims
    return builder.run()


class _Builder(DeclarationLowering, CallLowering):
    def __init__(self, program, source, dim_overrides, input_shapes, strict, max_ops=DEFAULT_MAX_OPS):
        self.program, self.source, self.strict, self.max_ops = program, source, strict, max_ops
        self.dim_overrides, self.input_shapes = dim_overrides, input_shapes
        self.rep = Reporter(source)
        self.gb = GraphBuilder(source, self.rep)
        self.dims: dict[str, int | None] = {}
        self.declared_dims: dict[str, int | None] = {}
        self.dim_spans: dict = {}
        self.decls: dict[str, Decl] = {}
        self.defs: dict[str, A.Def] = {}
        self.assigned: dict[str, str] = {}
        self.later: dict[str, object] = {}  # every top-level name -> span of its definition
        self.calls: dict[str, int] = {}
        self.outputs: list[str] = []
        self.implicit: set[str] = set()
        self._splits: dict[int, tuple] = {}  # id(call node) -> (node, its _call_inputs); node kept alive
        self.refused_defs: set[str] = set()  # defs already reported as recursive
        self.differentiating: set[str] = set()  # defs whose body calls grad (see _bind_params)
        self._near_names: dict[str, str | None] = {}  # unresolved name -> its did-you-mean
        self._suggest_work = 0  # names compared for did-you-mean hints so far
        # Loops and sequences (loops.py): the top level's sequences, those of the def call being
        # inlined (`seqs`) and the names that are sequences there; the loop variables in force.
        self.sequences: dict = {}
        self.seqs = self.sequences
        self.seq_names = self.top_seq_names = sequence_names(program.statements)
        self.static_vars: dict[str, int] = {}
        self.body = Body(self)
        self._def_seq_names: dict[str, set] = {}
        self.free_counts = False  # build(..., free_counts=True): see GraphBuilder.free_dims

    # ---- driver ----------------------------------------------------------------
    def run(self) -> Built:
        self._collect()
        self._check_recursion()
        if self.max_ops is not None:
            count_ops(self.program, self.source, self.max_ops, self.defs, dims=self.dim_overrides)
        for stmt in self.program.statements:
            self.gb.span, self.gb.call = getattr(stmt, "span", None), ()
            self._statement(stmt)
        self._finish_outputs()
        self.gb.finish()
        self.rep.raise_if_errors()
        return Built(self.gb.g, self.gb, self.source, self.rep.diagnostics, self.dims, self.decls,
                     self.outputs, self.defs, self.assigned, self.declared_dims, self.dim_spans, self.sequences,
                     (len(self.gb.g), self.gb.count))

    def _collect(self):
        """Hoist defs; find every top-level name once, so duplicates and forward uses are known."""
        for stmt in self.program.statements:
            for name, span in _defined_names(stmt):
                if name in self.later:
                    first = self.later[name]
                    self.rep.error("E104", f"`{name}` is defined twice", span,
                                   notes=(f"first defined at line {first.line}, column {first.col}",),
                                   help=("every name is defined once; give this one a new name",))
                else:
                    self.later[name] = span
                if name in self.top_seq_names:
                    self.rep.error("E104", f"`{name}` is both a sequence (`{name}[i] = ...`) and a name", span,
                                   help=("give the sequence or the value another name",))
            if isinstance(stmt, A.Def) and stmt.name not in self.defs and stmt.name not in self.refused_defs:
                if not self._params_distinct(stmt):  # its calls would only repeat the error
                    self.refused_defs.add(stmt.name)
                    continue
                self.defs[stmt.name] = stmt
                if "grad" in _called_names(stmt):
                    self.differentiating.add(stmt.name)
                if stmt.name in REGISTRY or stmt.name in BUILTINS:
                    self.rep.warn("W003", f"def `{stmt.name}` shadows the builtin of the same name",
                                  stmt.name_span)

    def _params_distinct(self, d: A.Def) -> bool:
        seen = {}
        for p in d.params:
            if p.name in seen:
                self.rep.error("E104", f"parameter `{p.name}` appears twice in def `{d.name}`", p.span,
                               notes=(f"first at line {seen[p.name].line}, column {seen[p.name].col}",),
                               help=("give each parameter its own name",))
            else:
                seen[p.name] = p.span
        return len(seen) == len(d.params)

    def _check_recursion(self):
        """A def may not call itself, directly or through others (calls are inlined)."""
        callees = {name: _called_names(d) & set(self.defs) for name, d in self.defs.items()}
        state: dict[str, int] = {}
        for root in self.defs:
            stack = [(root, iter(sorted(callees[root])))]
            state[root] = state.get(root, 0) or 1
            path = [root]
            while stack:
                name, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    state[name] = 2
                    stack.pop()
                    path.pop()
                elif state.get(nxt) == 1 and nxt in path:
                    cycle = path[path.index(nxt):] + [nxt]
                    self._recursion_error(cycle)
                    return
                elif not state.get(nxt):
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append((nxt, iter(sorted(callees[nxt]))))

    def _recursion_error(self, cycle):
        d = self.defs[cycle[0]]
        how = "itself" if len(cycle) == 2 else "itself through " + " -> ".join(f"`{c}`" for c in cycle[1:-1])
        self.rep.error("E105", f"def `{cycle[0]}` calls {how}", d.name_span,
                       notes=("calls are inlined into the graph, so recursion would never end",
                              "call chain: " + " -> ".join(cycle)),
                       help=("unroll the recursion by hand, or write the loop out as separate statements",))
        for name in cycle[:-1]:
            self.defs.pop(name, None)
            self.refused_defs.add(name)

    def _statement(self, stmt):
        if isinstance(stmt, A.DimDecl):
            for item in stmt.items:
                self._dim(item)
        elif isinstance(stmt, A.VarDecl):
            for item in stmt.items:
                self._decl(stmt.kind, item)
        elif isinstance(stmt, A.Assign):
            vid = self.lower(stmt.value, None, target=stmt.name if stmt.name not in self.assigned else None)
            self.assign_top(stmt.name, vid, stmt.span, stmt.name_span, stmt.value.span)
        elif isinstance(stmt, (A.For, A.ElemAssign, A.MultiAssign)):
            self.body.run(stmt, Frame(None, None, self.sequences))
        elif isinstance(stmt, A.Output):
            for name in stmt.names:
                self._output(name)

    def assign_top(self, name, vid, span, name_span, value_span=None):
        """A top-level name takes the value vid (the first definition wins; _collect reports the rest)."""
        if name not in self.assigned and name not in self.decls and name not in self.dims:
            self.gb.span = span
            self.assigned[name] = self.gb.bind(vid, name, span=value_span or span, name_span=name_span)

    # ---- expressions ----------------------------------------------------------------
    def lower(self, expr, scope, target: str | None = None) -> str:
        """The node id holding expr's value; scope maps a def's params and locals.

        With `target`, an operator at the root writes straight into a node of that
        name, which saves renaming it afterwards (the common `z = W1 @ x`).
        """
        gb, table, nodes, source = self.gb, self._VISIT, self.gb.g._node, self.source

        def visit(node, kids):  # called for every expression node: one function, no further layers
            if node is expr and target is not None and target not in nodes and self._emits_directly(node):
                gb.next_out = target
            gb.span = node.span
            vid = table[type(node)](self, node, kids, scope)
            gb.next_out = None  # unused when the root turned out to be an error
            data = nodes[vid]
            if data.get("anonymous") and "text" not in data:
                data["text"] = source_text(source, node.span)
            return vid

        return A.postorder(expr, visit, self._kids)

    def _emits_directly(self, node) -> bool:
        if isinstance(node, (A.BinOp, A.Transpose, A.Index)):
            return True
        if isinstance(node, A.UnaryOp):
            return node.op == "-"
        if isinstance(node, A.Call):
            name = ALIASES.get(node.func, node.func)
            return name not in self.defs and name != "grad" and name in REGISTRY and not REGISTRY[name].internal
        return False

    def _kids(self, node):
        kind = type(node)  # the AST's classes have no subclasses; the common ones first
        if kind is A.BinOp:
            return (node.left, node.right)
        if kind is A.Name or kind is A.Num:
            return ()
        if kind is A.Call:
            return self._split_call(node)[0]
        if kind is A.Index:
            if type(node.value) is A.Name and node.value.id in self.seq_names:
                return ()  # a sequence element `h[t-1]`: read by loops.Body.read
            return (node.value,)
        if kind is A.ArrayLit and _is_literal(node):
            return ()
        return A.children(node)

    def _visit_array(self, node, kids, scope):
        return self.gb.op("stack", *kids, axis=0) if kids else self._literal(node)

    _VISIT = {  # one entry per expression class
        A.Num: lambda self, node, kids, scope: self.gb.const(node.value),
        A.Str: lambda self, node, kids, scope: self._string(node),
        A.Bool: lambda self, node, kids, scope: self.gb.const(1.0 if node.value else 0.0),
        A.Name: lambda self, node, kids, scope: self.resolve(node, scope),
        A.ArrayLit: _visit_array,
        A.BinOp: lambda self, node, kids, scope: self.gb.emit(BIN[node.op], kids, {}),
        A.UnaryOp: lambda self, node, kids, scope: self.gb.emit("neg", kids, {}) if node.op == "-" else kids[0],
        A.Transpose: lambda self, node, kids, scope: self.gb.emit("transpose", kids, {"axes": None}),
        A.Index: lambda self, node, kids, scope: self._index(node, kids[0]) if kids else
        self.body.read(node, self.seqs),
        A.Call: lambda self, node, kids, scope: self._call(node, kids, scope),
    }

    def _literal(self, node):
        try:
            return self.gb.const(const_eval(node, self.const_lookup))
        except NotConstant as err:
            self.rep.error("E204", err.message, err.span or node.span)
            return self._placeholder()

    def _string(self, node):
        self.rep.error("E103", "a string is allowed only as einsum's subscripts", node.span,
                       help=('e.g. einsum("ij,jk->ik", a, b); names need no quotes',))
        return self._placeholder()

    def placeholder(self) -> str:
        return self._placeholder()

    def _placeholder(self) -> str:
        """Stands in for an expression that had an error, so later checks do not cascade."""
        return self.gb.add_var(self.gb.fresh(), "intermediate", None, anonymous=True, error=True)

    def _index(self, node: A.Index, base):
        try:
            key = tuple(const_eval(item, self.const_lookup) for item in node.items)
        except NotConstant as err:
            self.rep.error("E204", f"indices must be constants: {err.message}", err.span or node.span)
            return self._placeholder()
        for k in key:
            if not isinstance(k, slice) and whole(k) is None:
                self.rep.error("E204", f"an index must be a whole number or a slice, not {k}", node.span)
                return self._placeholder()
        key = tuple(k if isinstance(k, slice) else whole(k) for k in key)
        return self.gb.emit("index", [base], {"key": key})

    # ---- names ------------------------------------------------------------------------
    def resolve(self, name: A.Name, scope) -> str:
        n = name.id
        if n in self.static_vars:  # a loop variable: a constant (anonymous: folded like a literal)
            return self.gb.const(float(self.static_vars[n]))
        if scope is not None and n in scope:
            return scope[n]
        if n in self.seq_names:
            self.rep.error("E101", f"`{n}` is a sequence: read one element, e.g. `{n}[t]`", name.span)
            return self._placeholder()
        if n in self.top_seq_names and scope is not None and n not in self.decls:  # in a def body
            self.rep.error("E101", f"sequence `{n}` is not visible inside a def", name.span,
                           notes=("a def body sees its parameters, its locals and the declared names",),
                           help=(f"pass the element as a parameter, e.g. `f({n}[t])`",))
            return self._placeholder()
        if n in self.decls:
            return n
        if n in self.dims:
            return self._dim_node(n)
        if n in LITERALS and n not in self.assigned:  # `inf`, `pi`, unless the program names its own
            return self.gb.const(LITERALS[n])
        if n in self.assigned:
            if scope is None:
                return self.assigned[n]
            self.rep.error("E101", f"`{n}` is not visible inside a def", name.span,
                           notes=("a def body sees its parameters, its locals and the declared names",),
                           help=(f"pass `{n}` as a parameter",))
            return self._placeholder()
        if self.body.outside(name):  # a loop body's name read after its loop
            return self._placeholder()
        return self._unresolved(name, scope)

    def _unresolved(self, name, scope):
        n = name.id
        if n in self.defs or n in BUILTINS:
            self.rep.error("E101", f"`{n}` is a function, not a value", name.span,
                           help=(f"call it: `{n}(...)`",))
            return self._placeholder()
        if n in self.later:
            first = self.later[n]
            self.rep.error("E101", f"`{n}` is used before it is defined", name.span,
                           notes=(f"it is defined at line {first.line}",),
                           help=("move the definition above its first use",))
            return self._placeholder()
        if self.rep.full:  # the error would not be shown: the build fails without it, so compute nothing
            return self._placeholder()
        near = self._near_names.get(n, False)
        if near is False:  # once per name: a model may use one misspelt name a thousand times
            known = [*self.decls, *self.dims, *self.assigned, *(scope or ())]
            # Thousands of distinct implicit inputs would make the hints quadratic: past a fixed
            # number of comparisons, names are taken as implicit inputs without looking for a near one.
            self._suggest_work += len(known)
            near = self._near_names[n] = suggest(n, known) if self._suggest_work <= SUGGEST_WORK else None
        if near is not None:
            self.rep.error("E101", f"undefined name `{n}`", name.span, help=(f"did you mean `{near}`?",))
            return self._placeholder()
        return self._implicit_input(name)

    def _implicit_input(self, name):
        n = name.id
        if n not in self.implicit:
            self.implicit.add(n)
            report = self.rep.error if self.strict else self.rep.warn
            report("W001" if not self.strict else "E101",
                   f"`{n}` is not declared: it is an implicit input of unknown shape", name.span,
                   help=(f"declare it, e.g. `input {n} : [n]`, or give it a value with --set {n}=...",))
            shape = self._with_sizes(None, self.input_shapes[n]) if n in self.input_shapes else None
            self.gb.add_var(n, "input", shape, name=n, span=name.span, anonymous=False, implicit=True)
            self.decls[n] = Decl("input", n, shape, None, name.span, implicit=True)
        return n

    def _dim_node(self, n):
        """A dim used as a scalar (`/ b`): a constant filled in when the dim is bound."""
        vid = f"dim:{n}"
        if vid not in self.gb.g:
            size = self.dims[n]
            attrs = {"value": np.asarray(float(size))} if size is not None else {}
            self.gb.add_var(vid, "const", (), name=n, dim=n, anonymous=False, call=(),
                            span=self.dim_spans.get(n), **attrs)
        return vid

def _defined_names(stmt):
    if isinstance(stmt, A.DimDecl):
        return [(i.name, i.span) for i in stmt.items]
    if isinstance(stmt, A.VarDecl):
        return [(i.name, i.name_span) for i in stmt.items]
    if isinstance(stmt, A.Assign):
        return [(stmt.name, stmt.name_span)]
    if isinstance(stmt, A.Def):
        return [(stmt.name, stmt.name_span)]
    if isinstance(stmt, A.MultiAssign):
        return [(t.id, t.span) for t in stmt.targets if isinstance(t, A.Name)]
    return []


def _called_names(d: A.Def) -> set:
    return set(_expression_profile(_def_expressions(d))[1])


def _def_expressions(d: A.Def) -> list:
    return [e for s in d.body for e in A.statement_expressions(s)] + list(d.results)


def _callees_first(callees: dict[str, set]) -> list[str]:
    """Def names ordered so that every def comes after the defs it calls (Kahn's algorithm)."""
    waiting = {name: set(c) for name, c in callees.items()}
    callers: dict[str, list] = {}
    for name, cs in waiting.items():
        for c in cs:
            callers.setdefault(c, []).append(name)
    ready = sorted(n for n, cs in waiting.items() if not cs)
    order = []
    while ready:
        name = ready.pop()
        order.append(name)
        for user in callers.get(name, ()):
            waiting[user].discard(name)
            if not waiting[user]:
                ready.append(user)
    return order


def count_ops(program: A.Program, source: Source, max_ops: int | None = None, defs: dict | None = None,
              dims: dict | None = None) -> int:
    """The operations of the program's graph, each def call as its inlined body; E108 above max_ops.

    Defs that each call the previous one twice double at every level: thirty of
    them inline to 2**30 operations. Each def's inlined size is counted once,
    callees first (a call of a builtin is one operation), so this costs no more
    than reading the program, and a model is refused before anything is built.
    A loop counts its body once per iteration where its range is known from the
    declared dims (and `dims`, the --dim sizes); else once.
    """
    if defs is None:
        defs = {}
        for st in program.statements:
            if isinstance(st, A.Def):
                defs.setdefault(st.name, st)
    sizes = fixed_dims(program, dims or {})
    profiles = {name: _statements_profile(d.body, sizes, extra=d.results) for name, d in defs.items()}
    size: dict[str, int] = {}
    for name in _callees_first({n: set(c) & set(defs) for n, (_, c) in profiles.items()}):
        size[name] = _inlined(profiles[name], size)
    limit = max_ops if max_ops is not None else float("inf")
    # Every def counts, called or not: a def too large to inline is refused where it is written.
    for name, n in size.items():
        if n > limit:
            chain = " -> ".join(_call_chain(name, profiles, size))
            raise too_many_ops(f"def `{name}` inlines to {n:,} operations", n, max_ops, defs[name].name_span, source,
                               notes=(f"call chain: {chain}", "each call of a def is copied into the graph; "
                                      "a def that calls another twice doubles the size at every level"))
    counted = [st for st in program.statements if isinstance(st, (A.Assign, A.ElemAssign, A.MultiAssign, A.For))]
    total = _inlined(_statements_profile(counted, sizes), size)  # one walk; statement by statement only to refuse
    if total > limit:
        total = 0
        for st in counted:
            total += _inlined(_statements_profile([st], sizes), size)
            if total > limit:
                raise too_many_ops(f"the model has {total:,} operations by line {st.span.line}", total, max_ops,
                                   st.span, source,
                                   notes=("counted before building, each def call as its inlined body",))
    return total


def _statements_profile(statements, sizes: dict, known: dict | None = None, extra=()) -> tuple[int, Counter]:
    """The profile (see _expression_profile) of statements, a loop's body times its iterations.

    Iterations are counted where the range is known from `sizes` (fixed dims, --dim)
    and the enclosing loops' first values; else once. Recursion follows the
    nesting of loops, not their iterations.
    """
    ops, calls = _expression_profile([e for st in statements if not isinstance(st, A.For)
                                      for e in A.statement_expressions(st)] + list(extra))
    for st in statements:
        if isinstance(st, A.For):
            trips, inner = trip_count(st, sizes, known or {})
            body_ops, body_calls = _statements_profile(st.body, sizes, inner)
            ops += trips * body_ops
            calls.update({c: k * trips for c, k in body_calls.items()})
    return ops, calls


_OPERATIONS = (A.BinOp, A.UnaryOp, A.Transpose, A.Index)


def _expression_profile(exprs) -> tuple[int, Counter]:
    """(number of operators other than calls, how often each function is called) in exprs."""
    ops, calls = 0, Counter()
    stack = list(exprs)
    while stack:
        node = stack.pop()
        if isinstance(node, _OPERATIONS):
            ops += 1
        elif isinstance(node, A.Call):
            calls[node.func] += 1
        stack.extend(A.children(node))
    return ops, calls


def _inlined(profile, size: dict) -> int:
    """Operations once inlined: own operators, each def call its def's size, any other call one."""
    own, calls = profile
    return own + sum(k * size.get(c, 1) for c, k in calls.items())


def _call_chain(name, profiles, size) -> list[str]:
    """The def, then at each level the callee that contributes the most, down to a def calling none."""
    chain = [name]
    while True:
        calls = profiles[chain[-1]][1]
        inner = [(k * size[c], c) for c, k in calls.items() if c in size and c not in chain]
        if not inner:
            break
        chain.append(max(inner)[1])
    if len(chain) > 8:
        chain = chain[:4] + [f"... ({len(chain) - 6} more)"] + chain[-2:]
    return chain


def _is_literal(node) -> bool:
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, A.ArrayLit):
            stack.extend(n.elements)
        elif isinstance(n, A.UnaryOp):
            stack.append(n.operand)
        elif not isinstance(n, (A.Num, A.Bool)):
            return False
    return True

"""AST -> graph: names resolved, defs inlined, shapes checked as nodes are added.

`build(program, source, dims, input_shapes)` is used twice: once symbolically
for `check` (free dims unknown) and once per set of bound dims for evaluation,
where every shape is concrete.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from . import ast as A
from .consteval import BIN, LITERALS, NotConstant, const_eval, whole
from .bounds import DEFAULT_MAX_OPS, too_many_ops
from .diagnostics import Reporter, Source, suggest
from .graph import GraphBuilder, source_text
from .loops import Body, Frame, fixed_dims, sequence_names, trip_count
from .ops import ALIASES, BUILTINS, REGISTRY, fmt_shape
from .ops.base import LIST_KEYS, Dim, same_dim

INITIALISERS = {"randn": ("mean", "std"), "uniform": ("low", "high"), "zeros": (), "ones": (),
                "full": ("v",), "glorot": (), "he": ()}
MAX_INLINE_DEPTH = 64
SUGGEST_WORK = 300_000  # names compared for did-you-mean hints in one build (well under a second)


@dataclass
class Decl:
    kind: str  # input | param | const
    name: str
    shape: tuple | None  # declared shape (Dims), None if not declared
    init: object  # the initialiser expression, or None
    span: object
    value: object = None  # constant value when the initialiser is one
    implicit: bool = False


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

    def dim_span(self, name):
        return self.dim_spans.get(name)


def build(program: A.Program, source: Source, dims=None, input_shapes=None, strict=False,
          max_ops: int | None = DEFAULT_MAX_OPS, free_counts: bool = False) -> Built:
    builder = _Builder(program, source, dims or {}, input_shapes or {}, strict, max_ops)
    builder.free_counts = free_counts  # see GraphBuilder.free_dims
    return builder.run()


class _Builder:
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
                     self.outputs, self.defs, self.assigned, self.declared_dims, self.dim_spans, self.sequences)

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

    # ---- declarations -------------------------------------------------------------
    def _dim(self, item: A.DimItem):
        size = None
        if item.size is not None:
            size = self._const_int(item.size, "a dim size")
        if item.name in self.dim_overrides:
            size = int(self.dim_overrides[item.name])
        if size is not None and size < 0:
            self.rep.error("E204", f"dim `{item.name}` has negative size {size}", item.span)
        if item.name not in self.dims:
            self.dims[item.name] = self.declared_dims[item.name] = size
            if item.size is None and self.free_counts:
                self.gb.free_dims.add(item.name)
            self.dim_spans[item.name] = item.span

    def _const_int(self, expr, what):
        try:
            value = const_eval(expr, self.const_lookup)
        except NotConstant as err:
            self.rep.error("E107", f"{what} must be a constant: {err.message}", err.span or expr.span)
            return None
        if whole(value) is None:
            self.rep.error("E107", f"{what} must be a whole number, not {value}", expr.span)
        return whole(value)

    def const_lookup(self, name: A.Name):
        if name.id in self.static_vars:  # a loop variable: a static integer
            return float(self.static_vars[name.id])
        if name.id in self.dims:
            if self.dims[name.id] is None:
                raise NotConstant(f"dim `{name.id}` is free: its size is known only at run time", name.span)
            return float(self.dims[name.id])
        decl = self.decls.get(name.id)
        if decl is not None and decl.kind == "const" and decl.value is not None:
            return decl.value
        if decl is None and name.id in LITERALS:
            return LITERALS[name.id]
        raise NotConstant(f"`{name.id}` is not a constant known before the run", name.span)

    def _decl(self, kind, item: A.DeclItem):
        shape = self._declared_shape(item.shape) if item.shape is not None else None
        value = self._init_value(item, kind)
        if value is not None and item.name not in self.input_shapes:  # a given value replaces the literal
            shape = self._unify_literal(item, shape, np.shape(value))
        if item.name in self.input_shapes:
            shape = self._with_sizes(shape, self.input_shapes[item.name])
        decl = Decl(kind, item.name, shape, item.init, item.span, value)
        if item.name in self.decls or item.name in self.dims:
            return
        self.decls[item.name] = decl
        attrs = {"value": np.asarray(value, float)} if kind == "const" and value is not None else {}
        self.gb.add_var(item.name, kind, shape, name=item.name, span=item.name_span, anonymous=False, **attrs)

    def _declared_shape(self, dims) -> tuple:
        out = []
        for d in dims:
            if d.name is None:
                out.append(Dim(None, d.size))
            elif d.name in self.dims:
                out.append(Dim(d.name, self.dims[d.name]))
            else:
                near = suggest(d.name, self.dims)
                self.rep.error("E101", f"undefined dim `{d.name}`", d.span,
                               help=(f"did you mean `{near}`?",) if near else
                               (f"declare it: `dim {d.name}` (free) or `dim {d.name} = 4`",))
                out.append(Dim(d.name, None))
        return tuple(out)

    def _init_value(self, item, kind):
        """The initialiser's value when it is a constant (literals, dims, consts); None for randn() & co."""
        init = item.init
        if init is None:
            return None
        if isinstance(init, A.Call) and init.func in INITIALISERS:
            if item.shape is None and init.func not in ("full",):
                self.rep.error("E107", f"`{init.func}()` needs a declared shape for `{item.name}`", init.span,
                               help=(f"declare it, e.g. `{kind} {item.name} : [n, m] = {init.func}()`",))
            keywords = INITIALISERS[init.func]
            if init.args and len(keywords) > 1:  # randn(0.1): NumPy's mean or PyTorch's std? say which
                names = ", ".join(f"`{k}=`" for k in keywords)
                self.rep.error("E103", f"`{init.func}` takes keyword arguments only ({names})", init.args[0].span,
                               help=("name them, e.g. `randn(std=0.1)` or `uniform(low=-0.1, high=0.1)`",))
            return None
        try:
            return np.asarray(const_eval(init, self.const_lookup), dtype=np.float64)
        except NotConstant as err:
            self.rep.error("E107", f"the initialiser of `{item.name}` must be a constant: {err.message}",
                           err.span or init.span,
                           help=("initialisers are literals, numbers, dims, earlier consts, arithmetic, "
                                 "or randn/uniform/zeros/ones/full/glorot/he",))
            return None

    def _unify_literal(self, item, shape, sizes):
        """A declared shape must agree with its literal; free dims bind to the literal's sizes."""
        if shape is None:
            return tuple(Dim(None, s) for s in sizes)
        if len(shape) != len(sizes) or any(d.size is not None and d.size != s for d, s in zip(shape, sizes)):
            got = "[" + ", ".join(map(str, sizes)) + "]"
            self.rep.error("E203", f"`{item.name}` is declared {fmt_shape(shape)} but its value has shape {got}",
                           item.init.span, notes=(f"declared at line {item.span.line}",),
                           help=("make the declared shape and the value agree",))
            return shape
        for d, s in zip(shape, sizes):
            if d.name is not None and self.dims.get(d.name) is None:
                self.dims[d.name] = s
        return tuple(Dim(d.name, s) for d, s in zip(shape, sizes))

    def _with_sizes(self, shape, sizes):
        if shape is None or len(shape) != len(sizes):
            return tuple(Dim(None, int(s)) for s in sizes)
        return tuple(Dim(d.name, int(s)) for d, s in zip(shape, sizes))

    # ---- outputs -------------------------------------------------------------------
    def _output(self, name):
        if isinstance(name, A.Index):  # `output h[T]`: a sequence element
            if name.value.id not in self.top_seq_names:
                self.rep.error("E106", f"`{name.value.id}` is not a sequence: an output names a value or an "
                                       "element `h[T]`", name.span)
                return
            vid = self.body.read(name, self.sequences)
            if vid not in self.outputs and not self.gb.g._node[vid].get("error"):
                self.outputs.append(vid)
            return
        if name.id in self.top_seq_names:
            self.rep.error("E106", f"`{name.id}` is a sequence: an output names one element, e.g. "
                                   f"`output {name.id}[T]`", name.span)
            return
        vid = self.assigned.get(name.id) or (name.id if name.id in self.decls else None)
        if vid is None:
            near = suggest(name.id, list(self.assigned) + list(self.decls))
            self.rep.error("E106", f"output `{name.id}` is not defined", name.span,
                           help=(f"did you mean `{near}`?",) if near else ())
        elif vid not in self.outputs:
            self.outputs.append(vid)

    def _finish_outputs(self):
        if not self.outputs:
            self.outputs = [v for v in self.assigned.values() if self.gb.g.out_degree(v) == 0]
            self.outputs += [v for seq in self.sequences.values() for v in seq.elements.values()
                             if self.gb.g.out_degree(v) == 0]
        for v in self.outputs:
            node = self.gb.g.nodes[v]
            if node["role"] == "intermediate":
                node["role"] = "output"

    # ---- expressions ----------------------------------------------------------------
    def lower(self, expr, scope, target: str | None = None) -> str:
        """The node id holding expr's value; scope maps a def's params and locals.

        With `target`, an operator at the root writes straight into a node of that
        name, which saves renaming it afterwards (the common `z = W1 @ x`).
        """
        def visit(node, kids):
            if node is expr and target is not None and target not in self.gb.g and self._emits_directly(node):
                self.gb.next_out = target
            vid = self._visit(node, kids, scope)
            self.gb.next_out = None  # unused when the root turned out to be an error
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
        if isinstance(node, A.ArrayLit) and _is_literal(node):
            return ()
        if isinstance(node, A.Index):
            if isinstance(node.value, A.Name) and node.value.id in self.seq_names:
                return ()  # a sequence element `h[t-1]`: read by loops.Body.read
            return (node.value,)
        if isinstance(node, A.Call):
            return self._split_call(node)[0]
        return A.children(node)

    def _visit(self, node, kids, scope):
        self.gb.span = node.span
        vid = self._visit_node(node, kids, scope)
        data = self.gb.g.nodes[vid]
        if data.get("anonymous") and "text" not in data:
            data["text"] = source_text(self.source, node.span)
        return vid

    def _visit_node(self, node, kids, scope):
        return self._VISIT[type(node)](self, node, kids, scope)

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

    # ---- calls --------------------------------------------------------------------------
    def _split_call(self, node: A.Call):
        """_call_inputs, worked out once per call site (def bodies are lowered once per call)."""
        split = self._splits.get(id(node))
        if split is None:
            split = self._splits[id(node)] = (node, self._call_inputs(node))
        return split[1]

    def _call_inputs(self, node: A.Call):
        """(expressions lowered as graph inputs, static keyword expressions, error or None)."""
        name = ALIASES.get(node.func, node.func)
        if name in self.defs:
            return _def_arguments(self.defs[name], node)
        if name == "grad" or name not in REGISTRY or REGISTRY[name].internal:
            return tuple(node.args), {}, None
        op = REGISTRY[name]
        args = list(node.args)
        subscripts = None
        if "spec" in op.kwargs and args and isinstance(args[0], A.Str):  # einsum("ij,jk->ik", ...)
            subscripts, args = args[0], args[1:]
        inputs = args[: op.nargs[1]] if not op.variadic else []
        if op.variadic and args:
            first = args[0]
            inputs = list(first.elements) if isinstance(first, A.ArrayLit) else [first]
        rest = args[len(inputs):] if not op.variadic else args[1:]
        static_names = [k for k in op.kwargs if k != "like"]
        static = dict(zip(static_names, rest))
        if subscripts is not None:
            static["spec"] = subscripts
        error = None
        if len(rest) > len(static_names):
            most = op.nargs[1] + len(static_names)
            error = f"`{node.func}` takes at most {most} argument{'s' if most != 1 else ''} but {len(args)} " \
                    f"were given"
        extra = {}
        for kw in node.kwargs:
            if kw.name in op.kw_inputs:
                extra[op.kw_inputs.index(kw.name) + op.nargs[0] - len(op.kw_inputs)] = kw.value
            elif kw.name in static_names and kw.name not in static:
                static[kw.name] = kw.value
            else:
                error = error or self._bad_keyword(node, kw, static_names + list(op.kw_inputs))
        for pos in sorted(extra):
            inputs.insert(pos, extra[pos]) if pos <= len(inputs) else inputs.append(extra[pos])
        return tuple(inputs), static, error

    def _bad_keyword(self, node, kw, allowed):
        if kw.name in allowed:
            return f"`{kw.name}` is given twice to `{node.func}`"
        near = suggest(kw.name, allowed)
        hint = f"; did you mean `{near}=`?" if near else \
            f"; it takes {', '.join(f'`{a}=`' for a in allowed)}" if allowed else "; it takes none"
        return f"`{node.func}` has no keyword argument `{kw.name}`{hint}"

    def _call(self, node: A.Call, kids, scope):
        name = ALIASES.get(node.func, node.func)
        if name in self.defs:
            return self._inline(self.defs[name], node, kids)
        if name == "grad":
            return self._grad(node, kids)
        if name in REGISTRY and not REGISTRY[name].internal:
            return self._builtin(node, name, kids)
        return self._unknown_function(node, kids)

    def _builtin(self, node, name, kids):
        op = REGISTRY[name]
        _, static_exprs, error = self._split_call(node)
        lo, hi = op.nargs
        if error is None and not lo <= len(kids) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            error = f"`{node.func}` takes {want} argument{'s' if want != '1' else ''} but {len(kids)} " \
                    f"{'were' if len(kids) != 1 else 'was'} given"
        if error:
            self.rep.error("E103", error, node.span, help=(f"see `{node.func}` in docs/language.md",))
            return self._placeholder()
        attrs = dict(op.kwargs)
        attrs.pop("like", None)
        for key, expr in static_exprs.items():
            value = self._static(expr, key, node)
            if value is _BAD:
                return self._placeholder()
            attrs[key] = _as_default_type(value, op.kwargs.get(key))
        if name == "dropout":
            return self.gb.emit(name, [kids[0], self._dropout_mask(kids[0], attrs["p"])], attrs)
        return self.gb.emit(name, list(kids), attrs)

    def _dropout_mask(self, x, p):
        """The mask of one dropout call: a leaf value the run fills in (values.dropout_masks)."""
        masks = self.gb.g.graph.setdefault("dropout_masks", [])
        vid = f"dropout_mask{len(masks) + 1}"
        masks.append(vid)
        return self.gb.add_var(vid, "mask", self.gb.shape(x), name=vid, p=float(p), anonymous=False,
                               span=self.gb.span)

    def _static(self, expr, key, node):
        """A static argument (axis=, keepdims=, alpha=, a shape): a constant, shapes may name dims."""
        if isinstance(expr, A.Str) or key == "spec":
            if isinstance(expr, A.Str) and key == "spec":
                return expr.value
            self.rep.error("E103", f"`{node.func}` takes no string: a string is allowed only as einsum's subscripts"
                           if isinstance(expr, A.Str) else f"`{key}=` of `{node.func}` must be a string",
                           expr.span)
            return _BAD
        if key in ("shape", "k", "n"):
            return self._static_shape(expr, key)
        if isinstance(expr, (A.Num, A.Bool)) and (key not in ("axis", "axes") or whole(expr.value) is not None):
            return _static_literal(key, expr.value)  # the common `axis=0`, `keepdims=true`
        try:
            value = const_eval(expr, self.const_lookup)
        except NotConstant as err:
            self.rep.error("E103", f"`{key}=` of `{node.func}` must be a constant: {err.message}",
                           err.span or expr.span)
            return _BAD
        if key in LIST_KEYS and np.ndim(value) != 0:  # a pair of strides, pad widths: the op checks them
            return _nested_tuple(value)
        if key not in ("axis", "axes") and np.ndim(value) != 0:
            self.rep.error("E103", f"`{key}=` of `{node.func}` must be a single number", expr.span)
            return _BAD
        if key == "keepdims":
            return bool(value)
        if key in ("axis", "axes"):
            if value is None:
                return None
            arr = np.asarray(value)
            axes = [whole(a) for a in np.ravel(arr)] if arr.ndim <= 1 else [None]
            if None in axes:
                self.rep.error("E103", f"`{key}=` must be a whole number or a list of them", expr.span)
                return _BAD
            return axes[0] if arr.ndim == 0 else tuple(axes)
        return float(value)

    def _static_shape(self, expr, key):
        items = expr.elements if isinstance(expr, A.ArrayLit) else [expr]
        out = []
        for item in items:
            if isinstance(item, A.Name) and item.id in self.dims:
                out.append(Dim(item.id, self.dims[item.id]))
                continue
            try:
                value = const_eval(item, self.const_lookup)
            except NotConstant as err:
                self.rep.error("E103", f"`{key}` must be constant sizes: {err.message}", err.span or item.span)
                return _BAD
            if whole(value) is None:
                self.rep.error("E103", f"`{key}` must be whole numbers, not {value}", item.span)
                return _BAD
            out.append(Dim(None, whole(value)))
        return out[0] if key in ("k", "n") and not isinstance(expr, A.ArrayLit) else tuple(out)

    def _unknown_function(self, node, kids):
        if node.func in self.refused_defs or self.rep.full:
            return self._placeholder()
        near = suggest(node.func, list(BUILTINS) + list(self.defs))
        if near is not None and near != node.func:
            self.rep.error("E102", f"unknown function `{node.func}`", node.func_span,
                           help=(f"did you mean `{near}`?",))
            return self._placeholder()
        if node.func in INITIALISERS:
            self.rep.error("E102", f"`{node.func}()` is an initialiser, usable only in a declaration",
                           node.func_span, help=(f"declare a param: `param w : [n] = {node.func}()`",))
            return self._placeholder()
        report = self.rep.error if self.strict else self.rep.warn
        report("W002" if not self.strict else "E102",
               f"`{node.func}` is not defined: drawn as an opaque operator", node.func_span,
               help=(f"define it, e.g. `def {node.func}({', '.join('abcdefgh'[:max(1, min(len(kids), 8))])}) = ...`;"
                     " evaluation needs a definition",))
        return self.gb.emit("opaque", list(kids), {"func": node.func})

    def _inline(self, d: A.Def, node: A.Call, kids):
        """A def call inside an expression: the def must return one value."""
        if d.more:
            self.rep.error("E113", f"`{d.name}` returns {len(d.results)} values; an expression takes one",
                           node.span, notes=(f"`{d.name}` is defined at line {d.span.line}",),
                           help=(f"assign them to {len(d.results)} names: "
                                 f"`{', '.join('abcdefgh'[:len(d.results)])} = {d.name}(...)`",))
            return self._placeholder()
        return self._inline_values(d, node, kids)[0]

    def call_values(self, call, scope, count: int) -> list:
        """`a, b = f(...)`: the `count` values a def call returns (placeholders after an error)."""
        d = self.defs.get(ALIASES.get(call.func, call.func)) if isinstance(call, A.Call) else None
        if d is None or len(d.results) != count:
            what = f"`{d.name}` returns {_plural(len(d.results), 'value')}" if d is not None else \
                "only a def with `return a, b` gives several values"
            self.rep.error("E113", f"{count} names are assigned, but {what}", call.span,
                           notes=(f"`{d.name}` is defined at line {d.span.line}",) if d is not None else (),
                           help=("give as many names as the def returns values",))
            return [self._placeholder() for _ in range(count)]
        kids = [self.lower(arg, scope) for arg in self._split_call(call)[0]]
        self.gb.span = call.span
        return self._inline_values(d, call, kids)

    def _inline_values(self, d: A.Def, node: A.Call, kids) -> list:
        error = self._split_call(node)[2]
        if error:
            self.rep.error("E103", error, node.span, notes=(f"`{d.name}` is defined at line {d.span.line}",))
            return [self._placeholder() for _ in d.results]
        if len(self.gb.call) >= MAX_INLINE_DEPTH:
            self.rep.error("E105", f"defs nested more than {MAX_INLINE_DEPTH} deep", node.span)
            return [self._placeholder() for _ in d.results]
        self.calls[d.name] = self.calls.get(d.name, 0) + 1
        label = f"{d.name}#{self.calls[d.name]}"
        outer = self.gb.call, self.gb.span, self.static_vars, self.seqs, self.seq_names
        self.gb.call = outer[0] + (label,)
        self.gb.g.graph.setdefault("calls", {})[label] = {"def": d.name, "span": node.span}
        errors_before = self.rep.error_count
        scope = self._bind_params(d, kids, label)
        if self.rep.error_count > errors_before:  # arguments that do not fit would only cascade
            self.gb.call, self.gb.span = outer[0], outer[1]
            return [self._placeholder() for _ in d.results]
        # A def body sees its own names: not the caller's loop variables or sequences.
        self.static_vars, self.seqs = {}, {}
        self.seq_names = self._def_seq_names.get(d.name)
        if self.seq_names is None:
            self.seq_names = self._def_seq_names[d.name] = sequence_names(d.body)
        frame = Frame(scope, scope, self.seqs, f"{label}.")
        try:
            for stmt in d.body:
                if not isinstance(stmt, A.Assign):
                    self.body.run(stmt, frame)
                    continue
                vid = self.lower(stmt.value, scope)
                self.gb.span = stmt.span
                if stmt.name in scope:
                    scope[stmt.name] = self._dup_local(stmt)
                    continue
                scope[stmt.name] = self.gb.bind(vid, f"{label}.{stmt.name}", stmt.name, span=stmt.name_span,
                                                rename=vid not in scope.values())
            return [self.lower(result, scope) for result in d.results]
        finally:
            self.gb.call, self.gb.span, self.static_vars, self.seqs, self.seq_names = outer

    def _dup_local(self, stmt):
        self.rep.error("E104", f"`{stmt.name}` is assigned twice in this def", stmt.name_span)
        return self._placeholder()

    def _bind_params(self, d: A.Def, kids, label):
        """Check the arguments against the declared shapes; map each parameter to its node.

        In a def that calls grad, each parameter is a value of its own (an identity
        node), as in Python: `grad(a*a, a)` must differentiate with respect to `a`
        even when the call passes a literal or a dim (which grad never differentiates
        with respect to) or passes one value for two parameters (`f(x, x)`).
        """
        local_dims: dict[str, Dim] = {}
        for p, vid in zip(d.params, kids):
            shape = self.gb.shape(vid)
            if p.shape is None or shape is None:
                continue
            if len(p.shape) != len(shape):
                self._param_mismatch(d, p, vid, f"has {len(shape)} axes, not {len(p.shape)}")
                continue
            for want, got in zip(p.shape, shape):
                if want.size is not None and got.size is not None and want.size != got.size:
                    self._param_mismatch(d, p, vid, f"has size {got.size} where {want.size} is declared")
                elif want.name in self.dims and same_dim(Dim(want.name, self.dims[want.name]), got) is False:
                    self._param_mismatch(d, p, vid, f"has {got} where dim {want.name} is declared")
                elif want.name is not None and want.name not in self.dims:
                    seen = local_dims.setdefault(want.name, got)
                    if same_dim(seen, got) is False:
                        self._param_mismatch(d, p, vid, f"has {got} where {want.name} = {seen} is bound")
        if d.name not in self.differentiating:
            return {p.name: vid for p, vid in zip(d.params, kids)}
        return {p.name: self.gb.bind(vid, f"{label}.{p.name}", p.name, rename=False, span=p.span)
                for p, vid in zip(d.params, kids)}

    def _param_mismatch(self, d, p, vid, what):
        self.rep.error("E202", f"argument `{p.name}` of `{d.name}` {what}: {self.gb.label_shaped(vid)}",
                       self.gb.span,
                       notes=(f"`{d.name}` declares `{p.name}` at line {p.span.line}",))

    def _grad(self, node: A.Call, kids):
        from .autodiff import UnknownShape, gradient_node

        if len(kids) != 2 or node.kwargs or not isinstance(node.args[1], A.Name):
            self.rep.error("E103", "grad takes two arguments: grad(y, x) with x a name", node.span,
                           help=("for example `g = grad(J, W1)`",))
            return self._placeholder()
        wrt = self.gb.g.nodes[kids[1]]
        if wrt.get("dim"):
            self.rep.error("E103", f"cannot differentiate with respect to dim `{node.args[1].id}`: a dim is a "
                                   "size, fixed for the run", node.args[1].span,
                           help=("to differentiate with respect to a number, hold it in a value of its own, "
                                 "e.g. `const k = 3` or `input k : []`",))
            return self._placeholder()
        try:
            return gradient_node(self.gb, kids[0], kids[1])
        except UnknownShape:  # shapes come with the data; until then grad(y, x) has x's shape
            return self.gb.add_var(self.gb.fresh(), "intermediate", self.gb.shape(kids[1]), anonymous=True)


_BAD = object()


def _nested_tuple(value):
    """A static list argument as nested tuples of floats (hashable, like every attribute)."""
    arr = np.asarray(value, dtype=float)
    return float(arr) if arr.ndim == 0 else tuple(_nested_tuple(v) for v in arr)


def _as_default_type(value, default):
    """`padding=1` is the int 1 where the op's default is an int (stride, padding, dilation, groups),
    so pictures and equations print `padding=1`, not `padding=1.0`; other values are as given."""
    if type(default) is not int:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, tuple) and all(isinstance(v, float) and v.is_integer() for v in value):
        return tuple(int(v) for v in value)
    return value


def _static_literal(key, value):
    if key == "keepdims":
        return bool(value)
    if key in ("axis", "axes"):
        return whole(value)
    return float(value)


def _def_arguments(d: A.Def, node: A.Call):
    """A def call's argument expressions in parameter order, bound as Python binds them.

    Returns (expressions, {}, error message or None) like _call_inputs.
    """
    names = [p.name for p in d.params]
    if len(node.args) > len(names) or (not node.kwargs and len(node.args) != len(names)):
        return tuple(node.args), {}, f"`{d.name}` takes {_plural(len(names), 'argument')} but " \
                                     f"{len(node.args)} {'were' if len(node.args) != 1 else 'was'} given"
    bound = dict(zip(names, node.args))
    for kw in node.kwargs:
        if kw.name in bound:
            how = "by keyword" if kw.name not in names[:len(node.args)] else "by position and by keyword"
            return tuple(node.args), {}, f"argument `{kw.name}` of `{d.name}` is given twice ({how})"
        if kw.name not in names:
            near = suggest(kw.name, names)
            hint = f"did you mean `{near}=`?" if near else \
                f"its parameters are {', '.join(f'`{n}`' for n in names)}" if names else "it takes none"
            return tuple(node.args), {}, f"`{d.name}` has no parameter `{kw.name}`; {hint}"
        bound[kw.name] = kw.value
    missing = [n for n in names if n not in bound]
    if missing:
        return tuple(bound.values()), {}, f"`{d.name}` is missing {_plural(len(missing), 'argument')}: " + \
            ", ".join(f"`{n}`" for n in missing)
    return tuple(bound[n] for n in names), {}, None


def _plural(k: int, noun: str) -> str:
    return f"{k} {noun}{'s' if k != 1 else ''}"


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
    total = 0
    for st in program.statements:
        if isinstance(st, (A.Assign, A.ElemAssign, A.MultiAssign, A.For)):
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

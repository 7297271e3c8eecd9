"""Loops and sequences: `for t in A..B { ... }`, `h[t] = ...`, `h[t-1]`, `a, b = f(...)` targets.

The builder (build.py) hands every statement other than a plain top-level or
def-local assignment to `Body.run`. A loop is unrolled: its body's statements
are lowered once per iteration, with the loop variable a static integer
(`_Builder.static_vars`, read by constant evaluation and by `resolve`). Each
iteration's plain names live in a scope of their own (a ChainMap in front of
the enclosing one), so the cost of an iteration is the cost of lowering its
body once: no copying of scopes, no re-parsing, no recursion per iteration
(nested loops recurse once per nesting level, not per iteration).

Every node built inside a loop carries `loop`, the frames of the iterations it
sits in, outermost first: `(loop_key, var, value)`. A loop key ("for t#1") is
made once per for statement per def call (the iterations of an enclosing loop
share it); `graph.graph["loops"][key]` describes the loop.
"""
from __future__ import annotations

from collections import ChainMap
from dataclasses import dataclass, field

from . import ast as A
from .consteval import NotConstant, const_eval, whole
from .graph import source_text


@dataclass
class Sequence:
    """The elements of one sequence `h`: index tuple -> node id."""

    name: str
    arity: int  # the number of indices of every element
    span: object  # where the first element is defined
    elements: dict = field(default_factory=dict)
    spans: dict = field(default_factory=dict)  # index tuple -> (span of its definition, its loop frames)
    partial: bool = False  # built by a loop that could not be unrolled (check without a free dim's size)


@dataclass
class Frame:
    """Where a body statement runs.

    scope: the names visible (None at the top level, where the builder resolves them);
    local: where a plain assignment goes (None: the top level's `assigned`);
    seqs: the sequences of the enclosing def call or of the top level;
    prefix: the node-id prefix of the def call ("lstm#2.") and suffix of the iteration.
    """

    scope: object
    local: dict | None
    seqs: dict
    prefix: str = ""
    suffix: str = ""


def sequence_names(statements) -> set[str]:
    """The names given elements (`h[t] = ...`, `h[t], c[t] = ...`) in these statements, loops included."""
    names, stack = set(), list(statements)
    while stack:
        s = stack.pop()
        if isinstance(s, A.ElemAssign):
            names.add(s.name)
        elif isinstance(s, A.MultiAssign):
            names.update(t.value.id for t in s.targets if isinstance(t, A.Index))
        elif isinstance(s, A.For):
            stack.extend(s.body)
    return names


def fixed_dims(program: A.Program, overrides: dict) -> dict:
    """The dims whose sizes are literal numbers, as counting needs them (overrides win)."""
    sizes = {}
    for st in program.statements:
        if isinstance(st, A.DimDecl):
            for item in st.items:
                if isinstance(item.size, A.Num) and whole(item.size.value) is not None:
                    sizes[item.name] = float(item.size.value)
    sizes.update({k: float(v) for k, v in overrides.items()})
    return sizes


def trip_count(st: A.For, sizes: dict, known: dict) -> tuple[int, dict]:
    """(iterations of the loop, the loop variables known inside it)."""
    def lookup(name):
        if name.id in known or name.id in sizes:
            return known.get(name.id, sizes.get(name.id))
        raise NotConstant("unknown", name.span)
    try:
        first, last = (whole(const_eval(e, lookup)) for e in (st.first, st.last))
    except NotConstant:
        return 1, known
    if first is None or last is None:
        return 1, known
    return max(0, last - first + 1), {**known, st.var: float(first)}


def loops_waiting(graph, dim: str) -> list[str]:
    """Notes naming the loops whose range waits for the free dim `dim` (from the check build)."""
    return [f"the loop over `{info['var']}` at line {info['span'].line} needs its size"
            for info in graph.graph.get("loops", {}).values() if info.get("waits") == dim]


def element_label(name: str, key: tuple) -> str:
    """How an element is shown: `h[3]`, `h[2,5]`."""
    return f"{name}[{','.join(map(str, key))}]"


def element_node(sequences: dict, text: str) -> str | None:
    """The node of a top-level element named as the user writes it: `h[3]`, `h[2, 5]` (`--of h[3]`)."""
    name, bracket, rest = text.replace(" ", "").partition("[")
    seq = sequences.get(name)
    if seq is None or not bracket or not rest.endswith("]"):
        return None
    try:
        key = tuple(int(k) for k in rest[:-1].split(","))
    except ValueError:
        return None
    return seq.elements.get(key)


class Body:
    """Runs loops, element assignments and several-value assignments for a `_Builder`."""

    def __init__(self, builder):
        self.b = builder
        self.keys: dict = {}  # (id(for statement), def calls) -> loop key
        self.numbers: dict[str, int] = {}  # loop variable -> loops numbered so far
        self.locals: dict[str, str] = {}  # a name assigned in a loop body -> its loop key (for errors)
        self.partial = 0  # > 0 inside a loop checked once, without its size (W005)
        self.warned: set[int] = set()  # ids of the for statements warned about (once each, whatever the calls)

    # ---- statements -------------------------------------------------------------
    def run(self, stmt, frame: Frame) -> None:
        if isinstance(stmt, A.For):
            self._loop(stmt, frame)
        elif isinstance(stmt, A.ElemAssign):
            vid = self.b.lower(stmt.value, frame.scope)
            self.define(stmt.name, stmt.indices, stmt.name_span, stmt.span, vid, frame)
        elif isinstance(stmt, A.MultiAssign):
            self._multi(stmt, frame)
        elif isinstance(stmt, A.Assign):
            self._local(stmt, frame)

    def _local(self, stmt: A.Assign, frame: Frame) -> None:
        """A plain assignment inside a loop body: a name of this iteration only."""
        vid = self.b.lower(stmt.value, frame.scope)
        self.assign_name(stmt.name, stmt.name_span, stmt.span, vid, frame)

    def assign_name(self, name, name_span, span, vid, frame: Frame) -> None:
        b = self.b
        if name in b.static_vars:
            b.rep.error("E114", f"`{name}` is a loop variable: it cannot be assigned", name_span,
                        help=("a loop variable takes each value of its range in turn; give the value a new name",))
            return
        if frame.local is None:  # top level (a several-value assignment outside loops)
            b.assign_top(name, vid, span, name_span)
            return
        if name in frame.local:
            where = "loop body" if frame.suffix else "def"
            b.rep.error("E104", f"`{name}` is assigned twice in this {where}", name_span,
                        help=("every name is defined once; give this one a new name",))
            return
        if frame.suffix and (name in b.decls or name in b.dims or name in frame.scope):  # in a loop body
            b.rep.error("E104", f"`{name}` is already defined where this loop runs", name_span,
                        help=("a name is defined once; a name assigned in a loop body is new in each iteration, "
                              "so it may not reuse a name from outside the loop",))
            return
        b.gb.span = span
        frame.local[name] = b.gb.bind(vid, f"{frame.prefix}{name}{frame.suffix}", name, span=name_span)
        if frame.suffix:
            self.locals.setdefault(name, b.gb.loop[-1][0])

    def outside(self, name: A.Name) -> bool:
        """Report a read of a loop body's name outside its loop (True), else leave it to the builder."""
        key = self.locals.get(name.id)
        if key is None:
            return False
        info = self.b.gb.g.graph["loops"][key]
        span, var = info["span"], info["var"]
        self.b.rep.error("E101", f"`{name.id}` is assigned inside the loop at line {span.line}: it exists only "
                                 "in each iteration", name.span,
                         help=(f"keep one value per iteration in a sequence (`{name.id}s[{var}] = ...`) and read "
                               "the element you need",))
        return True

    # ---- several values -----------------------------------------------------------
    def _multi(self, stmt: A.MultiAssign, frame: Frame) -> None:
        b = self.b
        vids = b.call_values(stmt.value, frame.scope, len(stmt.targets))
        for target, vid in zip(stmt.targets, vids):
            if isinstance(target, A.Index):
                self.define(target.value.id, target.items, target.value.span, target.span, vid, frame)
            else:
                self.assign_name(target.id, target.span, stmt.span, vid, frame)

    # ---- sequences ------------------------------------------------------------------
    def define(self, name, indices, name_span, span, vid, frame: Frame) -> None:
        """`name[indices] = <vid>`: one element of a sequence, defined once."""
        b = self.b
        key = self._key(indices, name, "an element's index", quiet=self._waits(indices))
        seq = frame.seqs.get(name)
        if seq is None:
            seq = frame.seqs[name] = Sequence(name, len(indices), name_span)
        seq.partial = seq.partial or self.partial > 0
        if key is None:
            return
        if len(key) != seq.arity:
            self._arity_error(seq, len(key), span)
            return
        if key in seq.elements:
            first, where = seq.spans[key]
            b.rep.error("E110", f"`{element_label(name, key)}` is defined twice", span,
                        notes=(f"first defined at line {first.line}, column {first.col}{_iteration(where)}",
                               f"defined again{_iteration(b.gb.loop) or ' here'}"),
                        help=("each element of a sequence is defined once; check the loop's range "
                              "and the index expression",))
            return
        b.gb.span = span
        label = element_label(name, key)
        seq.elements[key] = b.gb.bind(vid, f"{frame.prefix}{label}", label, span=name_span)
        seq.spans[key] = (span, b.gb.loop)

    def read(self, node: A.Index, seqs: dict) -> str:
        """`h[t-1]`: the node of that element (a placeholder after an error)."""
        b = self.b
        name = node.value.id
        seq = seqs.get(name)
        if (seq is not None and seq.partial) or self._waits(node.items):  # check without a loop's size
            key = self._key(node.items, name, "an element's index", quiet=True)
            return (seq.elements.get(key) if seq is not None else None) or self._stand_in(seq, node)
        key = self._key(node.items, name, "an element's index")
        if key is None:
            return b.placeholder()
        if seq is not None and len(key) != seq.arity:
            self._arity_error(seq, len(key), node.span)
            return b.placeholder()
        vid = seq.elements.get(key) if seq is not None else None
        if vid is None:
            label = element_label(name, key)
            have = self._defined_note(seq)
            b.rep.error("E111", f"`{label}` is not defined when it is read", node.span,
                        notes=(have,) + ((f"read{_iteration(b.gb.loop)}",) if b.gb.loop else ()),
                        help=(f"define it before this line (`{label} = ...`), or read an element that exists",))
            return b.placeholder()
        return vid

    def _waits(self, items) -> bool:
        """Whether these indices wait for a free dim's size inside a loop checked once (W005)."""
        return self.partial > 0 and any(self._free_dims(i) for i in items if not isinstance(i, A.Slice))

    def _free_dims(self, expr) -> list[str]:
        """The free dims (size unknown yet) that expr names."""
        dims, loop_vars = self.b.dims, self.b.static_vars
        return [n.id for n in _names(expr) if n.id in dims and dims[n.id] is None and n.id not in loop_vars]

    def _stand_in(self, seq: Sequence | None, node: A.Index) -> str:
        """A value shaped like the sequence's last element, for a read check cannot resolve yet (`h[T]`)."""
        gb = self.b.gb
        last = seq.elements[max(seq.elements)] if seq is not None and seq.elements else None
        label = source_text(gb.source, node.span) or node.value.id
        return gb.add_var(gb.fresh(), "intermediate", gb.shape(last) if last else None, anonymous=False,
                          name=label, span=node.span, stand_in=True)

    def _key(self, items, name, what, quiet=False) -> tuple | None:
        out = []
        for item in items:
            if isinstance(item, A.Slice):
                if not quiet:
                    self.b.rep.error("E109", f"a sequence is read one element at a time: `{name}[...]` "
                                             "takes no slice", item.span,
                                     help=(f"read an element, e.g. `{name}[t]`, and slice the tensor after it: "
                                           f"`{name}[t][0:2]`",))
                return None
            value = self.static_int(item, what, quiet)
            if value is None:
                return None
            out.append(value)
        return tuple(out)

    def static_int(self, expr, what, quiet=False) -> int | None:
        """A static integer (literals, fixed dims, loop variables, arithmetic), else an E109 error."""
        try:
            value = const_eval(expr, self.b.const_lookup)
        except NotConstant as err:
            if not quiet:
                self.b.rep.error("E109", f"{what} must be a static integer: {err.message}", err.span or expr.span,
                                 help=("use integer literals, fixed dims (`dim T = 8` or --dim T=8), loop "
                                       "variables and arithmetic on them",))
            return None
        if whole(value) is None:
            if not quiet:
                self.b.rep.error("E109", f"{what} must be a whole number, not {value}", expr.span)
            return None
        return whole(value)

    def _arity_error(self, seq: Sequence, count: int, span) -> None:
        self.b.rep.error("E112", f"`{seq.name}` has {_indices(seq.arity)} per element, here {count}", span,
                         notes=(f"its first element is defined at line {seq.span.line}, column {seq.span.col}",),
                         help=("every element of one sequence takes the same number of indices; "
                               f"index the tensor after the element: `{seq.name}[t][0]`",))

    @staticmethod
    def _defined_note(seq) -> str:
        if seq is None or not seq.elements:
            return "no element of it is defined yet"
        keys = sorted(seq.elements)
        shown = ", ".join(element_label(seq.name, k) for k in keys[:3])
        if len(keys) > 4:
            shown += f", ..., {element_label(seq.name, keys[-1])}"
        elif len(keys) == 4:
            shown += f", {element_label(seq.name, keys[-1])}"
        return f"defined so far: {shown}"

    # ---- loops ------------------------------------------------------------------------
    def _loop(self, stmt: A.For, frame: Frame) -> None:
        b = self.b
        (first, free_first), (last, free_last) = (self._bound(e, which) for e, which in
                                                  ((stmt.first, "first"), (stmt.last, "last")))
        free = free_first or free_last
        if (first is None or last is None) and not free:
            return
        key = self._loop_key(stmt, first if first is not None else 0, last)
        if free:  # check without the size: the body is checked once, the sequences stay open
            b.gb.g.graph["loops"][key]["waits"] = free[2]  # the dim (values.bind_dims names the loop)
            if id(stmt) not in self.warned:
                self.warned.add(id(stmt))
                b.rep.warn("W005", f"the loop over `{stmt.var}` cannot be unrolled yet: {free[1]}", free[0],
                           help=("its body is checked once (pictures show that one iteration); eval and grad unroll "
                                 "it once the size is known (--dim, or a value that has the dim)",))
            self._iterations(stmt, frame, key, [first if first is not None else 0], partial=True)
            return
        if last < first - 1:
            b.rep.error("E115", f"the loop's range {first}..{last} runs backwards", stmt.span,
                        notes=("a range A..B is inclusive and counts up; A..A-1 is empty (no iteration)",),
                        help=(f"write {last}..{first} and index from the end if the order matters",))
            return
        self._iterations(stmt, frame, key, range(first, last + 1))

    def _bound(self, expr, which: str):
        """(the bound's value, None), or (None, (span, why)) when it waits for a free dim's size.

        Only the symbolic build (check, structure-only pictures) meets a free dim here:
        eval and grad bind every dim before building (values.bind_dims, E304).
        """
        free = self._free_dims(expr)
        if free:
            return None, (expr.span, f"dim `{free[0]}` is free: its size is known only at run time", free[0])
        return self.static_int(expr, f"a loop's {which} value"), None

    def _loop_key(self, stmt: A.For, first, last) -> str:
        b = self.b
        ident = (id(stmt), b.gb.call)
        key = self.keys.get(ident)
        loops = b.gb.g.graph.setdefault("loops", {})
        if key is None:
            self.numbers[stmt.var] = self.numbers.get(stmt.var, 0) + 1
            key = self.keys[ident] = f"for {stmt.var}#{self.numbers[stmt.var]}"
            parent = b.gb.loop[-1][0] if b.gb.loop else None
            loops[key] = {"var": stmt.var, "first": first, "last": last, "span": stmt.span,
                          "parent": parent, "call": b.gb.call}
        else:  # an inner loop whose range depends on the outer variable: its widest range
            info = loops[key]
            if (first, last) != (info["first"], info["last"]):
                info["first"] = min(info["first"], first)
                info["last"] = max(info["last"], last) if last is not None else None
                info["varying"] = True
        return key

    def _iterations(self, stmt: A.For, frame: Frame, key: str, values, partial=False) -> None:
        b = self.b
        outer_loop, outer_static = b.gb.loop, b.static_vars
        tag = key.split(" ", 1)[1]  # "t#1"
        self.partial += partial
        try:
            for value in values:
                b.static_vars = {**outer_static, stmt.var: value}
                b.gb.loop = outer_loop + ((key, stmt.var, value),)
                local: dict = {}
                inner = Frame(ChainMap(local, frame.scope if frame.scope is not None else b.assigned),
                              local, frame.seqs, frame.prefix, f"{frame.suffix}@{tag}={value}")
                errors = b.rep.error_count
                for body_stmt in stmt.body:
                    self.run(body_stmt, inner)
                if b.rep.error_count > errors:  # the next iterations would mostly repeat them
                    break
        finally:
            b.gb.loop, b.static_vars = outer_loop, outer_static
            self.partial -= partial


def _iteration(frames) -> str:
    """` in the iteration t = 2` (nested: `l = 1, t = 2`), or "" outside loops."""
    if not frames:
        return ""
    return " in the iteration " + ", ".join(f"{var} = {value}" for _, var, value in frames)


def _names(expr):
    stack, out = [expr], []
    while stack:
        node = stack.pop()
        if isinstance(node, A.Name):
            out.append(node)
        stack.extend(A.children(node))
    return out


def _indices(k: int) -> str:
    return f"{k} index" if k == 1 else f"{k} indices"

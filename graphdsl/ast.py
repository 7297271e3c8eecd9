"""The abstract syntax tree: frozen dataclasses, each node with its source span."""
from __future__ import annotations

from dataclasses import dataclass

from .diagnostics import Span


# ---- expressions -------------------------------------------------------------

@dataclass(frozen=True)
class Num:
    value: float
    span: Span


@dataclass(frozen=True)
class Bool:
    value: bool
    span: Span


@dataclass(frozen=True)
class Str:
    """A string literal: only einsum's subscripts take one."""

    value: str
    span: Span


@dataclass(frozen=True)
class Name:
    id: str
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * / @ ** < <= > >= == !=
    left: "Expr"
    right: "Expr"
    span: Span
    op_span: Span


@dataclass(frozen=True)
class UnaryOp:
    op: str  # - +
    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class Keyword:
    name: str
    value: "Expr"
    span: Span


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple["Expr", ...]
    kwargs: tuple[Keyword, ...]
    span: Span
    func_span: Span


@dataclass(frozen=True)
class Transpose:  # x.T
    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class Slice:
    start: "Expr | None"
    stop: "Expr | None"
    step: "Expr | None"
    span: Span


@dataclass(frozen=True)
class Index:  # x[0], x[:, 1], x[1:3]
    value: "Expr"
    items: tuple["Expr | Slice", ...]
    span: Span


@dataclass(frozen=True)
class ArrayLit:
    elements: tuple["Expr", ...]
    span: Span


Expr = Num | Bool | Str | Name | BinOp | UnaryOp | Call | Transpose | Index | ArrayLit


# ---- declarations and statements ---------------------------------------------

@dataclass(frozen=True)
class ShapeDim:
    """One axis of a declared shape: a dim name, a literal size, or `_` (both None)."""

    name: str | None
    size: int | None
    span: Span


@dataclass(frozen=True)
class DimItem:
    name: str
    size: "Expr | None"  # None: a free dim
    span: Span


@dataclass(frozen=True)
class DimDecl:
    items: tuple[DimItem, ...]
    span: Span


@dataclass(frozen=True)
class DeclItem:
    name: str
    shape: tuple[ShapeDim, ...] | None
    init: "Expr | None"
    span: Span
    name_span: Span


@dataclass(frozen=True)
class VarDecl:
    kind: str  # input | param | const
    items: tuple[DeclItem, ...]
    span: Span


@dataclass(frozen=True)
class Assign:
    name: str
    value: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True)
class ElemAssign:
    """`s[i] = e`, `s[i, j] = e`: defines one element of the sequence `s`."""

    name: str
    indices: tuple[Expr, ...]
    value: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True)
class MultiAssign:
    """`a, b = f(...)`, `h[t], c[t] = f(...)`: the values a def returns, one per target.

    Each target is a Name or an Index of a Name (a sequence element).
    """

    targets: tuple["Name | Index", ...]
    value: Expr
    span: Span


@dataclass(frozen=True)
class For:
    """`for var in first..last { body }`, an inclusive range of static integers."""

    var: str
    first: Expr
    last: Expr
    body: tuple["BodyStatement", ...]
    span: Span
    var_span: Span


BodyStatement = Assign | ElemAssign | MultiAssign | For


@dataclass(frozen=True)
class Param:
    name: str
    shape: tuple[ShapeDim, ...] | None
    span: Span


@dataclass(frozen=True)
class Def:
    name: str
    params: tuple[Param, ...]
    body: tuple[BodyStatement, ...]
    result: Expr  # the (first) returned value
    span: Span
    name_span: Span
    more: tuple[Expr, ...] = ()  # the further values of `return a, b`

    @property
    def results(self) -> tuple[Expr, ...]:
        return (self.result,) + self.more


@dataclass(frozen=True)
class Output:
    names: tuple["Name | Index", ...]  # an Index of a Name names a sequence element (`output h[T]`)
    span: Span


Statement = DimDecl | VarDecl | Assign | ElemAssign | MultiAssign | For | Def | Output


@dataclass(frozen=True)
class Program:
    statements: tuple[Statement, ...]


# ---- traversal -----------------------------------------------------------------

def statement_expressions(stmt) -> tuple:
    """The expressions a statement evaluates (a loop's: its bounds and its body's, all levels)."""
    out, stack = [], [stmt]
    while stack:
        s = stack.pop()
        if isinstance(s, Assign):
            out.append(s.value)
        elif isinstance(s, ElemAssign):
            out.extend((*s.indices, s.value))
        elif isinstance(s, MultiAssign):
            out.extend(i for t in s.targets if isinstance(t, Index) for i in t.items)
            out.append(s.value)
        elif isinstance(s, For):
            out.extend((s.first, s.last))
            stack.extend(reversed(s.body))
    return tuple(out)


def children(node) -> tuple:
    """The sub-expressions of an expression, in evaluation order."""
    get = _CHILDREN.get(type(node))
    return get(node) if get is not None else ()


_CHILDREN = {  # one entry per expression class; leaves (Num, Bool, Name) have none
    BinOp: lambda n: (n.left, n.right),
    UnaryOp: lambda n: (n.operand,),
    Transpose: lambda n: (n.operand,),
    Call: lambda n: tuple(n.args) + tuple(k.value for k in n.kwargs),
    Index: lambda n: (n.value,) + tuple(n.items),
    Slice: lambda n: tuple(x for x in (n.start, n.stop, n.step) if x is not None),
    ArrayLit: lambda n: tuple(n.elements),
}


def postorder(root, visit, kids=children):
    """visit(node, results_of_kids) bottom-up, with an explicit stack.

    Expressions can be 100,000 levels deep (a long `a + a + ...` line), so no
    Python recursion here.
    """
    first = kids(root)
    if not first:  # the common leaf case: a name or a number
        return visit(root, [])
    stack = [(root, len(first))]
    push, pop = stack.append, stack.pop
    for c in reversed(first):
        push((c, -1))
    results: list = []
    while stack:
        node, count = pop()
        if count < 0:  # not yet expanded
            sub = kids(node)
            if sub:
                push((node, len(sub)))
                for c in reversed(sub):  # a loop, not a generator: this runs for every node
                    push((c, -1))
                continue
            count = 0
        if count:
            args = results[-count:]
            del results[-count:]
        else:
            args = []
        results.append(visit(node, args))
    return results[-1]

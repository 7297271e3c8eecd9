"""The operator table's record type, named dims, and the shared shape rules.

One OpDef per primitive: its arity and keyword arguments, shape rule, NumPy
forward, reverse-mode rule (written with graph-building operations), display
symbol and LaTeX. Adding an operator touches one place: the family module that
registers it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

REGISTRY: dict[str, "OpDef"] = {}
# static keyword arguments that may be lists (`stride=[1, 2]`, pad widths): each op checks its own
LIST_KEYS = frozenset({"stride", "padding", "dilation", "widths"})


@dataclass(frozen=True)
class Dim:
    """One axis: its dim name (if any) and its size (None while unknown)."""

    name: str | None = None
    size: int | None = None

    def __str__(self) -> str:
        if self.name is None:
            return "?" if self.size is None else str(self.size)
        return f"{self.name}={'?' if self.size is None else self.size}"


Shape = tuple  # tuple[Dim, ...]; None stands for "unknown rank"


def fmt_shape(shape) -> str:
    if shape is None:
        return "[?]"
    return "[" + ", ".join(str(d) for d in shape) + "]"


def concrete(shape) -> tuple[int, ...] | None:
    if shape is None:
        return None
    sizes = [d.size for d in shape]  # one pass: the plan asks this for every value
    return None if None in sizes else tuple(sizes)


class UnknownShape(Exception):
    """A reverse-mode rule needs sizes that are not known yet (check time, free dims).

    The builder then defers: grad(y, x) has x's shape until the data bind the sizes.
    """


class ShapeError(Exception):
    """Raised by a shape rule; `{0}`, `{1}` in the message name the arguments."""

    def __init__(self, code: str, message: str, notes=(), help=()):
        super().__init__(message)
        self.code, self.message, self.notes, self.help = code, message, tuple(notes), tuple(help)


@dataclass(frozen=True)
class OpDef:
    name: str
    forward: Callable
    shape: Callable  # (shapes, attrs) -> Shape | None
    vjp: Callable | None = None  # (b, node) -> list of cotangent ids (None = zero)
    nargs: tuple[int, int] = (1, 1)  # min, max positional arguments
    kwargs: dict = field(default_factory=dict)  # static keyword arguments and defaults
    kw_inputs: tuple[str, ...] = ()  # keyword arguments that are graph inputs (clip lo/hi)
    symbol: str | None = None  # infix symbol, for display
    latex: str | None = None  # a str.format template over the arguments {0}, {1}, ...; literal braces doubled
    differentiable: bool = True
    elementwise: bool = False
    doc: str = ""
    variadic: bool = False  # takes a list literal as its first argument (concat, stack)
    internal: bool = False  # built by the engine, not callable from the language
    local: tuple[str, ...] = ()  # its local derivatives as a textbook writes them (y = op(a, b), g = dJ/dy):
    # the HTML viewer's hover text


def register(op: OpDef) -> OpDef:
    if op.name in REGISTRY:
        raise ValueError(f"operator {op.name} registered twice")
    REGISTRY[op.name] = op
    return op


# ---- shared shape rules --------------------------------------------------------

def same_dim(a: Dim, b: Dim) -> bool | None:
    """True/False when we can tell, None when sizes are not known yet."""
    if a.size is not None and b.size is not None:
        return a.size == b.size
    if a.name is not None and a.name == b.name:
        return True
    return None


def merge_dim(a: Dim, b: Dim) -> Dim:
    return Dim(a.name or b.name, a.size if a.size is not None else b.size)


def broadcast(*shapes):
    """NumPy broadcasting over named dims; raises ShapeError naming the axis."""
    if len(shapes) == 2:  # the common cases, without walking the axes
        a, b = shapes
        if a is None or b is None:
            return None
        if a == b or b == ():
            return a
        if a == ():
            return b
    elif None in shapes:
        return None
    out: list[Dim] = []
    rank = max((len(s) for s in shapes), default=0)
    for axis in range(-1, -rank - 1, -1):
        cur = None
        for k, s in enumerate(shapes):
            if -axis > len(s):
                continue
            d = s[axis]
            cur = d if cur is None else _broadcast_dim(cur, d, axis, k)
        out.append(cur)
    return tuple(reversed(out))


def _broadcast_dim(a: Dim, b: Dim, axis: int, k: int) -> Dim:
    if a.size == 1:
        return b
    if b.size == 1:
        return a
    if same_dim(a, b) is False:
        raise ShapeError(
            "E202",
            "shapes do not broadcast: {0} and {%d} differ in axis %d (%s against %s)" % (k, axis, a, b),
            notes=("NumPy broadcasting lines up trailing axes; each pair must be equal or 1",),
            help=("transpose or reshape one side, or add an axis of size 1 with expand_dims",),
        )
    return merge_dim(a, b)


def unary_same(shapes, attrs):
    return shapes[0]


def broadcast_rule(shapes, attrs):
    return broadcast(*shapes)


def norm_axis(axis, rank: int) -> int:
    if isinstance(axis, (list, tuple)):
        raise ShapeError("E204", f"`axis=` takes one whole number here, not the list {list(axis)}")
    axis = int(axis)
    if not -rank <= axis < max(rank, 1):
        raise ShapeError("E204", f"axis {axis} is out of range for {{0}} of rank {rank}")
    return axis % rank if rank else 0


def axes_tuple(axis, rank: int):
    """The `axis=` keyword as a sorted tuple of non-negative axes (None: all)."""
    if axis is None:
        return None
    items = axis if isinstance(axis, (list, tuple)) else [axis]
    axes = [norm_axis(a, rank) for a in items]
    if len(set(axes)) != len(axes):  # NumPy refuses a repeated axis too
        raise ShapeError("E204", f"`axis={list(items)}` names an axis of {{0}} twice")
    return tuple(sorted(axes))


def reduce_rule(shapes, attrs):
    shape = shapes[0]
    keep = bool(attrs.get("keepdims", False))
    axis = attrs.get("axis")
    if shape is None:
        return () if axis is None and not keep else None
    axes = axes_tuple(axis, len(shape))
    if axes is None:
        axes = tuple(range(len(shape)))
    if keep:
        return tuple(Dim(None, 1) if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)

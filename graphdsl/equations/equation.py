"""The result types: one Equation, and the Equations of a model with its renderings."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..diagnostics import GraphDSLError
from .expr import Sym
from .latex import format_latex
from .markdown import format_markdown
from .text import format_text


@dataclass
class Equation:
    lhs: Sym
    rhs: list  # equal forms, most explicit last: [phi(z), relu(z)]
    kind: str = "forward"  # forward | backward | local | aux
    node: str | None = None
    other: str | None = None  # for a local derivative du/dv (node v): u


@dataclass
class Equations:
    """The forward and backward equations of one model (and one scalar `of`)."""

    name: str
    of: str | None
    forward: list = field(default_factory=list)
    backward: list = field(default_factory=list)
    error: GraphDSLError | None = None  # why the backward equations are missing, if they are
    names: object = None  # the NodeNames the equations were written with (explain looks values up by them)
    target: str | None = None  # the node of `of`
    unroll: bool = False  # print every iteration of a loop (default: a loop's equations once, in terms of t)

    def roller(self, backward: bool):
        """What prints a loop's equations once (None: nothing to roll, or unrolled)."""
        if self.unroll or self.names is None or not self.names.g.graph.get("loops"):
            return None
        from .rolled import Roller

        return Roller(self.names.g, self.names, self.target, backward)

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

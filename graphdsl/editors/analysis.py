"""What an editor asks of a model's text: diagnostics, hover facts, definitions.

Plain data in and out (0-based LSP positions), so the language server is a thin
layer over it and tests need no editor. The checker is the one used by
`graphdsl check` (api.parse); nothing here re-implements a rule.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .. import ast as A
from ..diagnostics import Diagnostic, GraphDSLError, Span

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Range:
    """0-based, end exclusive, as the Language Server Protocol counts."""

    line: int
    col: int
    end_line: int
    end_col: int

    @staticmethod
    def of_span(span: Span | None, length: int | None = None) -> "Range":
        if span is None:  # a whole-model problem: the first character
            return Range(0, 0, 0, 1)
        if length is not None:
            return Range(span.line - 1, span.col - 1, span.line - 1, span.col - 1 + length)
        return Range(span.line - 1, span.col - 1, span.end_line - 1, span.end_col - 1)


class Analysis:
    """One version of a document, checked once; answers every later question."""

    def __init__(self, text: str, name: str = "<editor>"):
        from ..api import parse

        self.text = text
        self.model = None
        try:
            self.model = parse(text, name)
            self.diagnostics: list[Diagnostic] = list(self.model.warnings)
        except GraphDSLError as err:
            self.diagnostics = list(err.diagnostics)
        self.definitions = _definitions(self.model.program) if self.model else {}

    # ---- questions -------------------------------------------------------------
    def word_at(self, line: int, col: int) -> str | None:
        lines = self.text.split("\n")
        if not 0 <= line < len(lines):
            return None
        for m in _WORD.finditer(lines[line]):
            if m.start() <= col <= m.end() and not m.group()[0].isdigit():
                return m.group()
        return None

    def hover(self, line: int, col: int) -> str | None:
        """A markdown line about the name under the cursor: its kind, shape and dims."""
        name = self.word_at(line, col)
        if name is None or self.model is None:
            return None
        built = self.model.built
        from ..ops import fmt_shape

        if name in built.dims and name not in built.decls and name not in built.assigned:
            size = built.dims[name]
            return f"`dim {name}`" + (f" = {size}" if size is not None else " (free: bound from the data)")
        node = built.assigned.get(name) or (name if name in built.decls else None)
        if node is not None and node in self.model.graph.nodes:
            kind = built.decls[name].kind if name in built.decls else "value"
            shape = self.model.graph.nodes[node].get("shape")
            # fmt_shape names each axis with its size (`[m=5, d=4]`): shape and dims at once.
            return f"`{kind} {name} : {fmt_shape(shape)}`"
        if name in built.defs:
            return f"`def {name}`"
        return None

    def definition(self, line: int, col: int) -> Range | None:
        name = self.word_at(line, col)
        return self.definitions.get(name) if name else None


def _definitions(program: A.Program) -> dict[str, Range]:
    """Where each dim, declared value, assigned name and def is introduced (first wins)."""
    found: dict[str, Range] = {}
    statements = list(program.statements)
    for stmt in statements:  # grows by the bodies of loops, in order after their loop
        if isinstance(stmt, A.For):
            statements.extend(stmt.body)
            pairs = [(stmt.var, stmt.var_span)]
        elif isinstance(stmt, A.ElemAssign):
            pairs = [(stmt.name, stmt.name_span)]
        elif isinstance(stmt, A.MultiAssign):
            pairs = [(t.id, t.span) if isinstance(t, A.Name) else (t.value.id, t.value.span) for t in stmt.targets]
        elif isinstance(stmt, A.DimDecl):
            pairs = [(item.name, item.span) for item in stmt.items]
        elif isinstance(stmt, A.VarDecl):
            pairs = [(item.name, item.name_span) for item in stmt.items]
        elif isinstance(stmt, (A.Assign, A.Def)):
            pairs = [(stmt.name, stmt.name_span)]
        else:
            pairs = []
        for name, span in pairs:
            found.setdefault(name, Range.of_span(span, len(name)))
    return found

"""A model at a glance, as torchinfo prints one: inputs, params, counts, outputs.

What `repr(model)` and a notebook's `_repr_html_` show. Read from the checked
symbolic graph, so a free dim (`dim b`) shows as `b` and counts only what
is known; params almost always have fixed sizes.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass

from .ops import fmt_shape
from .textcols import aligned


@dataclass(frozen=True)
class Row:
    name: str
    kind: str  # input | param | const | output
    shape: str
    count: int | None  # elements; None while a dim is free


@dataclass(frozen=True)
class ModelSummary:
    title: str
    rows: tuple[Row, ...]

    @property
    def param_count(self) -> int | None:
        counts = [r.count for r in self.rows if r.kind == "param"]
        return None if None in counts else sum(counts)

    def table(self) -> list[tuple[str, str, str, str]]:
        return [(r.name, r.kind, r.shape, _count(r.count)) for r in self.rows]

    def text(self) -> str:
        head, *body = aligned([("name", "kind", "shape", "elements"), *self.table()], right=(3,))
        rule = "=" * len(head)  # the counts are right-aligned: the header line is full width
        total = f"total params: {_count(self.param_count)}"
        return "\n".join([f"graphdsl model {self.title}", rule, head, "-" * len(rule), *body, rule, total])

    def html(self) -> str:
        cells = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row[:3])
            + f'<td style="text-align:right">{html.escape(row[3])}</td></tr>' for row in self.table())
        return (f"<div><b>graphdsl model</b> <code>{html.escape(self.title)}</code>"
                "<table><thead><tr><th>name</th><th>kind</th><th>shape</th><th>elements</th></tr></thead>"
                f"<tbody>{cells}</tbody>"
                f'<tfoot><tr><td colspan="3"><b>total params</b></td>'
                f'<td style="text-align:right"><b>{_count(self.param_count)}</b></td></tr></tfoot>'
                "</table></div>")


def _count(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def summarize(model) -> ModelSummary:
    graph, built = model.graph, model.built
    rows = []
    for kind in ("input", "param", "const"):
        for name, decl in built.decls.items():
            if decl.kind == kind:
                rows.append(_row(name, kind, graph.nodes[name].get("shape")))
    for node in built.outputs:
        rows.append(_row(graph.nodes[node].get("name") or node, "output", graph.nodes[node].get("shape")))
    return ModelSummary(model.source.name, tuple(rows))


def _row(name: str, kind: str, shape) -> Row:
    known = shape is not None and all(d.size is not None for d in shape)
    return Row(name, kind, fmt_shape(shape), math.prod(d.size for d in shape) if known else None)

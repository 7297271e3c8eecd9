"""Aligned text columns: the CLI's result tables and the model summary (`repr(model)`)."""
from __future__ import annotations


def aligned(rows, right=()) -> list[str]:
    """Each row (a sequence of cells) as one line: columns two spaces apart, padded to their widest
    cell (left-aligned, or right-aligned for the column indices in `right`), no trailing spaces."""
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []
    return ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
            for row in rows]

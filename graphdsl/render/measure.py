"""How readable a drawn SVG is where people look at it: the smallest text, in pixels, in a cell.

Jupyter, VS Code and GitHub show an SVG at its own size (Graphviz sizes it in
points, 1 pt = 4/3 px) unless it is wider than the cell, which scales it down
to the cell's width. The smallest text is then the smallest font size times
that scale.
"""
from __future__ import annotations

import re

CELL_PX = 900  # a notebook cell, a README column
READABLE_PX = 8.0
PX_PER_PT = 4 / 3

_SVG_TAG = re.compile(r"<svg\b[^>]*>", re.S)
_NUM = r"([-\d.eE+]+)"


def _attr(tag: str, name: str) -> str | None:
    m = re.search(r'\s' + name + r'="([^"]*)"', tag)
    return m.group(1) if m else None


def svg_box(svg: str) -> tuple[float, float, float]:
    """(width in pt, height in pt, SVG user units per pt) of a Graphviz SVG."""
    tag = _SVG_TAG.search(svg).group(0)
    width = float(re.match(_NUM, _attr(tag, "width")).group(1))
    height = float(re.match(_NUM, _attr(tag, "height")).group(1))
    view = _attr(tag, "viewBox")
    units = float(view.split()[2]) / width if view else 1.0
    return width, height, units


def _graph_scale(svg: str) -> float:
    """Graphviz scales its top group when a size is set (`transform="scale(s s) ..."`)."""
    m = re.search(r'<g id="graph0"[^>]*transform="scale\(' + _NUM, svg)
    return float(m.group(1)) if m else 1.0


def font_sizes(svg: str) -> list[float]:
    return [float(s) for s in re.findall(r'<text\b[^>]*\sfont-size="' + _NUM + '"', svg)]


def display_scale(svg: str, cell_px: float = CELL_PX) -> float:
    """Pixels on screen per SVG font unit, with the picture fit to a cell of cell_px."""
    width, _, units = svg_box(svg)
    shown_px = min(width * PX_PER_PT, cell_px)
    return shown_px / (width * units) * _graph_scale(svg)


def smallest_text_px(svg: str, cell_px: float = CELL_PX) -> float:
    sizes = font_sizes(svg)
    return min(sizes) * display_scale(svg, cell_px) if sizes else float("inf")

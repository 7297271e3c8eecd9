"""A rendering in a notebook: the interactive viewer in a sandboxed iframe, sized to the cell.

The viewer page goes in the iframe's `srcdoc`, so its ids, styles and script
cannot collide with the notebook's or with another rendering's (several renders
in one notebook each get their own document); `sandbox="allow-scripts"` runs its
script without the notebook's origin, and the page's own Content-Security-Policy
forbids any network access.
"""
from __future__ import annotations

import html
import uuid

from .measure import CELL_PX, PX_PER_PT, svg_box

HEADER_PX = 44  # the viewer's title bar
PANEL_SHARE = 0.3  # in a cell-wide viewer the hover panel takes this share of the height, below the picture
MIN_PX, MAX_PX = 320, 760


def frame_height(svg: str) -> int:
    """Tall enough for the picture fit to the cell's width, within bounds a notebook can show."""
    width, height, _ = svg_box(svg)
    shown = height * min(PX_PER_PT, CELL_PX / width) if width else MIN_PX
    return int(max(MIN_PX, min(MAX_PX, HEADER_PX + shown / (1 - PANEL_SHARE))))


def iframe(page: str, svg: str, title: str) -> str:
    ident = "graphdsl-" + uuid.uuid4().hex[:12]
    return (f'<iframe id="{ident}" class="graphdsl-render" title="{html.escape(title, quote=True)}" '
            f'sandbox="allow-scripts" srcdoc="{html.escape(page, quote=True)}" '
            f'style="width: 100%; height: {frame_height(svg)}px; border: 1px solid #ddd;"></iframe>')

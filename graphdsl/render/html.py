"""One self-contained HTML file: the SVG inline, pan and zoom, hover for full values, search.

No network: no CDN, no fonts or scripts fetched; the data for the hover panel
is a JSON block in the page, escaped so that no value or name can close it.
When the picture was drawn with def calls as blocks, the page also holds the
expanded picture, and clicking a block (or "expand blocks") switches to it;
clicking a cluster's title folds it in place. Arrow keys follow edges.
"""
from __future__ import annotations

import json
import re

from .labels import esc_html
from .viewer import TEMPLATE as _TEMPLATE

_PROLOG = re.compile(r"^\s*(<\?xml[^>]*\?>\s*|<!DOCTYPE[^>]*>\s*|<!--.*?-->\s*)*", re.S)


def inline_svg(svg: bytes | str) -> str:
    """The <svg> element alone, sized to its container."""
    text = svg.decode("utf-8") if isinstance(svg, bytes) else svg
    text = _PROLOG.sub("", text)
    text = re.sub(r'<svg\b([^>]*?)\swidth="[^"]*"', r'<svg\1 width="100%"', text, count=1, flags=re.S)
    text = re.sub(r'<svg\b([^>]*?)\sheight="[^"]*"', r'<svg\1 height="100%"', text, count=1, flags=re.S)
    return text


def script_json(data) -> str:
    """JSON safe inside <script>: no `</script>`, no `<!--`, no line separators."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, sort_keys=False)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def page(svg: bytes | str, nodes: dict, title: str, subtitle: str = "", expanded=None) -> str:
    """nodes: DOT node name -> {"title", "kind", "role", "shape", "value", "grad", ...} (all plain text).
    expanded: (svg, nodes) of the same graph with every block expanded, or None."""
    data = {"main": nodes, "expanded": expanded[1] if expanded else None}
    fills = {"TITLE": esc_html(title), "SUBTITLE": esc_html(subtitle), "DATA": script_json(data),
             "SVG": inline_svg(svg), "EXPANDED": inline_svg(expanded[0]) if expanded else "",
             "TOGGLE": "" if expanded else " hidden"}
    return fill(_TEMPLATE, fills)


_SLOT = re.compile(r"%%([A-Z]+)%%")


def fill(template: str, fills: dict) -> str:
    """Every %%NAME%% slot of the template replaced in one pass, so that text put in one slot (a file
    named `%%SVG%%.gdsl`) is never read again as a slot."""
    return _SLOT.sub(lambda m: fills[m.group(1)], template)



"""Small pure functions that turn one node (and its value and gradient) into label text.

Labels are plain Graphviz labels (records for variables), not HTML-like labels:
the embedded WebAssembly Graphviz is built without HTML-label support, and the
same DOT must draw the same picture on both backends. Every piece of text passes
through `esc_text` (or `esc_record` inside records) and then `dot_string`, so
names, source text and file names with `< > & " | { } \\` or any unicode are
drawn as written. `esc_html` is for the HTML viewer.
"""
from __future__ import annotations

import math
import re

import numpy as np

from ..ops import REGISTRY, fmt_shape

FULL_MAX_SIZE = 9  # arrays up to about 3x3 are shown in full
FULL_MAX_AXIS = 4
TEXT_LIMIT = 36  # characters of an anonymous expression's source text on a node

# operator symbols as drawn (the registry's symbols are ASCII for the parser's sake)
SYMBOLS = {"add": "+", "sub": "−", "mul": "×", "div": "÷", "pow": "**", "matmul": "@", "neg": "−",
           "lt": "<", "le": "≤", "gt": ">", "ge": "≥", "eq": "=", "ne": "≠", "identity": "=",
           "transpose": "ᵀ"}

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACE = re.compile(r"\s+")
_SPACE_CTRL = re.compile(r"[\t\r\n]")


# ---- escaping -----------------------------------------------------------------------------

def esc_html(text) -> str:
    """Text for a Graphviz HTML-like label (and for HTML/XML)."""
    text = _CONTROL.sub("", str(text))
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def esc_text(text) -> str:
    """Literal text inside an escString label: `\\` doubled, `&` as `&amp;` (Graphviz decodes entities)."""
    text = _SPACE_CTRL.sub(" ", _CONTROL.sub("", str(text)))
    return text.replace("\\", "\\\\").replace("&", "&amp;")


_RECORD_SPECIAL = re.compile(r"([{}|<> ])")


def esc_record(text) -> str:
    """Literal text inside a record field: also `{ } | < >` and spaces (else they separate fields)."""
    return _RECORD_SPECIAL.sub(r"\\\1", esc_text(text))


def dot_string(label: str) -> str:
    """A label value (escapes already applied) as a DOT double-quoted string."""
    return '"' + label.replace('"', '\\"') + '"'


def esc_quoted(text) -> str:
    """The inside of a DOT double-quoted string used as an escString (label, tooltip, id).

    Backslashes are doubled (so `\\N`, `\\l` in a name stay literal), quotes escaped,
    newlines become `\\n`, and `&` becomes `&amp;` (Graphviz decodes entities in labels).
    """
    text = _CONTROL.sub("", str(text))
    return (text.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")
            .replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n"))


def quote_id(text) -> str:
    """A DOT ID, always quoted. IDs are not escStrings: only the quote needs escaping."""
    text = _CONTROL.sub("", str(text)).replace("\n", " ")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def one_line(text, limit: int = TEXT_LIMIT) -> str:
    """Source text on one line, whitespace collapsed, cut with an ellipsis."""
    text = _SPACE.sub(" ", _CONTROL.sub("", str(text))).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# ---- numbers ------------------------------------------------------------------------------

def fmt_number(v: float, precision: int) -> str:
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Inf" if v > 0 else "-Inf"
    text = f"{v + 0.0:.{precision}g}"  # + 0.0 turns -0.0 into 0.0
    return text


def is_full(arr: np.ndarray) -> bool:
    return arr.ndim <= 2 and arr.size <= FULL_MAX_SIZE and all(s <= FULL_MAX_AXIS for s in arr.shape)


def value_lines(value, precision: int) -> list[tuple[str, bool]]:
    """A value as lines of text, each with a flag `bad` (holds NaN/Inf): in full when small, else a summary."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        text = fmt_number(arr, precision)
        return [(text, not math.isfinite(float(arr)))]
    if arr.size == 0:
        return [("(empty)", False)]
    if is_full(arr):
        rows = arr.reshape(1, -1) if arr.ndim == 1 else arr
        cells = [[fmt_number(v, precision) for v in row] for row in rows]
        width = max(len(c) for row in cells for c in row)
        lines = []
        for row, texts in zip(rows, cells):
            line = "[" + " ".join(t.rjust(width) for t in texts) + "]"
            lines.append((line, not bool(np.all(np.isfinite(row)))))
        return lines
    return summary_lines(arr, precision)


def summary_lines(arr: np.ndarray, precision: int) -> list[tuple[str, bool]]:
    finite = arr[np.isfinite(arr)]
    lines = []
    if finite.size == arr.size and not np.any(arr):
        lines.append(("all 0", False))
    elif finite.size:
        lines.append((f"min {fmt_number(finite.min(), precision)}  max {fmt_number(finite.max(), precision)}",
                      False))
        lines.append((f"mean {fmt_number(finite.mean(), precision)}  "
                      f"norm {fmt_number(np.linalg.norm(finite), precision)}", False))
    if finite.size < arr.size:
        lines.append((nonfinite_text(arr), True))
    return lines


def nonfinite_text(arr: np.ndarray) -> str:
    """`2 NaN, 1 Inf of 10`"""
    nan = int(np.isnan(arr).sum())
    inf = int(np.isinf(arr).sum())
    parts = ([f"{nan} NaN"] if nan else []) + ([f"{inf} Inf"] if inf else [])
    return ", ".join(parts) + f" of {arr.size}"


def summary_line(value, precision: int) -> tuple[str, bool]:
    """A value on one line (text, holds NaN/Inf): in full up to 4 elements, else its range."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return fmt_number(arr, precision), not math.isfinite(float(arr))
    if arr.size == 0:
        return "(empty)", False
    finite = arr[np.isfinite(arr)]
    bad = finite.size < arr.size
    if arr.size <= 4 and arr.ndim == 1 or arr.size == 1:
        return "[" + " ".join(fmt_number(v, precision) for v in arr.reshape(-1)) + "]", bad
    if bad:
        nonfinite = nonfinite_text(arr)
        return (nonfinite if not finite.size else
                f"{nonfinite}, rest in [{fmt_number(finite.min(), precision)}, "
                f"{fmt_number(finite.max(), precision)}]"), True
    lo, hi = finite.min(), finite.max()
    if lo == hi:
        return f"all {fmt_number(lo, precision)}", False
    return f"in [{fmt_number(lo, precision)}, {fmt_number(hi, precision)}]", False


def value_text(value, precision: int = 6, threshold: int = 400) -> str:
    """A value in plain text for hover panels and tooltips: in full up to `threshold` elements."""
    arr = np.asarray(value, dtype=np.float64)
    with np.printoptions(precision=precision, threshold=threshold, edgeitems=4, linewidth=100,
                         suppress=False, floatmode="maxprec"):
        text = np.array2string(arr + 0.0, separator=", ")
    if arr.size > threshold or not np.all(np.isfinite(arr)):
        extra = " ".join(t for t, _ in summary_lines(arr.reshape(-1), precision))
        text += f"\n{list(arr.shape)}: {extra}"
    return text


# ---- nodes ---------------------------------------------------------------------------------

def var_title(vid: str, data: dict) -> str:
    """The name shown first on a variable: the user's name, else its source text, else its id."""
    if data.get("name") and not data.get("anonymous"):
        return data["name"]
    if data.get("text"):
        return one_line(data["text"])
    return vid


def is_literal(data: dict) -> bool:
    """An anonymous number in the source (`0.5`, `2`): drawn as a small box with its value."""
    return data.get("role") == "const" and bool(data.get("anonymous")) and np.ndim(data.get("value", 0)) == 0 \
        and data.get("value") is not None


def literal_label(data: dict, precision: int) -> str:
    return fmt_number(data["value"], precision)


def shape_text(data: dict) -> str:
    return fmt_shape(data.get("shape"))


def op_symbol(data: dict) -> str:
    """An operator's circle text (plain)."""
    name = data.get("op", "?")
    if name == "opaque":
        return str(data.get("attrs", {}).get("func") or "?")
    if name in SYMBOLS:
        return SYMBOLS[name]
    symbol = REGISTRY[name].symbol if name in REGISTRY else None
    return symbol or name


def op_detail(data: dict) -> str:
    """Non-default static arguments (`axis=0`), or '' ."""
    name = data.get("op")
    if name == "opaque":
        return "undefined"
    opdef = REGISTRY.get(name)
    defaults = opdef.kwargs if opdef else {}
    parts = []
    for key, value in sorted((data.get("attrs") or {}).items()):
        if key in ("like",) or value is None or value is False or defaults.get(key, object()) == value:
            continue
        if hasattr(value, "name") and hasattr(value, "size"):  # a Dim
            value = value.size if value.size is not None else value.name
        elif isinstance(value, tuple) and value and hasattr(value[0], "size"):
            value = [d.size if d.size is not None else d.name for d in value]
        parts.append(f"{key}={one_line(source_text(value), 18)}")
    return ", ".join(parts)


def source_text(value) -> str:
    """A static argument as the language writes it: `true`, `[0, 1]`, `0.5`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(source_text(v) for v in value) + "]"
    return str(value)


def _field(lines) -> str:
    """Lines of one record field: (text, justification) with justification "l" or "n" (centred)."""
    return "".join(esc_record(text) + ("\\l" if how == "l" else "\\n") for text, how in lines)


def record(fields, rankdir: str = "LR") -> str:
    """A record label of stacked fields. In LR/RL layouts top-level fields stack vertically."""
    body = "|".join(_field(f) for f in fields if f)
    return body if rankdir in ("LR", "RL") else "{" + body + "}"


def prefixed(prefix: str, lines) -> list[tuple[str, str]]:
    """`prefix` before the first line, the others indented under it (matrices stay aligned)."""
    pad = " " * len(prefix)
    return [((prefix if k == 0 else pad) + text, "l") for k, (text, _) in enumerate(lines)]


def var_fields(vid: str, data: dict, *, role_text: str, value=None, grad=None, grad_label: str | None = None,
               show_value: bool = False, show_grad: bool = False, precision: int = 4,
               extra: str | None = None, detail: str = "full", title: str | None = None) -> tuple[list, bool]:
    """The fields of a variable's record, and whether any value shown holds NaN/Inf.

    value/grad: arrays, or None for "not computed" (drawn as "—" when show_grad).
    detail: "full" draws small arrays in full; "summary" one line each (full arrays on hover).
    title: what the node is called, if not its name or source text (backward values).
    """
    if detail == "summary":
        return _summary_fields(title or var_title(vid, data), data, role_text, value, grad, grad_label, show_value,
                               show_grad, precision, extra)
    named = bool(data.get("name")) and not data.get("anonymous") or title is not None
    title = title or var_title(vid, data)
    sub = role_text
    if not named and title != vid:
        sub = f"{vid} {role_text}".strip()
    head = [(title, "n"), ((sub + " " if sub else "") + shape_text(data), "n")]
    if extra:
        head.append((extra, "n"))
    fields = [head]
    bad = False
    if show_value and value is not None:
        lines = value_lines(value, precision)
        bad = bad or any(b for _, b in lines)
        fields.append(prefixed("= ", lines))
    if show_grad:
        lines = value_lines(grad, precision) if grad is not None else [("—", False)]
        bad = bad or any(b for _, b in lines)
        fields.append(prefixed(f"{grad_label or 'grad'} = ", lines))
    return fields, bad


def _summary_fields(title, data, role_text, value, grad, grad_label, show_value, show_grad, precision, extra):
    """Name, role and shape on one line; the value and the gradient on one line each."""
    head = [(" ".join(x for x in (title, role_text, shape_text(data)) if x), "n")]
    if extra:
        head.append((extra, "n"))
    fields, bad = [head], False
    if show_value and value is not None:
        text, bad_value = summary_line(value, precision)
        fields.append([("= " + text, "l")])
        bad = bad or bad_value
    if show_grad:
        text, bad_grad = summary_line(grad, precision) if grad is not None else ("—", False)
        fields.append([(f"{grad_label or 'grad'} = {text}", "l")])
        bad = bad or bad_grad
    return fields, bad


GRAD_TEXT_LIMIT = 28


def unwrapped(text: str) -> str:
    """`(o - y)` without its outer parentheses, when they enclose the whole text."""
    if not (text.startswith("(") and text.endswith(")")):
        return text
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and i < len(text) - 1:
            return text
    return text[1:-1]


def grad_name(of_name: str, vid: str, data: dict, limit: int = GRAD_TEXT_LIMIT) -> str:
    """dJ/dh for a named value, dJ/d(o - y) for a short expression, else dJ/d(…) (never a generated id)."""
    if data.get("name") and not data.get("anonymous"):
        return f"d{of_name}/d{data['name']}"
    text = one_line(data.get("text") or "", 200)
    if text and len(text) <= limit:
        return f"d{of_name}/d({unwrapped(text)})"
    if data.get("role") == "const" and data.get("value") is not None and np.ndim(data["value"]) == 0:
        return f"d{of_name}/d({fmt_number(data['value'], 4)})"
    return f"d{of_name}/d(…)"

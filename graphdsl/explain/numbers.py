"""Numbers as the walkthrough prints them: one precision everywhere, arrays in full or summarised.

Nine significant digits: enough to check every step by hand and to read off the
published numbers of the worked examples (Mazur's E = 0.298371109), and the
same in text, Markdown, LaTeX and the player.
"""
from __future__ import annotations

import math

import numpy as np

DIGITS = 9
FULL_LIMIT = 24  # arrays with at most this many elements (and at most 2 axes) are shown in full


def num(v) -> str:
    """A scalar: 0.549833997, -0.0281, 1.5e-10."""
    v = float(v)
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    text = f"{v:.{DIGITS}g}"
    return "0" if text == "-0" else text


def tex_num(v) -> str:
    text = num(v)
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa} \\times 10^{{{int(exponent)}}}"
    return {"inf": r"\infty", "-inf": r"-\infty", "nan": r"\mathrm{NaN}"}.get(text, text)



def shown_in_full(value) -> bool:
    arr = np.asarray(value)
    return arr.ndim <= 2 and arr.size <= FULL_LIMIT


def summary_parts(value) -> list[tuple[str, float]]:
    """(label, number) pairs describing a large array: min, mean, max and the 2-norm."""
    arr = np.asarray(value, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    if not finite.size:
        return []
    mean = finite.mean()
    # A mean within the sum's rounding error of zero is noise that changes with the machine's
    # summation order (SIMD width): show it as 0 so the same model prints the same numbers.
    if abs(mean) <= finite.size * np.finfo(np.float64).eps * np.abs(finite).max():
        mean = 0.0
    return [("min", finite.min()), ("mean", mean), ("max", finite.max()),
            ("norm", float(np.linalg.norm(finite)))]


def shape_of(value) -> str:
    return "[" + ", ".join(str(s) for s in np.shape(value)) + "]"


def text_value(value, indent: str = "") -> str:
    """A value as text: a number, a vector on one line, a small matrix row by row, else a summary."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return num(arr)
    if not shown_in_full(arr):
        stats = ", ".join(f"{k} {num(v)}" for k, v in summary_parts(arr)) or "no finite values"
        return f"{shape_of(arr)} array: {stats}"
    if arr.ndim == 1:
        return _row(arr)
    rows = [_row(r) for r in arr]
    if len(rows) <= 1:
        return "[" + "".join(rows) + "]"
    return "[" + (",\n" + indent + " ").join(rows) + "]"


def _row(arr) -> str:
    return "[" + ", ".join(num(x) for x in arr) + "]"


def tex_value(value) -> str:
    """A value in LaTeX: a number, a bmatrix (vectors as columns), or a summary."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return tex_num(arr)
    if not shown_in_full(arr):
        stats = r",\ ".join(rf"\mathrm{{{k}}}\ {tex_num(v)}" for k, v in summary_parts(arr))
        return r"\mathrm{array}_{" + r" \times ".join(map(str, arr.shape)) + r"}\left(" + stats + r"\right)"
    if arr.ndim == 1 and arr.size > 4:  # a long vector lies down: its transpose, as a row
        return tex_value(arr.reshape(1, -1)) + r"^\top"
    rows = arr.reshape(-1, 1) if arr.ndim == 1 else arr
    body = r" \\ ".join(" & ".join(tex_num(x) for x in r) for r in rows)
    return r"\begin{bmatrix} " + body + r" \end{bmatrix}"

"""Syntax errors that come from NumPy and PyTorch habits, answered in graphdsl's spelling.

`np.dot(W, x)`, `torch.relu(z)`, `F.softmax(o, dim=0)`, `W.dot(x)`, `x.sum()`:
each would otherwise be reported as a generic "expected an operator". These
checks run first among syntax.py's checks on an unexpected token; each takes
(token, previous token, expected terminals, open brackets, text) and returns a
Diagnostic or None.
"""
from __future__ import annotations

import re

from .diagnostics import Diagnostic, Span, suggest

# Prefixes of array libraries' functions: graphdsl calls its builtins bare.
MODULES = {"np": "NumPy", "numpy": "NumPy", "torch": "PyTorch", "F": "PyTorch", "nn": "PyTorch",
           "jnp": "JAX", "jax": "JAX", "tf": "TensorFlow", "math": "Python's math", "scipy": "SciPy"}
# Method or function names that graphdsl spells another way.
RESPELLED = {"mm": "matmul", "bmm": "matmul", "t": "T", "transpose": "T", "permute": "T",
             "clamp": "clip", "clip_by_value": "clip", "pow": "**", "square": "** 2",
             "reduce_sum": "sum", "reduce_mean": "mean", "norm": "sqrt(sqnorm(...))"}

_DIM_KEYWORD = re.compile(r"(?<!\w)dim(\s*)=(?!=)")
_RECEIVER = re.compile(r"(?:([^\W\d]\w*)|(\)|\]))\s*\.\s*$")


def check_dim_keyword(tok, prev, exp, stack, text) -> Diagnostic | None:
    """`softmax(o, dim=0)`: PyTorch's `dim=` where graphdsl writes `axis=`."""
    if tok.type != "DIM" or not stack or stack[-1].type != "LPAR":
        return None
    rest = text[tok.end_pos:tok.end_pos + 64].lstrip(" \t")
    if not rest.startswith("=") or rest.startswith("=="):
        return None
    call = _call_text(text, stack[-1].start_pos)
    example = _callee(text, stack[-1].start_pos) + _DIM_KEYWORD.sub(r"axis\1=", call) if call else "softmax(o, axis=0)"
    return _error("E005", "`dim` is a reserved word: graphdsl names the axis argument `axis=`", _tspan(tok),
                  help=(f"write `axis=` (NumPy's spelling): `{example}`",))


def check_foreign_call(tok, prev, exp, stack, text) -> Diagnostic | None:
    """`np.dot(a, b)`, `torch.relu(z)`, `W.dot(x)`, `x.sum()`: a call after a `.`."""
    if tok.type != "LPAR" or prev is None or prev.type != "NAME":
        return None
    before = _RECEIVER.search(text, 0, prev.start_pos)
    if before is None:
        return None
    func, args = prev.value, _call_text(text, tok.start_pos)
    inner = args[1:-1].strip() if args else "..."
    start = before.start()
    span = _span(text, start, tok.start_pos)
    receiver = before.group(1)
    if receiver in MODULES:
        return _module_call(receiver, func, inner, span)
    shown = receiver or "(...)"
    return _method_call(shown, func, inner, span)


def _module_call(module: str, func: str, inner: str, span: Span) -> Diagnostic:
    library = MODULES[module]
    message = f"`{module}.{func}` is {library} spelling: graphdsl calls its builtins without a prefix"
    return _error("E003", message, span, help=(_bare(func, inner),))


def _method_call(receiver: str, func: str, inner: str, span: Span) -> Diagnostic:
    message = f"`{receiver}.{func}(...)` is a method call: graphdsl has functions, not methods"
    if func in ("dot", "matmul", "mm"):
        help = f"write `{receiver} @ {inner}` (or `dot({receiver}, {inner})`)"
    elif RESPELLED.get(func) == "T":
        help = f"write `{receiver}.T` to transpose"
    else:
        args = f"{receiver}, {inner}" if inner else receiver
        help = _bare(func, args)
    return _error("E003", message, span, help=(help,))


def _bare(func: str, inner: str) -> str:
    from .ops import BUILTINS

    name = RESPELLED.get(func, func)
    if name == "T":
        return f"transpose with `.T`: `{inner.split(',')[0].strip() or 'W'}.T`"
    if name.startswith("*"):
        return f"use the operator: `{inner.split(',')[0].strip()} {name}`"
    if name in BUILTINS:
        return f"write `{name}({inner})`"
    near = suggest(func, BUILTINS)
    if near:
        return f"write `{near}({inner})`, the closest builtin"
    return f"graphdsl has no builtin `{func}`; define it with `def {func}(...) = ...` (see the language reference)"


# ---- text helpers ------------------------------------------------------------------

def _call_text(text: str, lpar: int) -> str:
    """`(a, b)` from the `(` at `lpar` to its matching `)`; '' when it is not closed on the line."""
    depth = 0
    for i in range(lpar, min(len(text), lpar + 400)):
        ch = text[i]
        if ch == "\n" and depth <= 1 and text[lpar:i].count("(") == text[lpar:i].count(")"):
            break
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth == 0:
                return text[lpar:i + 1]
    return ""


def _callee(text: str, lpar: int) -> str:
    m = re.search(r"[\w.]*$", text[max(0, lpar - 64):lpar])
    return m.group() if m else ""


def _span(text: str, start: int, end: int) -> Span:
    line = text.count("\n", 0, start) + 1
    col = start - (text.rfind("\n", 0, start) + 1) + 1
    return Span(start, end, line, col, line, col + (end - start))


def _tspan(tok) -> Span:
    return Span(tok.start_pos, tok.end_pos, tok.line, tok.column, tok.end_line, tok.end_column)


def _error(code: str, message: str, span: Span, help=()) -> Diagnostic:
    return Diagnostic(code, message, span, "error", (), tuple(help))

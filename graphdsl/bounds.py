"""How large a graph graphdsl agrees to build: the operation count, checked before building.

A graph costs time and memory per node (parsing, checking, reverse mode, the
plan), so a model is measured before any of that is paid for, twice:

* from the text, before parsing: its operator characters and calls, counted
  with `str.count` and one regular expression, so a 5 MB line of `y + y + ...`
  is refused in a fraction of a second instead of being parsed for minutes;
* from the syntax tree, before building (build.py): every def call counted as
  the size of its inlined body, each def's size computed once from its callees'.

Both compare with one limit, `max_ops` (the CLI's --max-ops).
"""
from __future__ import annotations

import re

from .diagnostics import Diagnostic, GraphDSLError

DEFAULT_MAX_OPS = 100_000  # about 20 s for `grad` on a quiet machine, well under 3 GB

_COMMENT = re.compile(r"#[^\n]*")
_CALL = re.compile(r"[A-Za-z_0-9]\s*\(")  # a call or a subscript-free function application
_EXPONENT_SIGN = re.compile(r"[0-9.][eE][-+]")  # 1e-5: a literal, not a subtraction
_OPERATORS = "+-*/@<>"


def ops_in_text(text: str) -> int:
    """About how many operations the text's expressions hold (defs counted once, not inlined)."""
    code = _COMMENT.sub("", text)
    ops = sum(code.count(c) for c in _OPERATORS) - code.count("**") - code.count("->")
    ops -= len(_EXPONENT_SIGN.findall(code))
    return ops + len(_CALL.findall(code))


def check_text(text: str, source, max_ops: int | None) -> int:
    """Refuse, before parsing, a text whose expressions alone exceed the limit; its count (0: not counted)."""
    if max_ops is None or len(text) < max_ops:  # fewer characters than the limit: fewer operations too
        return 0
    count = ops_in_text(text)
    if count > max_ops:
        raise too_many_ops(f"the model has about {count:,} operations", count, max_ops, None, source,
                           notes=("counted from its text (operators and calls), before parsing",))
    return count


def too_many_ops(what: str, count: int, max_ops: int, span, source, notes=()) -> GraphDSLError:
    return GraphDSLError(Diagnostic(
        "E108", f"{what}, more than the limit of {max_ops:,}", span, notes=tuple(notes),
        help=(f"split the model or compute shared values once; or raise the limit with --max-ops {count}"
              " (Python: max_ops=), if time and memory allow",)), source)

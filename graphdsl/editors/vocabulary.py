"""The words an editor highlights, read from the one grammar and op table.

Kept apart from the lexer so the Pygments lexer, the TextMate grammar test and
the language server all take keywords and builtins from the same place.
"""
from __future__ import annotations

import functools

# Numbers as the grammar's NUMBER: a `.` followed by another is a range's `..` (`1..T`).
NUMBER = r"([0-9]+(\.(?!\.)[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
# The grammar's STRING: einsum's spec ("ij,jk->ik"), the only string literal.
STRING = r'"[^"\n]*"'
# Operators, the range's `..` included.
OPERATORS = r"\*\*|\.\.|[<>]=?|[=!]=|[-+*/@=]"

# The declaration keywords start a statement; the others sit inside one.
DECLARATIONS = ("dim", "input", "param", "const", "def", "output")


@functools.lru_cache(maxsize=None)
def keywords() -> tuple[str, ...]:
    from ..syntax import RESERVED
    return tuple(sorted(RESERVED))


@functools.lru_cache(maxsize=None)
def builtins() -> tuple[str, ...]:
    """Functions a model can call: every user-callable op, alias, special form and initialiser."""
    from ..declarations import INITIALISERS
    from ..ops import BUILTINS
    return tuple(sorted(set(BUILTINS) | set(INITIALISERS)))


def constants() -> tuple[str, ...]:
    return tuple(w for w in keywords() if w in ("true", "false"))

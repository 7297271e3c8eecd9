"""A Pygments lexer for .gdsl files, registered as `gdsl` / `graphdsl`.

pyproject.toml registers it through the `pygments.lexers` entry point, so that
`pygmentize -l gdsl`, Sphinx, MkDocs and nbconvert highlight ```gdsl blocks.
"""
from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (Comment, Keyword, Name, Number, Operator, Punctuation, String, Text,
                            Whitespace)

# Absolute, so that `pygmentize -x -l graphdsl/editors/pygments_lexer.py:GraphDSLLexer` can load
# this file by path as well as through the entry point.
from graphdsl.editors.vocabulary import DECLARATIONS, NUMBER, OPERATORS, STRING, builtins, constants, keywords

# Python's identifier rule (Unicode letters, `_`, then letters/digits), which the
# language accepts; Pygments compiles patterns with re.UNICODE.
IDENT = r"[^\W\d]\w*"


def _rules() -> dict:
    others = [w for w in keywords() if w not in DECLARATIONS and w not in constants()]
    return {
        "root": [
            (r"[ \t\r\n]+", Whitespace),
            (STRING, String.Double),  # einsum's spec: "ij,jk->ik"
            (r"#.*?$", Comment.Single),
            (words(("def",), suffix=r"\b"), Keyword.Declaration, "defname"),
            (words(DECLARATIONS, suffix=r"\b"), Keyword.Declaration),
            (words(tuple(others), suffix=r"\b"), Keyword),
            (words(constants(), suffix=r"\b"), Keyword.Constant),
            (words(builtins(), suffix=r"\b(?=\s*\()"), Name.Builtin),
            (r"(\.)(T)\b", bygroups(Punctuation, Name.Attribute)),
            (IDENT, Name),
            (NUMBER, Number),
            (OPERATORS, Operator),
            (r"[()\[\]{},:;.]", Punctuation),
        ],
        "defname": [
            (r"[ \t]+", Whitespace),
            (IDENT, Name.Function, "#pop"),
            (r"", Text, "#pop"),
        ],
    }


class GraphDSLLexer(RegexLexer):
    name = "graphdsl"
    aliases = ["gdsl", "graphdsl"]
    filenames = ["*.gdsl"]
    mimetypes = ["text/x-graphdsl"]
    url = "https://example.invalid/graphdsl"
    tokens = _rules()

"""Writes syntaxes/gdsl.tmLanguage.json from the grammar's keywords and the op table.

Run from the repository root after adding an op or keyword:
    python editors/vscode/make_grammar.py
tests/test_editors_vscode.py fails when the committed file is out of date.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "syntaxes" / "gdsl.tmLanguage.json"


def grammar() -> dict:
    sys.path.insert(0, str(HERE.parents[1]))
    from graphdsl.editors.vocabulary import DECLARATIONS, NUMBER, OPERATORS, STRING, builtins, constants, keywords

    def alt(words):
        return "|".join(sorted(words, key=lambda w: (-len(w), w)))

    others = [w for w in keywords() if w not in DECLARATIONS and w not in constants()]
    ident = r"[\p{L}_][\p{L}\p{N}_]*"
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": "graphdsl",
        "scopeName": "source.gdsl",
        "fileTypes": ["gdsl"],
        "patterns": [
            {"name": "string.quoted.double.gdsl", "match": STRING},
            {"name": "comment.line.number-sign.gdsl", "match": "#.*$"},
            {"match": rf"\b(def)\s+({ident})",
             "captures": {"1": {"name": "storage.type.function.gdsl"}, "2": {"name": "entity.name.function.gdsl"}}},
            {"name": "storage.type.gdsl", "match": rf"\b({alt(DECLARATIONS)})\b"},
            {"name": "keyword.control.gdsl", "match": rf"\b({alt(others)})\b"},
            {"name": "constant.language.gdsl", "match": rf"\b({alt(constants())})\b"},
            {"name": "support.function.builtin.gdsl", "match": rf"\b({alt(builtins())})\b(?=\s*\()"},
            {"name": "constant.numeric.gdsl", "match": rf"\b{NUMBER}"},
            {"name": "keyword.operator.gdsl", "match": OPERATORS},
            {"name": "variable.other.gdsl", "match": ident},
        ],
    }


def text() -> str:
    return json.dumps(grammar(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUT.write_text(text(), encoding="utf-8")
    print(f"wrote {OUT}")

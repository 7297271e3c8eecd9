"""The Pygments lexer: tokens of real examples, the CLI, and its entry point."""
from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

pygments = pytest.importorskip("pygments")
from pygments.token import Comment, Error, Keyword, Name, Number, Operator  # noqa: E402

from graphdsl.editors.pygments_lexer import GraphDSLLexer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.gdsl"))


def _tokens(text):
    return [(t, v) for t, v in GraphDSLLexer().get_tokens(text) if v.strip()]


def test_tokens_of_a_small_model():
    toks = _tokens("param W : [m, d] = randn(std=0.1)  # weights\ndef phi(z) = relu(z)\nh = W.T @ x ** 2")
    assert toks[:3] == [(Keyword.Declaration, "param"), (Name, "W"), (toks[2][0], ":")]
    assert (Name.Builtin, "randn") in toks and (Name.Builtin, "relu") in toks
    assert (Number, "0.1") in toks and (Comment.Single, "# weights") in toks
    assert (Name.Function, "phi") in toks and (Name.Attribute, "T") in toks
    assert (Operator, "**") in toks and (Operator, "@") in toks


def test_a_builtin_name_not_called_is_a_plain_name():
    # `sum = 1` is not a call; only `sum(` is highlighted as a builtin.
    assert _tokens("sum = 1")[0] == (Name, "sum")


def test_greek_names_are_names():
    assert _tokens("λ = η * θ")[0] == (Name, "λ")


def test_keywords_and_builtins_come_from_the_grammar_and_op_table():
    from graphdsl.declarations import INITIALISERS
    from graphdsl.ops import BUILTINS
    from graphdsl.syntax import RESERVED

    text = "\n".join(f"{b}(x)" for b in BUILTINS + list(INITIALISERS))
    assert {v for t, v in _tokens(text) if t is Name.Builtin} == set(BUILTINS) | set(INITIALISERS)
    kinds = {v: t for t, v in _tokens("\n".join(RESERVED)) if v != "\n"}
    assert all(t in Keyword for t in kinds.values()) and set(kinds) == set(RESERVED)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_lexes_without_error_tokens(path):
    text = path.read_text(encoding="utf-8")
    toks = list(GraphDSLLexer().get_tokens(text))
    assert not [v for t, v in toks if t in Error]
    assert "".join(v for _, v in toks) == text if text.endswith("\n") else text + "\n"


def test_pygmentize_highlights_an_example():
    # By file path (`-x`): works from a source checkout, without installing graphdsl.
    out = subprocess.run(
        [sys.executable, "-m", "pygments", "-x", "-l",
         f"{ROOT / 'graphdsl/editors/pygments_lexer.py'}:GraphDSLLexer", "-f", "html",
         str(ROOT / "examples/d2l_mlp.gdsl")],
        capture_output=True, text=True, check=True, cwd=ROOT)
    assert '<span class="kd">param</span>' in out.stdout
    assert '<span class="nb">relu</span>' in out.stdout


def test_entry_point_names_gdsl():
    try:
        metadata.distribution("graphdsl")
    except metadata.PackageNotFoundError:
        pytest.skip("graphdsl is not installed as a distribution; the entry point needs it")
    from pygments.lexers import get_lexer_by_name, get_lexer_for_filename

    assert isinstance(get_lexer_by_name("gdsl"), GraphDSLLexer)
    assert isinstance(get_lexer_for_filename("model.gdsl"), GraphDSLLexer)
    out = subprocess.run([sys.executable, "-m", "pygments", "-l", "gdsl", "-f", "html",
                          str(ROOT / "examples/d2l_mlp.gdsl")], capture_output=True, text=True, check=True)
    assert '<span class="kd">param</span>' in out.stdout


def test_entry_point_is_declared_in_pyproject():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    target = config["project"]["entry-points"]["pygments.lexers"]["graphdsl"]
    module, _, cls = target.partition(":")
    import importlib

    assert getattr(importlib.import_module(module), cls) is GraphDSLLexer

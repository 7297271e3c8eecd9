"""The operator table's LaTeX: every template is a str.format template the equation printer can fill.

graphdsl/equations/latex.py formats `OpDef.latex` with the rendered arguments
and nothing else, so a template must format cleanly (literal braces doubled),
give balanced braces and place every argument of a fixed-arity op.
"""
from __future__ import annotations

import re
from string import Formatter

import pytest

from graphdsl.ops import REGISTRY

PRINTED_BY_NAME = {"opaque"}  # a call of an undefined function: printed as the user wrote it


def arity(op) -> int:
    return op.nargs[1]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_latex_is_a_format_template(name):
    op = REGISTRY[name]
    if name in PRINTED_BY_NAME:
        assert op.latex is None
        return
    assert op.latex is not None, f"{name} has no LaTeX"
    text = op.latex.format(*["x"] * arity(op))
    depth = 0
    for ch in re.sub(r"\\[{}]", "", text):  # \{ and \} are literal braces in LaTeX
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, f"{name}: a }} closes more than was opened in {text!r}"
    assert depth == 0, f"{name}: unbalanced braces in {text!r}"


@pytest.mark.parametrize("name", sorted(n for n, op in REGISTRY.items()
                                        if op.latex is not None and op.nargs[0] == op.nargs[1]))
def test_fixed_arity_templates_place_every_argument(name):
    op = REGISTRY[name]
    fields = {int(f) for _, f, _, _ in Formatter().parse(op.latex) if f is not None}
    assert fields == set(range(arity(op))), f"{name}: {op.latex!r} places arguments {sorted(fields)}"


def test_local_derivative_texts_name_each_argument_once():
    """The hover text of an operator (OpDef.local) has one line per argument it names, at most nargs."""
    with_text = {name: op for name, op in REGISTRY.items() if op.local}
    assert {"add", "mul", "matmul", "tanh", "sigmoid", "relu", "softmax", "sum_to", "unreduce"} <= set(with_text)
    for name, op in with_text.items():
        assert 1 <= len(op.local) <= op.nargs[1], name
        if len(op.local) == 2:
            assert "a" in op.local[0].split("=")[0] and "b" in op.local[1].split("=")[0], name

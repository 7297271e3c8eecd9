"""Defs that return several values (`return h2, c2`; `h1, c1 = lstm(...)`): an LSTM against
PyTorch float64 (in a loop, to second order), nesting, and located arity errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import graphdsl
from graphdsl.diagnostics import GraphDSLError
from test_v2_builtins import _rng, check

torch.set_default_dtype(torch.float64)

LSTM_DEF = """\
def lstm(h, c, x) {
    i = sigmoid(Wi @ x + Ui @ h + bi)
    f = sigmoid(Wf @ x + Uf @ h + bf)
    o = sigmoid(Wo @ x + Uo @ h + bo)
    g = tanh(Wg @ x + Ug @ h + bg)
    c2 = f * c + i * g
    return o * tanh(c2), c2
}
"""

DECLS = """\
dim n = 3, m = 2, T = 5
input X : [m, T]
param Wi : [n, m]
param Wf : [n, m]
param Wo : [n, m]
param Wg : [n, m]
param Ui : [n, n]
param Uf : [n, n]
param Uo : [n, n]
param Ug : [n, n]
param bi : [n]
param bf : [n]
param bo : [n]
param bg : [n]
"""

WEIGHTS = ("Wi", "Wf", "Wo", "Wg", "Ui", "Uf", "Uo", "Ug", "bi", "bf", "bo", "bg")


def _values(name):
    rng = _rng(name)
    values = {"X": rng.standard_normal((2, 5))}
    for w in WEIGHTS:
        shape = (3, 2) if w[0] == "W" else (3, 3) if w[0] == "U" else (3,)
        values[w] = rng.standard_normal(shape) * 0.5
    return values


def _torch_lstm(X, Wi, Wf, Wo, Wg, Ui, Uf, Uo, Ug, bi, bf, bo, bg, steps=5):
    h = c = torch.zeros(3)
    for t in range(steps):
        x = X[:, t]
        i = torch.sigmoid(Wi @ x + Ui @ h + bi)
        f = torch.sigmoid(Wf @ x + Uf @ h + bf)
        o = torch.sigmoid(Wo @ x + Uo @ h + bo)
        g = torch.tanh(Wg @ x + Ug @ h + bg)
        c = f * c + i * g
        h = o * torch.tanh(c)
    return (h ** 2).sum() + c.sum()


def test_lstm_with_two_return_values_in_a_loop_matches_torch_to_second_order(torch_record):
    text = DECLS + LSTM_DEF + """\
h[0] = 0 * bi
c[0] = 0 * bi
for t in 1..T {
    h[t], c[t] = lstm(h[t-1], c[t-1], X[:, t-1])
}
J = sum(h[T] ** 2) + sum(c[T])
"""
    check(torch_record, "lstm-loop", text, _values("lstm"), _torch_lstm, WEIGHTS)


def test_two_steps_written_out_with_plain_names(torch_record):
    text = DECLS + LSTM_DEF + """\
h1, c1 = lstm(0 * bi, 0 * bi, X[:, 0])
h2, c2 = lstm(h1, c1, X[:, 1])
J = sum(h2 ** 2) + sum(c2)
"""
    check(torch_record, "lstm-2-steps", text, _values("lstm2"),
          lambda **kw: _torch_lstm(**kw, steps=2), WEIGHTS, second=False)


def test_a_def_may_pass_on_another_defs_values_and_loop_inside():
    text = """\
def swap(a, b) { return b, a }
def twice(a, b) {
    p, q = swap(a, b)
    for k in 1..2 { s[k] = p * k + q }
    return s[1], s[2]
}
x, y = twice(1, 10)
output x, y
"""
    out = graphdsl.parse(text).eval()
    assert (out["x"], out["y"]) == (10 * 1 + 1, 10 * 2 + 1)


def test_one_call_gives_both_values():
    model = graphdsl.parse(LSTM_DEF.replace("Wi @ x", "x").replace("Wf @ x", "x").replace("Wo @ x", "x")
                           .replace("Wg @ x", "x").replace(" + Ui @ h + bi", "").replace(" + Uf @ h + bf", "")
                           .replace(" + Uo @ h + bo", "").replace(" + Ug @ h + bg", "")
                           + "a, b = lstm(1, 2, 3)\noutput a, b\n")
    g = model.built.graph
    assert set(g.graph["calls"]) == {"lstm#1"}  # one call, two values
    out = model.eval()
    s, t = 1 / (1 + np.exp(-3.0)), np.tanh(3.0)
    c2 = s * 2 + s * t
    assert out["b"] == pytest.approx(c2, rel=1e-15) and out["a"] == pytest.approx(s * np.tanh(c2), rel=1e-15)


ERRORS = [
    ("two names, one value", "def f(a) = a\nx, y = f(1)\n", (2, 8), "2 names are assigned, but `f` returns 1 value"),
    ("one name, two values", "def f(a) { return a, a }\ny = f(1)\n", (2, 5), "`f` returns 2 values"),
    ("in an expression", "def f(a) { return a, a }\ny = 1 + f(1)\n", (2, 9), "an expression takes one"),
    ("three names, two values", "def f(a) { return a, a }\nx, y, z = f(1)\n", (2, 11), "returns 2 values"),
    ("a builtin", "a, b = sin(1)\n", (1, 8), "only a def with `return a, b`"),
    ("in a loop", "def f(a) { return a, a }\nfor t in 1..2 {\n  y[t] = f(t)\n}\n", (3, 10),
     "`f` returns 2 values"),
]


@pytest.mark.parametrize("text, where, words", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_arity_mismatches_are_located(text, where, words):
    with pytest.raises(GraphDSLError) as info:
        graphdsl.parse(text)
    diag = info.value.errors[0]
    assert diag.code == "E113"
    assert (diag.span.line, diag.span.col) == where
    assert words in diag.message


def test_a_name_given_twice_in_one_assignment_is_an_error():
    with pytest.raises(GraphDSLError) as info:
        graphdsl.parse("def f(a) { return a, a }\nx, x = f(1)\n")
    assert info.value.errors[0].code == "E104" and info.value.errors[0].span.col == 4

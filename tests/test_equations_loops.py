"""Equations of loops (issue 15): the body printed once in terms of t, BPTT sums as Σ_t, checked forms,
and explain's numbers on a looped model against NumPy."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import graphdsl
from graphdsl.cli import main
from graphdsl.values import load_file

from render_models import nested_loops

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

RNN = """dim d = 2, n = 3, T = 4
input X : [d, T]
param W : [n, n] = randn(std=0.5)
param U : [n, d] = randn(std=0.5)
param c : [n, 1] = zeros()
const h0 : [n, 1] = zeros()
h[0] = h0
for t in 1..T {
    h[t] = tanh(W @ h[t-1] + U @ X[:, t-1:t] + c)
}
J = sum(h[T] ** 2)
output J
"""


def rnn():
    return graphdsl.parse(RNN, "rnn.gdsl")


def values():
    rng = np.random.default_rng(3)
    return {"X": rng.normal(size=(2, 4)), "W": 0.5 * rng.normal(size=(3, 3)),
            "U": 0.5 * rng.normal(size=(3, 2)), "c": 0.1 * rng.normal(size=(3, 1))}


def test_the_body_is_printed_once_in_terms_of_t():
    text = rnn().equations().text()
    expected_forward = ["  h[0] = h0",
                        "  for t = 1..4:",
                        "      h[t] = tanh(W h[t-1] + U X[:, t-1:t] + c)",
                        "  J = sum(h[4]²)"]
    expected_backward = ["  dJ/dh[4] = 2 h[4]",
                         "  for t = 4, 3, …, 1:",
                         "      t1 = dJ/dh[t] ⊙ tanh'(W h[t-1] + U X[:, t-1:t] + c)",
                         "      dJ/dh[t-1] = Wᵀ t1    (t = 4, 3, 2)",  # h[0] is a const: no dJ/dh[0]
                         "  dJ/dc = Σ_t t1",
                         "  dJ/dW = Σ_t t1 h[t-1]ᵀ",
                         "  dJ/dU = Σ_t t1 X[:, t-1:t]ᵀ"]
    lines = text.splitlines()
    start = lines.index("forward:") + 1
    assert lines[start:start + 4] == expected_forward
    back = next(i for i, line in enumerate(lines) if line.startswith("backward")) + 1
    assert lines[back:back + 7] == expected_backward


def test_unroll_prints_every_iteration():
    text = rnn().equations(unroll=True).text()
    for t in range(1, 5):
        assert f"  h[{t}] = tanh(W h[{t - 1}] + U X[:, {t - 1}:{t}] + c)" in text
    assert "for t" not in text and "Σ" not in text
    assert "dJ/dW = t4 h[0]ᵀ + t3 h[1]ᵀ + t2 h[2]ᵀ + t1 h[3]ᵀ" in text  # summed in the order of the uses


def test_latex_and_markdown_roll_too():
    eqs = rnn().equations()
    latex = eqs.latex()
    assert r"&\mathrm{for}\ t = 1, \ldots, 4: \\" in latex
    assert r"\quad h^{(t)} &= \tanh(W h^{(t-1)} + U X[:, t-1:t] + c) \\" in latex
    assert r"\frac{\partial J}{\partial W} &= \sum_{t} t_{1} {h^{(t-1)}}^\top" in latex
    assert r"\quad (t = 4, 3, 2)" in latex
    md = eqs.markdown()
    assert r"\mathrm{for}\ t = 1, \ldots, 4:" in md and "    h[t] = tanh(W h[t-1] + U X[:, t-1:t] + c)" in md


def test_an_iteration_whose_equation_differs_is_printed_as_it_is():
    """2 ** t is 2, 2², 2³: no whole number moves with t by one, so nothing may be written in terms of t."""
    src = ("input x : [2] = [1, 2]\np[0] = x\nfor t in 1..3 {\n    p[t] = p[t-1] * 2 ** t\n}\n"
           "J = sum(p[3])\noutput J\n")
    text = graphdsl.parse(src, "pow.gdsl").equations().text()
    assert "for t" not in text
    assert "p[1] = 2 p[0]" in text and "p[2] = 2² p[1]" in text and "p[3] = 2³ p[2]" in text


def test_one_iteration_is_not_rolled():
    """Only r[3] feeds J: one equation of that statement, printed as it is, not under `for t = 3:`; and a
    sum of two elements is not a Σ."""
    src = ("input x : [2] = [1, 2]\nfor t in 1..3 {\n    q[t] = x * t\n}\nfor t in 1..3 {\n"
           "    r[t] = q[t] + q[4 - t]\n}\nJ = sum(r[3])\noutput J\n")
    text = graphdsl.parse(src, "q.gdsl").equations().text()
    assert "for t" not in text
    assert "  r[3] = q[3] + q[1]\n" in text


def test_nested_loops_print_nested_blocks():
    text = graphdsl.parse(nested_loops(2, 3), "nested.gdsl").equations().text()
    assert ("  for l = 1..2:\n      h[l,0] = z\n      for t = 1..3:\n"
            "          h[l,t] = tanh(W h[l,t-1] + U h[l-1,t])\n") in text
    assert "  for t = 1..3:\n      h[0,t] = xs[t-1]\n" in text


def test_cli_equations_unroll(tmp_path, capsys):
    src = tmp_path / "rnn.gdsl"
    src.write_text(RNN)
    assert main(["equations", str(src)]) == 0
    rolled = capsys.readouterr().out
    assert main(["equations", str(src), "--unroll"]) == 0
    unrolled = capsys.readouterr().out
    assert "for t = 1..4:" in rolled and "h[3] = tanh" in unrolled and "for t" not in unrolled


# ---- explain's numbers on a looped model ----------------------------------------------------------------

def numpy_bptt(v):
    hs, zs = [np.zeros((3, 1))], []
    for t in range(4):
        zs.append(v["W"] @ hs[-1] + v["U"] @ v["X"][:, t:t + 1] + v["c"])
        hs.append(np.tanh(zs[-1]))
    dh = {4: 2 * hs[4]}
    grads = {"W": np.zeros((3, 3)), "U": np.zeros((3, 2)), "c": np.zeros((3, 1))}
    for t in range(4, 0, -1):
        dz = dh[t] * (1 - hs[t] ** 2)
        grads["W"] += dz @ hs[t - 1].T
        grads["U"] += dz @ v["X"][:, t - 1:t].T
        grads["c"] += dz
        dh[t - 1] = v["W"].T @ dz
    return hs, dh, grads


def test_explain_numbers_on_the_loop_rnn_match_numpy():
    v = values()
    walk = rnn().explain(v).walk
    hs, dh, grads = numpy_bptt(v)
    by_name = {step.lhs.name: step.value for step in walk.steps}
    assert walk.loss == pytest.approx(float(np.sum(hs[4] ** 2)), rel=1e-13)
    for t in range(1, 5):
        np.testing.assert_allclose(by_name[f"h[{t}]"], hs[t], rtol=1e-13, atol=1e-15)
    for t in (4, 3, 2, 1):
        np.testing.assert_allclose(by_name[f"dJ/dh[{t}]"], dh[t], rtol=1e-12, atol=1e-15)
    for name, g in grads.items():
        np.testing.assert_allclose(by_name[f"dJ/d{name}"], g, rtol=1e-12, atol=1e-15)
    text = rnn().explain(v).text
    assert f"{hs[2][0, 0]:.9g}" in text and f"{grads['W'][0, 0]:.9g}" in text


def test_a_long_sum_split_into_auxiliaries_rolls_as_one_sigma():
    """With 100 steps the sum over the iterations is too long for one line, so the equations split it into
    auxiliaries (t28 = ..., t57 = t28 + ...); rolled, it is one Σ again, and no auxiliary is left over."""
    from render_models import loop_rnn

    model = graphdsl.parse(loop_rnn(100), "rnn100.gdsl")
    unrolled = model.equations(unroll=True).text()
    assert any(line.startswith("  t") and " = t" in line for line in unrolled.splitlines())  # the split
    lines = model.equations().text().splitlines()
    back = lines[next(i for i, line in enumerate(lines) if line.startswith("backward")) + 1:]
    assert back[-3:] == ["  dJ/db_h = Σ_t sum_b(t1)", "  dJ/dW_hh = Σ_t t1 h[t-1]ᵀ", "  dJ/dW_xh = Σ_t t1 xs[t-1]ᵀ"]
    assert "  for t = 100, 99, …, 1:" in back and len(back) == 9


def test_a_loop_in_a_def_called_twice_keeps_each_calls_name():
    """The call number is dropped only where it moves with the loop (a def called in each iteration)."""
    src = ("dim n = 2\ninput x : [n] = [1, 2]\nparam W : [n, n] = randn(std=0.5)\n"
           "def run(z) {\n    s[0] = z\n    for t in 1..3 { s[t] = tanh(W @ s[t-1]) }\n    return s[3]\n}\n"
           "J = sum(run(x)) + sum(run(x * x))\noutput J\n")
    text = graphdsl.parse(src, "twice.gdsl").equations().text()
    assert "      run#1.s[t] = tanh(W run#1.s[t-1])" in text and "      run#2.s[t] = tanh(W run#2.s[t-1])" in text
    lstm = graphdsl.load(EXAMPLES / "lstm.gdsl").equations(load_file(str(EXAMPLES / "lstm.json"))).text()
    assert "      lstm.c2 = lstm.f ⊙ c[t-1] + lstm.i ⊙ lstm.g" in lstm  # one call per iteration: lstm#t

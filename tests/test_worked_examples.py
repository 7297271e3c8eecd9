"""Published worked examples of backpropagation, each written as a model file."""
from __future__ import annotations

import time

import numpy as np
import pytest

import graphdsl


def test_cs231n_circuit():
    """CS231n "Backpropagation, Intuitions": f(x, y, z) = (x + y) z at (-2, 5, -4)."""
    m = graphdsl.parse("""
input x = -2
input y = 5
input z = -4
q = x + y
f = q * z
""")
    value, grads = m.grad(of="f", wrt=["x", "y", "z", "q"])
    assert value == -12.0
    assert (grads["x"], grads["y"], grads["z"], grads["q"]) == (-4.0, -4.0, 3.0, -4.0)


def test_micrograd_sanity_check():
    """micrograd test_engine.py: test_sanity_check."""
    m = graphdsl.parse("""
input x = -4.0
z = 2 * x + 2 + x
q = relu(z) + z * x
h = relu(z * z)
y = h + q + q * x
""")
    value, grads = m.grad(of="y", wrt=["x"])
    assert value == -20.0
    assert grads["x"] == 46.0


MICROGRAD_MORE_OPS = """
# micrograd test_engine.py: test_more_ops, with each `+=` renamed (single assignment)
input a = -4.0
input b = 2.0
c = a + b
d = a * b + b**3
c2 = c + c + 1
c3 = c2 + 1 + c2 + (-a)
d2 = d + d * 2 + relu(b + a)
d3 = d2 + 3 * d2 + relu(b - a)
e = c3 - d3
f = e**2
g = f / 2.0
g2 = g + 10.0 / f
output g2
"""


def test_micrograd_more_ops():
    m = graphdsl.parse(MICROGRAD_MORE_OPS)
    value, grads = m.grad(of="g2", wrt=["a", "b"])
    # the values PyTorch gives in micrograd's test, to its tolerance and to ours
    assert value == pytest.approx(24.70408163265306, abs=1e-12)
    assert grads["a"] == pytest.approx(138.83381924198252, abs=1e-10)
    assert grads["b"] == pytest.approx(645.5772594752186, abs=1e-10)
    assert abs(value - 24.7041) < 1e-4 and abs(grads["a"] - 138.8338) < 1e-4 and abs(grads["b"] - 645.5773) < 1e-4


MAZUR = """
# Matt Mazur, "A Step by Step Backpropagation Example" (2015)
input x : [2] = [0.05, 0.10]
input t : [2] = [0.01, 0.99]
param W1 = [[0.15, 0.20], [0.25, 0.30]]   # w1 w2 / w3 w4
param W2 = [[0.40, 0.45], [0.50, 0.55]]   # w5 w6 / w7 w8
const b1 = 0.35, b2 = 0.60
const eta = 0.5

h = sigmoid(W1 @ x + b1)
o = sigmoid(W2 @ h + b2)
E = sum(0.5 * (t - o) ** 2)

W2n = W2 - eta * grad(E, W2)
W1n = W1 - eta * grad(E, W1)   # at the original W2, as in the article
output E, W1n, W2n
"""


def test_mazur_step_by_step():
    m = graphdsl.parse(MAZUR)
    out = m.eval()
    assert out["E"] == pytest.approx(0.298371109, abs=1e-9)
    np.testing.assert_allclose(out["W2n"], [[0.35891648, 0.408666186], [0.511301270, 0.561370121]], atol=1e-8)
    np.testing.assert_allclose(out["W1n"], [[0.149780716, 0.19956143], [0.24975114, 0.29950229]], atol=1e-8)
    # the grad API agrees with the in-language gradient step
    _, grads = m.grad(of="E")
    assert sorted(grads) == ["W1", "W2"]
    np.testing.assert_allclose(out["W2n"], np.array([[0.4, 0.45], [0.5, 0.55]]) - 0.5 * grads["W2"], rtol=0,
                               atol=1e-15)
    assert grads["W2"][0, 0] == pytest.approx(0.082167041, abs=1e-9)  # dE/dw5 in the article
    assert grads["W1"][0, 0] == pytest.approx(0.000438568, abs=1e-9)  # dE/dw1


def test_second_derivative_of_cube():
    m = graphdsl.parse("input x = 2.0\nd2 = grad(grad(x**3, x), x)\nd1 = grad(x**3, x)")
    out = m.eval()
    assert out["d1"] == 12.0  # 3 x^2
    assert out["d2"] == 12.0  # 6 x
    # and the third derivative, through the API
    _, grads = m.grad(of="d2", wrt=["x"])
    assert grads["x"] == 6.0


def test_logsumexp_is_stable():
    m = graphdsl.parse("input v : [2] = [1000, 1000]\ny = logsumexp(v)")
    value, grads = m.grad(of="y", wrt=["v"])
    assert np.isfinite(value)
    assert value == pytest.approx(1000 + np.log(2), abs=1e-12)
    # exp(v - lse): lse = 1000.69... carries a rounding error of ~1e-13, so 0.5 is met to ~5e-14,
    # exactly as PyTorch's logsumexp backward (the same formula) gives 0.5000000000000275
    np.testing.assert_allclose(grads["v"], [0.5, 0.5], rtol=1e-12, atol=0)
    # written as a literal, too
    assert graphdsl.parse("y = logsumexp([1000, 1000])").eval()["y"] == pytest.approx(1000 + np.log(2), abs=1e-12)
    # also far below zero, and through softmax / log_softmax / cross_entropy
    value, grads = m.grad({"v": [-1000.0, -1000.0]}, of="y", wrt=["v"])
    assert value == pytest.approx(-1000 + np.log(2), abs=1e-12)
    np.testing.assert_allclose(grads["v"], [0.5, 0.5])
    m = graphdsl.parse("input v : [3]\ninput t : [3]\ns = softmax(v)\nl = log_softmax(v)\nce = cross_entropy(v, t)")
    out = m.eval({"v": [1000.0, 1000.0, -1000.0], "t": [0.0, 1.0, 0.0]})
    np.testing.assert_allclose(out["s"], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(out["l"], [-np.log(2), -np.log(2), -2000 - np.log(2)])
    assert out["ce"] == pytest.approx(np.log(2))


def _chain(n: int) -> str:
    return "input x0\n" + "".join(f"x{i} = x{i - 1} * 1.0001\n" for i in range(1, n + 1))


def test_long_chain_small():
    """The same chain at 2,000 nodes, fast enough for every run."""
    n = 2000
    m = graphdsl.parse(_chain(n))
    value, grads = m.grad({"x0": 0.5}, of=f"x{n}", wrt=["x0"])
    assert value == pytest.approx(0.5 * 1.0001 ** n, rel=1e-10)
    assert grads["x0"] == pytest.approx(1.0001 ** n, rel=1e-10)


@pytest.mark.slow
def test_chain_of_100000_nodes():
    """No recursion anywhere: a 100,000-step chain parses, evaluates and differentiates."""
    n = 100_000
    t0 = time.perf_counter()
    m = graphdsl.parse(_chain(n))
    t1 = time.perf_counter()
    out = m.eval({"x0": 0.5}, outputs=[f"x{n}"])
    t2 = time.perf_counter()
    value, grads = m.grad({"x0": 0.5}, of=f"x{n}", wrt=["x0"])
    t3 = time.perf_counter()
    print(f"\n100k chain: parse+build {t1 - t0:.1f}s, eval {t2 - t1:.1f}s, grad {t3 - t2:.1f}s")
    assert out[f"x{n}"] == pytest.approx(0.5 * 1.0001 ** n, rel=1e-9)
    assert value == pytest.approx(0.5 * 1.0001 ** n, rel=1e-9)
    assert grads["x0"] == pytest.approx(1.0001 ** n, rel=1e-9)

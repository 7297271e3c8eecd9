"""Regression tests for bugs the differential fuzzer (tests/test_fuzz_programs.py) found.

Each is the smallest program that showed the bug, asserting what a user is owed.
"""
from __future__ import annotations

import numpy as np
import pytest

import graphdsl
from graphdsl.autodiff import gradients


def _bits_equal(a, b) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.int64), b.view(np.int64))


def _plans(model, values, of="L", wrt=None):
    """The forward plan of `of` and its grad plan, with the leaf values they run on."""
    compiled, given = model.compile(values)
    target, wrt_ids = model.grad_targets(compiled, of, wrt)
    table = gradients(compiled.built.gb, target, wrt_ids)
    leaves = model.leaf_values(compiled, given)
    forward = model._plan(compiled, (target,))
    backward = model._plan(compiled, (target,) + tuple(table[w] for w in wrt_ids))
    return (forward, backward), leaves


# Found as a one-ulp difference (1.1e-16) between the compiled program and the reference
# schedule: the product was written into the buffer of `tanh(W.T)`, which is column-ordered
# because W.T is, while the reference's new array was row-ordered; NumPy's sum over an axis
# adds in an order that follows the layout.
LAYOUT = """
input W : [16, 16]
input C : [16, 16]
S = sum(tanh(W.T) * C, axis=0)
L = sum(S * sum(C, axis=1))
"""


@pytest.mark.parametrize("plan_index", [0, 1], ids=["eval", "grad"])
def test_compiled_program_equals_reference_after_a_transpose(plan_index):
    rng = np.random.default_rng(3)
    values = {"W": rng.standard_normal((16, 16)), "C": rng.standard_normal((16, 16))}
    model = graphdsl.parse(LAYOUT)
    plans, leaves = _plans(model, values, wrt=["W", "C"])
    plan = plans[plan_index]
    got, want = plan.run(leaves), plan.run_reference(leaves)
    assert all(_bits_equal(a, b) for a, b in zip(got, want))


def test_values_in_column_order_give_the_same_bits_as_in_row_order():
    """The memory order of an input array is not part of its value."""
    rng = np.random.default_rng(4)
    w = rng.standard_normal((16, 16))
    c = rng.standard_normal((16, 16))
    model = graphdsl.parse(LAYOUT.replace("tanh(W.T)", "tanh(W)"))
    rows, columns = {"W": w, "C": c}, {"W": np.asfortranarray(w), "C": c}
    assert _bits_equal(model.eval(rows, outputs=["S"])["S"], model.eval(columns, outputs=["S"])["S"])
    v1, g1 = model.grad(rows, of="L", wrt=["W", "C"])
    v2, g2 = model.grad(columns, of="L", wrt=["W", "C"])
    assert _bits_equal(v1, v2)
    assert all(_bits_equal(g1[k], g2[k]) for k in g1)
    plans, leaves = _plans(model, {"W": np.asfortranarray(w), "C": c}, wrt=["W", "C"])
    for plan in plans:
        assert all(_bits_equal(a, b) for a, b in zip(plan.run(leaves), plan.run_reference(leaves)))

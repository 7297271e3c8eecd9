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


# Found as a one-ulp difference between the compiled program and the reference schedule in
# `tanh(conv1d(x, w, groups=4)) * c`: the convolution returned a view in another order than
# row order (a transpose merged by reshape), which the compiled program takes to be row-ordered
# and writes tanh's result into, while the reference's new array keeps the view's order. The
# v2 forwards that end in a view (conv, its input gradient, the pools' scatters, einsum,
# cumsum's reverse) return row-ordered arrays.
V2_LAYOUT = {  # the model's line, and the shapes of x, w, c
    "conv1d-groups": ("L = sum(tanh(conv1d(x, w, groups=4)) * c)", [(4, 4, 16), (4, 1, 3), (4, 4, 14)]),
    "conv2d-padding": ("L = sum(tanh(conv2d(x, w, stride=2, padding=1)) * c)", [(2, 3, 9, 9), (4, 3, 3, 3),
                                                                                (2, 4, 5, 5)]),
    "pools-padding": ("L = sum(tanh(max_pool2d(x, 3, stride=2, padding=1) + avg_pool2d(x, 3, stride=2, padding=1))"
                      " * c * w)", [(2, 3, 9, 9), (), (2, 3, 5, 5)]),
    "einsum-transpose": ('L = sum(tanh(einsum("ijk->kij", x)) * c * w)', [(6, 7, 8), (), (8, 6, 7)]),
    "cumsum": ("L = sum(tanh(cumsum(x, 1)) * c * w, axis=0) @ sum(c, axis=1)", [(16, 16), (), (16, 16)]),
}


@pytest.mark.parametrize("case", sorted(V2_LAYOUT))
def test_compiled_program_equals_reference_through_v2_operations(case):
    line, shapes = V2_LAYOUT[case]
    decls = "".join(f"input {n} : [{', '.join(map(str, s))}]\n" for n, s in zip("xwc", shapes))
    model = graphdsl.parse(decls + line + "\noutput L\n")
    for seed in range(5):  # a layout difference shows in the last bit of some draws, not all
        rng = np.random.default_rng(seed)
        values = {n: rng.standard_normal(s) for n, s in zip("xwc", shapes)}
        plans, leaves = _plans(model, values, wrt=["x", "w"])
        for plan in plans:
            got, want = plan.run(leaves), plan.run_reference(leaves)
            assert all(_bits_equal(a, b) for a, b in zip(got, want)), f"seed {seed}"


# Found by the CLI mutants: a token mutation wrote `[[[1.@17]]]` into an input's default, and
# `check` ended in NumPy's ValueError from matmul of two numbers (exit 3). Constant arithmetic
# on shapes that do not fit is a located error, as in the graph.
@pytest.mark.parametrize("text, words", [
    ("input x : [1] = [1.@17]\n", ["E107", "`@` does not apply to shapes [] and []", "1:18"]),
    ("const c = [1, 2] + [1, 2, 3]\n", ["E107", "`+` does not apply to shapes [2] and [3]", "1:11"]),
])
def test_constant_arithmetic_on_shapes_that_do_not_fit_is_located(text, words):
    with pytest.raises(graphdsl.GraphDSLError) as info:
        graphdsl.parse(text + "L = 1\noutput L\n", "m.gdsl")
    message = info.value.format()
    for word in words:
        assert word in message, message


def test_a_program_with_more_than_64_helper_functions_keeps_numpy_float64():
    """Found by the post-merge campaign: the compiled program named NumPy's float64 `_f64`, and its
    65th helper function (`_f64`, here conv_input_grad) replaced it: a comparison's `.astype(_f64)`
    then raised TypeError (an internal error) on every call after the first."""
    import graphdsl

    model = graphdsl.parse(
        "param w1 : [] = he()\nparam w2 : [2, 1, 4] = he()\nparam w3 : [2, 2, 1] = he()\n"
        "param w4 : [2, 1, 4] = full(0.7)\nparam w5 : [] = uniform()\n"
        "L = grad(sum(grad(sum(softplus(elu(w1, alpha=0.5)) * (sum(grad(sum(grad(sum(grad(sum(tanh("
        "conv1d(w2, w2, groups=1)) * w3), w2) * w2), w2) * w2), w2) * w4) * w1)), w1) * w5), w1)\noutput L\n")
    first = model.grad({}, of="L")  # the reference schedule
    second = model.grad({}, of="L")  # the compiled program
    assert first[0] == second[0]
    assert all(np.array_equal(first[1][k], second[1][k]) for k in first[1])

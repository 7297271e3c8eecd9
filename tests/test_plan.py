"""The compiled plan: the same numbers as the straightforward schedule, less memory, no surprises.

Behaviour only: results bit-for-bit equal to the reference schedule (one NumPy
call per graph node), inputs never written to, intermediates released after
their last use, the scalar fast path exact, errors unchanged. No wall-clock
times are asserted here (benchmarks/run.py measures those).
"""
from __future__ import annotations

import copy
import gc
import json
import math
import pathlib
import tracemalloc

import numpy as np
import pytest

import graphdsl
from graphdsl import pysource as pysource_module
from graphdsl.autodiff import gradients
from graphdsl.diagnostics import GraphDSLError
from graphdsl.plan import Plan
from bits import same_bits

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

MLP = (EXAMPLES / "d2l_mlp.gdsl").read_text(encoding="utf-8")  # the D2L 5.3 model

# Models that exercise each rewrite: broadcasts left to ufuncs (sum/mean with and
# without axes and keepdims), 0/1 masks kept as booleans, pow 2, in-place buffers,
# scalar factors that are powers of two, views (transpose, reshape, index).
MODELS = {
    "mlp": (MLP, {"x": (4, 6), "y": (3, 6)}),
    "reductions": ("""
input x : [3, 4]
param w : [4] = randn()
const ones3 = [[1.0], [1.0], [1.0]]
a = x * w
r = sum(a, axis=1, keepdims=true) + mean(a, axis=0, keepdims=true) + ones3 @ mean(a, axis=0, keepdims=true)
J = sum(r ** 2) + mean(exp(a)) + 2.0 * sqnorm(w) + sum(var(x, axis=0) * w) + max(a) - min(a, axis=[0, 1])
output J
""", {"x": (3, 4)}),
    "masks": ("""
input x : [5, 3]
param w : [3] = randn()
a = x * w - 0.1
m = (a > 0) * a + (a <= 0.2) * 0.5 * a
J = sum(relu(a) * m) + sum(maximum(a, 0.3 * a)) + sum(minimum(a, w)) + sum(clip(a, -0.5, 0.5)) +
  sum(where(a > 0, a * a, -a)) + sum(abs(a)) + sum(leaky_relu(a)) + sum(elu(a))
output J
""", {"x": (5, 3)}),
    "neural": ("""
input x : [4, 6]
input t : [3, 6]
param W : [3, 4] = randn(std=0.5)
param c : [3, 1] = zeros()
z = W @ x + c
J = cross_entropy(z, t, axis=0) + 0.25 * mse(softmax(z, axis=0), t) + mean(log_softmax(z, axis=0) ** 2) +
  0.5 * sum(tanh(z) * sigmoid(z)) + mean(softplus(z)) + sum(gelu(z)) / 8
output J
""", {"x": (4, 6), "t": (3, 6)}),
    "shapes": ("""
input x : [2, 3, 4]
param w : [4, 2] = randn()
a = transpose(x, axes=[0, 2, 1])
b = reshape(a, [8, 3])
c = concat([b, b * 2.0], axis=0)
d = stack([sum(c, axis=0), mean(c, axis=0)], axis=1)
e = x @ w
J = sum(d ** 2) + sum(e[0] * e[1]) + sum(expand_dims(sum(x, axis=2), 0) ** 2) + sum(squeeze(x[:, 1:2, :], 1))
output J
""", {"x": (2, 3, 4)}),
}


def _values(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s) for k, s in shapes.items()}


def _grad_plan(model, values, of=None, wrt=None):
    """The compiled grad plan of a model, its leaf values, and the target ids."""
    value, grads = model.grad(values, of=of, wrt=wrt)
    compiled, given = model.compile(values)
    target, wrt_ids = model.grad_targets(compiled, of, wrt)
    table = gradients(compiled.built.gb, target, wrt_ids)
    targets = (target,) + tuple(table[w] for w in wrt_ids)
    plan = model._plan(compiled, targets)
    return plan, model.leaf_values(compiled, given), compiled


def _assert_same(got, want):
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        assert same_bits(g, w), f"result {k} differs: max |diff| = {np.max(np.abs(np.asarray(g) - np.asarray(w)))}"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_compiled_program_matches_the_reference_schedule_bit_for_bit(name):
    text, shapes = MODELS[name]
    model = graphdsl.parse(text, f"{name}.gdsl")
    plan, leaves, _ = _grad_plan(model, _values(shapes))
    _assert_same(plan.run(leaves), plan.run_reference(leaves))
    unoptimised = Plan(plan.graph, plan.targets, optimize=False)
    _assert_same(unoptimised.run(leaves), plan.run_reference(leaves))


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.gdsl")), ids=lambda p: p.stem)
def test_examples_match_the_reference_schedule(path):
    model = graphdsl.load(path)
    data = path.with_suffix(".json")
    values = {k: np.asarray(v, dtype=np.float64) for k, v in json.loads(data.read_text()).items()} \
        if data.exists() else {}
    try:
        model.grad(values)
    except GraphDSLError:
        pytest.skip("this example is not differentiable as it stands")
    plan, leaves, _ = _grad_plan(model, values)
    _assert_same(plan.run(leaves), plan.run_reference(leaves))


def test_the_plan_is_compiled_once_and_repeated_runs_agree():
    model = graphdsl.parse(MLP)
    values = _values({"x": (4, 3), "y": (3, 3)})
    first = model.grad(values)
    plan, leaves, compiled = _grad_plan(model, values)
    assert len(compiled.plans) == 1
    for _ in range(3):
        again = model.grad(values)
        assert same_bits(again[0], first[0])
        for name in first[1]:
            assert same_bits(again[1][name], first[1][name])
    assert len(compiled.plans) == 1


@pytest.mark.parametrize("moved", ["first value", "first op", "last leaf"])
def test_a_graph_whose_insertion_order_is_not_topological_plans_the_same(moved):
    """The plan follows the graph's insertion order when it is topological, else sorts it.

    The builder keeps that order topological; a node moved to the front (as a renamed
    value could be) must give the same steps' results, never a value read before it is
    computed."""
    model = graphdsl.parse(MLP)
    values = _values({"x": (4, 3), "y": (3, 3)})
    plan, leaves, compiled = _grad_plan(model, values)
    shuffled = _moved_to_front(compiled.built.graph, moved)
    again = Plan(shuffled, plan.targets, model.source)
    assert again.step_ops != plan.step_ops or moved == "last leaf"
    _assert_same(again.run_reference(leaves), plan.run_reference(leaves))
    _assert_same(again.run(leaves), plan.run(leaves))


def _moved_to_front(g, moved: str):
    """A copy of g with one node (its first computed value, first op or last leaf) first in its dicts'
    order; "(node dict only)": first in the node dict alone, its three dicts' orders no longer the same."""
    tables = ("_node",) if moved.endswith("(node dict only)") else ("_node", "_succ", "_pred")
    moved = moved.replace(" (node dict only)", "")
    nodes = list(g._node)
    pick = {"first value": next(n for n in nodes if g._pred[n] and g._node[n]["kind"] == "var"),
            "first op": next(n for n in nodes if g._node[n]["kind"] == "op"),
            "last leaf": [n for n in nodes if not g._pred[n]][-1]}[moved]
    shuffled = g.copy()
    for table in (getattr(shuffled, name) for name in tables):
        entry = table.pop(pick)
        rest = dict(table)
        table.clear()
        table[pick] = entry
        table.update(rest)
    return shuffled


@pytest.mark.parametrize("moved", ["first value", "first op", "last leaf (node dict only)"])
def test_reverse_mode_on_a_graph_whose_insertion_order_is_not_topological(moved):
    """Reverse mode walks the insertion order backwards when it is topological, else a sorted
    order (graph.upstream_in_order): the same gradients, every value read after it is computed."""
    values = _values({"x": (4, 3), "y": (3, 3)})
    want_value, want = graphdsl.parse(MLP).grad(values)
    model = graphdsl.parse(MLP)
    compiled, given = model.compile(values)
    gb = copy.copy(compiled.built.gb)
    gb.g = _moved_to_front(gb.g, moved)
    target, wrt = model.grad_targets(compiled, None, None)
    table = gradients(gb, target, wrt)
    plan = Plan(gb.g, [target] + [table[w] for w in wrt], model.source)
    got = plan.run(model.leaf_values(compiled, given))
    assert same_bits(got[0], want_value)
    for w, value in zip(wrt, got[1:]):
        np.testing.assert_allclose(value, want[w], rtol=1e-13, atol=1e-16)


def test_inputs_are_never_written_to():
    for text, shapes in MODELS.values():
        model = graphdsl.parse(text)
        values = _values(shapes)
        compiled, given = model.compile(values)
        leaves = model.leaf_values(compiled, given)
        before = {k: np.array(v, copy=True) for k, v in leaves.items()}
        model.grad(leaves)  # the reference schedule (a plan's first call)
        model.grad(leaves)  # the compiled program
        for k, v in leaves.items():
            assert same_bits(v, before[k]), f"{k} was modified"


def test_results_are_separate_arrays():
    model = graphdsl.parse(MLP)
    values = _values({"x": (4, 3), "y": (3, 3)})
    for _ in range(2):  # the first call runs the reference schedule, the second the compiled program
        _, grads = model.grad(values)
        for name, g in grads.items():
            for other, h in grads.items():
                if name != other:
                    assert not np.shares_memory(g, h)
            for v in values.values():
                assert not np.shares_memory(g, v)


def test_the_compiled_program_folds_and_fuses():
    model = graphdsl.parse(MLP)
    plan, _, _ = _grad_plan(model, _values({"x": (4, 2), "y": (3, 2)}))
    code = plan.source_code
    assert "broadcast_to" not in code and "_f" not in code  # no materialised broadcasts, no generic calls
    assert "np.square(" in code  # (o - y) ** 2
    assert "(v" in code and " > 0)" in code and "astype" not in code  # relu' kept as a boolean mask
    assert "out=" in code  # elementwise results written into dying buffers
    assert len(plan.program.instrs) < len(plan.steps)


def _layouts(shape, rng):
    """The same values as a C-ordered array, a Fortran-ordered one, a transposed view and a strided slice."""
    a = rng.standard_normal(shape)
    wide = rng.standard_normal(shape[:-1] + (2 * shape[-1],))
    return [a, np.asfortranarray(a), np.ascontiguousarray(np.swapaxes(a, -1, -2)).swapaxes(-1, -2), wide[..., ::2]]


@pytest.mark.parametrize("left, right", [((5,), (5, 3)), ((4, 5), (5,)), ((4, 5), (5, 3)), ((2, 4, 5), (2, 5, 3)),
                                         ((4, 5), (2, 5, 3)), ((2, 4, 5), (5, 3))])
def test_matmul_results_of_rank_3_or_less_are_c_ordered_whatever_the_inputs_layout(left, right):
    """buffers.c_ordered_values counts on it: such a result may take an elementwise result in place."""
    rng = np.random.default_rng(3)
    for a in _layouts(left, rng) if len(left) > 1 else [rng.standard_normal(left)]:
        for b in _layouts(right, rng) if len(right) > 1 else [rng.standard_normal(right)]:
            assert np.matmul(a, b).flags.c_contiguous, (a.strides, b.strides)


def test_a_sum_with_a_matmul_of_transposed_operands_is_written_in_place_with_the_same_bits():
    """dW1 = dz @ x.T + lam * W1 (D2L) and a batched A.T @ W + B: in place, and bit for bit the reference's."""
    batched = ("input x : [2, 4, 3]\nparam W : [2, 4, 5] = randn()\nparam B : [2, 3, 5] = randn()\n"
               "J = sum(tanh(transpose(x, axes=[0, 2, 1]) @ W + B) ** 2)\noutput J")
    for text, shapes in ((MLP, {"x": (4, 6), "y": (3, 6)}), (batched, {"x": (2, 4, 3)})):
        for order in ("C", "F"):
            model = graphdsl.parse(text)
            values = {k: np.asarray(v, order=order) for k, v in _values(shapes).items()}
            plan, leaves, _ = _grad_plan(model, values)
            assert "np.add(" in plan.source_code and "out=" in plan.source_code.split("np.add(", 1)[1].split("\n")[0]
            _assert_same(plan.run(leaves), plan.run_reference(leaves))


def test_each_intermediate_is_released_after_its_last_use():
    n = 200_000  # 1.6 MB a value
    chain = "\n".join(["dim n = %d" % n, "input x : [n]", "a0 = x"] +
                      [f"a{i} = exp(a{i - 1} * 0.5) - 1.0" for i in range(1, 11)] + ["output a10"])
    model = graphdsl.parse(chain)
    x = np.linspace(-1, 1, n)
    model.eval({"x": x})
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = model.eval({"x": x})
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    # twenty intermediates of 1.6 MB each: held at once they would take 32 MB
    assert peak <= 3 * x.nbytes + 2**20
    compiled, given = model.compile({"x": x})
    plan = next(iter(compiled.plans.values()))
    _assert_same([out["a10"]], plan.run_reference(model.leaf_values(compiled, given)))


def test_backward_memory_report_names_what_the_backward_pass_keeps():
    model = graphdsl.parse(MLP, dims={"m": 64, "d": 32})
    plan, leaves, _ = _grad_plan(model, _values({"x": (32, 16), "y": (3, 16)}))
    report = plan.memory(leaves)
    held = {vid: nbytes for vid, nbytes, _, _ in report["held"]}
    graph = plan.graph
    names = {graph.nodes[v].get("name") for v in held}
    assert "z" in names or "h" in names  # relu' needs z (or its mask), dW2 needs h
    assert report["held_bytes"] == sum(held.values()) > 0
    assert report["static_peak_bytes"] >= report["held_bytes"]
    assert report["peak_bytes"] > 0


def test_profile_lists_the_nodes_that_run():
    model = graphdsl.parse(MLP)
    plan, leaves, _ = _grad_plan(model, _values({"x": (4, 2), "y": (3, 2)}))
    rows = plan.profile(leaves, repeats=2)
    assert rows and all(op in plan.graph for op, _, _ in rows)
    assert all(t >= 0 and b >= 0 for _, t, b in rows)
    assert {plan.graph.nodes[op]["op"] for op, _, _ in rows} >= {"matmul", "relu"}


# ---- the scalar fast path ------------------------------------------------------------------

def _chain(n):
    lines = ["input x : []", "t0 = x"]
    for i in range(1, n + 1):
        lines.append(f"t{i} = " + (f"t{i - 1} * 1.0001", f"t{i - 1} + 0.001", f"relu(t{i - 1})")[(i - 1) % 3])
    lines.append(f"output t{n}")
    return "\n".join(lines)


def test_scalar_chain_runs_on_python_floats_with_identical_numbers():
    model = graphdsl.parse(_chain(300))
    plan, leaves, _ = _grad_plan(model, {"x": 0.5}, wrt=["x"])
    assert plan.program.scalar
    _assert_same(plan.run(leaves), plan.run_reference(leaves))
    for x in (-0.3, 0.0, -0.0, 1e-300, 7.0):
        leaves = {"x": np.asarray(x)}
        _assert_same(plan.run(leaves), plan.run_reference(leaves))


SCALAR_OPS = """
input x : []
input y : []
a = relu(x) + relu(-x) * 3.0 - relu(y)
b = x * y / (y - 0.25) + x / y
c = (x > y) + (x <= 0.0) * 2.0 + (x == y) - (x != 0.5)
d = abs(x) * square(y) - x ** 2 + y ** 3 + exp(x * 0.1) + log(y * y + 1.0) + sqrt(y * y + 2.0)
e = maximum(x, y) * minimum(x, 0.0) + tanh(x) + sigmoid(y) + sin(x) * cos(y)
J = a + b + c + d + e
output J
"""


@pytest.mark.parametrize("x, y", [(0.5, 2.0), (-1.5, 0.25), (0.0, -0.0), (-0.0, 3.0), (2.0, 2.0),
                                  (1e308, 1e308), (float("nan"), 1.0), (float("inf"), -2.0), (0.3, 0.0)])
def test_scalar_fast_path_agrees_with_numpy_on_edge_values(x, y):
    model = graphdsl.parse(SCALAR_OPS)
    plan, _, _ = _grad_plan(model, {"x": 0.5, "y": 2.0}, wrt=["x", "y"])
    assert plan.program.scalar
    leaves = {"x": np.asarray(x), "y": np.asarray(y)}
    with np.errstate(all="ignore"):
        _assert_same(plan.run(leaves, check_finite=False), plan.run_reference(leaves))


def test_scalar_relu_matches_numpy_signs_of_zero_and_nan():
    model = graphdsl.parse("input x : []\nJ = relu(x) * 1.0 + 0.0 * x\noutput J")
    plan, _, _ = _grad_plan(model, {"x": 1.0}, wrt=["x"])
    for x in (-0.0, 0.0, -2.0, float("nan"), 3.0):
        leaves = {"x": np.asarray(x)}
        _assert_same(plan.run(leaves, check_finite=False), plan.run_reference(leaves))


def test_sum_and_mean_of_a_number_keep_numpys_sign_of_zero():
    """np.sum(-0.0) and np.mean(-0.0) are +0.0 (the identity 0.0 is added): the compiled program must
    not drop them as no-ops. Found by the fuzzer: `var(argmin(w2) * w3)` with a scalar w3 < 0 gave
    dL/dw3 = -0.0 in the reference schedule and +0.0 in the program."""
    model = graphdsl.parse("param w2 : [3]\nparam w3 : []\nL = var(argmin(w2) * w3) + sum(w3 * 0.0)\n"
                           "output L")
    plan, _, _ = _grad_plan(model, {"w2": np.zeros(3), "w3": -1.0}, wrt=["w2", "w3"])
    for w3 in (-0.35, 0.35, -0.0):
        leaves = {"w2": np.array([-1.7, -1.3, -1.4]), "w3": np.asarray(w3)}
        _assert_same(plan.run(leaves, check_finite=False), plan.run_reference(leaves))  # program, reference


def test_long_plans_are_split_into_chunks_with_the_same_results(monkeypatch):
    monkeypatch.setattr(pysource_module, "CHUNK", 7)
    model = graphdsl.parse(_chain(120))
    plan, leaves, _ = _grad_plan(model, {"x": 0.5}, wrt=["x"])
    assert plan.source_code.count("def _c") > 10
    _assert_same(plan.run(leaves), plan.run_reference(leaves))
    for name, (text, shapes) in MODELS.items():
        model = graphdsl.parse(text)
        plan, leaves, _ = _grad_plan(model, _values(shapes))
        assert plan.source_code.count("def _c") > 1, name
        _assert_same(plan.run(leaves), plan.run_reference(leaves))


# ---- errors are those of the reference schedule --------------------------------------------------

def test_first_nonfinite_node_is_named():
    model = graphdsl.parse("input x : [2]\na = x * 2.0\nb = log(a)\nJ = sum(b * b)\noutput J")
    with pytest.raises(GraphDSLError) as err:
        model.eval({"x": [1.0, -1.0]})
    diag = err.value.diagnostics[0]
    assert diag.code == "E302" and "`b`" in diag.message and diag.span is not None
    out = model.eval({"x": [1.0, -1.0]}, check_finite=False)
    assert math.isnan(float(out["J"]))


def test_scalar_nonfinite_is_reported_too():
    model = graphdsl.parse("input x : []\ny = x / (x - 1.0)\nJ = y * 2.0\noutput J")
    with pytest.raises(GraphDSLError) as err:
        model.eval({"x": 1.0})
    assert err.value.diagnostics[0].code == "E302"
    assert math.isinf(float(model.eval({"x": 1.0}, check_finite=False)["J"]))


def test_too_large_is_refused_before_allocating():
    model = graphdsl.parse("dim n = 100000\ninput x : [n]\ny = outer(x, x)\noutput y")
    with pytest.raises(GraphDSLError) as err:
        model.eval({"x": np.zeros(100000)})
    assert err.value.diagnostics[0].code == "E303"


def test_missing_value_is_e304():
    model = graphdsl.parse("input x : [2]\ny = x * 2.0\noutput y")
    compiled, _ = model.compile({"x": [1.0, 2.0]})
    plan = Plan(compiled.built.graph, compiled.built.outputs)
    with pytest.raises(GraphDSLError) as err:
        plan.run({})
    assert err.value.diagnostics[0].code == "E304"


def test_results_with_large_finite_values_are_not_mistaken_for_overflow():
    model = graphdsl.parse("input x : [3]\ny = x * 1.0e154\noutput y")
    out = model.eval({"x": [1e150, -2e150, 3.0]})  # the sum of squares overflows; the values do not
    assert np.all(np.isfinite(out["y"]))


# ---- graphdsl grad --profile ---------------------------------------------------------------------

def test_grad_profile_prints_time_per_node_and_memory_held(capsys):
    from graphdsl.cli import main

    code = main(["grad", str(EXAMPLES / "d2l_mlp.gdsl"), "--load", str(EXAMPLES / "d2l_mlp.json"), "--profile"])
    text = capsys.readouterr().out
    assert code == 0
    assert "time per node" in text and "memory held for the backward pass" in text
    assert "matmul#" in text and "share" in text and "z = W1 @ x" in text
    assert "held for the backward pass:" in text and "peak" in text


def test_grad_profile_json_is_data(capsys):
    from graphdsl.cli import main

    code = main(["grad", str(EXAMPLES / "d2l_mlp.gdsl"), "--load", str(EXAMPLES / "d2l_mlp.json"), "--profile",
                 "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["of"] == "J"
    assert abs(sum(n["share"] for n in report["nodes"]) - 1.0) < 1e-9
    assert {h["value"] for h in report["held"]} >= {"h"}
    assert report["held_bytes"] > 0 and report["peak_bytes"] > 0
    assert {n["phase"] for n in report["nodes"]} == {"forward", "backward"}


def test_tanh_derivative_before_tanh_in_the_schedule():
    """grad() inside a program can schedule tanh'(x) before tanh(x): the compiled program must not
    read tanh(x) before it exists (found by the fuzzer after the tanh' rewrite)."""
    model = graphdsl.parse("param w : [] = randn()\ninput x : [] = 0.126\n"
                           "L = grad(sum(tanh(x) * w), x)\noutput L")
    first = model.grad({}, of="L", wrt=["x"])
    second = model.grad({}, of="L", wrt=["x"])  # the compiled program
    w = model.leaf_values(*model.compile({}), 0)["w"]
    by_hand = -2 * np.tanh(0.126) * (1 - np.tanh(0.126) ** 2) * w  # d/dx of w (1 - tanh(x)^2)
    assert second[1]["x"] == first[1]["x"]
    assert np.isclose(second[1]["x"], by_hand, rtol=1e-12, atol=0)

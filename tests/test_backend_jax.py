"""`--backend jax`: the plan's own schedule run by JAX (graphdsl/interop/jax_backend.py).

On every example and on finite-difference models covering every op, the values and
gradients equal the NumPy backend's (the plan's reference schedule) to 1e-10 relative,
as the backend runs them (one jax.jit over the whole schedule) and, on the examples, op
by op too; through Model.eval/grad/train (backend="jax") and the command line.
"""
from __future__ import annotations

import functools
import json

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import graphdsl  # noqa: E402
from graphdsl.diagnostics import GraphDSLError  # noqa: E402
from graphdsl.interop.jax_backend import run_plan  # noqa: E402
from graphdsl.interop.jax_ops import JAX  # noqa: E402
from graphdsl.interop.schedule import export_program  # noqa: E402
from op_samples import CASES, EXAMPLES, ROOT, ZERO_CASES, case_values, cli_without, example  # noqa: E402
from test_hostile import run_cli  # noqa: E402  (the CLI in process: exit code, stdout, stderr)
from interop_cases import cli_grad_agrees, rel_error  # noqa: E402
from test_export_jax import covering_cases  # noqa: E402

RTOL = 1e-10


def plan_and_leaves(model, values, of=None, wrt=None):
    program = export_program(model, values, with_grads=True, of=of, wrt=wrt)
    return program.plan, {lf.node: lf.value for lf in program.leaves}


def op_by_op(plan, leaves):
    """The schedule in JAX without jit: each step dispatched on its own."""
    slots = [None] * plan.nslots
    for name, s in plan.leaves:
        slots[s] = jax.numpy.asarray(plan.leaf_value(leaves, name))
    for op_id, (_, ins, out) in zip(plan.step_ops, plan.steps):
        slots[out] = JAX[plan.graph.nodes[op_id]["op"]](*[slots[i] for i in ins], **plan.static_args(op_id))
    return [np.asarray(slots[s]) for s in plan.target_slots]


def check(plan, leaves, eager=True):
    want = plan.run_reference(leaves)
    got = run_plan(plan, leaves)
    assert len(got) == len(want)
    for target, g, w in zip(plan.targets, got, want):
        assert g.dtype == np.float64
        assert rel_error(g, w) <= RTOL, f"{target}: {rel_error(g, w):.2e}"
    if eager:
        for target, g, w in zip(plan.targets, op_by_op(plan, leaves), want):
            assert rel_error(g, w) <= RTOL, f"op by op, {target}: {rel_error(g, w):.2e}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples(path):
    model, values = example(path)
    check(*plan_and_leaves(model, values, of=model.outputs[0]), eager=path.stem != "lenet")  # lenet: 10 s op by op


@functools.lru_cache(maxsize=None)
def check_case(case_id):
    c = next(c for c in CASES + ZERO_CASES if c.id == case_id)
    model, top, values = case_values(c)
    check(*plan_and_leaves(model, values, of=top, wrt=c.wrt_names()), eager=False)


@pytest.mark.parametrize("op", sorted(set(JAX) - {"count"}))
def test_every_op_runs(op):
    check_case(covering_cases()[op].id)


def test_the_jitted_schedule_is_prepared_once_per_plan():
    model, values = example(EXAMPLES[0])
    plan, leaves = plan_and_leaves(model, values, of=model.outputs[0])
    first = run_plan(plan, leaves)
    prepared = plan._jax_prepared[(None, "float64")]
    again = run_plan(plan, leaves)
    assert plan._jax_prepared[(None, "float64")] is prepared
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


def test_float32_computes_in_float32():
    model, values = example(EXAMPLES[0])
    plan, leaves = plan_and_leaves(model, values, of=model.outputs[0])
    want = plan.run_reference(leaves)
    for g, w in zip(run_plan(plan, leaves, dtype="float32"), want):
        assert 0 < rel_error(g, w) <= 1e-5 or np.array_equal(g, w)


def test_an_unknown_device_is_a_clear_error():
    model, values = example(EXAMPLES[0])
    plan, leaves = plan_and_leaves(model, values, of=model.outputs[0])
    with pytest.raises(GraphDSLError, match="no such device") as err:
        run_plan(plan, leaves, device="nosuchdevice")
    assert err.value.diagnostics[0].code == "E312"
    code, _, text = run_cli("eval", EXAMPLES[0], "--load", EXAMPLES[0].with_suffix(".json"), "--backend", "jax",
                            "--device", "nosuchdevice")
    assert code == 1 and "E312" in text and "devices JAX sees: cpu" in text and "Traceback" not in text
    np.testing.assert_array_equal(run_plan(plan, leaves, device="cpu")[0], run_plan(plan, leaves)[0])


# ---- through the model and the command line (interop/backends.py) ---------------------------------

def test_the_command_line_takes_backend_jax():
    path, data = ROOT / "examples" / "torch_mlp.gdsl", ROOT / "examples" / "torch_mlp.json"
    cli_grad_agrees("jax", RTOL)
    losses = {}
    for backend in ("numpy", "jax"):
        code, out, err = run_cli("train", path, "--load", data, "--lr", "0.05", "--steps", "20", "--json",
                                 "--backend", backend)
        assert code == 0, err
        losses[backend] = json.loads(out)["loss"]
    assert rel_error(losses["jax"], losses["numpy"]) <= RTOL


def test_model_methods_take_backend_jax_and_errors_stay_located():
    model = graphdsl.parse("input x : [2]\ny = log(x)\noutput y\n", name="nan.gdsl")
    np.testing.assert_allclose(model.eval({"x": np.array([1.0, 2.0])}, backend="jax")["y"], [0.0, np.log(2.0)],
                               rtol=1e-15)
    with pytest.raises(GraphDSLError) as err:  # the NaN JAX computed, located by the NumPy schedule
        model.eval({"x": np.array([1.0, -1.0])}, backend="jax")
    assert err.value.diagnostics[0].code == "E302" and err.value.diagnostics[0].span.line == 2


def test_labels_and_indices_out_of_range_are_numpys_located_error():
    model = graphdsl.parse("input z : [2, 3]\ninput t : [2]\ninput i : [2]\n"
                           "J = cross_entropy(z, t) + sum(take(z, i))\noutput J\n", name="labels.gdsl")
    z = np.arange(6.0).reshape(2, 3)
    for t, i, what in (([0, 5], [0, 1], "onehot labels must be whole numbers"), ([0, 1], [0, 7], "index 7")):
        for backend in ("numpy", "jax"):
            with pytest.raises(GraphDSLError, match=what) as err:
                model.eval({"z": z, "t": np.array(t, float), "i": np.array(i, float)}, backend=backend)
            assert err.value.diagnostics[0].code == "E305" and err.value.diagnostics[0].span.line == 4
    good = {"z": z, "t": np.array([0.0, 2.0]), "i": np.array([-1.0, 1.0])}
    assert rel_error(model.eval(good, backend="jax")["J"], model.eval(good)["J"]) <= RTOL


def test_without_jax_the_backend_names_the_extra():
    path = ROOT / "examples" / "d2l_mlp.gdsl"
    run = cli_without("jax", "grad", path, "--load", path.with_suffix(".json"), "--backend", "jax")
    assert run.returncode == 1, run.stderr
    assert "E311" in run.stderr and "pip install 'graphdsl[jax]'" in run.stderr and "Traceback" not in run.stderr


def test_an_op_jax_lacks_is_a_located_error(monkeypatch):
    from graphdsl.interop import jax_ops
    monkeypatch.delitem(jax_ops.JAX, "relu")
    model, values = example(ROOT / "examples" / "d2l_mlp.gdsl")
    with pytest.raises(GraphDSLError, match="`relu` has no counterpart in JAX") as err:
        model.grad(values, backend="jax")
    assert err.value.diagnostics[0].code == "E116" and err.value.diagnostics[0].span.line == 17

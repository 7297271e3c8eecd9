"""The schedule exporters and backends read (graphdsl/interop/schedule.py), `require`, and `python -m graphdsl`."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphdsl
from graphdsl.diagnostics import GraphDSLError
from graphdsl.interop import require
from graphdsl.interop.schedule import DimRef, export_program, run_steps
from graphdsl.ops import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.gdsl") if p.with_suffix(".json").exists())
NUMPY_TABLE = {name: op.forward for name, op in REGISTRY.items()}


def _load(path):
    values = {k: np.asarray(v, dtype=float) for k, v in json.loads(path.with_suffix(".json").read_text()).items()}
    return graphdsl.load(path), values


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_named_steps_compute_what_grad_computes(path):
    model, values = _load(path)
    if len(model.outputs) != 1:
        pytest.skip("several outputs: grad needs of=")
    program = export_program(model, values, with_grads=True)
    env = run_steps(program, NUMPY_TABLE, {leaf.var: leaf.value for leaf in program.leaves})
    value, grads = model.grad(values)
    (out_var,) = program.outputs.values()
    np.testing.assert_array_equal(env[out_var], value)
    assert set(program.grads) == {f"grad_{model.outputs[0]}_{w}" for w in grads}
    for w, g in grads.items():
        np.testing.assert_array_equal(env[program.grads[f"grad_{model.outputs[0]}_{w}"]], g)
    vars_ = [leaf.var for leaf in program.leaves] + [s.out for s in program.steps]
    assert len(vars_) == len(set(vars_)) and all(v.isidentifier() for v in vars_)


def test_free_dims_are_references_read_from_an_input():
    model, values = _load(ROOT / "examples" / "d2l_mlp.gdsl")
    program = export_program(model, values, with_grads=True)
    assert program.free_dims == {"b": ("x", 1)}
    x = next(leaf for leaf in program.leaves if leaf.var == "x")
    assert x.shape == (4, DimRef("b"))
    unreduce = [s for s in program.steps if s.op == "unreduce" and DimRef("b") in s.kw["like"]]
    assert unreduce and unreduce[0].bound["like"] == (3, 2)
    assert {s.out for s in program.steps} >= {"z", "h", "o", "L", "s", "J", "dJ_dW1"}


def test_a_missing_library_names_the_extra():
    with pytest.raises(GraphDSLError) as err:
        require("torch_that_does_not_exist", "export --to torch")
    assert err.value.diagnostics[0].code == "E311"
    assert "pip install 'graphdsl[torch_that_does_not_exist]'" in str(err.value)
    with pytest.raises(GraphDSLError, match=r"graphdsl\[onnx\]"):
        require("onnxruntime.does_not_exist", "export --to onnx")


def test_python_dash_m_graphdsl_is_the_command_line():
    run = subprocess.run([sys.executable, "-m", "graphdsl", "check", str(ROOT / "examples" / "d2l_mlp.gdsl")],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0 and run.stdout.startswith("ok:"), run.stderr

"""`--backend torch`: the same plan run by PyTorch gives the NumPy backend's numbers to 1e-10.

Every example with data (eval, grad and a few training steps), and the op cases of
tests/test_ops_fd.py (every public op, gradients up to third order), through
Model.eval/grad/train's `backend=` and through the command line.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import graphdsl
from graphdsl.diagnostics import GraphDSLError

torch = pytest.importorskip("torch")
from interop_cases import cli_grad_agrees, EXAMPLES, ROOT, load_values, op_cases, op_model, rel_error  # noqa: E402
from test_hostile import run_cli  # noqa: E402

RTOL = 1e-10


def close(got, want) -> float:
    return rel_error(got, want)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_eval_grad_and_train(path):
    model, values = graphdsl.load(path), load_values(path)
    want = model.eval(values)
    got = model.eval(values, backend="torch")
    for name in want:
        assert close(got[name], want[name]) <= RTOL, name
    of = model.outputs[0]
    value, grads = model.grad(values, of=of)
    t_value, t_grads = model.grad(values, of=of, backend="torch", device="cpu")
    assert close(t_value, value) <= RTOL
    for w in grads:
        assert close(t_grads[w], grads[w]) <= RTOL, w
    if model.params:
        a = model.train(values, lr=0.01, steps=5, of=of)
        b = model.train(values, lr=0.01, steps=5, of=of, backend="torch")
        assert close(b.losses, a.losses) <= RTOL and close(b.loss, a.loss) <= RTOL
        for name in a.params:
            assert close(b.params[name], a.params[name]) <= RTOL, name


@pytest.mark.parametrize("c, order", op_cases(lambda c: [max(c.orders)]))
def test_every_op_case(c, order):
    model, top, values = op_model(c, order)
    value, grads = model.grad(values, of=top, wrt=c.wrt_names())
    t_value, t_grads = model.grad(values, of=top, wrt=c.wrt_names(), backend="torch")
    assert close(t_value, value) <= RTOL
    for w in grads:
        assert close(t_grads[w], grads[w]) <= RTOL, w
    y = model.eval(values, outputs=["Y"])["Y"]
    assert close(model.eval(values, outputs=["Y"], backend="torch")["Y"], y) <= RTOL


def test_the_command_line_takes_backend_and_device():
    path, data = ROOT / "examples" / "torch_mlp.gdsl", ROOT / "examples" / "torch_mlp.json"
    cli_grad_agrees("torch", RTOL)
    code, out, err = run_cli("train", path, "--load", data, "--lr", "0.05", "--steps", "20", "--json",
                             "--backend", "torch")
    assert code == 0, err
    code, out_np, err = run_cli("train", path, "--load", data, "--lr", "0.05", "--steps", "20", "--json")
    assert close(json.loads(out)["loss"], json.loads(out_np)["loss"]) <= RTOL


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_device_the_machine_lacks_is_a_clear_error():
    path, data = ROOT / "examples" / "d2l_mlp.gdsl", ROOT / "examples" / "d2l_mlp.json"
    code, out, err = run_cli("eval", path, "--load", data, "--backend", "torch", "--device", "cuda")
    assert code == 1 and "E312" in err and "--device `cuda`" in err and "Traceback" not in err
    code, out, err = run_cli("eval", path, "--load", data, "--backend", "torch", "--device", "nonsense")
    assert code == 1 and "E312" in err and "Traceback" not in err
    code, out, err = run_cli("grad", path, "--load", data, "--device", "cuda")
    assert code == 1 and "E312" in err and "--backend torch or jax" in err
    with pytest.raises(GraphDSLError, match="E312"):
        graphdsl.load(path).eval(load_values(path), backend="torch", device="cuda")


def test_errors_stay_located():
    """A NaN computed by torch is located by the NumPy schedule (E302), as without a backend."""
    model = graphdsl.parse("input x : [2]\ny = log(x)\noutput y\n", name="nan.gdsl")
    with pytest.raises(GraphDSLError) as err:
        model.eval({"x": np.array([1.0, -1.0])}, backend="torch")
    assert err.value.diagnostics[0].code == "E302" and err.value.diagnostics[0].span.line == 2


def test_without_torch_the_backend_names_the_extra():
    run = subprocess.run([sys.executable, "-c", "import sys; sys.modules['torch'] = None\n"
                          "from graphdsl.cli import main; sys.exit(main(sys.argv[1:]))",
                          "eval", str(ROOT / "examples" / "d2l_mlp.gdsl"), "--load",
                          str(ROOT / "examples" / "d2l_mlp.json"), "--backend", "torch"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1, run.stderr
    assert "E311" in run.stderr and "pip install 'graphdsl[torch]'" in run.stderr and "Traceback" not in run.stderr

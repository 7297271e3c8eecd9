"""`graphdsl export --to torch`: the exported module against graphdsl's own numbers.

The file is written to tmp_path and imported from there (importlib); its outputs
and torch.autograd's `backward()` gradients must equal `Model.eval`/`Model.grad`
to 1e-9 relative in float64, for every example with data and for the op cases of
tests/test_ops_fd.py (every public op; their second-order models put the internal
ops reverse mode emits into the forward, so those are exported too).
"""
from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphdsl
from graphdsl import __version__
from graphdsl.diagnostics import GraphDSLError
from graphdsl.interop.schedule import export_program

torch = pytest.importorskip("torch")
from graphdsl.interop import torch_export, torch_ops  # noqa: E402
import test_ops_fd as opcases  # noqa: E402
from interop_cases import EXAMPLES, ROOT, load_values, op_cases, op_model, rel_error  # noqa: E402

RTOL = 1e-9


def export_module(model, values, folder: Path, name="exported", **kw):
    """Export `model` to folder/name.py and import it from there."""
    program = export_program(model, values, **{k: v for k, v in kw.items() if k != "dtype"})
    path = folder / f"{name}.py"
    path.write_bytes(torch_export.export(program, dtype=kw.get("dtype", "float64"), version=__version__))
    spec = importlib.util.spec_from_file_location(f"{name}_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path


def torch_inputs(model, values):
    return {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in values.items()
            if k in model.inputs}


def check_against_graphdsl(model, values, module, of=None, outputs=None):
    """Outputs equal Model.eval's; backward() of `of` gives Model.grad's gradients (params, or inputs)."""
    net = module.Model().eval()
    inputs = torch_inputs(model, values)
    got = net(**inputs)
    want = model.eval(values)
    for name in outputs or want:
        assert rel_error(got[name].detach().numpy(), want[name]) <= RTOL, name
    of = of or model.outputs[0]
    value, grads = model.grad(values, of=of)
    got[of].backward()
    found = dict(net.named_parameters()) if model.params else inputs
    for w, g in grads.items():
        tensor = found[w] if w in found else found[w + "_"]  # a param named like nn.Module's attributes
        t = torch.zeros_like(tensor) if tensor.grad is None else tensor.grad
        assert rel_error(t.numpy(), g) <= RTOL, f"d{of}/d{w}"
    return net


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_exports_with_the_same_numbers(path, tmp_path):
    model, values = graphdsl.load(path), load_values(path)
    module, exported = export_module(model, values, tmp_path)
    check_against_graphdsl(model, values, module)
    text = exported.read_text()
    assert text.splitlines()[0] == f"# Exported by graphdsl {__version__} from {path} (graphdsl export --to torch)."
    assert "class Model(torch.nn.Module)" in text
    for name in model.params:
        assert f"self.{name} = torch.nn.Parameter(" in text


@pytest.mark.parametrize("c, order", op_cases())
def test_every_op_exports_with_the_same_numbers(c, order, tmp_path):
    model, top, values = op_model(c, order)
    module, _ = export_module(model, values, tmp_path)
    check_against_graphdsl(model, values, module, of=top)


def test_every_public_op_is_exported_by_the_op_models():
    seen = set()
    for param in op_cases():
        c, order = param.values
        seen |= opcases._ops_in(opcases._top_model(c, order)[0])
    public = {name for name, op in graphdsl.ops.REGISTRY.items() if not op.internal} - torch_ops.NOT_IN_TORCH
    assert sorted(public - seen) == []


def test_the_file_imports_only_torch_and_the_standard_library(tmp_path):
    model = graphdsl.load(ROOT / "examples" / "lenet.gdsl")
    _, path = export_module(model, load_values(ROOT / "examples" / "lenet.gdsl"), tmp_path)
    tree = ast.parse(path.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"torch"} | set(sys.stdlib_module_names), imported
    # and it runs where neither graphdsl nor numpy can be imported
    run = subprocess.run([sys.executable, "-c", (
        "import sys; sys.modules['numpy'] = None; sys.modules['graphdsl'] = None\n"
        "import importlib.util as u; s = u.spec_from_file_location('m', sys.argv[1]); m = u.module_from_spec(s)\n"
        "s.loader.exec_module(m); import torch\n"
        "out = m.Model()(x=torch.zeros(4, 1, 8, 8, dtype=torch.float64), labels=torch.zeros(4))\n"
        "print(sorted(out))"), str(path)], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(sorted(model.outputs))


def test_a_different_batch_size_than_exported(tmp_path):
    path = ROOT / "examples" / "d2l_mlp.gdsl"
    model, values = graphdsl.load(path), load_values(path)
    module, _ = export_module(model, values, tmp_path)
    rng = np.random.default_rng(5)
    wider = {"x": rng.standard_normal((4, 7)), "y": rng.standard_normal((3, 7))}
    net = module.Model()
    got = net(**{k: torch.tensor(v) for k, v in wider.items()})["J"]
    assert rel_error(got.detach().numpy(), model.eval(wider)["J"]) <= RTOL


def test_params_come_from_the_seed_or_from_load(tmp_path):
    path = ROOT / "examples" / "d2l_mlp.gdsl"
    model, values = graphdsl.load(path), load_values(path)
    module, _ = export_module(model, values, tmp_path, seed=3)
    net = module.Model()
    drawn = model.leaf_values(*model.compile(values), seed=3)
    np.testing.assert_array_equal(net.W1.detach().numpy(), drawn["W1"])
    loaded = {**values, "W1": np.full((5, 4), 0.25)}
    module, _ = export_module(model, loaded, tmp_path, name="loaded")
    np.testing.assert_array_equal(module.Model().W1.detach().numpy(), loaded["W1"])


def test_inputs_with_defaults_may_be_omitted(tmp_path):
    model = graphdsl.load(ROOT / "examples" / "mazur.gdsl")
    module, _ = export_module(model, {}, tmp_path)
    got = module.Model()()["E"]
    assert rel_error(got.detach().numpy(), model.eval()["E"]) <= RTOL
    given = {"x": np.array([0.5, -0.25])}
    got = module.Model()(x=torch.tensor(given["x"]))["E"]
    assert rel_error(got.detach().numpy(), model.eval(given)["E"]) <= RTOL
    with pytest.raises(TypeError, match="unknown inputs \\['z'\\]"):
        module.Model()(z=torch.zeros(2))


NAMES = """dim n = 3
dim b
input x : [n, b]
input bias : [n] = [0.1, 0.2, 0.3]
param training : [n, n] = randn(std=0.5)
param θ : [n] = randn()
const count = 2.0
index = training @ x
norm = sum(tanh(index) * count, axis=1) + θ + bias
F = norm / b
torch = sum(F ** 2) + sum(norm(training, axis=0))
dtype = mean(x, axis=0)
output torch, dtype
"""


def test_names_that_python_torch_or_the_file_use(tmp_path):
    """Values named like nn.Module's attributes, the file's imports and locals, or the table's helpers."""
    model = graphdsl.parse(NAMES, name="names.gdsl")
    values = {"x": np.arange(6.0).reshape(3, 2) / 7}
    module, path = export_module(model, values, tmp_path)
    net = check_against_graphdsl(model, values, module, of="torch")
    assert net.training is False and module.Model().training is True  # the param did not replace the flag
    assert "# `training` is taken by nn.Module" in path.read_text()


def test_float32_and_to_device(tmp_path):
    path = ROOT / "examples" / "torch_mlp.gdsl"
    model, values = graphdsl.load(path), load_values(path)
    module, path32 = export_module(model, values, tmp_path, dtype="float32")
    assert "dtype=torch.float32" in path32.read_text()
    net = module.Model()
    assert all(p.dtype == torch.float32 for p in net.parameters())
    out = net(**{k: torch.tensor(v) for k, v in values.items() if k in model.inputs})
    (name,) = model.outputs
    assert out[name].dtype == torch.float32
    assert rel_error(out[name].detach().numpy(), model.eval(values)[name]) <= 1e-5
    net64 = net.to(torch.float64).to("cpu")  # .to() moves the params, buffers and what forward makes
    out = net64(**{k: torch.tensor(v) for k, v in values.items() if k in model.inputs})
    assert out[name].dtype == torch.float64


def test_dropout_is_the_identity_in_eval_mode_and_drops_in_training(tmp_path):
    text = "dim b\ninput x : [3, b]\nparam W : [3, 3] = randn()\nh = dropout(W @ x, p=0.5)\nJ = sum(h * h)\noutput J\n"
    model = graphdsl.parse(text, name="drop.gdsl")
    values = {"x": np.ones((3, 4))}
    module, _ = export_module(model, values, tmp_path)
    check_against_graphdsl(model, values, module)
    net = module.Model().train()
    torch.manual_seed(0)
    assert net(x=torch.ones(3, 40))["J"].item() != net.eval()(x=torch.ones(3, 40))["J"].item()


def test_torch_compile(tmp_path):
    """torch.compile traces the module (dynamo) and its backward (AOTAutograd, fake tensors, dynamic shapes);
    aot_eager stops before inductor's C++ code generation, which takes a minute and is torch's own business."""
    path = ROOT / "examples" / "torch_mlp.gdsl"
    model, values = graphdsl.load(path), load_values(path)
    module, _ = export_module(model, values, tmp_path)
    net = module.Model()
    compiled = torch.compile(net, backend="aot_eager", dynamic=True)
    out = compiled(**{k: torch.tensor(v) for k, v in values.items()})["J"]
    out.backward()
    value, grads = model.grad(values)
    assert rel_error(out.detach().numpy(), value) <= RTOL
    for name, g in grads.items():
        assert rel_error(getattr(net, name).grad.numpy(), g) <= RTOL, name
    fewer = {k: v[:4] for k, v in values.items()}  # another batch size, the same compiled module
    got = compiled(**{k: torch.tensor(v) for k, v in fewer.items()})["J"]
    assert rel_error(got.detach().numpy(), model.eval(fewer)["J"]) <= RTOL


def test_distributed_data_parallel_wraps_it(tmp_path):
    import torch.distributed as dist

    path = ROOT / "examples" / "d2l_mlp.gdsl"
    model, values = graphdsl.load(path), load_values(path)
    module, _ = export_module(model, values, tmp_path)
    store = dist.HashStore()
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        ddp = torch.nn.parallel.DistributedDataParallel(module.Model())
        ddp(x=torch.tensor(values["x"]), y=torch.tensor(values["y"]))["J"].backward()
        _, grads = model.grad(values)
        assert rel_error(ddp.module.W2.grad.numpy(), grads["W2"]) <= RTOL
    finally:
        dist.destroy_process_group()


def test_an_op_torch_lacks_is_a_located_error_and_no_file(tmp_path, monkeypatch):
    monkeypatch.delitem(torch_ops.TORCH, "relu")
    out = tmp_path / "model.py"
    run = _cli(["export", str(ROOT / "examples" / "d2l_mlp.gdsl"), "--to", "torch", "-o", str(out),
                "--load", str(ROOT / "examples" / "d2l_mlp.json")])
    assert run[0] == 1
    assert "E116" in run[1] and "`relu` has no counterpart in torch" in run[1] and "d2l_mlp.gdsl:" in run[1]
    assert not out.exists() and list(tmp_path.iterdir()) == []


def _cli(argv):
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from graphdsl.cli import main

    err, outs = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(outs):
        code = main(argv)
    return code, err.getvalue() + outs.getvalue()


def test_without_torch_the_command_names_the_extra(tmp_path):
    out = tmp_path / "model.py"
    run = subprocess.run([sys.executable, "-c", "import sys; sys.modules['torch'] = None\n"
                          "from graphdsl.cli import main; sys.exit(main(sys.argv[1:]))",
                          "export", str(ROOT / "examples" / "d2l_mlp.gdsl"), "--to", "torch", "-o", str(out)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1, run.stderr
    assert "E311" in run.stderr and "pip install 'graphdsl[torch]'" in run.stderr
    assert "Traceback" not in run.stderr and not out.exists()


def test_the_cli_writes_a_module_that_runs(tmp_path):
    out = tmp_path / "mlp.py"
    code, text = _cli(["export", str(ROOT / "examples" / "torch_mlp.gdsl"), "--to", "torch", "-o", str(out),
                       "--load", str(ROOT / "examples" / "torch_mlp.json")])
    assert code == 0, text
    spec = importlib.util.spec_from_file_location("mlp_cli", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = graphdsl.load(ROOT / "examples" / "torch_mlp.gdsl")
    check_against_graphdsl(model, load_values(ROOT / "examples" / "torch_mlp.gdsl"), module)


def test_export_program_errors_stay_graphdsl_errors():
    model = graphdsl.parse("input x : [2]\ny = undefined_fn(x)\noutput y\n", name="bad.gdsl")
    with pytest.raises(GraphDSLError):
        torch_export.export(export_program(model, {"x": np.ones(2)}), version=__version__)


def test_export_needs_no_data(tmp_path):
    """The inputs' values are not part of the file: without --load the schedule is compiled on stand-ins
    (free dims at 1), and the module then runs on data of any batch size with the seed's params."""
    out = tmp_path / "nodata.py"
    code, text = _cli(["export", str(ROOT / "examples" / "d2l_mlp.gdsl"), "--to", "torch", "-o", str(out),
                       "--seed", "4", "--dim", "m=7"])
    assert code == 0, text
    spec = importlib.util.spec_from_file_location("nodata", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = graphdsl.load(ROOT / "examples" / "d2l_mlp.gdsl", dims={"m": 7})
    values = load_values(ROOT / "examples" / "d2l_mlp.gdsl")
    got = module.Model()(**{k: torch.tensor(v) for k, v in values.items()})["J"]
    assert rel_error(got.detach().numpy(), model.eval(values, seed=4)["J"]) <= RTOL

"""`graphdsl export --to jax`: the exported module's numbers equal graphdsl's (graphdsl/interop/jax_export.py).

For every example and the finite-difference models of every public op (and the internal
ops in-language grad puts in a forward): forward()'s outputs equal Model.eval's, and
jax.grad of the output equals Model.grad's gradients, to 1e-9 relative (float64, x64),
eagerly and under jax.jit. The file imports only jax and the standard library.
"""
from __future__ import annotations

import ast
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)

import graphdsl  # noqa: E402
from graphdsl.interop import jax_ops  # noqa: E402
from graphdsl.interop.jax_export import export  # noqa: E402
from graphdsl.interop.schedule import export_program  # noqa: E402
from graphdsl.ops import REGISTRY  # noqa: E402
from interop_cases import rel_error  # noqa: E402  (relative to the larger magnitude, absolute below 1e-4)
from op_samples import CASES, EXAMPLES, ROOT, ZERO_CASES, case_values, cli_without, example  # noqa: E402
from test_hostile import run_cli  # noqa: E402  (the CLI in process: exit code, stdout, stderr)

RTOL = 1e-9
STDLIB = set(sys.stdlib_module_names)


def load_module(code: bytes, name="exported"):
    module = types.ModuleType(name)
    exec(compile(code, f"<{name}>", "exec"), module.__dict__)
    return module


def check_against_graphdsl(model, values, of, wrt, jit_too=True):
    """Export, run the module, compare values and jax.grad with graphdsl's; the module's source."""
    program = export_program(model, values)
    code = export(program, version=graphdsl.__version__)
    mod = load_module(code)
    wanted = model.eval(values)
    value, grads = model.grad(values, of=of, wrt=wrt)
    params = mod.init_params()
    inputs = {lf.name: values[lf.name] for lf in program.leaves if lf.role == "input" and lf.name in values}
    runs = [("eager", mod.forward)] + ([("jit", jax.jit(mod.forward))] if jit_too else [])
    for how, forward in runs:
        out = forward(params, inputs)
        assert set(out) == set(wanted)
        for name, want in wanted.items():
            assert rel_error(out[name], want) <= RTOL, f"{how} {name}: {rel_error(out[name], want):.2e}"
        names = set(grads)
        by_params = {k: v for k, v in params.items() if k in names}
        by_inputs = {k: jax.numpy.asarray(v) for k, v in inputs.items() if k in names}

        def scalar(p, i):
            return forward({**params, **p}, {**inputs, **i})[of]
        grad = jax.grad(scalar, argnums=(0, 1))
        gp, gi = (jax.jit(grad) if how == "jit" else grad)(by_params, by_inputs)
        for k, g in {**gp, **gi}.items():
            assert rel_error(g, grads[k]) <= RTOL, f"{how} d{of}/d{k}: {rel_error(g, grads[k]):.2e}"
    return code


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples(path):
    model, values = example(path)
    check_against_graphdsl(model, values, model.outputs[0], None)


@functools.lru_cache(maxsize=None)
def covering_cases() -> dict:
    """op -> the finite-difference case (at its highest order) chosen to export it: few cases, every op."""
    ops_of = {}
    for c in CASES + ZERO_CASES:
        model, _, values = case_values(c)
        steps = export_program(model, values).steps
        ops_of[c.id] = (c, {s.op for s in steps}, len(steps))
    left, chosen = set().union(*(ops for _, ops, _ in ops_of.values())), {}
    while left:  # greedy cover: the case with the most ops not yet covered, the shorter on ties
        c, ops, _ = max(ops_of.values(), key=lambda t: (len(t[1] & left), -t[2]))
        chosen.update({op: c for op in ops & left})
        left -= ops
    return chosen


@functools.lru_cache(maxsize=None)
def check_case(case_id):
    c = next(c for c in CASES + ZERO_CASES if c.id == case_id)
    model, top, values = case_values(c)
    return check_against_graphdsl(model, values, top, c.wrt_names())


@pytest.mark.parametrize("op", sorted(set(REGISTRY) - {"opaque", "count"}))
def test_every_op_exports(op):
    """Each op in the forward of a model that exports (count appears only while sizes are unknown)."""
    check_case(covering_cases()[op].id)


def test_the_file_imports_only_jax_and_the_standard_library():
    model, values = example(EXAMPLES[0])
    code = export(export_program(model, values), version=graphdsl.__version__)
    imported = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert "jax" in imported and imported - {"jax"} <= STDLIB, imported


# ---- the module's interface ------------------------------------------------------------------

def exported(path, values=None, **kw):
    """(model, values, module) for an example exported with export_program's keywords `kw`."""
    model = graphdsl.load(path)
    values = example(path)[1] if values is None else values
    dtype = kw.pop("dtype", "float64")
    return model, values, load_module(export(export_program(model, values, **kw), dtype=dtype,
                                             version=graphdsl.__version__))


D2L = ROOT / "examples" / "d2l_mlp.gdsl"


def test_a_batch_size_other_than_the_exported_one_under_jit():
    model, _, mod = exported(D2L)
    rng = np.random.default_rng(5)
    for b in (7, 1):
        wider = {"x": rng.standard_normal((4, b)), "y": rng.standard_normal((3, b))}
        got = jax.jit(mod.forward)(mod.init_params(), wider)["J"]
        assert rel_error(got, model.eval(wider)["J"]) <= RTOL


def test_params_come_from_the_seed_or_from_load():
    model, values, mod = exported(D2L, seed=3)
    assert mod.SEED == 3
    for seed in (3, 0):  # the export's seed (init_params()'s default) and another
        drawn = model.leaf_values(*model.compile(values), seed=seed)
        for name in ("W1", "W2"):
            np.testing.assert_array_equal(np.asarray(mod.init_params(seed)[name]), drawn[name])
    assert mod.init_params()["W1"].dtype == np.float64
    np.testing.assert_array_equal(np.asarray(mod.init_params()["W1"]), np.asarray(mod.init_params(3)["W1"]))
    assert not np.array_equal(np.asarray(mod.init_params(0)["W1"]), np.asarray(mod.init_params(3)["W1"]))
    loaded = {**values, "W1": np.full((5, 4), 0.25)}
    _, _, mod = exported(D2L, loaded)
    for seed in (0, 4):
        np.testing.assert_array_equal(np.asarray(mod.init_params(seed)["W1"]), loaded["W1"])


def params_with_random_inits(model) -> list:
    return [name for name, decl in model.built.decls.items() if decl.kind == "param" and decl.init is not None
            and getattr(decl.init, "func", None) in ("randn", "uniform", "glorot", "he")]


WITH_PARAMS = [p for p in EXAMPLES if any(d.kind == "param" for d in graphdsl.load(p).built.decls.values())]


@pytest.mark.parametrize("path", WITH_PARAMS, ids=lambda p: p.stem)
def test_init_params_of_any_seed_is_graphdsls_initial_values_bit_for_bit(path):
    """For every example with params: init_params(seed) of one export (seed 0) equals what graphdsl
    draws with that seed, with nothing loaded and with the first drawn param loaded (its draw is
    made and dropped, so the params after it are drawn as graphdsl draws them)."""
    model, values = example(path)
    random = params_with_random_inits(model)
    settings = [values]
    if random:
        compiled, given = model.compile(values)
        first = random[0]
        shape = np.shape(model.leaf_values(compiled, given, seed=0)[first])
        settings.append({**values, first: np.linspace(-1.0, 1.0, int(np.prod(shape))).reshape(shape)})
    for given_values in settings:
        _, _, mod = exported(path, given_values, seed=0)
        compiled, given = model.compile(given_values)
        for seed in (0, 3, 11):
            want = model.leaf_values(compiled, given, seed=seed)
            got = mod.init_params(seed)
            assert list(got) == [n for n in mod.PARAMS]
            for name, value in got.items():
                np.testing.assert_array_equal(np.asarray(value), want[name], err_msg=f"{name}, seed {seed}")
                if name in given_values and name in model.built.decls:
                    np.testing.assert_array_equal(np.asarray(value), np.asarray(given_values[name], float))


def test_inputs_with_defaults_may_be_omitted_and_unknown_ones_are_refused():
    model, _, mod = exported(ROOT / "examples" / "mazur.gdsl", {})
    params = mod.init_params()
    assert rel_error(mod.forward(params, {})["E"], model.eval()["E"]) <= RTOL
    given = {"x": np.array([0.5, -0.25])}
    assert rel_error(jax.jit(mod.forward)(params, given)["E"], model.eval(given)["E"]) <= RTOL
    with pytest.raises(KeyError, match=r"unknown \['z'\]"):
        mod.forward(params, {"z": np.zeros(2)})
    _, _, mod = exported(D2L)
    with pytest.raises(KeyError, match=r"missing \['y'\]"):
        mod.forward(mod.init_params(), {"x": np.zeros((4, 2))})


def test_float32():
    model, values, mod = exported(ROOT / "examples" / "torch_mlp.gdsl", dtype="float32")
    params = mod.init_params()
    assert mod.DTYPE == jax.numpy.float32 and all(p.dtype == np.float32 for p in params.values())
    inputs = {k: v for k, v in values.items() if k in model.inputs}
    (name,) = model.outputs
    out = jax.jit(mod.forward)(params, inputs)[name]
    assert out.dtype == np.float32 and rel_error(out, model.eval(values)[name]) <= 1e-5


def test_with_grads_adds_nothing_jax_differentiates_the_forward():
    model, values = example(D2L)
    texts = [export(export_program(model, values, with_grads=w), version="0") for w in (False, True)]
    assert texts[0] == texts[1]


def test_an_in_language_grad_is_part_of_the_forward():
    text = "input a : [3]\nparam w : [3] = randn()\nJ = sum(grad(sum(tanh(w * a) ** 2), w) * w)\noutput J\n"
    model = graphdsl.parse(text, name="inner_grad.gdsl")
    values = {"a": np.array([0.3, -1.2, 2.0])}
    code = check_against_graphdsl(model, values, "J", None)
    assert b"reverse mode, for grad(...) in the model" in code


def test_values_named_as_the_module_names_things_are_renamed():
    text = ("dim n\ninput x : [n, 3]\nconst table = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 1, 1], [2, 2, 2]]\n"
            "param inputs : [3] = randn()\nmask = (x > 0) * x\nwhere = relu(mask @ inputs + 1)\n"
            "params = sum(where * where) + sum(table @ [1.0, 2.0, 3.0]) * n\n"
            "float = params + sum([1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18] * 0.5)\noutput float, params\n")
    model = graphdsl.parse(text, name="clash.gdsl")
    values = {"x": np.random.default_rng(0).standard_normal((5, 3))}
    code = check_against_graphdsl(model, values, "float", None).decode()
    for line in ("v_mask = jnp.multiply(t3, x)", "t3 = mask(jnp.greater, x, 0.0)", "inputs_2 = params['inputs']",
                 "v_float = jnp.add(params_2, t28)", "t26 = jnp.multiply(_LITERALS['t23'], 0.5)"):
        assert f"    {line}" in code


def test_a_free_dim_no_input_of_the_outputs_has_keeps_its_size():
    model = graphdsl.parse("dim b\ninput y : [b]\ninput x : [3]\nJ = sum(x) / b + sum(ones([b]))\noutput J\n",
                           name="unused_input.gdsl")
    code = check_against_graphdsl(model, {"x": np.arange(3.0), "y": np.ones(4)}, "J", None)
    assert b"    b = 4  # dim b: its size at export" in code
    mod = load_module(code)
    assert float(mod.forward({}, {"x": np.arange(3.0), "y": np.ones(4)})["J"]) == 3 / 4 + 4  # y: known, unread


# ---- the command line -------------------------------------------------------------------------

def test_the_cli_writes_a_module_that_runs_without_graphdsl_as_docs_interop_says(tmp_path):
    """docs/interop.md's train_jax.py, run where graphdsl is not importable, gives graphdsl train's loss."""
    for suffix in (".gdsl", ".json"):
        shutil.copy(D2L.with_suffix(suffix), tmp_path)
    out = tmp_path / "mlp.py"
    code, _, err = run_cli("export", tmp_path / "d2l_mlp.gdsl", "--to", "jax", "-o", out, "--load",
                           tmp_path / "d2l_mlp.json")
    assert code == 0, err
    head = out.read_text().splitlines()[0]
    assert "d2l_mlp.gdsl, exported to JAX by graphdsl " + graphdsl.__version__ in head
    doc = (ROOT / "docs" / "interop.md").read_text()
    (tmp_path / "train_jax.py").write_text(re.search(r"\(train_jax\.py\):\s*```python\n(.*?)```", doc, re.S).group(1))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # graphdsl is not importable there
    run = subprocess.run([sys.executable, "train_jax.py"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert f"$ python train_jax.py\n{run.stdout.strip()}\n" in doc
    code, text, err = run_cli("train", D2L, "--load", D2L.with_suffix(".json"), "--lr", "0.1", "--steps", "100",
                              "--json")
    assert rel_error(float(run.stdout.split(":")[1]), json.loads(text)["loss"]) <= 1e-10


def test_an_op_jax_lacks_is_a_located_error_and_no_file(tmp_path, monkeypatch):
    monkeypatch.delitem(jax_ops.JAX, "relu")
    out = tmp_path / "model.py"
    code, _, text = run_cli("export", D2L, "--to", "jax", "-o", out, "--load", D2L.with_suffix(".json"))
    assert code == 1
    assert "E116" in text and "`relu` has no counterpart in JAX" in text and "d2l_mlp.gdsl:" in text
    assert list(tmp_path.iterdir()) == []


def test_without_jax_the_command_names_the_extra(tmp_path):
    out = tmp_path / "model.py"
    run = cli_without("jax", "export", D2L, "--to", "jax", "-o", out)
    assert run.returncode == 1, run.stderr
    assert "E311" in run.stderr and "pip install 'graphdsl[jax]'" in run.stderr
    assert "Traceback" not in run.stderr and not out.exists()

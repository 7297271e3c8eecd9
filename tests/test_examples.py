"""Every example: check, eval, grad (against finite differences), a short train, render,
and the numbers each example's source publishes."""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

import graphdsl
from graphdsl.cli import main
from graphdsl.commands.evaluate import gradcheck
from graphdsl.train import train
from graphdsl.values import load_file

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NAMES = sorted(p.stem for p in EXAMPLES.glob("*.gdsl"))
GIVEN = "oneliner"  # the design card's one-liner, verbatim: phi and loss are left undefined on purpose


def load(name):
    model = graphdsl.load(EXAMPLES / f"{name}.gdsl")
    path = EXAMPLES / f"{name}.json"
    return model, (load_file(str(path)) if path.exists() else {})


def test_the_examples_are_all_here():
    want = {"d2l_mlp", "oneliner", "one_neuron", "mazur", "numpy_layer", "torch_mlp", "softmax_regression", "xor",
            "rnn", "attention", "layernorm", "lenet", "char_gru", "lstm", "causal_attention"}
    assert want <= set(NAMES)


@pytest.mark.parametrize("name", [n for n in NAMES if n != GIVEN])
def test_header_says_what_and_where_from(name):
    lines = (EXAMPLES / f"{name}.gdsl").read_text(encoding="utf-8").splitlines()
    header = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line)
    assert header and header[0].startswith(f"# {name}.gdsl:"), "the first line names the file and says what it is"
    text = " ".join(header)
    assert "Shows" in text or "shows" in text
    assert any(w in text for w in ("From", "from", "Dive into Deep Learning", "Mazur")), "say where it comes from"
    assert "graphdsl " in text, "give a command to run"


@pytest.mark.parametrize("name", NAMES)
def test_documented(name):
    doc = (ROOT / "docs" / "examples.md").read_text(encoding="utf-8")
    assert f"examples/{name}.gdsl" in doc


@pytest.mark.parametrize("name", NAMES)
def test_check(name, capsys):
    assert main(["check", str(EXAMPLES / f"{name}.gdsl")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: ")


@pytest.mark.parametrize("name", [n for n in NAMES if n != GIVEN])
def test_eval_grad_train(name):
    model, values = load(name)
    out = model.eval(values)
    assert out and all(np.all(np.isfinite(v)) for v in out.values())
    value, grads = model.grad(values)
    assert np.ndim(value) == 0 and grads and set(grads) == set(model.params)
    assert all(np.all(np.isfinite(g)) for g in grads.values())
    assert max(np.abs(g).max() for g in grads.values()) > 0, "some gradient is not zero"
    worst = gradcheck(model, values)
    assert max(worst.values()) < 1e-5, worst
    result = train(model, values, lr=0.05, steps=20)
    assert result.steps == 20 and result.loss < result.losses[0]


def test_the_oneliner_checks_but_needs_definitions(capsys):
    model = graphdsl.load(EXAMPLES / "oneliner.gdsl")
    codes = {w.code for w in model.warnings}
    assert {"W001", "W002"} <= codes  # implicit inputs, undefined phi and loss
    with pytest.raises(graphdsl.GraphDSLError):
        model.eval({"x": np.ones((4, 2)), "y": np.ones((3, 2)), "W1": np.ones((5, 4)), "W2": np.ones((3, 5)),
                    "lam": 0.01})


def _render():
    try:
        render = importlib.import_module("graphdsl.render")
    except ImportError:
        return None
    return render if hasattr(render, "render_model") else None


@pytest.mark.parametrize("name", NAMES)
def test_render(name, tmp_path):
    if _render() is None:
        pytest.skip("graphdsl.render is not there yet")
    model, values = load(name)
    out = tmp_path / f"{name}.svg"
    model.render(values=values or None, view="both").save(out)
    assert out.read_text(encoding="utf-8").lstrip().startswith(("<?xml", "<svg"))


# ---- the numbers the sources publish ---------------------------------------------------------------

def test_mazur_published_forward_and_gradients():
    model, _ = load("mazur")
    out = model.eval(outputs=["h", "o", "E"])
    assert np.allclose(out["h"], [0.593269992, 0.596884378], atol=1e-9)
    assert np.allclose(out["o"], [0.75136507, 0.772928465], atol=1e-8)
    assert float(out["E"]) == pytest.approx(0.298371109, abs=1e-9)
    _, grads = model.grad()
    assert grads["W2"][0, 0] == pytest.approx(0.082167041, abs=1e-9)  # dE/dw5
    assert grads["W1"][0, 0] == pytest.approx(0.000438568, abs=1e-9)  # dE/dw1


def test_numpy_layer_as_the_chain_rule_gives_it():
    model, values = load("numpy_layer")
    compiled, given = model.compile(values)
    leaves = model.leaf_values(compiled, given)
    X, Y, W, bias = values["X"], values["Y"], leaves["weights"], leaves["bias"]
    assert np.all((0 <= W) & (W < 1)) and np.all((0 <= bias) & (bias < 1))  # np.random.rand
    out = 1 / (1 + np.exp(-(X @ W + bias)))
    dout = 2 * (out - Y) / out.size
    delta = dout * out * (1 - out)
    _, grads = model.grad(values)
    assert np.allclose(grads["weights"], X.T @ delta) and np.allclose(grads["bias"], delta.sum(axis=0))
    result = train(model, values, lr=0.1, steps=500)
    assert result.loss < 0.6 * result.losses[0]


def test_layernorm_and_attention_match_pytorch():
    torch = pytest.importorskip("torch")
    model, values = load("layernorm")
    compiled, given = model.compile(values)
    p = model.leaf_values(compiled, given)
    a = torch.tensor(p["W"] @ values["x"]).T  # examples as rows for PyTorch
    y = torch.nn.functional.layer_norm(a, (4,), torch.tensor(p["gamma"][:, 0]), torch.tensor(p["beta"][:, 0]),
                                       eps=1e-5)
    assert np.allclose(model.eval(values, outputs=["y"])["y"], y.numpy().T, atol=1e-12)

    model, values = load("attention")
    compiled, given = model.compile(values)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in model.leaf_values(compiled, given).items()
         if k in ("Wq", "Wk", "Wv")}
    X, target = torch.tensor(values["X"]), torch.tensor(values["target"])
    Q, K, V = X @ p["Wq"], X @ p["Wk"], X @ p["Wv"]
    out = torch.softmax(Q @ K.T / np.sqrt(2), dim=-1) @ V
    loss = torch.nn.functional.mse_loss(out, target)
    loss.backward()
    value, grads = model.grad(values)
    assert float(value) == pytest.approx(loss.item(), rel=1e-12)
    for k in p:
        assert np.allclose(grads[k], p[k].grad.numpy(), rtol=1e-10, atol=1e-13), k


def test_rnn_shares_weights_across_time():
    model, values = load("rnn")
    compiled, _ = model.compile(values)
    calls = compiled.built.graph.graph.get("calls", {})
    assert sorted(calls) == ["cell#1", "cell#2", "cell#3"]
    result = train(model, values, lr=0.2, steps=300)
    assert result.loss < 0.25 * result.losses[0]


def test_softmax_regression_and_torch_mlp_learn():
    model, values = load("softmax_regression")
    assert train(model, values, lr=0.5, steps=200).loss < 0.1
    model, values = load("torch_mlp")
    result = train(model, values, lr=0.1, steps=300)
    assert result.loss < 0.5 * result.losses[0]

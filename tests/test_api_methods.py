"""The Python API as NumPy/PyTorch users expect it: summary, train, equations, gradcheck, errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import graphdsl
from graphdsl import GraphDSLError

from test_api import mlp_by_hand

ROOT = Path(__file__).resolve().parents[1]
D2L = ROOT / "examples" / "d2l_mlp.gdsl"


@pytest.fixture
def model():
    return graphdsl.load(D2L)


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    return {"x": rng.normal(size=(4, 6)), "y": rng.normal(size=(3, 6)),
            "W1": rng.normal(size=(5, 4)) * 0.5, "W2": rng.normal(size=(3, 5)) * 0.5}


# ---- the summary -------------------------------------------------------------------

def test_repr_is_a_summary_table(model):
    lines = repr(model).splitlines()
    rows = {line.split()[0]: line.split() for line in lines[4:-2]}
    assert rows["W1"] == ["W1", "param", "[m=5,", "d=4]", "20"]
    assert rows["W2"][-1] == "15" and rows["x"][-1] == "?"  # x has the free dim b
    assert rows["J"][:2] == ["J", "output"]
    assert lines[-1] == f"total params: {5 * 4 + 3 * 5}"


def test_param_count_is_the_sum_of_the_params_sizes():
    m = graphdsl.parse("dim n = 7, k = 3\ninput x : [n]\nparam A : [k, n]\nparam c : [k]\ny = sum(A @ x + c)")
    summary = m.summary()
    assert summary.param_count == 7 * 3 + 3 == sum(np.prod(s) for s in [(3, 7), (3,)])
    assert [r.kind for r in summary.rows] == ["input", "param", "param", "output"]


def test_repr_html_is_the_same_table(model):
    html = model._repr_html_()
    assert html.count("<tr>") == len(model.summary().rows) + 2  # header, rows, total
    assert "<td>W1</td><td>param</td><td>[m=5, d=4]</td>" in html and "<b>35</b>" in html


def test_a_free_param_dim_leaves_the_total_unknown():
    m = graphdsl.parse("dim n\ninput x : [n]\nparam w : [n]\ny = sum(w * x)")
    assert m.summary().param_count is None and repr(m).endswith("total params: ?")


# ---- train / equations / gradcheck ------------------------------------------------------

def test_train_matches_sgd_by_hand(model, data):
    result = model.train(data, lr=0.05, steps=4, optimizer="sgd")
    W1, W2 = data["W1"], data["W2"]
    losses = []
    for _ in range(4):  # plain gradient descent with the hand-derived gradients (D2L 5.3.3)
        J, g1, g2 = mlp_by_hand(W1, W2, data["x"], data["y"])
        losses.append(J)
        W1, W2 = W1 - 0.05 * g1, W2 - 0.05 * g2
    assert isinstance(result.losses, np.ndarray) and result.losses.shape == (4,)
    np.testing.assert_allclose(result.losses, losses, rtol=1e-12)
    np.testing.assert_allclose(result.params["W1"], W1, rtol=1e-12)
    assert result.loss == pytest.approx(mlp_by_hand(W1, W2, data["x"], data["y"])[0], rel=1e-12)
    assert result.history["loss"] is result.losses


def test_train_refuses_an_unknown_option_naming_the_close_one(model, data):
    with pytest.raises(TypeError, match=r"train\(\) got an unknown option `step=`; did you mean `steps=`\?"):
        model.train(data, step=3)


def test_equations_returns_the_commands_text(model, data, capsys):
    eqs = model.equations(data)
    text = str(eqs)
    assert "z = W1 x" in text and "dJ/dW1" in text
    from graphdsl.cli import main

    code = main(["equations", str(D2L), "--load", str(ROOT / "examples/d2l_mlp.json")])
    from_cli = capsys.readouterr().out
    assert code == 0 and str(model.equations(_json_values())) == from_cli
    assert r"\begin" in eqs.latex() or "W_{1}" in eqs.latex()


def _json_values():
    return {k: np.array(v) for k, v in json.loads((ROOT / "examples/d2l_mlp.json").read_text()).items()}


def test_gradcheck_report(model, data):
    report = model.gradcheck(data)
    assert report.ok and set(report.errors) == {"W1", "W2"} and report.worst < 1e-6
    strict = model.gradcheck(data, tol=0.0)  # nothing is exactly 0: every value fails
    assert not strict.ok and strict.failed == ["W1", "W2"] and "FAIL" in repr(strict)


def test_gradcheck_with_wrt_an_input(model, data):
    assert set(model.gradcheck(data, wrt=["x"]).errors) == {"x"}


# ---- errors ------------------------------------------------------------------------

def test_graphdsl_error_is_a_value_error(model):
    assert issubclass(GraphDSLError, ValueError)
    with pytest.raises(ValueError):
        graphdsl.parse("y = (")


@pytest.mark.parametrize("kwargs, words, hint", [
    ({"of": "Q"}, "of='Q': no such value", None),
    ({"of": "j"}, "of='j': no such value", "did you mean `J`?"),
    ({"wrt": "w1"}, "wrt='w1': no such value", "did you mean `W1`?"),
])
def test_argument_errors_name_the_python_argument(model, data, kwargs, words, hint):
    with pytest.raises(GraphDSLError) as info:
        model.grad(data, **kwargs)
    (d,) = info.value.diagnostics
    assert words in d.message and "--" not in str(info.value)
    assert hint is None or hint in d.help


def test_the_cli_still_names_its_flag(capsys):
    from graphdsl.cli import main

    assert main(["grad", str(D2L), "--load", str(ROOT / "examples/d2l_mlp.json"), "--of", "j"]) == 1
    err = capsys.readouterr().err
    assert "--of `j`: no such value" in err and "did you mean `J`?" in err


def test_render_validates_its_options(model):
    with pytest.raises(TypeError) as info:
        model.render(rank_dir="TB")
    message = str(info.value)
    assert "render() got an unknown option `rank_dir=`" in message and "did you mean `rankdir=`?" in message
    assert "render_model" not in message


def test_py_typed_is_shipped():
    assert (ROOT / "graphdsl" / "py.typed").exists()
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["graphdsl"]


def test_public_methods_have_type_hints():
    import inspect

    for name in ("train", "equations", "gradcheck", "summary", "render", "eval", "grad"):
        sig = inspect.signature(getattr(graphdsl.Model, name))
        assert sig.return_annotation is not inspect.Signature.empty, name


# ---- a notebook ------------------------------------------------------------------------

def test_a_notebook_shows_the_summary_table(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
                                          f"import graphdsl\ngraphdsl.load({str(D2L)!r})")]
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
                            ).execute()
    (output,) = nb.cells[0].outputs
    html = output["data"]["text/html"]
    assert "<td>W1</td><td>param</td><td>[m=5, d=4]</td>" in html and "total params" in html
    assert output["data"]["text/plain"].endswith("total params: 35")

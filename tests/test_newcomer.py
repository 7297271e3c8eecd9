"""Diagnostics for NumPy and PyTorch habits (issue 14): one test per reproducer.

Each asserts the code, where the caret points, and the graphdsl spelling the
help offers, which is then checked to be valid graphdsl that means the same.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import graphdsl
from graphdsl import GraphDSLError
from graphdsl.cli import main


def only_error(text: str, values: dict | None = None, dims: dict | None = None):
    with pytest.raises(GraphDSLError) as info:
        model = graphdsl.parse(text, dims=dims)
        model.eval(values)
    (d,) = info.value.errors
    return d


def at(text: str, d) -> str:
    """The source text under the diagnostic's span."""
    line = text.split("\n")[d.span.line - 1]
    return line[d.span.col - 1: d.span.end_col - 1]


# ---- syntax: PyTorch and NumPy spellings ---------------------------------------------------

def test_dim_keyword_is_axis():
    text = "input o : [3]\np = softmax(o, dim=0)"
    d = only_error(text)
    assert d.code == "E005" and at(text, d) == "dim" and "`axis=`" in d.message
    assert d.help == ("write `axis=` (NumPy's spelling): `softmax(o, axis=0)`",)
    fixed = text.replace("dim=0", "axis=0")
    assert graphdsl.parse(fixed).eval({"o": [1.0, 2.0, 3.0]})["p"].sum() == pytest.approx(1.0)


@pytest.mark.parametrize("call, prefix, library, spelled", [
    ("np.dot(W1, x)", "np.dot", "NumPy", "dot(W1, x)"),
    ("torch.relu(W1 @ x)", "torch.relu", "PyTorch", "relu(W1 @ x)"),
    ("F.softmax(W1 @ x)", "F.softmax", "PyTorch", "softmax(W1 @ x)"),
    ("torch.mm(W1, x)", "torch.mm", "PyTorch", "matmul(W1, x)"),
])
def test_module_prefixes_get_the_bare_builtin(call, prefix, library, spelled):
    text = f"input x : [3]\nparam W1 : [2, 3]\nz = {call}"
    d = only_error(text)
    assert d.code == "E003" and at(text, d) == prefix and f"{library} spelling" in d.message
    assert d.help == (f"write `{spelled}`",)
    graphdsl.parse(text.replace(call, spelled))  # the suggestion checks


@pytest.mark.parametrize("call, spelled", [
    ("W1.dot(x)", "W1 @ x"),
    ("x.sum()", "sum(x)"),
    ("x.mean(axis=0)", "mean(x, axis=0)"),
])
def test_method_calls_get_the_function_spelling(call, spelled):
    text = f"input x : [3]\nparam W1 : [2, 3]\nz = {call}"
    d = only_error(text)
    assert d.code == "E003" and at(text, d) == call[:call.index("(")] and "method call" in d.message
    assert f"`{spelled}`" in d.help[0]
    graphdsl.parse(text.replace(call, spelled))


def test_transpose_method_is_dot_t():
    d = only_error("input W : [2, 3]\ny = W.t()")
    assert "`W.T`" in d.help[0]


def test_an_unknown_module_function_says_so():
    d = only_error("input x : [3]\ny = torch.qqq(x)")
    assert "no builtin `qqq`" in d.help[0]


# ---- check: misspelled builtins, initialisers -------------------------------------------------

@pytest.mark.parametrize("name, near", [("ReLU", "relu"), ("Softmax", "softmax"), ("sigmoids", "sigmoid")])
def test_a_capitalised_or_misspelled_builtin_is_an_error_at_check(name, near, tmp_path, capsys):
    path = tmp_path / "m.gdsl"
    path.write_text(f"input z : [3]\ny = {name}(z)\n")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"error[E102]: unknown function `{name}`" in err and f"did you mean `{near}`?" in err


def test_an_unknown_function_that_is_no_near_miss_stays_a_warning():
    model = graphdsl.parse("input z : [3]\ny = mylayer(z)")
    assert [w.code for w in model.warnings] == ["W002"]


def test_positional_initialiser_arguments_name_the_keywords():
    text = "param W : [3] = randn(0.1)\ny = sum(W)"
    d = only_error(text)
    assert d.code == "E103" and at(text, d) == "0.1"
    assert "`mean=`, `std=`" in d.message and "randn(std=0.1)" in d.help[0]
    assert graphdsl.parse("param W : [3] = full(0.5)\ny = sum(W)").eval()["y"] == 1.5  # full(v) stays


# ---- data: shapes, transposed inputs, value files, where sizes come from ---------------------

MLP = "dim d = 4\ndim b\ninput x : [d, b]\nparam W : [3, d] = randn(std=0.1)\ny = sum(W @ x)"


def test_a_transposed_input_says_so_with_both_shapes():
    d = only_error(MLP, {"x": np.ones((2, 4))})
    assert d.code == "E301"
    assert "`x` is declared [d=4, b=?]; its value has shape [2, 4]" in d.notes
    assert d.help[0].startswith("the data is transposed: did you mean `x.T`?")
    graphdsl.parse(MLP).eval({"x": np.ones((2, 4)).T})  # and the transpose is right


def test_a_wrong_size_that_is_no_transpose_gets_no_transpose_hint():
    d = only_error(MLP, {"x": np.ones((5, 2))})
    assert not any("transposed" in h for h in d.help) and "[5, 2]" in d.notes[0]


def test_note_says_a_size_came_from_dims():
    d = only_error(MLP, {"x": np.ones((4, 2))}, dims={"b": 3})
    assert "`b` = 3 comes from the size given for it (b=3: --dim, or dims= in Python)" in d.notes


def test_note_says_a_size_came_from_the_declaration():
    d = only_error(MLP, {"x": np.ones((2, 4))})
    assert "`d` = 4 comes from its declaration (line 1)" in d.notes


def test_note_says_a_size_came_from_another_value():
    text = "dim b\ninput x : [b]\ninput y : [b]\nz = sum(x) + sum(y)"
    d = only_error(text, {"x": np.ones(2), "y": np.ones(3)})
    assert "`b` = 2 comes from `x` axis 0" in d.notes


def test_a_ragged_value_file_names_the_file_the_entry_and_the_row(tmp_path, capsys):
    model, data = tmp_path / "m.gdsl", tmp_path / "data.json"
    model.write_text(MLP)
    data.write_text(json.dumps({"x": [[1, 2], [3, 4], [5]]}))
    assert main(["eval", str(model), "--load", str(data)]) == 1
    err = capsys.readouterr().err
    assert f"`x` in `{data}` is not a rectangular array of numbers: " \
           "row 2 has 1 entry but row 0 has 2" in err
    assert "inhomogeneous" not in err  # not NumPy's words


def test_shape_mismatches_at_check_show_both_full_shapes():
    d = only_error("dim n = 3, m = 4\ninput a : [n]\ninput b : [m]\nc = a + b")
    assert "`a : [n=3]`" in d.message and "`b : [m=4]`" in d.message
    d = only_error("dim n = 3, m = 4\ninput a : [n]\nparam W : [n, m]\nd = W @ a")
    assert "`W : [n=3, m=4]`" in d.message and "`a : [n=3]`" in d.message


# ---- small things ----------------------------------------------------------------------

def test_an_undefined_functions_help_has_as_many_parameters_as_the_call():
    d = only_error("input o : [2]\ninput y : [2]\nJ = loss(o, y)", {"o": [1.0, 2.0], "y": [1.0, 2.0]})
    assert d.code == "E305" and d.help == ("define it before evaluating, e.g. `def loss(a, b) = ...`",)


def test_whole_numbers_print_without_a_trailing_point(tmp_path, capsys):
    path = tmp_path / "m.gdsl"
    path.write_text("J = 14\nK = 0.5\nL = [1, 2.25]\n")
    assert main(["eval", str(path)]) == 0
    rows = {line.split()[0]: line.split(None, 2)[2].rstrip() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows == {"J": "14", "K": "0.5", "L": "[1, 2.25]"}


def test_the_readme_equations_excerpt_is_what_the_command_prints(capsys):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    block = readme.split("$ graphdsl equations examples/d2l_mlp.gdsl\n", 1)[1].split("```", 1)[0]
    shown = [line for line in block.splitlines() if line != "..."]
    assert main(["equations", str(root / "examples/d2l_mlp.gdsl")]) == 0
    printed = capsys.readouterr().out.splitlines()
    start = printed.index(shown[0])
    assert printed[start:start + len(shown)] == shown and start + len(shown) == len(printed)  # no line left out


def test_a_case_slip_in_a_name_gets_did_you_mean():
    text = "input x : [3]\ny = sum(X) + 1"
    with pytest.raises(GraphDSLError) as info:
        graphdsl.parse(text)
    (d,) = info.value.errors
    assert d.code == "E101" and at(text, d) == "X" and d.help == ("did you mean `x`?",)
    model = graphdsl.parse("input x : [3]\ny = sum(x)")
    with pytest.raises(GraphDSLError) as info:
        model.eval({"X": np.ones(3)})
    assert "did you mean `x`?" in info.value.errors[0].help


def test_layer_norm_equations_call_the_mean_by_its_name():
    from pathlib import Path

    from graphdsl.equations import equations

    root = Path(__file__).resolve().parents[1]
    model = graphdsl.load(root / "examples/layernorm.gdsl")
    data = {k: np.array(v) for k, v in json.loads((root / "examples/layernorm.json").read_text()).items()}
    text = str(equations(model, data))
    (line,) = [ln for ln in text.splitlines() if ln.strip().startswith("dJ/da =")]
    assert "(a - mu)" in line and "mean(" not in line
    # and the name stands for that value: mu is NumPy's mean of a over the features
    out = model.eval(data, outputs=["mu", "a"])
    np.testing.assert_allclose(out["mu"], out["a"].mean(axis=0, keepdims=True), rtol=1e-15)


def test_bptt_equations_name_each_steps_repeated_term_once():
    from pathlib import Path

    from graphdsl.equations import equations

    root = Path(__file__).resolve().parents[1]
    model = graphdsl.load(root / "examples/rnn.gdsl")
    data = {k: np.array(v) for k, v in json.loads((root / "examples/rnn.json").read_text()).items()}
    lines = str(equations(model, data, unroll=True)).splitlines()
    assert sum("tanh'(" in line for line in lines) == 3  # once per time step, in its own equation
    assert "  t1 = dJ/dh[3] ⊙ tanh'(W_xh xs[2] + W_hh h[2] + b_h)" in lines
    assert "  dJ/dW_xh = t3 xs[0]ᵀ + t2 xs[1]ᵀ + t1 xs[2]ᵀ" in lines  # summed in the order of the uses
    rolled = str(equations(model, data)).splitlines()  # the loop's body once, in terms of t
    assert "      t1 = dJ/dh[t] ⊙ tanh'(W_xh xs[t-1] + W_hh h[t-1] + b_h)" in rolled
    assert "  dJ/dW_xh = Σ_t t1 xs[t-1]ᵀ" in rolled and "  dJ/db_h = Σ_t sum_b(t1)" in rolled
    # what the equations say, in NumPy: t_k = dJ/dh_k ⊙ (1 - h_k²), dJ/db_h = sum_b(t1 + t2 + t3)
    _, grads = model.grad(data, wrt=["b_h", "W_xh"])
    out = model.eval(data, outputs=["h[1]", "h[2]", "h[3]", "yhat"])
    h = {k: out[f"h[{k}]"] for k in (1, 2, 3)}
    t = []
    leaves = model.leaf_values(*model.compile(data), 0)  # the initialised weights the run used
    W_hh, W_hy = leaves["W_hh"], leaves["W_hy"]
    dh = W_hy.T @ ((out["yhat"] - data["target"]) / 2)  # mse over 4 sequences: 2 (yhat - target) / 4
    for k in (3, 2, 1):
        t.append(dh * (1 - h[k] ** 2))
        dh = W_hh.T @ t[-1]
    np.testing.assert_allclose(grads["b_h"], sum(tk.sum(axis=1, keepdims=True) for tk in t), rtol=1e-12)
    xs = data["xs"]
    np.testing.assert_allclose(grads["W_xh"], sum(tk @ xs[k - 1].T for tk, k in zip(t, (3, 2, 1))), rtol=1e-12)

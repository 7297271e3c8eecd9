"""The command line: exit codes, output formats, and no traceback for any input."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graphdsl.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
D2L = str(EXAMPLES / "d2l_mlp.gdsl")
D2L_DATA = str(EXAMPLES / "d2l_mlp.json")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def write(tmp_path, text, name="m.gdsl"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_check_prints_a_summary(capsys):
    code, out, _ = run(capsys, "check", D2L)
    assert code == 0
    assert "dims: d=4, m=5, q=3, b (free)" in out
    assert "W1" in out and "[m=5, d=4]" in out
    assert "outputs: J" in out


def test_check_json(capsys):
    code, out, _ = run(capsys, "check", D2L, "--error-format", "json")
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["outputs"] == ["J"]
    assert data["declarations"]["W2"] == {"kind": "param", "shape": "[q=3, m=5]", "implicit": False}


def test_check_oneliner_warns_but_passes(capsys):
    code, _, err = run(capsys, "check", str(EXAMPLES / "oneliner.gdsl"))
    assert code == 0
    assert err.count("warning[W001]") == 5 and err.count("warning[W002]") == 2


def test_check_strict_fails_on_warnings(capsys):
    code, _, err = run(capsys, "check", "--strict", str(EXAMPLES / "oneliner.gdsl"))
    assert code == 1 and "error[E101]" in err


def test_model_error_exits_1_with_a_caret(capsys, tmp_path):
    path = write(tmp_path, "input x : [3]\ny = rellu(x)\n")
    code, _, err = run(capsys, "check", path)
    assert code == 1
    assert f"{path}:2:5: error[E102]: unknown function `rellu`" in err
    assert "2 | y = rellu(x)\n  |     ^^^^^" in err


def test_error_format_json(capsys, tmp_path):
    path = write(tmp_path, "input x : [3]\ny = rellu(x)\n")
    code, _, err = run(capsys, "check", path, "--error-format", "json")
    assert code == 1
    (d,) = json.loads(err)["diagnostics"]
    assert (d["code"], d["line"], d["col"]) == ("E102", 2, 5)


@pytest.mark.parametrize("argv", [[], ["check"], ["nonsense", "x"], ["eval", D2L, "--seed", "abc"],
                                  ["eval", D2L, "--dim", "b"]])
def test_usage_errors_exit_2(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse leaves this way
        code = exit_.code
    assert code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_missing_file_and_directory(capsys, tmp_path):
    code, _, err = run(capsys, "check", str(tmp_path / "nope.gdsl"))
    assert code == 1 and "error[E006]" in err
    code, _, err = run(capsys, "check", str(tmp_path))
    assert code == 1 and "is a directory" in err


def test_not_utf8(capsys, tmp_path):
    path = tmp_path / "bad.gdsl"
    path.write_bytes(b"x = 1\ny = \xff\xfe\n")
    code, _, err = run(capsys, "check", str(path))
    assert code == 1 and "not UTF-8" in err and "line 2" in err


def test_eval_json(capsys):
    code, out, _ = run(capsys, "eval", D2L, "--load", D2L_DATA, "--json")
    data = json.loads(out)
    assert code == 0 and set(data) == {"outputs"} and isinstance(data["outputs"]["J"], float)


def test_grad_json_and_save(capsys, tmp_path):
    save = tmp_path / "g.npz"
    code, out, _ = run(capsys, "grad", D2L, "--load", D2L_DATA, "--json", "--save", str(save))
    data = json.loads(out)
    assert code == 0 and data["of"] == "J" and set(data["grads"]) == {"W1", "W2"}
    with np.load(save, allow_pickle=False) as saved:
        np.testing.assert_allclose(saved["W1"], np.array(data["grads"]["W1"]), rtol=1e-15)


def test_grad_table(capsys):
    code, out, _ = run(capsys, "grad", D2L, "--load", D2L_DATA, "--wrt", "W2")
    assert code == 0 and out.startswith("J = ") and "W2" in out and "W1" not in out


def test_set_and_dim(capsys):
    code, out, _ = run(capsys, "eval", D2L, "--set", "x=[[1],[2],[3],[4]]", "--set", "y=[[0],[1],[0]]",
                       "--dim", "m=7", "--json")
    assert code == 0 and json.loads(out)["outputs"]["J"] > 0


def test_wrong_data_shape_names_value_dim_axis_and_sizes(capsys):
    code, _, err = run(capsys, "eval", D2L, "--load", D2L_DATA, "--set", "y=[[1, 0, 0]]")
    assert code == 1
    assert "error[E301]" in err and "`y`" in err and "axis 0" in err and "dim `q` is 3" in err


def test_missing_input(capsys):
    code, _, err = run(capsys, "eval", D2L)
    assert code == 1 and "no value for input `x`" in err


def test_nonfinite_is_located(capsys, tmp_path):
    path = write(tmp_path, "input x : [2]\ny = log(x)\nz = sum(y * 2)\n")
    code, _, err = run(capsys, "eval", path, "--set", "x=[1, -1]")
    assert code == 1 and "error[E302]" in err and ":2:5:" in err and "`y`" in err and "NaN" in err
    code, out, _ = run(capsys, "eval", path, "--set", "x=[1, -1]", "--allow-nonfinite", "--json")
    assert code == 0 and json.loads(out)["outputs"]["z"] == "NaN"


def test_too_large_is_refused_before_allocating(capsys, tmp_path):
    path = write(tmp_path, "dim n = 100000\nparam W : [n, n] = randn()\nJ = sum(W)\n")
    code, _, err = run(capsys, "eval", path)
    assert code == 1 and "error[E303]" in err and "10,000,000,000" in err


def test_opaque_function_is_refused_at_eval(capsys):
    code, _, err = run(capsys, "eval", str(EXAMPLES / "oneliner.gdsl"),
                       "--set", "W1=[[1]]", "--set", "x=[1]", "--set", "W2=[[1]]", "--set", "y=[1]",
                       "--set", "lam=0.1")
    assert code == 1 and "error[E305]" in err and "cannot evaluate `phi`" in err and "def phi" in err


def test_gradcheck_passes(capsys):
    code, out, _ = run(capsys, "gradcheck", D2L, "--load", D2L_DATA)
    assert code == 0 and "W1" in out and "FAIL" not in out


def test_gradcheck_fails_and_names_the_node(capsys, tmp_path):
    # A kink exactly at the evaluation point: relu(w) at w = 0 has no derivative there.
    path = write(tmp_path, "param w : [1] = [0.0]\nJ = sum(relu(w))\n")
    code, _, err = run(capsys, "gradcheck", path)
    assert code == 1 and "error[E307]" in err and "`w`" in err


@pytest.mark.skipif(shutil.which("graphdsl") is None, reason="console script not installed")
def test_console_script_runs_from_another_directory(tmp_path):
    proc = subprocess.run(["graphdsl", "check", D2L], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_module_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "graphdsl.cli", "check", D2L], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr

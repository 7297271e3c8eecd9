"""Unbounded memory and time (issue 10, items 11-13): refused early with a clear diagnostic, or answered.

Every command-line test runs graphdsl in a subprocess under a 3 GB address-space
limit (as `ulimit -v 3000000` on a shared server) and a 30 s timeout, and asserts
exit 1 with the right diagnostic or exit 0 with the right answer: never exit 3
("a bug in graphdsl"), never a MemoryError traceback, never a hang.
"""
from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphdsl
from graphdsl import GraphDSLError
from graphdsl.bounds import DEFAULT_MAX_OPS, ops_in_text
from graphdsl.memory import parse_size

ROOT = Path(__file__).resolve().parents[1]
ADDRESS_SPACE = 3 * 10 ** 9
TIMEOUT = 30


def _limit_address_space():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run(tmp_path, *argv, timeout=TIMEOUT) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "graphdsl.cli", *map(str, argv)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=_limit_address_space,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert "Traceback" not in proc.stderr and "bug in graphdsl" not in proc.stderr, proc.stderr[-3000:]
    return proc


def refused(proc, code, *words):
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert f"error[{code}]" in proc.stderr, proc.stderr[-3000:]
    for w in words:
        assert w in proc.stderr, f"{w!r} not in:\n{proc.stderr[-3000:]}"


def model(tmp_path, text, name="m.gdsl") -> str:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return name


# ---- 11: the memory of the process, not only of each value ---------------------------------------

TWO_HUGE = "param A : [16000, 16000] = randn()\nparam B : [16000, 16000] = randn()\nJ = sum(A) + sum(B)\n"


@pytest.mark.parametrize("command", ["eval", "grad", "gradcheck", "train"])
def test_two_huge_params_are_refused_by_the_default_budget(tmp_path, command):
    extra = ["--lr", "0.1", "--steps", "1"] if command == "train" else []
    proc = run(tmp_path, command, model(tmp_path, TWO_HUGE), *extra)
    refused(proc, "E310", "more than the memory budget", "`A` [16000, 16000] 1.9 GiB", "`B` [16000, 16000] 1.9 GiB",
            "address-space limit", "--max-memory")


SQUARES = "param W : [1000, 1000] = ones()\nJ = sum(W * W)\n"  # 8 MB of params


@pytest.mark.parametrize("command", ["eval", "grad", "gradcheck", "train"])
def test_max_memory_refuses_below_the_estimate(tmp_path, command):
    extra = ["--lr", "0.1", "--steps", "1"] if command == "train" else []
    proc = run(tmp_path, command, model(tmp_path, SQUARES), "--max-memory", "4M", *extra)
    refused(proc, "E310", "more than the memory budget of 4.0 MiB", "`W` [1000, 1000] 7.6 MiB",
            "--max-memory (Python: max_memory=)")


def test_training_counts_the_optimizers_state(tmp_path):
    """Adam keeps two more arrays per param than SGD: 4 x 7.6 MiB on top of the gradient plan."""
    path = model(tmp_path, SQUARES)
    train = ["train", path, "--lr", "0.25", "--steps", "1", "--max-memory", "60M", "--json"]
    proc = run(tmp_path, *train)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["params"]["W"] == [[0.5] * 1000] * 1000  # W - 0.25 * 2W
    refused(run(tmp_path, *train, "--optimizer", "adam"), "E310", "training with adam needs about",
            "memory budget of 60.0 MiB")


def test_max_memory_above_the_estimate_runs_and_answers(tmp_path):
    path = model(tmp_path, SQUARES)
    proc = run(tmp_path, "eval", path, "--max-memory", "64M", "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"J": 1000000.0' in proc.stdout
    proc = run(tmp_path, "grad", path, "--max-memory", "64M", "--save", "g.npz")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "g.npz")["W"], np.full((1000, 1000), 2.0))  # d/dW sum(W²) = 2W


def test_intermediates_count_towards_the_peak(tmp_path):
    """Small leaves, a large result: the outer product is what does not fit."""
    path = model(tmp_path, "param w : [4000] = ones()\nJ = sum(outer(w, w))\n")  # 128 MB result
    refused(run(tmp_path, "eval", path, "--max-memory", "100M"), "E310", "`outer(w, w)` [4000, 4000] 122.1 MiB")
    proc = run(tmp_path, "eval", path, "--max-memory", "1G", "--json")
    assert proc.returncode == 0 and '"J": 16000000.0' in proc.stdout, proc.stderr


def test_render_with_values_counts_every_value_it_keeps(tmp_path):
    path = model(tmp_path, SQUARES)
    refused(run(tmp_path, "render", path, "--format", "dot", "-o", "m.dot", "--max-memory", "20M"), "E310",
            "`W` [1000, 1000]")
    assert not (tmp_path / "m.dot").exists()


def test_a_memory_error_past_the_estimate_is_a_diagnostic(tmp_path):
    """Raising the budget past the real limit lets NumPy fail: still exit 1, E310, no traceback."""
    proc = run(tmp_path, "eval", model(tmp_path, "param A : [20000, 20000] = ones()\nJ = sum(A)\n"),
               "--max-memory", "100G", "--max-elements", "1000000000")  # 3.2 GB
    refused(proc, "E310", "ran out of memory")


def test_bad_sizes_are_usage_errors(tmp_path):
    proc = run(tmp_path, "eval", model(tmp_path, SQUARES), "--max-memory", "lots")
    assert proc.returncode == 2 and "not a size" in proc.stderr


def test_python_api_checks_max_memory():
    m = graphdsl.parse(SQUARES, max_memory="4M")
    with pytest.raises(GraphDSLError) as info:
        m.eval()
    assert info.value.errors[0].code == "E310"
    assert float(graphdsl.parse(SQUARES, max_memory=64 << 20).eval()["J"]) == 1e6


def test_sizes_parse_in_binary_units():
    assert [parse_size(s) for s in ("4096", "500M", "2G", "1.5GiB", "3k")] == \
           [4096, 500 << 20, 2 << 30, 3 << 29, 3 << 10]


# ---- 12: defs inlined exponentially, counted before building ------------------------------------

def doubling(levels: int, body="x * x") -> str:
    lines = [f"def f0(x) = {body}"] + [f"def f{k}(x) = f{k - 1}(f{k - 1}(x))" for k in range(1, levels)]
    return "\n".join(lines + ["input x : []", f"y = f{levels - 1}(x)", ""])


def test_nineteen_level_doubling_def_is_refused_before_building(tmp_path):
    proc = run(tmp_path, "eval", model(tmp_path, doubling(19)), "--set", "x=1")
    # f0 is one operation, f_k 2^k of them: f17 is the first above 100,000
    refused(proc, "E108", "def `f17` inlines to 131,072 operations", "more than the limit of 100,000",
            "call chain: f17 -> f16 -> f15", "f1 -> f0", "--max-ops")


def test_doubling_defs_within_the_limit_evaluate_exactly(tmp_path):
    """f_k(x) = x + 2^k once inlined: 1,024 additions for ten levels."""
    path = model(tmp_path, doubling(11, body="x + 1"))
    refused(run(tmp_path, "check", path, "--max-ops", "1000"), "E108", "def `f10` inlines to 1,024 operations",
            "limit of 1,000")
    proc = run(tmp_path, "eval", path, "--set", "x=0.5", "--json")
    assert proc.returncode == 0 and '"y": 1024.5' in proc.stdout, proc.stderr


def test_many_calls_of_a_moderate_def_are_counted_by_statement():
    text = doubling(10, body="x + 1") + "".join(f"z{i} = f9(y)\n" for i in range(200))  # 512 each
    with pytest.raises(GraphDSLError) as info:
        graphdsl.parse(text)
    err = info.value.errors[0]
    # y = f9(x) on line 12 and z0.. from line 13, 512 operations each: the 196th passes 100,000 (line 207)
    assert err.code == "E108" and f"{196 * 512:,} operations by line 207" in err.message
    assert "limit of 100,000" in err.message


# ---- 13: many names, long lines, many statements --------------------------------------------------

def test_strict_check_with_thousands_of_undefined_names(tmp_path):
    text = "".join(f"value_{i} = input_value_{i} * 2\n" for i in range(5000))
    proc = run(tmp_path, "check", "--strict", model(tmp_path, text))
    # the first is an implicit input (an error when strict), the others its near misses
    refused(proc, "E101", "`input_value_0` is not declared", "undefined name `input_value_1`",
            "did you mean `input_value_0`?", "20 errors")
    assert proc.stderr.count("error[E101]") == 20


def test_thousands_of_distinct_implicit_inputs_check(tmp_path):
    rng = random.Random(0)
    word = lambda: "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(12))  # noqa: E731
    text = "".join(f"{word()} = {word()} * 2\n" for _ in range(2000))
    proc = run(tmp_path, "check", model(tmp_path, text))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.count("warning[W001]") == 2000
    assert "nodes: 6000 variables, 2000 operators" in proc.stdout


def test_a_million_term_line_is_refused_before_parsing(tmp_path):
    path = model(tmp_path, "input y : []\nz = " + " + ".join(["y"] * 1_000_000) + "\n")
    refused(run(tmp_path, "eval", path, "--set", "y=1"), "E108", "about 999,999 operations",
            "limit of 100,000", "--max-ops 999999")


def test_a_long_line_under_the_limit_sums_exactly(tmp_path):
    path = model(tmp_path, "input y : []\nz = " + " + ".join(["y"] * 20_000) + "\n")
    proc = run(tmp_path, "eval", path, "--set", "y=0.5", "--json")
    assert proc.returncode == 0 and '"z": 10000.0' in proc.stdout, proc.stderr


def chain(n: int) -> str:
    body = "".join(f"h{i} = tanh(h{i - 1}) * w + x\n" for i in range(1, n))
    return f"input x : []\nparam w : [] = randn()\nh0 = x * w\n{body}output h{n - 1}\n"


@pytest.mark.parametrize("argv", [["check"], ["eval", "--set", "x=1"], ["grad", "--set", "x=1"],
                                  ["equations"], ["render", "--format", "dot", "-o", "out.dot"]])
def test_two_hundred_thousand_statements_are_refused_early(tmp_path, argv):
    path = model(tmp_path, chain(200_000))
    refused(run(tmp_path, argv[0], path, *argv[1:]), "E108", "about 599,999 operations",
            "more than the limit of 100,000", "--max-ops")
    assert not (tmp_path / "out.dot").exists()


def test_a_chain_under_the_limit_matches_numpy(tmp_path):
    n = 2_000
    path = model(tmp_path, chain(n).replace("= randn()", "= full(0.5)"))
    proc = run(tmp_path, "eval", path, "--set", "x=0.3", "--json")
    assert proc.returncode == 0, proc.stderr
    h = 0.3 * 0.5
    for _ in range(1, n):
        h = np.tanh(h) * 0.5 + 0.3
    assert json.loads(proc.stdout)["outputs"][f"h{n - 1}"] == pytest.approx(h, rel=1e-12)


def test_grad_of_a_chain_whose_graphs_would_not_fit_is_refused_before_building(tmp_path):
    """98,998 operations pass --max-ops, but reverse mode's graphs need ~28 KiB each: more than 3 GB allows.

    Refused from the text's count (98,999: it also counts the initialiser's call), before parsing.
    """
    path = model(tmp_path, chain(33_000))
    for argv in (["grad", path, "--set", "x=0.3"], ["train", path, "--set", "x=0.3", "--lr", "0.1", "--steps", "1"]):
        refused(run(tmp_path, *argv), "E310", "the graph of 98,999 operations for `grad` needs about 2.6 GiB",
                "address-space limit")
    with pytest.raises(GraphDSLError) as info:  # the API, told nothing of the purpose, checks when grad is called
        graphdsl.parse(chain(33_000), max_memory="1G").grad({"x": 0.3})
    assert info.value.errors[0].code == "E310" and "98,998 operations for `grad`" in info.value.errors[0].message


@pytest.mark.slow
def test_eval_and_grad_of_a_long_chain_finish_under_3_gb(tmp_path):
    """30,000 operations: within every limit, differentiated exactly (d h_n / d x by the chain rule).

    About 10 s of CPU; the timeout is generous for a machine shared by several test runs.
    """
    n = 10_000
    path = model(tmp_path, chain(n).replace("= randn()", "= full(0.5)"))
    proc = run(tmp_path, "grad", path, "--set", "x=0.3", "--wrt", "x", "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    h, dh = 0.3 * 0.5, 0.5  # h0 = x w
    for _ in range(1, n):
        h, dh = np.tanh(h) * 0.5 + 0.3, (1 - np.tanh(h) ** 2) * 0.5 * dh + 1
    out = json.loads(proc.stdout)
    assert out["value"] == pytest.approx(h, rel=1e-12) and out["grads"]["x"] == pytest.approx(dh, rel=1e-9)


def test_text_count_matches_the_built_graph():
    """The count before parsing is the operator count of a model without defs (what the limit means)."""
    text = chain(300) + "y = -h299 ** 2 * x + 1e-5 * sum(h3)  # a - b * c(d)\n"
    m = graphdsl.parse(text)
    operators = sum(1 for _, d in m.graph.nodes(data=True) if d["kind"] == "op")
    assert abs(ops_in_text(text) - operators) <= 3, (ops_in_text(text), operators)
    assert DEFAULT_MAX_OPS == 100_000

"""Loops (`for t in A..B { ... }`) and sequences (`h[t] = ...`): values and gradients against
PyTorch float64 loops (first and second order), the loop against the same model written out by
hand (bit for bit), the metadata every looped node carries, located errors, and the work a
build does per iteration."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import graphdsl
from bits import same_bits
from graphdsl.diagnostics import GraphDSLError
from test_hostile import run_cli
from test_v2_builtins import _rng, check

torch.set_default_dtype(torch.float64)


# ---- values and gradients against PyTorch ------------------------------------------------------------

RNN = """\
dim n = 3, m = 2, T = 12
input X : [m, T]
param W : [n, n]
param U : [n, m]
param c : [n]
param h0 : [n]
h[0] = h0
for t in 1..T {
    h[t] = tanh(W @ h[t-1] + U @ X[:, t-1] + c)
}
J = sum(h[T] ** 2)
"""


def _torch_rnn(W, U, c, h0, X):
    h = h0
    for t in range(X.shape[1]):
        h = torch.tanh(W @ h + U @ X[:, t] + c)
    return (h ** 2).sum()


def _rnn_values(rng, n=3, m=2, T=12):
    return {"W": rng.standard_normal((n, n)) * 0.5, "U": rng.standard_normal((n, m)) * 0.5,
            "c": rng.standard_normal(n) * 0.1, "h0": rng.standard_normal(n) * 0.5,
            "X": rng.standard_normal((m, T))}


def test_rnn_loop_of_12_steps_matches_a_torch_loop_to_second_order(torch_record):
    check(torch_record, "rnn-loop", RNN, _rnn_values(_rng("rnn")), _torch_rnn, ("W", "U", "c", "h0"))


def test_two_layer_rnn_with_nested_loops_and_two_index_sequence(torch_record):
    text = """\
dim n = 3, T = 5, L = 2
input X : [n, T]
param W : [n, n]
param V : [n, n]
for l in 1..L {
    h[l, 0] = 0 * X[:, 0]
}
for t in 1..T {
    h[1, t] = tanh(W @ h[1, t-1] + X[:, t-1])
    for l in 2..L {
        h[l, t] = tanh(W @ h[l, t-1] + V @ h[l-1, t])
    }
}
J = sum(h[L, T] ** 2) + sum(h[1, T][0:2])
"""

    def torch_fn(W, V, X):
        h1 = h2 = torch.zeros(3)
        for t in range(5):
            h1 = torch.tanh(W @ h1 + X[:, t])
            h2 = torch.tanh(W @ h2 + V @ h1)
        return (h2 ** 2).sum() + h1[0:2].sum()

    rng = _rng("rnn2")
    values = {"W": rng.standard_normal((3, 3)) * 0.6, "V": rng.standard_normal((3, 3)) * 0.6,
              "X": rng.standard_normal((3, 5))}
    check(torch_record, "rnn-2-layer", text, values, torch_fn, ("W", "V"))


def test_loop_variable_is_a_constant_in_arithmetic(torch_record):
    text = """\
dim T = 6
param a : [2]
s[0] = a
for t in 1..T {
    s[t] = s[t-1] * 0.5 ** t + sin(t * a) / (t + 1)
}
J = sum(s[T] ** 2) + s[3][1]
"""

    def torch_fn(a):
        s, keep = a, None
        for t in range(1, 7):
            s = s * 0.5 ** t + torch.sin(t * a) / (t + 1)
            keep = s if t == 3 else keep
        return (s ** 2).sum() + keep[1]

    check(torch_record, "loop-constant", text, {"a": np.array([0.7, -1.3])}, torch_fn, ("a",))


def test_embedding_and_gru_loop_with_take(torch_record):
    text = """\
dim V = 7, d = 3, n = 4, T = 6
input tokens : [T]
param E : [V, d]
param Wz : [n, d]
param Uz : [n, n]
param Wr : [n, d]
param Ur : [n, n]
param Wh : [n, d]
param Uh : [n, n]
param Wo : [V, n]
h[0] = 0 * Uz[:, 0]
for t in 1..T-1 {
    x = take(E, tokens[t-1], axis=0)
    z = sigmoid(Wz @ x + Uz @ h[t-1])
    r = sigmoid(Wr @ x + Ur @ h[t-1])
    g = tanh(Wh @ x + Uh @ (r * h[t-1]))
    h[t] = (1 - z) * h[t-1] + z * g
    logit[t] = Wo @ h[t]
}
J = cross_entropy(stack([logit[1], logit[2], logit[3], logit[4], logit[5]], axis=0), tokens[1:T])
"""

    def torch_fn(tokens, E, Wz, Uz, Wr, Ur, Wh, Uh, Wo):
        h, logits = torch.zeros(4), []
        for t in range(5):
            x = E[tokens[t].long()]
            z = torch.sigmoid(Wz @ x + Uz @ h)
            r = torch.sigmoid(Wr @ x + Ur @ h)
            g = torch.tanh(Wh @ x + Uh @ (r * h))
            h = (1 - z) * h + z * g
            logits.append(Wo @ h)
        return torch.nn.functional.cross_entropy(torch.stack(logits), tokens[1:].long())

    rng = _rng("gru")
    values = {"tokens": np.array([3, 0, 6, 3, 1, 5]), "E": rng.standard_normal((7, 3))}
    for name, shape in (("Wz", (4, 3)), ("Uz", (4, 4)), ("Wr", (4, 3)), ("Ur", (4, 4)), ("Wh", (4, 3)),
                        ("Uh", (4, 4)), ("Wo", (7, 4))):
        values[name] = rng.standard_normal(shape) * 0.5
    check(torch_record, "gru-take", text, values, torch_fn, ("E", "Wz", "Uz", "Wr", "Ur", "Wh", "Uh", "Wo"),
          second=False)


FREE_T = """\
dim n = 3, m = 2
dim T
input X : [m, T]
param W : [n, n] = randn(std=0.5)
param U : [n, m] = randn(std=0.5)
h[0] = 0 * U[:, 0]
for t in 1..T {
    h[t] = tanh(W @ h[t-1] + U @ X[:, t-1])
}
J = sum(h[T] ** 2)
output J
"""


def test_free_dim_loop_from_a_value_file_and_from_dim(tmp_path, torch_record):
    rng = _rng("free-T")
    X = rng.standard_normal((2, 7))
    W, U = rng.standard_normal((3, 3)) * 0.5, rng.standard_normal((3, 2)) * 0.5
    (tmp_path / "rnn.gdsl").write_text(FREE_T)
    np.savez(tmp_path / "data.npz", X=X, W=W, U=U)
    code, out, err = run_cli("grad", tmp_path / "rnn.gdsl", "--load", tmp_path / "data.npz", "--json")
    assert code == 0, err
    got = json.loads(out)
    tensors = {k: torch.tensor(v, requires_grad=k != "X") for k, v in {"X": X, "W": W, "U": U}.items()}
    tj = _torch_rnn(tensors["W"], tensors["U"], torch.zeros(3), torch.zeros(3), tensors["X"])
    tw, tu = torch.autograd.grad(tj, [tensors["W"], tensors["U"]])
    np.testing.assert_allclose(got["value"], tj.item(), rtol=1e-9)
    np.testing.assert_allclose(got["grads"]["W"], tw.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got["grads"]["U"], tu.numpy(), rtol=1e-9, atol=1e-12)
    # --dim T=5 with the first five columns gives the five-step answer
    np.savez(tmp_path / "five.npz", X=X[:, :5], W=W, U=U)
    code, out, err = run_cli("eval", tmp_path / "rnn.gdsl", "--load", tmp_path / "five.npz", "--dim", "T=5",
                             "--json")
    assert code == 0, err
    t5 = _torch_rnn(torch.tensor(W), torch.tensor(U), torch.zeros(3), torch.zeros(3), torch.tensor(X[:, :5]))
    np.testing.assert_allclose(json.loads(out)["outputs"]["J"], t5.item(), rtol=1e-9)


def test_check_without_the_size_warns_and_checks_the_body_once():
    model = graphdsl.parse(FREE_T)
    [warning] = [w for w in model.warnings if w.code == "W005"]
    assert (warning.span.line, warning.span.col) == (7, 13)
    assert "cannot be unrolled yet" in warning.message and "`T` is free" in warning.message
    g = model.built.graph
    looped = {d["loop"] for d in g._node.values() if "loop" in d}
    assert looped == {(("for t#1", "t", 1),)}  # one iteration, checked


def test_eval_without_the_size_is_a_clear_error():
    model = graphdsl.parse("dim T\ninput h0 : [2]\nh[0] = h0\nfor t in 1..T { h[t] = tanh(h[t-1]) }\n"
                           "J = sum(h[T])\n")
    with pytest.raises(GraphDSLError) as info:
        model.eval({"h0": [1.0, 2.0]})
    diag = info.value.errors[0]
    assert diag.code == "E304" and "dim `T` is free" in diag.message
    assert "the loop over `t` at line 4 needs its size" in diag.notes
    assert model.eval({"h0": [1.0, 2.0]}, dims={"T": 2})["J"] == pytest.approx(np.tanh(np.tanh([1, 2])).sum())


def test_a_body_error_in_the_check_build_is_still_found():
    bad = FREE_T.replace("U @ X[:, t-1]", "W @ X[:, t-1]")  # [n=3, n=3] @ [m=2]
    with pytest.raises(GraphDSLError) as info:
        graphdsl.parse(bad)
    assert info.value.errors[0].span.line == 8


# ---- the loop is the model written out ----------------------------------------------------------------

def _unrolled(T):
    lines = RNN.split("h[0] = h0")[0].replace("T = 12", f"T = {T}") + "h0_ = h0\n"
    prev = "h0_"
    for t in range(1, T + 1):
        lines += f"h{t} = tanh(W @ {prev} + U @ X[:, {t - 1}] + c)\n"
        prev = f"h{t}"
    return lines + f"J = sum({prev} ** 2)\n"


def test_the_loop_equals_the_hand_unrolled_model_bit_for_bit():
    values = _rnn_values(_rng("bits"))
    looped = graphdsl.parse(RNN)
    by_hand = graphdsl.parse(_unrolled(12))
    for _ in range(2):  # the first call runs the schedule, the second the compiled program
        (j1, g1), (j2, g2) = looped.grad(values, of="J"), by_hand.grad(values, of="J")
        assert same_bits(j1, j2)
        assert all(same_bits(g1[k], g2[k]) for k in g1)


# ---- metadata -----------------------------------------------------------------------------------------

def test_every_node_in_a_loop_carries_its_frames_and_the_loop_is_described():
    model = graphdsl.parse(RNN)
    compiled, _ = model.compile(_rnn_values(_rng("meta")))
    g = compiled.built.graph
    info = g.graph["loops"]["for t#1"]
    assert (info["var"], info["first"], info["last"], info["parent"], info["call"]) == ("t", 1, 12, None, ())
    assert (info["span"].line, info["span"].col) == (8, 1)
    assert g._node["h[5]"]["name"] == "h[5]" and g._node["h[5]"]["loop"] == (("for t#1", "t", 5),)
    assert "loop" not in g._node["J"] and "loop" not in g._node["W"]
    tanhs = [d for d in g._node.values() if d.get("op") == "tanh"]
    assert sorted(d["loop"][0][2] for d in tanhs) == list(range(1, 13))
    assert len({d["span"] for d in tanhs}) == 1  # one statement, one span
    compiled.built.gb  # reverse mode: the gradient nodes of a looped node carry its frames
    model.grad(_rnn_values(_rng("meta")), of="J")
    back = [d for d in g._node.values() if d["phase"] == "backward" and d.get("op") == "tanh'"]
    assert sorted(d["loop"][0][2] for d in back) == list(range(1, 13))


def test_nested_loops_and_loops_in_defs_get_keys_and_parents():
    text = """\
def f(x) {
    for i in 1..2 { s[i] = x * i }
    return s[1] + s[2]
}
for l in 1..2 {
    for t in 1..3 {
        y[l, t] = f(l * t)
    }
}
J = y[2, 3]
"""
    g = graphdsl.parse(text).built.graph
    loops = g.graph["loops"]
    assert loops["for t#1"]["parent"] == "for l#1"
    keys_in_f = sorted(k for k, v in loops.items() if v["call"])
    assert len(keys_in_f) == 6  # one key per call of f
    first = loops[keys_in_f[0]]
    assert first["parent"] == "for t#1" and first["call"] == ("f#1",)
    element = g._node["f#6.s[2]"]
    assert element["name"] == "s[2]"
    assert [f[1:] for f in element["loop"]] == [("l", 2), ("t", 3), ("i", 2)]
    assert graphdsl.parse(text + "output J\n").eval()["J"] == pytest.approx(3 * 6)


def test_an_output_may_name_an_element():
    text = RNN.replace("J = sum(h[T] ** 2)\n", "J = sum(h[T] ** 2)\noutput J, h[T-1]\n")
    model = graphdsl.parse(text)
    out = model.eval(_rnn_values(_rng("out")))
    assert list(out) == ["J", "h[11]"] and out["h[11]"].shape == (3,)


def test_an_empty_range_runs_no_iteration():
    model = graphdsl.parse("dim T = 0\nh[0] = 2\nfor t in 1..T { h[t] = h[t-1] * 3 }\nJ = h[T]\noutput J\n")
    assert model.eval()["J"] == 2.0


# ---- errors -------------------------------------------------------------------------------------------

ERRORS = [
    ("non-static bound", "input k : []\nfor t in 1..k { y[t] = t }\n", "E109", (2, 13), "must be a static integer"),
    ("fractional bound", "for t in 1..2.5 { y[t] = t }\n", "E109", (1, 13), "whole number"),
    ("element twice", "for t in 1..3 { h[1] = t }\n", "E110", (1, 17), "`h[1]` is defined twice"),
    ("h[0] missing", "for t in 1..3 { h[t] = h[t-1] }\n", "E111", (1, 24), "`h[0]` is not defined"),
    ("past the end", "h[0] = 1\nfor t in 1..3 { h[t] = h[t-1] * 2 }\nJ = h[3+1]\n", "E111", (3, 5),
     "`h[4]` is not defined"),
    ("mixed index counts", "h[0] = 1\nh[1, 2] = 2\n", "E112", (2, 1), "1 index per element, here 2"),
    ("mixed read", "h[0] = 1\nJ = h[0, 1]\n", "E112", (2, 5), "1 index per element"),
    ("loop variable assigned", "for t in 1..3 { t = 2 }\n", "E114", (1, 17), "loop variable"),
    ("backwards range", "x = 1\nfor t in 5..2 { y[t] = t }\n", "E115", (2, 1), "runs backwards"),
    ("sequence as a value", "h[0] = 1\nJ = h + 1\n", "E101", (2, 5), "is a sequence"),
    ("local reuses an outer name", "z = 1\nfor t in 1..3 { z = t }\n", "E104", (2, 17), "already defined"),
    ("sequence and name", "h = 2\nh[0] = 1\n", "E104", (1, 1), "both a sequence"),
    ("slice of a sequence", "h[0] = 1\nJ = h[0:1]\n", "E109", (2, 7), "takes no slice"),
    ("read after the loop", "for t in 1..2 { z = t * 2 }\nJ = z\n", "E101", (2, 5), "exists only in each iteration"),
    # syntax
    ("no brace", "for t in 1..3 h[t] = 1\n", "E001", (1, 15), "expected `{` to open the loop body"),
    ("brace on the next line", "for t in 1..3\n{ h[t] = 1 }\n", "E001", (1, 14), "expected `{` to open the loop"),
    ("= for in", "for t = 1..3 { h[t] = 1 }\n", "E001", (1, 7), "expected `in`"),
    ("comma for ..", "for t in 1, 3 { h[t] = 1 }\n", "E001", (1, 11), "expected `..`"),
    ("output in a body", "for t in 1..3 { output J }\n", "E001", (1, 17), "`output` inside a loop body"),
    ("def in a body", "for t in 1..3 { def g(x) = x }\n", "E001", (1, 17), "`def` inside a loop body"),
    ("in as a name", "in = 3\n", "E005", (1, 1), "`in` is a reserved word"),
]


@pytest.mark.parametrize("text, code, where, words", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_loop_errors_are_located(text, code, where, words):
    with pytest.raises(GraphDSLError) as info:
        graphdsl.parse(text)
    diag = info.value.errors[0]
    assert diag.code == code, diag.format(None)
    assert (diag.span.line, diag.span.col) == where
    assert words in diag.message
    assert len(info.value.errors) == 1  # an error in a body is reported once, not once per iteration


def test_loop_syntax_errors_are_located():
    with pytest.raises(GraphDSLError) as info:
        graphdsl.parse("for t in 1..3 {\n  y[t] = t\n")
    assert info.value.errors[0].code == "E002"
    with pytest.raises(GraphDSLError) as info:
        graphdsl.parse("for t in 1...3 { y[t] = t }\n")  # `1 .. .3`
    assert info.value.errors[0].code == "E109" and info.value.errors[0].span.col == 13


# ---- linear time: work counted, not timed --------------------------------------------------------------

@pytest.fixture
def work(monkeypatch):
    """Counts of the expression nodes lowered and the body statements run, per build."""
    from graphdsl import build as build_module
    from graphdsl import loops

    seen = {"visits": 0, "statements": 0}
    kids, run = build_module._Builder._kids, loops.Body.run

    def counting_kids(self, node):  # asked once for every expression node lowered
        seen["visits"] += 1
        return kids(self, node)

    def counting_run(self, stmt, frame):
        seen["statements"] += 1
        return run(self, stmt, frame)

    monkeypatch.setattr(build_module._Builder, "_kids", counting_kids)
    monkeypatch.setattr(loops.Body, "run", counting_run)

    def measure(T):
        seen.update(visits=0, statements=0)
        model = graphdsl.parse(RNN.replace("T = 12", f"T = {T}"), max_ops=None)
        return dict(seen), len(model.built.graph)
    return measure


def test_build_work_per_iteration_is_constant(work):
    small, nodes_small = work(250)
    large, nodes_large = work(1000)
    # the body, one statement of 11 expression nodes (`tanh(W @ h[t-1] + U @ X[:, t-1] + c)`:
    # tanh, two +, two @, W, h[t-1], U, X[...], X, c), is lowered once per iteration, nothing more
    assert (large["visits"] - small["visits"]) / 750 == 11
    assert (large["statements"] - small["statements"]) / 750 == 1
    assert (nodes_large - nodes_small) % 750 == 0


def test_a_loop_counts_its_iterations_against_max_ops():
    with pytest.raises(GraphDSLError) as info:
        graphdsl.parse("dim T = 1000000000\nh[0] = 1\nfor t in 1..T { h[t] = h[t-1] * 2 + 1 }\n")
    assert info.value.errors[0].code == "E108" and "4,000,000,000 operations" in info.value.errors[0].message
    with pytest.raises(GraphDSLError) as info:  # a loop in a def, never called, and a --dim size
        graphdsl.parse("dim T = 2\ndef f(x) {\n  for t in 1..T { s[t] = x * t }\n  return s[1]\n}\n", dims={"T": 10**6})
    assert info.value.errors[0].code == "E108" and "def `f`" in info.value.errors[0].message


def test_editors_lex_a_range_as_two_numbers_and_an_operator():
    from pygments.token import Keyword, Name, Number, Operator

    from graphdsl.editors.pygments_lexer import GraphDSLLexer

    tokens = [(k, v) for k, v in GraphDSLLexer().get_tokens("for t in 1..T { h[t] = 0.5 }") if v.strip()]
    assert tokens[:6] == [(Keyword, "for"), (Name, "t"), (Keyword, "in"), (Number, "1"), (Operator, ".."),
                          (Name, "T")]
    assert (Number, "0.5") in tokens


def test_an_element_can_be_differentiated_and_asked_for_by_name():
    model = graphdsl.parse("param w : [] = 0.5\ns[0] = w\nfor t in 1..3 { s[t] = s[t-1] * w }\nJ = s[3]\n")
    value, grads = model.grad(of="s[2]")  # w ** 3, as the user writes it
    assert value == pytest.approx(0.125, rel=1e-15) and grads["w"] == pytest.approx(3 * 0.25, rel=1e-15)
    assert model.eval(outputs=["s[ 1 ]"]) == {"s[1]": pytest.approx(0.25, rel=1e-15)}


def test_a_grad_inside_a_loop_is_exact():
    text = "dim T = 3\nparam w : [] = 0.5\nh[0] = w\nfor t in 1..T {\n  h[t] = sin(h[t-1]) * w\n" \
           "  g[t] = grad(h[t], w)\n}\nJ = g[T]\noutput J\n"
    w = torch.tensor(0.5, requires_grad=True)
    h = w
    for _ in range(3):
        h = torch.sin(h) * w
    [g] = torch.autograd.grad(h, [w], create_graph=True)
    [dg] = torch.autograd.grad(g, [w])
    value, grads = graphdsl.parse(text).grad(of="J")
    assert value == pytest.approx(g.item(), rel=1e-12) and grads["w"] == pytest.approx(dg.item(), rel=1e-12)


def test_a_def_does_not_see_the_top_level_sequences():
    with pytest.raises(GraphDSLError) as info:
        graphdsl.parse("h[0] = 1\ndef f(x) = x + h[0]\ny = f(2)\n")
    diag = info.value.errors[0]
    assert (diag.code, diag.span.line, diag.span.col) == ("E101", 2, 16) and "not visible inside a def" in diag.message


def test_computed_indices_give_the_same_bits_as_two_indices():
    two = """\
dim T = 4, L = 2
param W : [2, 2] = randn(std=0.5)
param x : [2] = randn()
for l in 1..L {
    h[l, 0] = x * l
    for t in 1..T { h[l, t] = tanh(W @ h[l, t-1]) }
}
J = sum(h[L, T])
output J
"""
    flat = two.replace("h[l, 0]", "h[(l-1)*(T+1)]").replace("h[l, t]", "h[(l-1)*(T+1)+t]") \
              .replace("h[l, t-1]", "h[(l-1)*(T+1)+t-1]").replace("h[L, T]", "h[(L-1)*(T+1)+T]")
    assert "h[l" not in flat
    (j1, g1), (j2, g2) = graphdsl.parse(two).grad(), graphdsl.parse(flat).grad()
    assert same_bits(j1, j2) and all(same_bits(g1[k], g2[k]) for k in g1)


def test_scoping_is_lexical_and_an_inner_range_may_use_the_outer_variable():
    text = """\
param a : [] = 2
for i in 1..3 {
    b = a * i
    for j in 1..i {
        c = b + j
        s[i, j] = c * i
    }
}
J = s[3, 1] + s[3, 3] + s[1, 1]
output J
"""
    model = graphdsl.parse(text)
    s = {(i, j): (2 * i + j) * i for i in range(1, 4) for j in range(1, i + 1)}
    assert model.eval()["J"] == s[3, 1] + s[3, 3] + s[1, 1]
    info = model.built.graph.graph["loops"]["for j#1"]
    assert (info["first"], info["last"], info.get("varying")) == (1, 3, True)
    with pytest.raises(GraphDSLError) as err:  # a name of one iteration is not seen after the loop
        graphdsl.parse(text.replace("J = s[3, 1]", "J = c + s[3, 1]"))
    assert err.value.errors[0].code == "E101" and err.value.errors[0].span.line == 9


LSTM_LOOP = """\
dim n = 2, m = 2, T = 3
input X : [m, T]
param W : [n, m] = randn(std=0.5)
param U : [n, n] = randn(std=0.5)
def cell(h, c, x) {
    g = tanh(W @ x + U @ h)
    c2 = sigmoid(g) * c + g
    return tanh(c2), c2
}
h[0] = 0 * W[:, 1]
c[0] = 0 * W[:, 0]
for t in 1..T {
    h[t], c[t] = cell(h[t-1], c[t-1], X[:, t-1])
    for k in 1..2 { s[t, k] = h[t] * k }
}
J = sum(h[T] ** 2) + sum(s[T, 2])
output J
"""


@pytest.mark.parametrize("command", [["equations"], ["equations", "--format", "latex"], ["explain"],
                                     ["render", "-o", "g.dot", "--view", "both"], ["render", "-o", "g.json"],
                                     ["gradcheck"], ["train", "--steps", "2", "--lr", "0.1", "--save", "p.npz"]])
def test_every_command_runs_on_a_looped_model(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lstm.gdsl").write_text(LSTM_LOOP)
    code, out, err = run_cli(command[0], "lstm.gdsl", *command[1:], "--set", "X=[[1, 2, 3], [0, 1, 0]]")
    assert code == 0, err
    assert "Traceback" not in out + err


def test_check_without_the_size_accepts_indices_that_wait_for_it():
    text = "dim T\ninput x : [T]\nh[0] = 1\nfor t in T..T+2 { h[t-T+1] = h[t-T] * 2 }\nJ = h[3]\noutput J\n"
    model = graphdsl.parse(text)
    assert [w.code for w in model.warnings] == ["W005"] and model.warnings[0].span.col == 10
    assert model.eval({"x": [1.0, 2.0]})["J"] == 8.0  # T = 2: h[1..3] = 2, 4, 8

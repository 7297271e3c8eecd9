"""The Python API: load/parse, eval, grad, plan reuse, values and initialisers."""
from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import graphdsl
from graphdsl import GraphDSLError

D2L = Path(__file__).resolve().parents[1] / "examples" / "d2l_mlp.gdsl"


def mlp_by_hand(W1, W2, x, y, lam=0.01):
    """The D2L MLP and its gradients, derived by hand (D2L 5.3.3)."""
    z = W1 @ x
    h = np.maximum(z, 0)
    o = W2 @ h
    b = x.shape[1]
    J = 0.5 * np.sum((o - y) ** 2) / b + lam / 2 * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
    dJ_do = (o - y) / b
    dJ_dW2 = dJ_do @ h.T + lam * W2
    dJ_dh = W2.T @ dJ_do
    dJ_dz = dJ_dh * (z > 0)
    dJ_dW1 = dJ_dz @ x.T + lam * W1
    return J, dJ_dW1, dJ_dW2


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    return {"x": rng.normal(size=(4, 6)), "y": rng.normal(size=(3, 6)),
            "W1": rng.normal(size=(5, 4)), "W2": rng.normal(size=(3, 5))}


def test_graph_is_a_multidigraph():
    m = graphdsl.load(D2L)
    assert isinstance(m.graph, nx.MultiDiGraph)
    assert m.outputs == ["J"] and m.params == ["W1", "W2"] and m.inputs == ["x", "y"]


def test_writing_model_graph_edges_leaves_the_model_alone(data):
    """Model.graph's adjacency is its own: graphdsl's edges share key dicts (digraph.AT)."""
    m = graphdsl.load(D2L)
    J, dW1, _ = mlp_by_hand(**data)
    g = m.graph
    edges = sorted(m.built.graph.edges(keys=True))
    for u, v, k in list(g.edges(keys=True)):
        g.edges[u, v, k]["seen"] = True  # networkx users write edge data in place
    u, v, _ = edges[0]
    g.add_edge(u, v, key=7, extra=1)  # and add parallel edges
    assert sorted(m.built.graph.edges(keys=True)) == edges
    assert all(not d for *_, d in m.built.graph.edges(data=True))
    value, grads = m.grad(data)
    np.testing.assert_allclose(value, J, rtol=1e-12)
    np.testing.assert_allclose(grads["W1"], dW1, rtol=1e-12, atol=1e-15)
    m.equations()  # reverse mode on the symbolic graph: Model.graph stays a whole networkx graph
    assert len(m.built.graph) > len(g) and set(g.adj) == set(g.nodes) == set(g.pred)


def test_adding_an_edge_changes_only_that_edge():
    """Edges at the same position share one key dict; adding a parallel edge must not reach the others."""
    m = graphdsl.load(D2L)
    g = m.built.graph
    before = {(u, v): dict(kd) for u, nbrs in g._succ.items() for v, kd in nbrs.items()}
    (u, v), keys = next((e, kd) for e, kd in before.items() if kd == {0: {}})
    assert sum(kd is g._succ[u][v] for nbrs in g._succ.values() for kd in nbrs.values()) > 1  # shared
    g.add_edge(u, v, key=1, label="x")
    after = {(a, b): dict(kd) for a, nbrs in g._succ.items() for b, kd in nbrs.items()}
    assert after.pop((u, v)) == {0: {}, 1: {"label": "x"}} and g._pred[v][u] is g._succ[u][v]
    del before[(u, v)]
    assert after == before


def test_eval_and_grad_match_the_hand_derivation(data):
    m = graphdsl.load(D2L)
    J, dW1, dW2 = mlp_by_hand(**data)
    out = m.eval(data)
    assert set(out) == {"J"}
    np.testing.assert_allclose(out["J"], J, rtol=1e-12)
    value, grads = m.grad(data, of="J", wrt=["W1", "W2"])
    np.testing.assert_allclose(value, J, rtol=1e-12)
    np.testing.assert_allclose(grads["W1"], dW1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grads["W2"], dW2, rtol=1e-12, atol=1e-15)


def test_repeated_calls_reuse_the_compiled_plan(data):
    m = graphdsl.load(D2L)
    m.grad(data)
    (compiled,) = m._compiled.values()
    plans = dict(compiled.plans)
    nodes = compiled.built.graph.number_of_nodes()
    for _ in range(3):
        m.grad({**data, "W1": data["W1"] * 1.1})
    assert list(m._compiled.values()) == [compiled]
    assert compiled.plans == plans and compiled.built.graph.number_of_nodes() == nodes


def test_new_batch_size_compiles_once_more(data):
    m = graphdsl.load(D2L)
    m.eval(data)
    m.eval({**data, "x": data["x"][:, :2], "y": data["y"][:, :2]})
    m.eval({**data, "x": data["x"][:, :3], "y": data["y"][:, :3]})
    m.eval(data)
    assert len(m._compiled) == 3


def test_dims_override(data):
    m = graphdsl.load(D2L, dims={"m": 16})
    value, grads = m.grad({"x": data["x"], "y": data["y"]})
    assert grads["W1"].shape == (16, 4) and grads["W2"].shape == (3, 16)


def _e302(call) -> str:
    with pytest.raises(GraphDSLError) as info:
        call()
    assert info.value.diagnostics[0].code == "E302"
    return info.value.diagnostics[0].message


def test_repeated_grad_sees_in_place_updates_and_refuses_nan(data):
    """From its third call on, grad with the same names, shapes, of and wrt goes straight to the program
    (steady.py): arrays updated in place are read again, and checked again, on every call."""
    m = graphdsl.load(D2L)
    values = {k: v.copy() for k, v in data.items()}
    for _ in range(3):
        m.grad(values, of="J", wrt=["W1", "W2"])
    assert m._routes  # the calls below take the repeated route
    for _ in range(3):  # gradient descent, in place
        J, grads = m.grad(values, of="J", wrt=["W1", "W2"])
        fresh = graphdsl.load(D2L).grad({k: v.copy() for k, v in values.items()}, of="J", wrt=["W1", "W2"])
        assert J.tobytes() == fresh[0].tobytes() and all(grads[k].tobytes() == fresh[1][k].tobytes() for k in grads)
        by_hand = mlp_by_hand(**values)
        np.testing.assert_allclose(J, by_hand[0], rtol=1e-12)
        np.testing.assert_allclose(grads["W1"], by_hand[1], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(grads["W2"], by_hand[2], rtol=1e-12, atol=1e-15)
        values["W1"] -= 0.1 * grads["W1"]
        values["W2"] -= 0.1 * grads["W2"]
    step = lambda: m.grad(values, of="J", wrt=["W1", "W2"])  # noqa: E731
    values["x"][1, 2] = np.nan
    assert _e302(step) == "the value of `x` is not finite: NaN at index [1, 2]"
    values["x"][1, 2] = 0.5
    values["W2"][0, 4] = -np.inf
    assert _e302(step) == "the value of `W2` is not finite: -Inf at index [0, 4]"
    values["W2"][0, 4] = 0.5
    J, grads = m.grad(values, of="J", wrt=["W1", "W2"])
    np.testing.assert_allclose(grads["W2"], mlp_by_hand(**values)[2], rtol=1e-12, atol=1e-15)


def test_repeated_grad_names_the_node_that_went_nonfinite():
    m = graphdsl.parse("input x : [2]\na = x * 2.0\nb = log(a)\nJ = sum(b * b)\noutput J")
    x = np.array([1.0, 3.0])
    for _ in range(3):
        _, grads = m.grad({"x": x}, wrt="x")
    assert m._routes
    x[1] = 0.25  # d/dx sum(log(2x)^2) = 2 log(2x) / x
    np.testing.assert_allclose(m.grad({"x": x}, wrt="x")[1]["x"], 2 * np.log(2 * x) / x, rtol=1e-15)
    x[1] = -1.0
    assert "`b`" in _e302(lambda: m.grad({"x": x}, wrt="x"))
    J, grads = m.grad({"x": x}, wrt="x", check_finite=False)
    assert np.isnan(J) and np.isnan(grads["x"][1]) and grads["x"][0] == pytest.approx(2 * np.log(2.0))


def test_repeated_grad_with_other_values_answers_as_the_first_call(data):
    """Values converted (lists, float32), not C-ordered, in another order or of another batch size give what a
    fresh model gives them, whether the repeated route takes them or not."""
    m = graphdsl.load(D2L)
    for _ in range(3):
        m.grad(data)
    variants = [{**data, "x": data["x"].tolist()}, {**data, "W1": data["W1"].astype(np.float32)},
                {**data, "W1": np.asfortranarray(data["W1"])}, {**data, "x": data["x"][:, :2], "y": data["y"][:, :2]},
                {k: data[k] for k in ("y", "x", "W2", "W1")}, data]
    for values in variants * 2:
        J, grads = m.grad(values)
        fresh = graphdsl.load(D2L).grad(values)
        assert J.tobytes() == fresh[0].tobytes() and all(grads[k].tobytes() == fresh[1][k].tobytes() for k in grads)
    with pytest.raises(GraphDSLError) as info:
        m.grad({**data, "W1": data["W1"].astype(str)})
    assert info.value.diagnostics[0].code == "E306" and "`W1` holds strings" in info.value.diagnostics[0].message


def test_repeated_grad_checks_a_lowered_memory_budget(data):
    m = graphdsl.load(D2L)
    for _ in range(3):
        m.grad(data)
    m.max_memory = 1000
    with pytest.raises(GraphDSLError) as info:
        m.grad(data)
    assert info.value.diagnostics[0].code == "E310"


def test_initialisers_are_seeded_and_in_declaration_order():
    text = "param a : [3] = randn()\nparam c : [2] = uniform(low=2, high=3)\nJ = sum(a) + sum(c)\n"
    m = graphdsl.parse(text)
    rng = np.random.default_rng(5)
    a, c = rng.normal(0, 1, (3,)), rng.uniform(2, 3, (2,))
    np.testing.assert_allclose(m.eval(seed=5)["J"], a.sum() + c.sum(), rtol=1e-15)
    # giving `a` does not shift the draws of `c`
    np.testing.assert_allclose(m.eval({"a": np.zeros(3)}, seed=5)["J"], c.sum(), rtol=1e-15)


@pytest.mark.parametrize("init, check", [
    ("zeros()", lambda w: np.all(w == 0)), ("ones()", lambda w: np.all(w == 1)),
    ("full(2.5)", lambda w: np.all(w == 2.5)),
    ("glorot()", lambda w: abs(w.std() - np.sqrt(2 / (300 + 200))) < 0.005),
    ("he()", lambda w: abs(w.std() - np.sqrt(2 / 200)) < 0.005),
    ("randn(mean=3, std=0.5)", lambda w: abs(w.mean() - 3) < 0.01 and abs(w.std() - 0.5) < 0.01),
])
def test_initialisers(init, check):
    m = graphdsl.parse(f"param w : [300, 200] = {init}\nJ = sum(w)\n")
    compiled, given = m.compile()
    assert check(m.leaf_values(compiled, given)["w"])


def test_literal_default_and_dim_as_scalar():
    m = graphdsl.parse("dim n\ninput x : [n] = [1, 2, 3, 4]\ny = sum(x) / n\n")
    assert m.eval()["y"] == pytest.approx(2.5)
    assert m.eval({"x": np.array([2.0, 4.0])})["y"] == pytest.approx(3.0)


def test_grad_of_a_non_scalar_is_refused():
    m = graphdsl.parse("input x : [3]\ny = x * 2\n")
    with pytest.raises(GraphDSLError) as info:
        m.grad({"x": np.ones(3)}, of="y", wrt=["x"])
    assert "scalar" in info.value.format()


def test_grad_needs_a_choice_among_several_outputs():
    m = graphdsl.parse("input x : [3]\na = sum(x)\nc = sum(x * x)\n")
    with pytest.raises(GraphDSLError) as info:
        m.grad({"x": np.ones(3)})
    assert "a, c" in info.value.format()


def test_wrt_defaults_to_inputs_when_there_are_no_params():
    m = graphdsl.parse("input x : [3]\nJ = sum(x * x)\n")
    _, grads = m.grad({"x": np.array([1.0, 2.0, 3.0])})
    np.testing.assert_allclose(grads["x"], [2, 4, 6])


def test_unused_wrt_gives_zeros():
    m = graphdsl.parse("input x : [3]\ninput u : [2]\nJ = sum(x * x)\n")
    _, grads = m.grad({"x": np.ones(3), "u": np.ones(2)}, wrt=["x", "u"])
    np.testing.assert_array_equal(grads["u"], np.zeros(2))


def test_fan_out_accumulates():
    m = graphdsl.parse("input x : []\ny = x * x + x\n")
    _, grads = m.grad({"x": np.array(3.0)})
    assert float(grads["x"]) == 7.0


def test_implicit_input_takes_its_shape_from_data():
    m = graphdsl.parse("y = sum(x ** 2)\n")
    value, grads = m.grad({"x": np.array([1.0, 2.0])})
    assert float(value) == 5.0
    np.testing.assert_allclose(grads["x"], [2.0, 4.0])


def test_unknown_value_name_is_an_error_with_a_suggestion(data):
    m = graphdsl.load(D2L)
    with pytest.raises(GraphDSLError) as info:
        m.eval({**data, "W3": data["W1"]})
    assert "did you mean `W1`?" in info.value.format() or "`W3`" in info.value.format()

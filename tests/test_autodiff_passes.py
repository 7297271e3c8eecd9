"""Reverse mode in passes: only the adjoints asked for are built, a later request continues the walk.

The reference is one walk over everything (adjoint_table first, as render, explain and
equations ask): gradients built pass by pass must be the same bits, and finite
differences check the input gradients added by a later pass independently.
"""
from __future__ import annotations

import pathlib
import sys

import numpy as np

import graphdsl
from graphdsl.autodiff import adjoint_table, gradients
from bits import same_bits

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from rnn_unrolled import rnn_source, rnn_values  # noqa: E402

MLP = (ROOT / "examples" / "d2l_mlp.gdsl").read_text(encoding="utf-8")
RNG = np.random.default_rng(3)
MLP_VALUES = {"x": RNG.normal(size=(4, 6)), "y": RNG.normal(size=(3, 6))}


def _backward_nodes(model, values) -> int:
    g = model.compile(values)[0].built.graph
    return sum(1 for n, d in g.nodes(data=True) if d.get("phase") == "backward")


def test_grad_of_params_builds_no_adjoints_of_inputs():
    model = graphdsl.parse(rnn_source(12), "rnn")
    values = rnn_values(12)
    model.grad(values)
    built = model.compile(values)[0].built
    target = built.outputs[0]
    table = built.graph.graph["adjoints"][target]
    inputs = [n for n, d in built.decls.items() if d.kind == "input"]
    params = [n for n, d in built.decls.items() if d.kind == "param"]
    assert all(p in table for p in params)
    assert not any(i in table for i in inputs)
    partial = _backward_nodes(model, values)
    full = adjoint_table(built.gb, target)  # continues the walk: now every input has its adjoint
    assert all(i in full for i in inputs)
    assert _backward_nodes(model, values) > partial


def test_later_passes_give_the_bits_of_one_walk():
    for text, values in ((MLP, MLP_VALUES), (rnn_source(12), rnn_values(12))):
        passes = graphdsl.parse(text, "passes")
        one_walk = graphdsl.parse(text, "one walk")
        built = one_walk.compile(values)[0].built
        adjoint_table(built.gb, built.outputs[0])
        decls = built.decls
        params = [n for n, d in decls.items() if d.kind == "param"]
        inputs = [n for n, d in decls.items() if d.kind == "input"]
        for wrt in (params, inputs, params + inputs):  # params first, then the inputs by a second pass
            value, got = passes.grad(values, wrt=wrt)
            ref_value, want = one_walk.grad(values, wrt=wrt)
            assert same_bits(value, ref_value)
            assert all(same_bits(got[w], want[w]) for w in wrt)


def test_full_table_after_a_partial_walk_has_every_adjoint():
    partial = graphdsl.parse(MLP, "partial")
    partial.grad(MLP_VALUES, wrt=["W1"])
    fresh = graphdsl.parse(MLP, "fresh")
    tables = []
    for model in (partial, fresh):
        built = model.compile(MLP_VALUES)[0].built
        tables.append(set(adjoint_table(built.gb, built.outputs[0])))
    assert tables[0] == tables[1]
    assert {"x", "y", "W1", "W2"} <= tables[0]


def test_input_gradient_of_a_second_pass_matches_finite_differences():
    model = graphdsl.parse(MLP, "fd")
    model.grad(MLP_VALUES)  # the params' pass
    params = {k: v for k, v in model.eval(MLP_VALUES, outputs=["W1", "W2"]).items()}
    _, got = model.grad(MLP_VALUES, wrt=["x"])
    loss = lambda x: float(model.eval({**MLP_VALUES, **params, "x": x}, outputs=["J"])["J"])  # noqa: E731
    x, eps = MLP_VALUES["x"], 1e-6
    fd = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        fd[i] = (loss(x + step) - loss(x - step)) / (2 * eps)
    np.testing.assert_allclose(got["x"], fd, rtol=1e-6, atol=1e-8)


def test_a_repeated_request_is_looked_up():
    model = graphdsl.parse(MLP, "two")
    built = model.compile(MLP_VALUES)[0].built
    target = built.outputs[0]
    first = gradients(built.gb, target, ["W1"])["W1"]
    assert gradients(built.gb, target, ["W1"])["W1"] == first  # looked up, not rebuilt


def test_topological_order_of_every_node_is_networkx_order():
    """The fallback sort (a graph whose insertion order is not topological) gives networkx's order, on every example."""
    import networkx as nx

    from graphdsl.graph import topological_order

    for path in sorted(pathlib.Path(__file__).resolve().parents[1].joinpath("examples").glob("*.gdsl")):
        model = graphdsl.load(path)
        g = model.built.graph
        ours = topological_order(g, set(g))
        assert ours == list(nx.topological_sort(model.graph)), path.name
        assert ours == topological_order(g, list(g)), path.name  # a list: the general path


def test_upstream_in_order_is_the_insertion_order_and_a_topological_one():
    """What reverse mode walks backwards and the plan forwards: exactly the nodes the outputs are
    computed from, each after its predecessors, in the graph's own order; on every example, with
    and without its adjoints."""
    import networkx as nx

    from graphdsl.digraph import upstream
    from graphdsl.graph import upstream_in_order

    for path in sorted(pathlib.Path(__file__).resolve().parents[1].joinpath("examples").glob("*.gdsl")):
        model = graphdsl.load(path)
        gb = model.built.gb
        g = gb.g
        seeds = list(model.built.outputs)
        if len(seeds) == 1 and path.stem != "oneliner":  # (oneliner's undefined functions: no gradient)
            adjoint_table(gb, seeds[0])  # the adjoints join the graph: walk the whole of it too
            seeds += list(dict.fromkeys(g.graph["adjoints"][seeds[0]].values()))
        triples = upstream_in_order(g, seeds)
        order = [n for n, _, _ in triples]
        assert set(order) == upstream(g, seeds) and len(order) == len(set(order)), path.name
        assert order == [n for n in g if n in set(order)], path.name  # the insertion order, kept
        assert all(data is g._node[n] and preds is g._pred[n] for n, data, preds in triples), path.name
        position = {n: k for k, n in enumerate(order)}
        assert all(position[u] < position[v] for u, v in g.to_networkx().subgraph(order).edges()), path.name
        assert nx.is_directed_acyclic_graph(g.to_networkx().subgraph(order)), path.name

"""Loops in pictures (issue 15): rolled by default (one iteration as a block `×N`, the carried state drawn
back into it, the last iteration's values), `--unroll` for every iteration, nested loops, the viewer."""
from __future__ import annotations

import re

import numpy as np
import pytest

import graphdsl
from graphdsl.cli import main
from graphdsl.render.rolled import relative_name

from render_models import loop_rnn, nested_loops

T_SMALL, T_LONG = 12, 100


def model(steps=T_SMALL, **kw):
    return graphdsl.parse(loop_rnn(steps, **kw), f"loop_rnn{steps}.gdsl")


def values(steps=T_SMALL):
    """Every leaf given, so the expected numbers can be computed here with NumPy."""
    rng = np.random.default_rng(7)
    return {"xs": rng.normal(size=(steps, 3, 2)), "target": rng.normal(size=(1, 2)),
            "W_xh": 0.5 * rng.normal(size=(4, 3)), "W_hh": 0.5 * rng.normal(size=(4, 4)),
            "b_h": 0.1 * rng.normal(size=(4, 1)), "W_hy": 0.5 * rng.normal(size=(1, 4))}


def numpy_rnn(v):
    """The hidden states and the gradient of J = mse(W_hy h[T], target) by hand (BPTT)."""
    hs = [np.zeros((4, 2))]
    for x in v["xs"]:
        hs.append(np.tanh(v["W_hh"] @ hs[-1] + v["W_xh"] @ x + v["b_h"]))
    yhat = v["W_hy"] @ hs[-1]
    dh = v["W_hy"].T @ (2 * (yhat - v["target"]) / yhat.size)
    dW_hh = np.zeros((4, 4))
    for t in range(len(v["xs"]), 0, -1):
        dz = dh * (1 - hs[t] ** 2)
        dW_hh += dz @ hs[t - 1].T
        dh = v["W_hh"].T @ dz
    return hs, dW_hh


def node(r, nid):
    return next(n for n in r.data()["nodes"] if n["id"] == nid)


# ---- rolled --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("view", ["forward", "backward", "both"])
def test_a_rolled_loop_has_the_same_size_whatever_its_length(view):
    short, long = model(T_SMALL).render(view=view), model(T_LONG).render(view=view)
    assert len(short.scene.nodes) == len(long.scene.nodes) < 50
    assert f"×{T_SMALL}" in short.dot and f"×{T_LONG}" in long.dot
    if view != "backward":  # the last iteration; the backward view shows the fullest (T-1: see iterations.py)
        assert short.scene.rolled == {"for t#1": T_SMALL} and long.scene.rolled == {"for t#1": T_LONG}


def test_the_rolled_block_shows_the_last_iteration_values_and_says_so():
    v = values()
    r = model().render(v)
    hs, _ = numpy_rnn(v)
    assert np.allclose(node(r, f"h[{T_SMALL}]")["value"], hs[-1], rtol=1e-12, atol=1e-14)
    assert f"values at t = {T_SMALL}" in r.dot
    assert f'"h[{T_SMALL - 1}]"' not in r.dot  # other iterations are not drawn
    assert "{h[t]\\ [hdim=4,\\ b=2]" in r.dot  # the kept element is named in terms of t: h[t], dJ/dh[t]
    assert "dJ/dh[t]\\ =" in r.dot


def test_the_carried_state_is_an_edge_back_into_the_block():
    r = model().render()
    carried = [(e, a) for e, a in r.scene.edge_attrs.items() if a.get("carried")]
    assert len(carried) == 1
    (u, v, style), attrs = carried[0]
    assert u == f"h[{T_SMALL}]" and r.graph.nodes[v]["op"] == "matmul" and attrs["label"] == "h[t-1]"
    line = next(l for l in r.dot.splitlines() if l.strip().startswith(f'"{u}" -> "{v}"'))
    assert 'constraint="false"' in line and 'style="dashed"' in line and 'xlabel="h[t-1]"' in line


def test_what_enters_some_iterations_is_labelled_with_them():
    r = model().render()
    labels = {(u, v): a["label"] for (u, v, _), a in r.scene.edge_attrs.items() if not a.get("carried")}
    assert labels[next((u, v) for u, v in labels if u == "h[0]")] == "t=1"  # the initial state, at t = 1 only
    assert "W_hh" not in {u for u, _ in labels}  # a weight enters every iteration: no label
    assert ("h[12]", next(v for u, v in labels if u == "h[12]")) in labels  # h[T] leaves at t = 12


def test_backward_view_sums_the_shared_weight_over_the_iterations():
    v = values()
    m = model()
    r = m.render(v, view="backward")
    _, dW_hh = numpy_rnn(v)
    sums = {v_: a["label"] for (u, v_, _), a in r.scene.edge_attrs.items() if a["label"].startswith("Σ")}
    adj = r.annotations.adjoints["W_hh"]
    assert sums[adj] == "Σ t" and r.scene.sums[adj] == T_SMALL
    assert np.allclose(r.annotations.values[adj], dW_hh, rtol=1e-10, atol=1e-13)
    assert np.allclose(m.grad(v)[1]["W_hh"], dW_hh, rtol=1e-10, atol=1e-13)
    assert not any(g_.nodes[n].get("op") == "add" and not g_.nodes[n].get("loop")
                   for g_ in [r.graph] for n in r.scene.nodes if n in g_ and g_.nodes[n]["kind"] == "op"
                   and any(n2 == adj for _, n2 in g_.out_edges(n)))  # no ladder of `+` beside the block
    assert "dJ/dh[t-1]" in r.dot


def test_nested_loops_are_rolled_inside_rolled():
    m = graphdsl.parse(nested_loops(3, 4), "nested.gdsl")
    r = m.render()
    paths = {p for p in r.scene.cluster.values() if p}
    assert ("loop:for l#1", "loop:for t#2") in paths and ("loop:for t#1",) in paths
    assert r.scene.rolled == {"for t#1": 4, "for l#1": 3, "for t#2": 4}
    carried = {a["label"] for a in r.scene.edge_attrs.values() if a.get("carried")}
    assert carried == {"h[l,t-1]", "h[l-1,t]"}
    assert "h[l,t] [d=3, b=2]" in graphdsl.parse(nested_loops(3, 4), "n.gdsl").render(labels="compact").dot


def test_a_def_called_in_a_loop_is_a_cluster_inside_the_block():
    r = model(5, cell=True).render(expand="all")
    paths = {p for p in r.scene.cluster.values() if p}
    assert ("loop:for t#1", "cell#5") in paths


@pytest.mark.parametrize("name, fu, fv, expected", [
    ("h[11]", (), (("k", "t", 12),), "h[t-1]"),
    ("h[12]", (), (("k", "t", 12),), "h[t]"),
    ("h[0,3]", (), (("k", "t", 3),), "h[0,t]"),
    ("h[1,3]", (), (("a", "l", 2), ("b", "t", 3)), "h[l-1,t]"),
    ("h[5]", (), (("k", "t", 12),), "h[5]"),
    ("W", (), (("k", "t", 12),), None),
])
def test_element_names_in_terms_of_the_loop_variables(name, fu, fv, expected):
    assert relative_name(name, fu, fv) == expected


# ---- unrolled ------------------------------------------------------------------------------------------

def test_unroll_draws_every_iteration_in_a_box_of_its_own():
    r = model(4).render(unroll=True)
    assert not r.scene.rolled
    for t in range(1, 5):
        assert r.scene.cluster[f"h[{t}]"] == (f"iter:for t#1={t}",)
        assert f'label="t = {t}"' in r.dot
    assert len(r.scene.nodes) > len(model(4).render().scene.nodes)


def test_unroll_nested_gives_boxes_in_boxes():
    r = graphdsl.parse(nested_loops(2, 2), "nested.gdsl").render(unroll=True)
    assert r.scene.cluster["h[2,1]"] == ("iter:for l#1=2", "iter:for t#2=2,1")


def test_cli_unroll(tmp_path, capsys):
    src = tmp_path / "loop.gdsl"
    src.write_text(loop_rnn(3))
    rolled, unrolled = tmp_path / "rolled.dot", tmp_path / "unrolled.dot"
    assert main(["render", str(src), "-o", str(rolled)]) == 0
    assert main(["render", str(src), "--unroll", "-o", str(unrolled)]) == 0
    assert "×3" in rolled.read_text() and "×3" not in unrolled.read_text()
    assert len(re.findall(r'subgraph "cluster_iter:', unrolled.read_text())) == 3


def test_the_viewer_expands_a_rolled_loop():
    page = model(4).render().html()
    assert page.count("cluster_loop:for t#1") >= 1 and page.count("cluster_iter:for t#1=") == 4
    assert 'id="blocks" hidden' not in page


def test_focus_on_an_element_of_another_iteration_finds_the_one_drawn():
    r = model().render(focus="h[3]", radius=1)
    assert r.scene.focus == f"h[{T_SMALL}]" and len(r.scene.nodes) < len(model().render().scene.nodes)


def test_json_says_which_iteration_is_drawn_and_labels_the_loop_edges():
    import json

    data = json.loads(model(4).render().json())
    assert data["graph"]["rolled"] == {"for t#1": 4}
    carried = [link for link in data["links"] if link.get("carried")]
    assert [(c["source"], c["label"]) for c in carried] == [("h[4]", "h[t-1]")]
    assert {"source": "h[0]", "label": "t=1"}.items() <= next(l for l in data["links"] if l["source"] == "h[0]").items()

"""Pictures a person can read (issue 11): text size in a 900-px cell, names in the backward view, blocks.

The size rule is measured on the SVG Graphviz draws (whichever renderer is
installed): the picture is fit to a 900-px cell as notebooks and READMEs show it,
and its smallest text must be at least 8 px.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import graphdsl
from graphdsl.render import backends
from graphdsl.render.measure import CELL_PX, READABLE_PX, smallest_text_px, svg_box

from render_models import loop_rnn, mlp_layernorm, nested_loops, rnn

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def can_draw() -> bool:
    try:
        backends.which("svg")
        return True
    except graphdsl.GraphDSLError:
        return False


needs_renderer = pytest.mark.skipif(not can_draw(), reason="no Graphviz renderer")


def example(name):
    path = EXAMPLES / f"{name}.gdsl"
    data = path.with_suffix(".json")
    return graphdsl.load(str(path)), (json.loads(data.read_text()) if data.exists() else None)


MODELS = {p.stem: (lambda p=p: example(p.stem)) for p in sorted(EXAMPLES.glob("*.gdsl"))}
MODELS["mlp6_layernorm"] = lambda: (graphdsl.parse(mlp_layernorm(6), "mlp6.gdsl"), None)
MODELS["rnn4"] = lambda: (graphdsl.parse(rnn(4), "rnn4.gdsl"), None)
MODELS["loop_rnn12"] = lambda: (graphdsl.parse(loop_rnn(12), "loop_rnn12.gdsl"), None)  # drawn rolled
MODELS["loop_rnn100"] = lambda: (graphdsl.parse(loop_rnn(100), "loop_rnn100.gdsl"), None)
MODELS["loop_cell12"] = lambda: (graphdsl.parse(loop_rnn(12, cell=True), "loop_cell12.gdsl"), None)
MODELS["nested_loops"] = lambda: (graphdsl.parse(nested_loops(), "nested.gdsl"), None)


def labels_of(dot: str) -> list[str]:
    return re.findall(r'label="((?:[^"\\]|\\.)*)"', dot)


# ---- the measure itself, against hand-computed answers -------------------------------------------------

def _svg(width_pt, height_pt, sizes, scale=1.0):
    texts = "".join(f'<text font-family="Courier" font-size="{s:.2f}">x</text>' for s in sizes)
    return (f'<svg width="{width_pt}pt" height="{height_pt}pt" viewBox="0.00 0.00 {width_pt}.00 {height_pt}.00">'
            f'<g id="graph0" class="graph" transform="scale({scale} {scale}) rotate(0) translate(4 100)">'
            f"{texts}</g></svg>")


def test_smallest_text_by_hand():
    # 1800 pt wide is 2400 px at its own size: shown 900 px wide, 0.5 px per pt; 10 pt text is 5 px
    assert smallest_text_px(_svg(1800, 500, [14, 10, 12])) == pytest.approx(5.0)
    # 300 pt fits: shown at its size, 4/3 px per pt
    assert smallest_text_px(_svg(300, 500, [10, 9])) == pytest.approx(12.0)
    # a scaled top group (Graphviz's size=) shrinks the text with it
    assert smallest_text_px(_svg(300, 500, [10], scale=0.5)) == pytest.approx(10 * 4 / 3 * 0.5)
    assert svg_box(_svg(300, 500, [10]))[:2] == (300.0, 500.0)
    assert CELL_PX == 900 and READABLE_PX == 8


# ---- every default picture is readable ---------------------------------------------------------------

@needs_renderer
@pytest.mark.parametrize("view", ["forward", "backward"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_default_pictures_are_readable_in_a_900px_cell(name, view):
    model, values = MODELS[name]()
    r = model.render(values, view=view)
    svg = r.svg()
    px = smallest_text_px(svg)
    width, height, _ = svg_box(svg)
    assert px >= READABLE_PX, f"{name} {view}: {width:.0f}x{height:.0f} pt, smallest text {px:.2f} px"


@needs_renderer
def test_the_170_node_model_stays_expanded_when_it_is_readable():
    """The 6-layer MLP's forward view is a chain: drawn in full (top to bottom), not collapsed."""
    model, _ = MODELS["mlp6_layernorm"]()
    r = model.render()
    assert 150 <= len(r.scene.nodes) and not r.scene.call_nodes
    assert r.scene.rankdir == "TB"


# ---- layout ------------------------------------------------------------------------------------------

def test_a_chain_reads_top_to_bottom_and_rankdir_can_be_forced():
    model, values = example("d2l_mlp")
    assert model.render(values, expand="all").scene.rankdir == "TB"
    r = model.render(values, rankdir="LR")
    assert r.scene.rankdir == "LR" and 'rankdir="LR"' in r.dot


def test_a_shared_weight_is_drawn_once_in_full_then_as_references():
    model, values = example("rnn")
    r = model.render(values, expand="all", unroll=True)  # the loop drawn unrolled: three cells
    sc = r.scene
    refs = [ref for ref, n in sc.refs.items() if n == "W_hh"]
    assert "W_hh" in sc.nodes and len(refs) == 2  # read by three cells: one full box, two references
    assert all(sc.kind[ref] == "ref" for ref in refs)
    readers = [v for u, v, _ in sc.edges if u == "W_hh" or u in refs]
    assert len(readers) == 3
    # a reference is small: its label is the name alone
    assert re.search(r'"ref:W_hh:1" \[label="W_hh", shape="box"', r.dot)


def test_values_are_one_line_by_default_and_in_full_on_request():
    model, values = example("d2l_mlp")
    summary = model.render(values, expand="all").dot
    assert "=\\ in\\ [-1.2,\\ 2]\\l" in summary  # x: its range on one line
    assert "dJ/dW1\\ =\\ in\\ [" in summary
    full = model.render(values, labels="full").dot
    assert "=\\ [\\ 0.5\\ -1.2]\\l" in full  # x in full, row by row


def test_numbers_written_in_the_source_are_drawn_inside_their_operator():
    model, values = example("d2l_mlp")
    r = model.render(values, expand="all")
    assert '[label="** 2"' in r.dot  # (o - y) ** 2
    assert '[label="0.5 ×"' in r.dot  # 0.5 * sum(...)
    assert not any(re.fullmatch(r"0\.5|2", text) for text in labels_of(r.dot))


# ---- the backward view a student can follow ------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(MODELS))
def test_no_backward_label_is_a_generated_number_or_engine_jargon(name):
    model, values = MODELS[name]()
    for options in ({}, {"expand": "all"}, {"expand": "all", "labels": "full"},
                    {"expand": "all", "labels": "compact"}):
        r = model.render(values, view="backward", **options)
        for text in labels_of(r.dot):
            assert not re.search(r"(?<![\w])%\d+", text), (options, text)
            assert not re.search(r"unreduce|sum_to|index_grad|extreme_mask|zeros_like", text), (options, text)
        for entry in r._hover_data().values():
            assert not re.fullmatch(r"%\d+", str(entry.get("title", ""))), entry


def test_backward_names_say_what_each_value_holds():
    model, values = example("d2l_mlp")
    r = model.render(values, view="backward", expand="all")
    titles = set(r.scene.names.memo.values())
    # textbook names: the transposes, relu's derivative, the outer product for dJ/dW2
    assert {"hᵀ", "W2ᵀ", "xᵀ", "relu'(z)", "dJ/dz @ xᵀ", "dJ/dh", "dJ/dz", "dJ/dW1", "dJ/dW2"} <= titles
    assert "dJ/d(o - y)" in titles
    # sum over the batch, in words, where the engine sums a broadcast back
    layer, _ = example("xor")
    assert "sum\\nover b" in layer.render(view="backward", expand="all").dot


def test_forward_values_sit_with_the_backward_ops_that_read_them():
    """h is read by the transpose for dJ/dW2, outside phi's cluster: it is drawn outside it."""
    model, values = example("d2l_mlp")
    r = model.render(values, view="backward", expand="all")
    assert r.scene.kind["h"] == "ghost" and r.scene.cluster["h"] == ()
    assert r.scene.kind["z"] == "ghost" and r.scene.cluster["z"] == ("phi#1",)


def test_wrt_draws_only_the_adjoints_leading_to_the_asked_gradients():
    model, values = example("d2l_mlp")
    default = model.render(values, view="backward", expand="all").scene.nodes
    assert {"dJ/dW1", "dJ/dW2"} <= set(default)  # grad's default: the params
    assert not {"dJ/dx", "dJ/dy", "dJ/dlam"} & set(default)
    only_w1 = model.render(values, view="backward", of="J", wrt="W1", expand="all").scene.nodes
    assert "dJ/dW1" in only_w1 and "dJ/dW2" not in only_w1
    assert len(only_w1) < len(default)
    everything = model.render(values, view="backward", wrt=["W1", "W2", "x", "y", "lam"], expand="all")
    assert {"dJ/dx", "dJ/dy", "dJ/dlam"} <= set(everything.scene.nodes)
    with pytest.raises(graphdsl.GraphDSLError) as err:
        model.render(values, view="backward", wrt="W3")
    assert err.value.diagnostics[0].code == "E101"


# ---- blocks ------------------------------------------------------------------------------------------

def test_blocks_hold_their_params_and_chains_fold():
    model, _ = MODELS["mlp6_layernorm"]()
    r = model.render(collapse="all")
    sc = r.scene
    blocks = [n for n in sc.nodes if sc.kind[n] == "call"]
    assert len(blocks) == 6
    assert sc.absorbed["call:block#2"] == ["W2", "c2", "g2", "be2"]  # drawn inside the block that reads them
    assert "W2" not in sc.nodes
    assert re.search(r'"call:block#2" \[label="\{block\(h1,\\ W2,\\ c2,\\ g2,\\ be2\)', r.dot)
    assert "W2\\ [d=8,\\ d=8]\\ \\ dJ/dW2\\ =\\ in\\ [" in r.dot  # its gradient, in the block
    from graphdsl.render.dot import scene

    folded = scene(r.graph, r.annotations, __import__("dataclasses").replace(r.options, fold=True))
    (head,) = [n for n in folded.nodes if folded.kind[n] == "call"]
    assert folded.folded[head] == [f"block#{k}" for k in range(1, 7)]


def test_expand_and_focus_still_work_on_a_large_model():
    model, _ = MODELS["rnn4"]()
    auto = model.render(view="backward")
    assert auto.scene.call_nodes  # collapsed by itself to stay readable
    expanded = model.render(view="backward", expand="all")
    assert not expanded.scene.call_nodes
    some = model.render(view="backward", expand="cell", collapse=())
    assert not some.scene.call_nodes
    focus = model.render(view="backward", focus="dJ/dW_hh", radius=1)
    assert focus.scene.focus == "dJ/dW_hh" and len(focus.scene.nodes) < len(expanded.scene.nodes)
    with pytest.raises(graphdsl.GraphDSLError):
        model.render(expand="cel")


# ---- notation ----------------------------------------------------------------------------------------

def test_operators_are_written_as_the_language_writes_them():
    model, values = example("layernorm")
    dot = model.render(values).dot
    assert "keepdims=true" in dot and "keepdims=True" not in dot
    d2l, values = example("d2l_mlp")
    assert "**" in d2l.render(values).dot and "^" not in "".join(labels_of(d2l.render(values).dot))


def test_heat_has_its_own_labelled_legend():
    model, values = example("d2l_mlp")
    r = model.render(values, heat=True, expand="all")
    swatches = re.findall(r'"legend:heat(\d)" \[label="([^"]*)"', r.dot)
    assert len(swatches) == 7 and all(re.fullmatch(r"\d(e[-+]\d+)", text) for _, text in swatches)
    # role swatches are drawn as borders only: the fill means the gradient now
    assert re.search(r'"legend:param" \[label="param", shape="box", color="#E69F00", fillcolor="#FFFFFF"', r.dot)

"""Rendering: structure (D2L figure 5.3.1), annotations, views, escaping, golden DOT, determinism.

Golden DOT files live in tests/golden/render/; regenerate them with
    GRAPHDSL_UPDATE_GOLDEN=1 pytest tests/test_render.py
and review the diff.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import graphdsl
from graphdsl import GraphDSLError
from graphdsl.render import backends, format_of
from graphdsl.render import labels as L
from graphdsl.render import theme as T

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden" / "render"
UPDATE = os.environ.get("GRAPHDSL_UPDATE_GOLDEN") == "1"


@pytest.fixture
def embedded(monkeypatch, tmp_path):
    """No `dot` on PATH and the embedded renderer forced: what a plain `pip install` has."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv(backends.ENV, "embedded")
    assert backends.system_dot() is None
    return "embedded"


def d2l():
    return graphdsl.load(EXAMPLES / "d2l_mlp.gdsl")


def d2l_values():
    return json.loads((EXAMPLES / "d2l_mlp.json").read_text())


def drawn_graph(r) -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()
    g.add_nodes_from(r.scene.nodes)
    g.add_edges_from((u, v) for u, v, style in r.scene.edges if style != "gradient")
    return g


def var_links(r) -> set:
    """(input var, output var) through one operator: the picture read as D2L reads figure 5.3.1."""
    g = drawn_graph(r)
    out = set()
    for n in g.nodes:
        if r.scene.kind[n] in ("op", "call"):
            for u in g.predecessors(n):
                for v in g.successors(n):
                    out.add((u, v))
    return out


# ---- the picture of D2L figure 5.3.1 -------------------------------------------------------------

def test_d2l_has_the_structure_of_figure_5_3_1():
    r = d2l().render(values=d2l_values())
    links = var_links(r)
    for pair in [("x", "z"), ("W1", "z"), ("z", "h"), ("h", "o"), ("W2", "o"), ("L", "J"), ("s", "J")]:
        assert pair in links, pair
    g = drawn_graph(r)
    for a, b in [("o", "L"), ("y", "L"), ("W1", "s"), ("W2", "s")]:
        assert nx.has_path(g, a, b), (a, b)
    # the def calls are clusters labelled with the call
    assert 'subgraph "cluster_phi#1"' in r.dot and 'subgraph "cluster_loss#1"' in r.dot
    assert "phi(z)  [phi#1]" in r.dot and "loss(o, y)  [loss#1]" in r.dot
    assert r.scene.cluster["h"] == ("phi#1",) and r.scene.cluster["L"] == ("loss#1",)
    assert r.scene.cluster["z"] == () and r.scene.cluster["J"] == ()
    # variables are boxes (records), operators circles
    assert re.search(r'"W1" \[label="[^"]*", shape="record"', r.dot)
    assert re.search(r'"matmul#1" \[label="@", [^]]*shape="circle"', r.dot)


def test_values_and_gradients_are_those_of_eval_and_grad():
    m, vals = d2l(), d2l_values()
    r = m.render(values=vals, labels="full")
    J = m.eval(vals)["J"]
    value, grads = m.grad(vals, of="J", wrt=["W1", "W2"])
    ann = r.annotations
    assert ann.evaluated and ann.of_name == "J"
    assert np.allclose(ann.values["J"], J)
    for w in ("W1", "W2"):
        assert np.allclose(ann.values[ann.adjoints[w]], grads[w])
    assert f"J = {L.fmt_number(J, 4)}" in r.dot  # the title
    # small arrays in full, larger ones as a summary; each gradient named dJ/dv
    assert "=\\ [\\ 0.5\\ -1.2]\\l" in r.dot  # x, 4x2, in full
    assert "dJ/dW1\\ =\\ min\\ " in r.dot  # W1, 5x4, summarised
    assert "dJ/dJ\\ =\\ 1\\l" in r.dot


def test_roles_have_colour_blind_safe_colours_and_a_legend():
    r = d2l().render(values=d2l_values())
    okabe_ito = {T.ORANGE, T.SKY, T.GREEN, T.YELLOW, T.BLUE, T.VERMILLION, T.PURPLE, T.BLACK, T.GREY}
    for role, style in T.ROLE_STYLE.items():
        assert style["color"] in okabe_ito, role
    assert 'subgraph "cluster_legend"' in r.dot
    for role in ("input", "param", "const", "intermediate", "output / loss"):
        assert f'label="{role}"' in r.dot
    assert not re.search(r"[\[ ,]size=", r.dot)  # no fixed size that clips (fontsize is fine)


def test_anonymous_intermediates_have_stable_generated_names():
    r1 = d2l().render(values=d2l_values(), labels="full")
    r2 = d2l().render(values=d2l_values(), labels="full")
    assert r1.dot == r2.dot
    assert '"%7" [label="{(o\\ -\\ y)\\n%7\\ [q=3,\\ b=2]' in r1.dot


def test_dot_does_not_depend_on_hash_seed():
    code = ("import json, graphdsl; m = graphdsl.load('examples/d2l_mlp.gdsl'); "
            "print(m.render(values=json.load(open('examples/d2l_mlp.json')), view='both').dot)")
    outs = []
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        outs.append(subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                                   text=True, check=True).stdout)
    assert outs[0] == outs[1] and outs[0].startswith("digraph")


# ---- annotations -----------------------------------------------------------------------------------

def test_no_values_no_grads_and_precision():
    m, vals = d2l(), d2l_values()
    r = m.render(values=vals, show_values=False, labels="full")
    assert "=\\ [\\ 0.5" not in r.dot and "dJ/dW1\\ =" in r.dot
    r = m.render(values=vals, show_grads=False, labels="full")
    assert "dJ/dW1\\ =" not in r.dot and "=\\ [\\ 0.5" in r.dot
    r = m.render(values=vals, precision=2, labels="full")
    assert "J = 0.49" in r.dot


def test_gradient_not_computed_is_a_dash_and_true_zero_is_zero():
    m = graphdsl.parse("input x : [2] = [1, -2]\ninput u : [2] = [3, 4]\nr = relu(x - 5)\ny = sign(u)\n"
                       "J = sum(y * 3) + sum(r)\noutput J\n", "dash.gdsl")
    r = m.render()
    u_label = re.search(r'"u" \[label="([^"]*)"', r.dot).group(1)
    assert "dJ/du\\ =\\ —" in u_label  # only reached through sign, which has no gradient
    r_label = re.search(r'"r" \[label="([^"]*)"', r.dot).group(1)
    assert "dJ/dr\\ =\\ [1\\ 1]" in r_label
    x_label = re.search(r'"x" \[label="([^"]*)"', r.dot).group(1)
    assert "dJ/dx\\ =\\ [0\\ 0]" in x_label  # relu is flat there: a true zero


def test_nan_and_inf_are_flagged_in_red():
    m = graphdsl.parse("input x : [2] = [-1, 2]\nl = log(x)\nJ = sum(l)\n", "nan.gdsl")
    r = m.render()
    line = next(s for s in r.dot.splitlines() if s.strip().startswith('"l" ['))
    assert "1\\ NaN\\ of\\ 2" in line or "NaN" in line
    assert f'color="{T.BAD}"' in line and f'fontcolor="{T.BAD}"' in line
    big = graphdsl.parse("input x : [4, 4] = zeros()\ny = 1 / x\nJ = sum(y)\n", "inf.gdsl").render()
    assert "16\\ Inf\\ of\\ 16" in big.dot


def test_summary_lines_and_full_lines():
    assert L.value_lines(np.array(2.5), 4) == [("2.5", False)]
    assert L.value_lines(np.array([[1.0, -0.0], [3, 4]]), 3) == [("[1 0]", False), ("[3 4]", False)]
    lines = L.value_lines(np.arange(20.0), 3)
    assert lines[0][0] == "min 0  max 19" and lines[1][0].startswith("mean 9.5  norm ")
    assert L.value_lines(np.zeros((5, 5)), 3) == [("all 0", False)]
    bad = L.value_lines(np.array([np.nan] + [1.0] * 20), 3)
    assert bad[-1] == ("1 NaN of 21", True)


def test_structure_only_for_the_design_card_one_liner():
    m = graphdsl.load(EXAMPLES / "oneliner.gdsl")
    before = len(m.graph)
    for view in ("forward", "backward", "both"):
        r = m.render(view=view)
        assert not r.annotations.evaluated
        assert any("structure and shapes only" in n for n in r.notes)
        assert re.search(r'"opaque#\d+" \[label="phi\\nundefined"', r.dot)
        assert 'style="filled,dashed"' in r.dot
    assert len(m.graph) == before  # drawing did not add nodes to the model's graph


def test_structure_only_when_inputs_are_missing_keeps_named_dims():
    r = d2l().render(labels="full")
    assert not r.annotations.evaluated
    assert "x\\ninput\\ [d=4,\\ b=?]" in r.dot
    assert any("no value for input `x`" in n for n in r.notes)


def test_errors_in_given_values_are_reported_not_hidden():
    with pytest.raises(GraphDSLError) as err:
        d2l().render(values={"x": np.zeros((3, 2)), "y": np.zeros((3, 2))})
    assert err.value.errors[0].code == "E301"


# ---- views ---------------------------------------------------------------------------------------

def test_backward_view_draws_the_adjoint_graph():
    r = d2l().render(values=d2l_values(), view="backward", expand="all")
    nodes = set(r.scene.nodes)
    assert {"dJ/dW1", "dJ/dW2", "dJ/dh", "dJ/dz"} <= nodes
    assert all(r.graph.nodes[n]["phase"] == "backward" for n in r.scene.backward)
    ghosts = {n for n in r.scene.nodes if r.scene.kind[n] == "ghost"}
    assert {"W2", "h"} <= ghosts  # forward values the backward pass reads
    assert "J" not in nodes
    # dJ/dW1 collects two paths (through z and through s)
    g = drawn_graph(r)
    producer = next(g.predecessors("dJ/dW1"))
    assert r.graph.nodes[producer]["op"] == "add"
    # the seed: one constant 1 is the cotangent of J, and (through +) of L and s
    assert re.search(r'"%\d+" \[label="dJ/dJ = dJ/d[Ls] = dJ/d[Ls] = 1"', r.dot)


def test_both_view_adds_reversed_dashed_gradient_edges():
    r = d2l().render(values=d2l_values(), view="both")
    grad_edges = [(u, v) for u, v, s in r.scene.edges if s == "gradient"]
    fwd_edges = [(u, v) for u, v, s in r.scene.edges if s == "forward"]
    assert ("matmul#1", "W1") in grad_edges and ("W1", "matmul#1") in fwd_edges
    assert ("z", "matmul#1") in grad_edges
    assert '"z" -> "matmul#1" [color="#D55E00", style="dashed", constraint="false"' in r.dot
    assert set(r.scene.nodes) == set(d2l().render(values=d2l_values()).scene.nodes)


def test_heat_colours_by_log_gradient():
    r = d2l().render(values=d2l_values(), heat=True)
    fills = set(re.findall(r'fillcolor="(#[0-9A-F]{6})"', r.dot))
    assert len(fills & set(T.HEAT)) >= 3
    assert "legend:heat0" in r.dot


def test_collapse_draws_each_call_as_one_node():
    r = d2l().render(values=d2l_values(), collapse=["loss", "phi"])
    nodes = set(r.scene.nodes)
    assert {"call:loss#1", "call:phi#1", "L", "h", "o", "y", "z"} <= nodes
    assert "%7" not in nodes and next(r.graph.predecessors("h")) not in nodes
    links = var_links(r)
    assert ("o", "L") in links and ("y", "L") in links and ("z", "h") in links
    assert 'subgraph "cluster_loss#1"' not in r.dot
    with pytest.raises(GraphDSLError) as err:
        d2l().render(collapse=["los"])
    assert "did you mean `loss`" in err.value.format()


def test_focus_draws_a_neighbourhood():
    r = d2l().render(values=d2l_values(), focus="h", radius=1)
    nodes = set(r.scene.nodes)
    g = r.graph
    relu, matmul = next(g.predecessors("h")), next(g.predecessors("o"))
    assert {"h", relu, "z", matmul, "W2", "o"} == nodes
    assert "J" not in nodes and "x" not in nodes
    assert r.scene.focus == "h" and any("focus:" in line for line in r.dot.splitlines()[1:2])
    assert set(d2l().render(focus="h", radius=0).scene.nodes) == {"h"}
    with pytest.raises(GraphDSLError) as err:
        d2l().render(focus="hh")
    assert err.value.errors[0].code == "E101"


def chain(layers: int) -> str:
    lines = ["input x : [2] = [0.5, -0.25]"]
    prev = "x"
    for i in range(layers):
        lines.append(f"param w{i} : [2] = randn()")
        lines.append(f"h{i} = tanh(w{i} * {prev})")
        prev = f"h{i}"
    lines.append(f"J = sum({prev})")
    return "\n".join(lines) + "\n"


def test_big_graphs_turn_compact_and_say_so(embedded):
    m = graphdsl.parse(chain(60), "chain.gdsl")
    r = m.render()
    assert len(r.scene.nodes) > 300 and r.scene.compact
    assert "compact labels" in r.dot
    assert '"w0" [label="w0 [2]", shape="box"' in r.dot
    svg = r.svg()
    assert svg.count('class="node"') >= len(r.scene.nodes)
    assert not graphdsl.parse(chain(60), "chain.gdsl").render(labels="full").scene.compact


# ---- escaping -----------------------------------------------------------------------------------------

WEIRD_SOURCE = ('input x : [2] = [1, 2]\n'
                'def f(a) = a * 2\n'
                'z = sum(f(x   # <&>"\\|{}ü∂\n'
                '        ))\n'
                'J = z\n')
WEIRD_NAME = 'we<ird>&"na\\me ü.gdsl'
WEIRD_TEXT = 'f(x # <&>"\\|{}ü∂ )  [f#1]'


def test_escaping_in_dot_labels():
    assert L.esc_record('a <b> {c} | "d" \\N & ü') == 'a\\ \\<b\\>\\ \\{c\\}\\ \\|\\ "d"\\ \\\\N\\ &amp;\\ ü'
    assert L.dot_string('say "hi"') == '"say \\"hi\\""'
    assert L.esc_text("a\\nb & c\nd") == "a\\\\nb &amp; c d"
    assert L.quote_id('a"b') == '"a\\"b"'


def test_escaped_labels_survive_graphviz(embedded):
    m = graphdsl.parse(WEIRD_SOURCE, WEIRD_NAME)
    r = m.render()
    svg = r.svg()
    root = ET.fromstring(svg.encode("utf-8"))  # well-formed XML
    texts = ["".join(t.itertext()).replace("\xa0", " ") for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert WEIRD_TEXT in texts
    assert f"{WEIRD_NAME} · forward view · J = 6" in texts


def test_escaping_in_html_and_json(embedded, tmp_path):
    m = graphdsl.parse(WEIRD_SOURCE, WEIRD_NAME)
    r = m.render()
    page = r.html()
    assert "<title>we&lt;ird&gt;&amp;&quot;na\\me ü.gdsl · forward view</title>" in page
    start = page.index('<script type="application/json" id="graph-data">') + len(
        '<script type="application/json" id="graph-data">')
    block = page[start:page.index("</script>", start)]
    assert "<" not in block and ">" not in block
    data = json.loads(block)["main"]
    assert any(WEIRD_TEXT.split("  [")[0] in d.get("call", "") for d in data.values())
    out = tmp_path / "weird.json"
    r.save(out)
    nodes = json.loads(out.read_text(encoding="utf-8"))["nodes"]
    assert json.loads(out.read_text(encoding="utf-8"))["graph"]["file"] == WEIRD_NAME
    assert any(n.get("call") == ["f#1"] for n in nodes)


def test_html_is_self_contained(embedded):
    page = d2l().render(values=d2l_values(), view="both").html()
    assert "<svg" in page and "graph-data" in page
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page)
    assert "http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'" in page
    assert page.count("<?xml") == 0 and "<!DOCTYPE svg" not in page


def test_json_is_node_link_data_and_valid_rfc8259():
    m = graphdsl.parse("input x : [2] = [-1, 2]\nl = log(x)\nJ = sum(l)\n", "nan.gdsl")
    text = m.render().json()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert {n["id"] for n in data["nodes"]} >= {"x", "l", "J"}
    lvalue = next(n for n in data["nodes"] if n["id"] == "l")["value"]
    assert lvalue[0] == "NaN"
    assert all({"source", "target", "kind"} <= set(link) for link in data["links"])


# ---- golden DOT ------------------------------------------------------------------------------------------

GOLDEN_CASES = {
    "d2l_mlp_forward": lambda: d2l().render(values=d2l_values(), view="forward"),
    "d2l_mlp_backward": lambda: d2l().render(values=d2l_values(), view="backward"),
    "d2l_mlp_both": lambda: d2l().render(values=d2l_values(), view="both"),
    "d2l_mlp_collapsed": lambda: d2l().render(values=d2l_values(), collapse=["loss"], heat=True),
    "d2l_mlp_structure": lambda: d2l().render(),
    "oneliner": lambda: graphdsl.load(EXAMPLES / "oneliner.gdsl").render(),
    "loop_rnn_rolled": lambda: _loop_rnn(12).render(),
    "loop_rnn_rolled_backward": lambda: _loop_rnn(12).render(view="backward"),
    "loop_rnn_unrolled": lambda: _loop_rnn(3).render(unroll=True),
}


def _loop_rnn(steps):
    from render_models import loop_rnn

    return graphdsl.parse(loop_rnn(steps), f"loop_rnn{steps}.gdsl")


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_dot(name):
    dot = GOLDEN_CASES[name]().dot
    path = GOLDEN / f"{name}.dot"
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"{path} is missing: run GRAPHDSL_UPDATE_GOLDEN=1 pytest {__file__}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dot, encoding="utf-8")
    assert dot == path.read_text(encoding="utf-8"), f"{name}: DOT changed; if intended, regenerate with " \
                                                    "GRAPHDSL_UPDATE_GOLDEN=1"


# ---- results and saving ------------------------------------------------------------------------------------

def test_format_from_extension():
    assert format_of("a.SVG") == "svg" and format_of("b.gv") == "dot" and format_of("c.htm") == "html"
    with pytest.raises(ValueError):
        format_of("a.bmp")


def test_save_every_format_with_the_embedded_renderer(embedded, tmp_path):
    r = d2l().render(values=d2l_values(), view="both")
    cases = [(".svg", b"<?xml"), (".png", b"\x89PNG"), (".pdf", b"%PDF"), (".dot", b"digraph"),
             (".html", b"<!DOCTYPE html>"), (".json", b"{")]
    if importlib.util.find_spec("PIL") is None:  # a PDF without Graphviz is a raster PDF made by Pillow
        cases.remove((".pdf", b"%PDF"))
    for ext, magic in cases:
        path = tmp_path / f"out{ext}"
        assert r.save(path) == str(path)
        assert path.read_bytes().startswith(magic), ext
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".graphdsl-")]  # no temporaries left


def test_png_has_a_readable_dpi(embedded):
    r = d2l().render(values=d2l_values())
    w_pt, h_pt = backends.svg_size_pt(r.svg().encode())
    png = r.png()
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    dpi = backends.png_dpi(w_pt, h_pt)
    assert backends.MIN_PNG_DPI <= dpi <= backends.PNG_DPI
    assert abs(width - w_pt * dpi / 72) < 3 and abs(height - h_pt * dpi / 72) < 3
    assert width * height <= backends.PNG_BUDGET * 1.01 or dpi == backends.MIN_PNG_DPI
    # small pictures get the full 150 dpi; a dpi asked for is used as it is
    assert backends.png_dpi(300, 200) == backends.PNG_DPI and backends.png_dpi(9000, 9000, 72) == 72
    assert backends.png_dpi(500, 25000) == backends.MIN_PNG_DPI


def test_jupyter_mimebundle(embedded):
    r = d2l().render(values=d2l_values())
    bundle = r._repr_mimebundle_()
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml")
    assert bundle["text/html"].startswith('<iframe id="graphdsl-') and 'sandbox="allow-scripts"' in bundle["text/html"]
    assert "image/png" not in bundle  # no PNG unless asked for
    import base64

    r.notebook_formats += ("image/png",)
    assert base64.b64decode(r._repr_mimebundle_()["image/png"]).startswith(b"\x89PNG")
    only_svg = d2l().render()._repr_mimebundle_(include={"image/svg+xml"})
    assert set(only_svg) == {"image/svg+xml", "text/plain"}


def test_save_into_a_missing_folder_is_E308(tmp_path):
    with pytest.raises(GraphDSLError) as err:
        d2l().render().save(tmp_path / "no" / "such" / "g.dot")
    assert err.value.errors[0].code == "E308"


@pytest.mark.skipif(backends.system_dot() is None, reason="Graphviz `dot` is not installed")
def test_system_graphviz_renders_the_same_dot(tmp_path, monkeypatch):
    monkeypatch.setenv(backends.ENV, "system")
    r = d2l().render(values=d2l_values(), view="both")
    assert r.backend("svg") == "system"
    svg = r.svg()
    ET.fromstring(svg.encode("utf-8"))
    assert svg.count('class="node"') >= len(r.scene.nodes)
    assert r.png().startswith(b"\x89PNG") and r.pdf().startswith(b"%PDF")


def test_whole_number_options_print_as_integers():
    """`conv2d(x, w, padding=1)` is drawn `padding=1`, as written (the option is an int, as its default)."""
    text = """dim n = 1
input x : [n, 1, 6, 6]
param w : [2, 1, 3, 3] = randn()
J = sum(conv2d(x, w, padding=1, stride=[1, 1]))
output J
"""
    model = graphdsl.parse(text)
    attrs = next(d["attrs"] for _, d in model.graph.nodes(data=True) if d.get("op") == "conv2d")
    assert attrs["padding"] == 1 and type(attrs["padding"]) is int and attrs["stride"] == (1, 1)
    dot = model.render().dot
    assert "padding=1" in dot and "padding=1.0" not in dot

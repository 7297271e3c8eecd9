"""graphdsl explain: the worked example of one training step.

Every number in the output is checked against an independent answer: values
derived by hand for a scalar network of our own, the engine's own eval/grad and
train (one SGD step), and the published numbers of Mazur's worked example.
Golden files for the text of one_neuron and Mazur are regenerated with
GRAPHDSL_UPDATE_GOLDEN=1 pytest tests/test_explain.py (then reviewed in the diff).
"""
from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

import graphdsl
from graphdsl.cli import main
from graphdsl.explain.numbers import num
from graphdsl.train import train
from graphdsl.values import load_file
from test_equations import _mathtext, assert_wellformed_latex, check_golden

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden" / "explain"
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")

# A scalar network of our own: h is used three times (h * h and v * h), so dL/dh is a sum of three.
MINE = """
input x = 1.5
input t = 2.0
param w = 0.4, b = -0.3
param v = 0.7
h = w * x + b
a = h * h + v * h
y = a - t
L = 0.5 * y ** 2
output L
"""


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def numbers_in(text) -> list[float]:
    return [float(m) for m in NUMBER.findall(text)]


def assert_appears(text, value, rel=1e-8):
    found = numbers_in(text)
    assert any(math.isclose(f, value, rel_tol=rel, abs_tol=1e-12) for f in found), f"{value!r} not in the output"


def line_of(text, lhs) -> str:
    """The (first) line that writes `lhs = ...`."""
    for line in text.splitlines():
        if line.strip().startswith(lhs + " = ") or line.strip().startswith(lhs + " ← "):
            return line
    raise AssertionError(f"no line for {lhs}")


def last_number(line) -> float:
    return numbers_in(line)[-1]


# ---- a scalar network, every number derived by hand -----------------------------------------------------

def hand_values():
    x, t, w, b, v, lr = 1.5, 2.0, 0.4, -0.3, 0.7, 0.5
    h = w * x + b
    a = h * h + v * h
    y = a - t
    L = 0.5 * y ** 2
    dL_dy = y
    dL_da = dL_dy  # dy/da = 1
    da_dh, da_dv = 2 * h + v, h
    dL_dh, dL_dv = dL_da * da_dh, dL_da * da_dv
    dL_dw, dL_db = dL_dh * x, dL_dh
    w2, b2, v2 = w - lr * dL_dw, b - lr * dL_db, v - lr * dL_dv
    h2 = w2 * x + b2
    after = 0.5 * (h2 * h2 + v2 * h2 - t) ** 2
    return dict(h=h, a=a, y=y, L=L, dL_dy=dL_dy, dL_da=dL_da, da_dh=da_dh, da_dv=da_dv, dh_dw=x, dL_dh=dL_dh,
                dL_dv=dL_dv, dL_dw=dL_dw, dL_db=dL_db, w2=w2, b2=b2, v2=v2, after=after,
                contributions=(dL_da * h, dL_da * h, dL_da * v))


def test_scalar_network_every_number_by_hand(tmp_path, capsys):
    path = tmp_path / "mine.gdsl"
    path.write_text(MINE)
    code, out, err = cli(capsys, "explain", path, "--lr", "0.5")
    assert code == 0, err
    hv = hand_values()
    # each named line ends with the hand-derived number
    for lhs, key in [("h", "h"), ("a", "a"), ("y", "y"), ("L", "L"), ("dL/dy", "dL_dy"), ("dL/da", "dL_da"),
                     ("da/dh", "da_dh"), ("da/dv", "da_dv"), ("dh/dw", "dh_dw"), ("dL/dh", "dL_dh"),
                     ("dL/dv", "dL_dv"), ("dL/dw", "dL_dw"), ("dL/db", "dL_db"), ("w", "w2"), ("b", "b2"),
                     ("v", "v2")]:
        section = out.split("Update")[1] if lhs in ("w", "b", "v") else out
        assert last_number(line_of(section, lhs)) == pytest.approx(hv[key], rel=1e-8), lhs
    assert "dy/da = 1" in out and "dh/db = 1" in out
    # the fan-out: three contributions, each shown, and said in words
    assert "the sum of 3 contributions" in out and "shared out in proportion to the weights" in out
    for c in hv["contributions"]:
        assert_appears(out, c)
    # the chain rule with the numbers: incoming gradient times local derivative
    assert re.search(r"dL/dw = dL/dh·dh/dw = .* = \(-2\.21\)·1\.5 = -3\.315$", out, re.M)
    assert "w ← w - η·dL/dw = 0.4 - 0.5·(-3.315) = 2.0575" in out
    assert_appears(out.split("Loss after the step")[1], hv["after"])


def test_numbers_are_printed_with_nine_significant_digits():
    assert num(0.549833997312478) == "0.549833997"
    assert num(-0.0278943827399) == "-0.0278943827"
    assert num(2.0) == "2" and num(-0.0) == "0" and num(1e-12) == "1e-12"


# ---- the engine's numbers, on the examples ----------------------------------------------------------------

def examples():
    return [("one_neuron", None), ("mazur", None), ("d2l_mlp", "d2l_mlp.json"), ("numpy_layer", "numpy_layer.json"),
            ("torch_mlp", "torch_mlp.json")]


def model_and_values(name, data):
    model = graphdsl.load(EXAMPLES / f"{name}.gdsl")
    values = load_file(str(EXAMPLES / data), 2 ** 28) if data else None
    return model, values


@pytest.mark.parametrize("name,data", examples())
def test_every_number_is_the_engines(name, data):
    model, values = model_and_values(name, data)
    walk = model.explain(values, lr=0.1).walk
    outputs = model.eval(values, outputs=[s.lhs.name for s in walk.forward if s.kind == "forward"])
    for step in walk.forward:
        if step.kind == "forward":
            np.testing.assert_array_equal(step.value, outputs[step.lhs.name])
    loss, grads = model.grad(values)
    assert walk.loss == float(loss)
    by_lhs = {s.lhs.name: s.value for s in walk.backward if s.kind == "backward"}
    for p, g in grads.items():
        np.testing.assert_array_equal(by_lhs[f"d{walk.of}/d{p}"], g)
    stepped = train(graphdsl.load(EXAMPLES / f"{name}.gdsl"), values, lr=0.1, steps=1)
    for step in walk.updates:
        np.testing.assert_allclose(step.value, stepped.params[step.lhs.name], rtol=0, atol=0)
    assert walk.loss_after == pytest.approx(stepped.loss, rel=1e-12)


def test_mazur_reproduces_the_published_numbers(capsys):
    code, out, _ = cli(capsys, "explain", EXAMPLES / "mazur.gdsl", "--lr", "0.5")
    assert code == 0
    # Mazur (2015), to the digits he printed
    published = {"out_o1": 0.75136507, "out_o2": 0.772928465, "E_total": 0.298371109, "dE/dw5": 0.082167041,
                 "dE/dw1": 0.000438568, "w5+": 0.35891648, "w1+": 0.149780716}
    found = numbers_in(out)
    for what, value in published.items():
        digits = len(str(value).split(".")[1])
        assert any(round(f, digits) == value for f in found), f"{what} = {value} not in the walkthrough"
    assert "E = 0.298371109" in out and "0.35891648" in out and "0.149780716" in out


def test_one_neuron_predicts_the_tutorials_059(capsys):
    code, out, _ = cli(capsys, "explain", EXAMPLES / "one_neuron.gdsl", "--lr", "0.5")
    assert code == 0
    assert round(last_number(line_of(out, "yo")), 2) == 0.59
    assert "wo ← wo - η·dE/dwo = 0.3 - 0.5·(-0.0278943827) = 0.313947191" in out


@pytest.mark.parametrize("name", ["one_neuron", "mazur"])
def test_golden_text(name, capsys):
    code, out, _ = cli(capsys, "explain", EXAMPLES / f"{name}.gdsl", "--lr", "0.5")
    assert code == 0
    check_golden(f"{name}.txt", out.replace(str(EXAMPLES / f"{name}.gdsl"), f"examples/{name}.gdsl"), GOLDEN)


# ---- tensors: shapes, full arrays, summaries; Markdown and LaTeX ----------------------------------------

def test_d2l_markdown(capsys):
    code, out, err = cli(capsys, "explain", EXAMPLES / "d2l_mlp.gdsl", EXAMPLES / "d2l_mlp.json", "--format",
                         "markdown", "--lr", "0.1")
    assert code == 0, err
    assert out.startswith("# Backpropagation step by step")
    for heading in ("## Starting values", "## Forward pass", "## Loss", "## Backward pass", "## Update",
                    "## Loss after the step"):
        assert heading in out
    assert out.count("$$") % 2 == 0 and r"\begin{bmatrix}" in out
    assert r"[q, m] \cdot [m, b] \to [q, b]" in out  # o = W2 h, with its shapes
    model, values = model_and_values("d2l_mlp", "d2l_mlp.json")
    loss, grads = model.grad(values)
    for g in grads["W2"].reshape(-1):
        assert num(g) in out
    assert_appears(out, float(loss))
    blocks = re.findall(r"\$\$\n(.*?)\n\$\$", out, re.S)
    assert blocks and all(b.startswith(r"\begin{aligned}") and b.endswith(r"\end{aligned}") for b in blocks)


def test_large_arrays_are_summarised():
    model, values = model_and_values("d2l_mlp", "d2l_mlp.json")
    values = {"x": np.linspace(-1, 1, 4 * 30).reshape(4, 30), "y": np.zeros((3, 30))}
    text = model.explain(values).text
    summary = re.search(r"z = W1·x\n.*\n\s+= \[5, 30\] array: min (\S+), mean (\S+), max (\S+), norm (\S+)", text)
    assert summary, text[:2000]
    z = model.eval(values, outputs=["z"])["z"]
    expected = [z.min(), z.mean(), z.max(), np.linalg.norm(z)]
    assert [float(s.rstrip(",")) for s in summary.groups()] == pytest.approx(expected, rel=1e-8)


def strip_matrices(latex: str) -> tuple[str, list[str]]:
    """The LaTeX with each bmatrix replaced by a symbol (mathtext has no matrices), and the matrices."""
    matrices = re.findall(r"\\begin\{bmatrix\}(.*?)\\end\{bmatrix\}", latex)
    return re.sub(r"\\begin\{bmatrix\}.*?\\end\{bmatrix\}", "M", latex), matrices


@pytest.mark.parametrize("name,data", examples())
def test_latex_is_wellformed_and_parses(name, data):
    model, values = model_and_values(name, data)
    result = model.explain(values, lr=0.5)
    for latex, parse in ((result.latex, True), (result.latex_document(), False)):  # mathtext once: it is slow
        body, matrices = strip_matrices(latex)
        body = "\n".join(line for line in body.splitlines() if not line.strip().startswith(r"\intertext"))
        assert_wellformed_latex(body, mathtext=parse)
        for m in matrices if parse else ():
            rows = [r.strip() for r in m.split(r"\\")]
            assert len({r.count("&") for r in rows}) == 1, m  # every row has as many columns
            for cell in (c for r in rows for c in r.split("&")):
                _mathtext(cell.strip())
    doc = result.latex_document()
    assert doc.startswith(r"\documentclass{article}") and doc.rstrip().endswith(r"\end{document}")


# ---- the command line and the Python API --------------------------------------------------------------------

def test_python_api_formats():
    result = graphdsl.load(EXAMPLES / "one_neuron.gdsl").explain(lr=0.5)
    assert result.text == str(result) and "Loss after the step" in result.text
    assert result.markdown.startswith("# Backpropagation") and r"\begin{align*}" in result.latex
    bundle = result._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/markdown", "text/plain"}
    assert bundle["text/html"] == result._repr_html_()
    srcdoc = re.fullmatch(r'<iframe srcdoc="([^"]*)" sandbox="allow-scripts" .*</iframe>', bundle["text/html"], re.S)
    assert srcdoc and html.unescape(srcdoc.group(1)) == result.html  # the player, sealed off from the notebook
    assert set(result._repr_mimebundle_(exclude={"text/html"})) == {"text/markdown", "text/plain"}


def test_wrt_and_of(capsys):
    code, out, _ = cli(capsys, "explain", EXAMPLES / "one_neuron.gdsl", "--of", "E", "--wrt", "wo")
    assert code == 0
    assert "dE/dwo" in out and "dE/dwh" not in out and "Update" not in out


def test_writes_a_file(tmp_path, capsys):
    target = tmp_path / "walk.tex"
    code, out, _ = cli(capsys, "explain", EXAMPLES / "mazur.gdsl", "--format", "latex", "--standalone",
                       "-o", target)
    assert code == 0 and "wrote the walkthrough" in out
    assert target.read_text().startswith(r"\documentclass")


def test_bad_input_is_a_diagnostic_and_writes_nothing(tmp_path, capsys):
    target = tmp_path / "out.md"
    code, _, err = cli(capsys, "explain", EXAMPLES / "d2l_mlp.gdsl", "-o", target)  # no data for x and y
    assert code == 1 and "E304" in err and "Traceback" not in err
    assert not target.exists()
    code, _, err = cli(capsys, "explain", EXAMPLES / "one_neuron.gdsl", "--lr", "-1")
    assert code == 2 and "--lr must be a positive number" in err
    code, _, err = cli(capsys, "explain", EXAMPLES / "one_neuron.gdsl", "--of", "nope")
    assert code == 1 and "E106" in err


def test_nonfinite_values_are_reported_where_they_appear(tmp_path, capsys):
    path = tmp_path / "bad.gdsl"
    path.write_text("param w = 0.0\nr = 1 / w\nJ = r * 2\noutput J\n")
    code, _, err = cli(capsys, "explain", path)
    assert code == 1 and "E302" in err


# ---- the player's page ------------------------------------------------------------------------------------------

def player_steps(html: str) -> list:
    raw = re.search(r'<script type="application/json" id="steps">(.*?)</script>', html, re.S).group(1)
    return json.loads(raw)


def test_player_page_is_self_contained_and_carries_the_gradients(capsys, tmp_path):
    target = tmp_path / "player.html"
    code, _, err = cli(capsys, "explain", EXAMPLES / "one_neuron.gdsl", "--lr", "0.5", "--format", "html",
                       "-o", target)
    assert code == 0, err
    html = target.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "@import" not in html and "url(" not in html
    assert "default-src 'none'" in html  # the browser itself refuses any fetch
    assert "<svg" in html and html.count("<script") == 2
    steps = player_steps(html)
    _, grads = graphdsl.load(EXAMPLES / "one_neuron.gdsl").grad()
    for p, g in grads.items():
        assert any(s["grads"].get(p) == "∂ " + num(g) for s in steps), p
    # a gradient appears only from the step that computes it
    first = {}
    for k, s in enumerate(steps):
        for node in s["grads"]:
            first.setdefault(node, k)
    assert steps[first["wh"]]["title"] == "Backward: dE/dwh"
    assert first["zo"] < first["yh"] < first["zh"] < first["wh"]


def test_player_shows_each_contribution_arriving(tmp_path):
    model = graphdsl.parse(MINE)
    steps = player_steps(model.explain(lr=0.5).html)
    arrivals = [s for s in steps if s["phase"] == "arrive"]
    assert [s["title"] for s in arrivals] == [f"Contribution {k} of 3 to dL/dh" for k in (1, 2, 3)]
    total = next(k for k, s in enumerate(steps) if s["title"] == "Backward: dL/dh")
    assert steps.index(arrivals[-1]) == total - 1 and steps[total]["grads"]["h"] == "∂ " + num(hand_values()["dL_dh"])


# ---- the walkthroughs in docs/ --------------------------------------------------------------------------------

def test_walkthroughs_in_docs_are_current():
    """docs/walkthroughs/*.md are what docs/walkthroughs/make.py writes now (rerun it after a change)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_walkthroughs", ROOT / "docs" / "walkthroughs" / "make.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    for name, data, lr in make.WALKTHROUGHS:
        path = ROOT / "docs" / "walkthroughs" / f"{name}.md"
        assert path.read_text(encoding="utf-8") == make.walkthrough(name, data, lr), \
            f"{path} is stale: run python docs/walkthroughs/make.py"
    linked = (ROOT / "docs" / "examples.md").read_text(encoding="utf-8")
    assert all(f"walkthroughs/{name}.md" in linked for name, _, _ in make.WALKTHROUGHS)


def test_torch_mlp_update_is_pytorchs_sgd_step():
    """The walkthrough's update of torch_mlp equals optim.SGD(lr=0.01).step() in PyTorch (float64)."""
    torch = pytest.importorskip("torch")
    model, values = model_and_values("torch_mlp", "torch_mlp.json")
    walk = model.explain(values, lr=0.01).walk
    start = {name: value for name, _, _, value in walk.start}
    params = {k: torch.tensor(start[k], dtype=torch.float64, requires_grad=True) for k in ("W1", "b1", "W2", "b2")}
    net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2)).double()
    with torch.no_grad():
        for layer, (w, b) in zip((net[0], net[2]), (("W1", "b1"), ("W2", "b2"))):
            layer.weight.copy_(params[w])
            layer.bias.copy_(params[b])
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    loss = torch.nn.CrossEntropyLoss()(net(torch.tensor(start["x"])), torch.tensor(start["labels"]).long())
    loss.backward()
    opt.step()
    assert walk.loss == pytest.approx(loss.item(), rel=1e-12)
    updated = {s.lhs.name: s.value for s in walk.updates}
    for layer, (w, b) in zip((net[0], net[2]), (("W1", "b1"), ("W2", "b2"))):
        np.testing.assert_allclose(updated[w], layer.weight.detach().numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(updated[b], layer.bias.detach().numpy(), rtol=1e-12, atol=1e-15)


def test_no_params_to_update(tmp_path, capsys):
    path = tmp_path / "inputs_only.gdsl"
    path.write_text("input a = 2\ninput c = 3\nf = a * c + a\n")
    code, out, _ = cli(capsys, "explain", path, "--of", "f", "--lr", "0.1")
    assert code == 0
    assert last_number(line_of(out, "df/da")) == 4.0 and last_number(line_of(out, "df/dc")) == 2.0  # c + 1, a
    assert "nothing is updated" in out and "Loss after the step" not in out


@pytest.mark.parametrize("stem", ["%%SVG%%", "%%DATA%%", "%%TITLE%%", "<script>x<!--&"])
def test_a_hostile_file_name_stays_plain_text_in_the_player(tmp_path, stem):
    """The page's slots are filled in one pass: a file named like a slot is never read as one."""
    model = tmp_path / f"{stem}.gdsl"
    model.write_text((EXAMPLES / "one_neuron.gdsl").read_text())
    out = tmp_path / "page.html"
    assert main(["explain", str(model), "--format", "html", "-o", str(out)]) == 0
    page = out.read_text()
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    assert "<svg" not in title and "<script" not in title and len(title) < 400
    assert html.escape(stem, quote=False) in title or html.escape(stem) in title


def test_summary_mean_within_rounding_of_zero_is_zero():
    """A mean that is summation noise prints as 0 (it differs between machines); a real one is kept."""
    from graphdsl.explain.numbers import summary_parts

    rng = np.random.default_rng(3)
    half = rng.normal(size=40)
    noisy = np.concatenate([half, -half[::-1]])  # sums to rounding noise, not exactly 0
    assert dict(summary_parts(noisy))["mean"] == 0.0
    small = np.full(80, 1e-9)  # tiny but not noise: 1e-9 is far above 80 * eps * 1e-9
    assert dict(summary_parts(small))["mean"] == pytest.approx(1e-9, rel=1e-12)

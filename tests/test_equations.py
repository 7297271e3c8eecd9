"""graphdsl equations: golden files for the D2L MLP, D2L 5.3.3's content, well-formed LaTeX.

Regenerate the golden files with GRAPHDSL_UPDATE_GOLDEN=1 pytest tests/test_equations.py.
No TeX is installed here (or in CI), so the LaTeX is checked structurally (balanced
braces, environments and \\left/\\right, no stray special characters) and each
equation is parsed by matplotlib's mathtext, which accepts a subset of LaTeX math.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphdsl
from graphdsl.cli import main
from graphdsl.equations import equations, tex_name
from graphdsl.values import load_file

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden" / "equations"
UPDATE = os.environ.get("GRAPHDSL_UPDATE_GOLDEN") == "1"


def check_golden(name: str, text: str, folder: Path = GOLDEN):
    path = folder / name
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"golden file {path} did not exist; written now, rerun")
    assert text == path.read_text(encoding="utf-8"), f"differs from {path} (GRAPHDSL_UPDATE_GOLDEN=1 to update)"


def d2l_model():
    return graphdsl.load(EXAMPLES / "d2l_mlp.gdsl")


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---- golden files -----------------------------------------------------------------------

@pytest.mark.parametrize("fmt,ext", [("text", "txt"), ("latex", "tex"), ("markdown", "md")])
def test_d2l_golden_through_the_cli(capsys, fmt, ext):
    code, out, err = cli(capsys, "equations", EXAMPLES / "d2l_mlp.gdsl", "--format", fmt)
    assert code == 0, err
    out = out.replace(str(EXAMPLES / "d2l_mlp.gdsl"), "examples/d2l_mlp.gdsl")
    check_golden(f"d2l_mlp.{ext}", out)


def test_mazur_golden():
    m = graphdsl.load(EXAMPLES / "mazur.gdsl")
    check_golden("mazur.txt", equations(m).text().replace(str(EXAMPLES / "mazur.gdsl"), "examples/mazur.gdsl"))


def test_same_equations_with_and_without_data():
    symbolic = equations(d2l_model()).text()
    concrete = equations(d2l_model(), load_file(str(EXAMPLES / "d2l_mlp.json"))).text()
    assert symbolic == concrete


# ---- what D2L 5.3.3 says ----------------------------------------------------------------------

D2L_533 = [  # (D2L's statement, the line graphdsl prints)
    ("dJ/dL = 1", "dJ/dL = 1"),
    ("dJ/ds = 1", "dJ/ds = 1"),
    ("dJ/do = prod(dJ/dL, dL/do) = dL/do", "dJ/do = dL/do = (o - y) / b"),
    ("ds/dW1 = lambda W1", "ds/dW1 = lam W1"),
    ("ds/dW2 = lambda W2", "ds/dW2 = lam W2"),
    ("dJ/dW2 = dJ/do h^T + lambda W2", "dJ/dW2 = dJ/do hᵀ + lam W2"),
    ("dJ/dh = W2^T dJ/do", "dJ/dh = W2ᵀ dJ/do"),
    ("dJ/dz = dJ/dh ⊙ phi'(z)", "dJ/dz = dJ/dh ⊙ relu'(z)"),
    ("dJ/dW1 = dJ/dz x^T + lambda W1", "dJ/dW1 = dJ/dz xᵀ + lam W1"),
]


def test_d2l_backward_equations_say_what_the_book_says():
    text = equations(d2l_model()).text()
    lines = [line.strip() for line in text.splitlines()]
    for book, ours in D2L_533:
        assert ours in lines, f"D2L 5.3.3 says {book}; expected the line `{ours}` in\n{text}"
    backward = lines[lines.index(next(x for x in lines if x.startswith("backward"))) + 1:]
    order = [x.split(" = ")[0] for x in backward if x]
    # reverse topological order: each adjoint after every adjoint it uses
    assert order.index("dJ/do") < order.index("dJ/dW2") < order.index("dJ/dh") < order.index("dJ/dz") \
        < order.index("dJ/dW1")
    assert order.index("dJ/dL") < order.index("dJ/do") and order.index("dJ/ds") < order.index("ds/dW1")


def test_d2l_forward_equations():
    text = equations(d2l_model()).text()
    for line in ["z = W1 x", "h = phi(z) = relu(z)", "o = W2 h", "L = loss(o, y) = sum((o - y)²) / (2 b)",
                 "s = lam (‖W1‖² + ‖W2‖²) / 2", "J = L + s"]:
        assert f"  {line}\n" in text


def test_backward_equations_come_from_the_gradient_graph():
    """The printed adjoints are the graph's adjoint nodes: evaluating them gives model.grad's numbers."""
    m = d2l_model()
    values = load_file(str(EXAMPLES / "d2l_mlp.json"))
    eqs = equations(m, values)
    compiled, given = m.compile(values)
    g = compiled.built.graph
    table = g.graph["adjoints"]["J"]
    printed = {eq.node for eq in eqs.backward if eq.kind == "backward"}
    assert printed == {"L", "s", "o", "W2", "h", "z", "W1"}
    for v in printed:
        assert g.nodes[table[v]]["phase"] == "backward" or g.nodes[table[v]]["role"] == "const"
    _, grads = m.grad(values)
    # dJ/dW1 = dJ/dz xᵀ + lam W1, checked numerically from the graph's own dJ/dz
    plan = m._plan(compiled, (table["z"], table["W1"]))
    leaves = m.leaf_values(compiled, given)
    dz, dW1 = plan.run(leaves)
    assert np.allclose(dW1, dz @ leaves["x"].T + 0.01 * leaves["W1"])
    assert np.allclose(dW1, grads["W1"])


def test_equations_leave_only_the_adjoints_of_of_in_the_graph():
    m = d2l_model()
    equations(m)
    assert set(m.graph.graph.get("adjoints", {})) == {"J"}  # ds/dW1 was built on a scratch copy


def test_of_and_wrt(capsys):
    eqs = equations(d2l_model(), of="L", wrt=["W2"])
    text = eqs.text()
    assert "dL/dW2 = dL/do hᵀ" in text and "dL/dW1" not in text and "lam" not in text.split("backward")[1]
    code, out, _ = cli(capsys, "equations", EXAMPLES / "d2l_mlp.gdsl", "--wrt", "x")
    assert code == 0 and "dJ/dx = W1ᵀ dJ/dz" in out and "dJ/dW1" not in out


def test_write_to_a_file(tmp_path, capsys):
    target = tmp_path / "eq.tex"
    code, out, _ = cli(capsys, "equations", EXAMPLES / "d2l_mlp.gdsl", "--format", "latex", "--standalone",
                       "-o", target)
    assert code == 0 and "wrote" in out
    text = target.read_text(encoding="utf-8")
    assert text.startswith(r"\documentclass{article}") and text.rstrip().endswith(r"\end{document}")
    assert_wellformed_latex(text)


def test_one_neuron_chain_rule():
    """Tutorial 001's hand computation: one factor per layer, as a chain."""
    text = equations(graphdsl.load(EXAMPLES / "one_neuron.gdsl")).text()
    for line in ["dE/dyo = yo - y", "dE/dzo = dE/dyo dyo/dzo = dE/dyo sigmoid'(zo)",
                 "dE/dwo = dE/dzo dzo/dwo = dE/dzo yh", "dE/dyh = dE/dzo dzo/dyh = wo dE/dzo",
                 "dE/dwh = dE/dzh dzh/dwh = dE/dzh x"]:
        assert f"  {line}\n" in text


def test_undefined_functions_print_forward_then_fail(capsys):
    code, out, err = cli(capsys, "equations", EXAMPLES / "oneliner.gdsl")
    assert code == 1
    assert "h = phi(z)" in out and "J = loss(o, y)" in out and "backward" not in out
    assert "E305" in err and "cannot differentiate `loss`" in err and "def loss" in err
    assert "Traceback" not in err


def test_no_data_and_a_mean_over_free_dims(capsys):
    """Without data the symbolic graph is used; it knows names, not sizes, so a mean's count is `b`."""
    text = equations(graphdsl.parse("dim b\ninput x : [b]\nparam w = 2.0\nJ = mean(w * x)\n")).text()
    assert "  dJ/dw = sum_b(x / b)\n" in text, text


def test_long_expressions_get_auxiliary_names():
    """A 300-term sum is not one 300-term line, and nothing recurses per node."""
    terms = " + ".join(f"sin({k} * w)" for k in range(1, 301))
    m = graphdsl.parse(f"param w = 0.5\nJ = {terms}\n")
    eqs = equations(m)
    text = eqs.text()
    assert "  t1 = " in text
    assert max(len(line) for line in text.splitlines()) < 2000
    latex = eqs.latex()
    assert_wellformed_latex(latex, mathtext=False)


def test_auxiliary_names_do_not_depend_on_the_hash_seed():
    """Auxiliaries are numbered in the order the converter meets them, never in a set's order."""
    script = ("import graphdsl; from graphdsl.equations import equations; "
              "print(equations(graphdsl.parse('param w = 0.5\\nJ = ' + 'tanh(' * 30 + 'w' + ')' * 30)).text())")
    texts = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("0", "3")}
    assert len(texts) == 1 and "  t1 = " in texts.pop()


def test_deep_chain_of_named_values():
    lines = ["param w = 0.5", "x0 = w"] + [f"x{k} = tanh(x{k - 1})" for k in range(1, 400)] + ["J = x399 * 2"]
    eqs = equations(graphdsl.parse("\n".join(lines) + "\n"))
    assert len(eqs.forward) == 401 and len(eqs.backward) >= 400
    assert eqs.backward[-1].lhs.name == "dJ/dw"


def test_tex_names():
    assert tex_name("W1") == "W_{1}"
    assert tex_name("lam") == r"\lambda"
    assert tex_name("x_t") == "x_{t}"
    assert tex_name("W_hh") == r"W_{\mathrm{hh}}"
    assert tex_name("logits") == r"\mathrm{logits}"
    assert tex_name("net_h") == r"\mathrm{net}_{h}"
    assert tex_name("gamma") == r"\gamma"


# ---- LaTeX well-formedness -------------------------------------------------------------------

def assert_wellformed_latex(text: str, mathtext: bool = True):
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("%"))
    depth = 0
    stripped = re.sub(r"\\[{}#%&_$]", "", body)  # escaped specials are fine
    for ch in stripped:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, "a } closes more than was opened"
    assert depth == 0, "unbalanced braces"
    begins = re.findall(r"\\begin\{([^}]*)\}", body)
    ends = re.findall(r"\\end\{([^}]*)\}", body)
    assert begins == ends[::-1] or sorted(begins) == sorted(ends), (begins, ends)
    assert len(re.findall(r"\\left\b", body)) == len(re.findall(r"\\right\b", body))
    assert "#" not in stripped and "%" not in stripped and "$" not in stripped
    for row in _rows(body):
        assert row.count("&") == 1, f"an align row needs exactly one &: {row}"
        if mathtext:
            _mathtext(row.replace("&", ""))


def _rows(body):
    rows = []
    inside = False
    for line in body.splitlines():
        s = line.strip()
        if s.startswith(r"\begin{align") or s.startswith(r"\begin{aligned"):
            inside = True
        elif s.startswith(r"\end{align") or s.startswith(r"\end{aligned"):
            inside = False
        elif inside and s:
            rows.append(s[:-2].rstrip() if s.endswith(r"\\") else s)
    return rows


def _mathtext(expr):
    mt = pytest.importorskip("matplotlib.mathtext")
    try:
        mt.MathTextParser("path").parse(f"${expr}$")
    except Exception as err:  # noqa: BLE001 - report which equation
        pytest.fail(f"mathtext cannot parse `{expr}`: {err}")


def test_d2l_latex_is_wellformed():
    assert_wellformed_latex(equations(d2l_model()).latex())
    assert_wellformed_latex(equations(d2l_model()).latex(standalone=True))


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.gdsl") if p.stem != "oneliner"))
def test_every_example_has_wellformed_latex(name):
    data = EXAMPLES / f"{name}.json"
    m = graphdsl.load(EXAMPLES / f"{name}.gdsl")
    eqs = equations(m, load_file(str(data)) if data.exists() else None)
    assert eqs.backward, name
    assert_wellformed_latex(eqs.latex())
    md = eqs.markdown()
    assert md.count("$$") % 2 == 0 and "## Backward" in md


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no TeX installed: the structural checks stand in")
def test_d2l_latex_compiles(tmp_path):
    (tmp_path / "eq.tex").write_text(equations(d2l_model()).latex(standalone=True), encoding="utf-8")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "eq.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]

"""Unicode names as Python has them: Greek models check, train and print as LaTeX Greek."""
from __future__ import annotations

import numpy as np
import pytest

from graphdsl import api
from graphdsl.diagnostics import GraphDSLError
from graphdsl.equations import equations, tex_name
from graphdsl.train import train

GREEK = """\
dim d = 3, b = 4
input x : [d, b]
input y : [b]
param θ : [d] = zeros()
const λ = 0.01, η = 0.5
ŷ = θ @ x
J = 0.5 * sum((ŷ - y) ** 2) / b + λ / 2 * sqnorm(θ)
output J
"""


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4))
    return {"x": x, "y": np.array([1.0, -1.0, 0.5, 2.0]) @ x.T @ x / 10}


def test_a_greek_model_checks_and_evaluates_like_its_ascii_twin():
    greek = api.parse(GREEK)
    assert greek.params == ["θ"] and not greek.warnings
    ascii_twin = api.parse(GREEK.replace("θ", "theta").replace("λ", "lam").replace("η", "eta")
                           .replace("ŷ", "yhat"))
    values = {**_data(), "θ": np.array([0.3, -0.2, 0.1])}
    twin_values = {**_data(), "theta": values["θ"]}
    assert greek.eval(values)["J"] == pytest.approx(ascii_twin.eval(twin_values)["J"], rel=1e-15)


def test_a_greek_model_trains():
    model = api.parse(GREEK)
    result = train(model, _data(), lr=0.5, steps=60)
    assert result.losses[-1] < result.losses[0] / 2
    # the trained θ solves the ridge normal equations the loss defines (gradient ~ 0)
    data = _data()
    _, grads = model.grad({**data, "θ": result.params["θ"]})
    assert np.abs(grads["θ"]).max() < 1e-3


def test_greek_prints_as_latex_commands():
    latex = equations(api.parse(GREEK)).format("latex")
    assert r"\lambda" in latex and r"\theta" in latex and "λ" not in latex and "θ" not in latex
    assert tex_name("η") == r"\eta" and tex_name("σ_t") == r"\sigma_{t}" and tex_name("Σ") == r"\Sigma"
    assert tex_name("θ1") == r"\theta_{1}"


def test_greek_keeps_its_letters_in_text():
    text = equations(api.parse(GREEK)).format("text")
    assert "θ" in text and "λ" in text


def test_nfkc_makes_ligature_and_letters_one_name():
    model = api.parse("ﬁ = 2\ny = fi * 3\noutput y")  # U+FB01 LATIN SMALL LIGATURE FI
    assert model.eval()["y"] == 6


@pytest.mark.parametrize("text, char, hint", [
    ("x = 1\ny = x² + 1", "²", "** 2"),  # \\w takes `²`, Python's identifiers do not
    ("y = 1 · 2", "·", "*"),
])
def test_characters_that_are_not_names_are_refused_with_a_hint(text, char, hint):
    with pytest.raises(GraphDSLError) as info:
        api.parse(text)
    (d,) = info.value.diagnostics
    assert d.code == "E004" and f"`{char}`" in d.message and hint in d.help[0]
    assert text.split("\n")[d.span.line - 1][d.span.col - 1] == char


def test_a_greek_picture_keeps_the_letter():
    rendering = api.parse(GREEK).render(_data() | {"θ": np.ones(3)})
    assert "θ" in rendering.dot and "λ" in rendering.dot
    svg = rendering.svg()  # the embedded renderer draws the UTF-8 label
    assert "θ" in svg

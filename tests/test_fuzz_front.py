"""Property tests for the front end: whatever the text, parse+check raises only GraphDSLError."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphdsl
from graphdsl import GraphDSLError

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.gdsl"))
TEXTS = [p.read_text(encoding="utf-8") for p in EXAMPLES]
ALPHABET = "abcxyzW12_ =+-*/@()[]{},.;:#<>!^'\n\t" + "".join(["def ", "dim ", "input ", "param ", "output "])


def check(text: str) -> None:
    try:
        graphdsl.parse(text, "fuzz.gdsl")
    except GraphDSLError as err:
        assert err.diagnostics, "an error must carry diagnostics"
        err.format()  # rendering the diagnostics must not fail either
        err.to_json()


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            break
        i = draw(st.integers(0, len(text) - 1))
        j = min(len(text), i + draw(st.integers(0, 12)))
        kind = draw(st.sampled_from(["delete", "insert", "swap", "duplicate"]))
        if kind == "delete":
            text = text[:i] + text[j:]
        elif kind == "insert":
            text = text[:i] + draw(st.text(alphabet=ALPHABET, max_size=8)) + text[i:]
        elif kind == "swap":
            k = draw(st.integers(0, len(text) - 1))
            a, b = sorted((i, k))
            text = text[:a] + text[b:b + 1] + text[a + 1:b] + text[a:a + 1] + text[b + 1:]
        else:
            text = text[:j] + text[i:j] + text[j:]
    return text


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(mutated())
def test_mutated_examples_give_only_diagnostics(text):
    check(text)


@SETTINGS
@given(st.text(alphabet=ALPHABET, max_size=120))
def test_random_text_gives_only_diagnostics(text):
    check(text)


@SETTINGS
@given(st.text(max_size=80))
def test_random_unicode_gives_only_diagnostics(text):
    check(text)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_checks(path):
    graphdsl.load(path)

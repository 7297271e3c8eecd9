"""A model whose dims are all fixed is built once: compile copies the symbolic build
(build.as_concrete) instead of building again. The copy must be node for node what a
fresh concrete build gives, and the model's own graph must stay as it was built.
"""
from __future__ import annotations

import pathlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import graphdsl
from graphdsl import api, valuefiles
from graphdsl.build import as_concrete, build
from graphdsl.values import bind_dims
from bits import same_bits
from fuzz.gen import programs
from interop_cases import op_model
from test_ops_fd import CASES, ZERO_CASES

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def _plain(value):
    """An attribute value in a form == compares exactly (arrays by dtype, shape and bytes)."""
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, dict):
        return ("dict", tuple((k, _plain(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_plain(v) for v in value))
    return value


def fingerprint(built) -> tuple:
    """Everything a later stage reads of a build: nodes and attributes in order, both adjacency
    orders with their keys, the graph's own attributes, the builder's state, the Built's fields."""
    g, gb = built.graph, built.gb
    nodes = tuple((n, _plain(d)) for n, d in g._node.items())
    succ = tuple((u, tuple((v, tuple(kd)) for v, kd in nbrs.items())) for u, nbrs in g._succ.items())
    pred = tuple((v, tuple((u, tuple(kd)) for u, kd in nbrs.items())) for v, nbrs in g._pred.items())
    state = (gb.count, gb.phase, gb.span, gb.call, gb.loop, gb.next_out, sorted(gb.free_dims),
             gb.reporter.error_count)
    fields = (built.dims, built.declared_dims, built.outputs, built.assigned, list(built.decls),
              [(d.kind, d.shape, d.implicit, _plain(d.value)) for d in built.decls.values()],
              built.diagnostics, built.dim_spans, list(built.defs), list(built.sequences))
    return nodes, succ, pred, _plain(dict(g.graph)), state, fields


def _copy_and_fresh(model, values):
    """(build.as_concrete's copy or None, a fresh concrete build) for these values."""
    given = {k: valuefiles.as_array(v, k) for k, v in values.items()}
    bound = bind_dims(model.built, given, model.dim_overrides)
    shapes = {k: v.shape for k, v in given.items()}
    fresh = build(model.program, model.source, dims=bound, input_shapes=shapes, strict=model.strict, max_ops=None)
    return as_concrete(model.built, bound, shapes), fresh


def _cases():
    """Every operator's finite-difference model, its weights' input given the shape it leaves
    to the data there, and every example (with its data, or the values its text holds)."""
    for c in CASES + ZERO_CASES:
        model, _, values = op_model(c, 1)  # (a grad in the text differentiates the build itself: no copy)
        shaped = f"input w__ : [{', '.join(map(str, np.shape(values['w__'])))}]\n"
        yield c.id, graphdsl.Model(model.source.text.replace("input w__\n", shaped)), values
    for path in sorted(EXAMPLES.glob("*.gdsl")):
        data = path.with_suffix(".json")
        yield path.stem, graphdsl.load(path), valuefiles.load_file(data) if data.exists() else {}


def test_the_copy_is_what_a_fresh_concrete_build_gives():
    """Over every operator's finite-difference model (grad of grad inside the text included)
    and every example with data: each copy is node for node a fresh build."""
    copied = []
    for name, model, values in _cases():
        try:
            copy, fresh = _copy_and_fresh(model, values)
        except graphdsl.GraphDSLError:  # oneliner.gdsl: its inputs have no values
            continue
        if copy is not None:
            assert fingerprint(copy) == fingerprint(fresh), name
            copied.append(name)
    assert len(copied) >= 40 and {"mazur", "one_neuron", "attention"} <= set(copied), copied


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(prog=programs("any"))
def test_generated_programs_copy_exactly(prog):
    try:
        model = graphdsl.Model(prog.text)
        copy, fresh = _copy_and_fresh(model, prog.values)
    except graphdsl.GraphDSLError:  # (a generated program may be refused: the fuzz tests check how)
        return
    if copy is not None:
        assert fingerprint(copy) == fingerprint(fresh)


def _scalar_chain(n: int) -> str:
    lines = ["input x : []", "t0 = x"]
    lines += [f"t{i} = " + (f"t{i - 1} * 1.0001", f"t{i - 1} + 0.001", f"relu(t{i - 1})")[(i - 1) % 3]
              for i in range(1, n + 1)]
    return "\n".join(lines + [f"output t{n}"]) + "\n"


@pytest.mark.parametrize("text, values", [
    ((EXAMPLES / "attention.gdsl").read_text(encoding="utf-8"), valuefiles.load_file(EXAMPLES / "attention.json")),
    # dJ/dx is y itself (1 * y folds to y): reverse mode marks that forward node as an adjoint
    ("input x : []\ninput y : []\nJ = x * y\noutput J\n", {"x": 2.0, "y": 3.0}),
])
def test_grad_through_the_copy_has_the_bits_of_a_fresh_build_and_leaves_the_model_as_built(monkeypatch, text, values):
    model = graphdsl.Model(text)
    before = fingerprint(model.built)
    value, grads = model.grad(values)
    compiled, _ = model.compile(values)
    assert compiled.built.graph is not model.built.graph and compiled.built.gb is not model.built.gb
    assert fingerprint(model.built) == before  # no adjoint, no renamed node, no diagnostic reached it
    assert len(model.graph) == len(model.built.graph)
    monkeypatch.setattr(api, "as_concrete", lambda *args: None)  # the model built twice, as before
    want_value, want = graphdsl.Model(text).grad(values)
    assert same_bits(value, want_value)
    assert grads.keys() == want.keys() and all(same_bits(grads[k], want[k]) for k in want)
    chain = graphdsl.Model(_scalar_chain(30))
    assert chain.grad({"x": 0.5}, of="t30", wrt=["x"])[1]["x"] == pytest.approx(1.0001 ** 10, rel=1e-15)


@pytest.mark.parametrize("text, values, why", [
    ("dim n\ninput x : [n]\nJ = sum(x * x)\noutput J\n", {"x": np.ones(3)}, "a dim bound by the data"),
    ("dim n\ninput x : [n] = [1, 2]\nJ = sum(x * x)\noutput J\n", {}, "a dim bound by a literal"),
    ("J = sum(x * x)\noutput J\n", {"x": np.ones(3)}, "an implicit input"),
    ("input x : [3]\nconst k : [3] = [1, 2, 3]\nJ = sum(k * x)\noutput J\n", {"x": np.ones(3), "k": np.ones(3)},
     "a given value replacing a literal"),
])
def test_no_copy_when_the_data_could_change_the_graph(text, values, why):
    model = graphdsl.Model(text)
    copy, fresh = _copy_and_fresh(model, values)
    assert copy is None, why
    assert len(fresh.graph) >= 1


@pytest.mark.parametrize("text", [
    "input x : [3]\nparam w : [3] = ones()\nJ = sum(w * x)\noutput J\n",
    "input x : [3]\nparam w : [3] = ones()\nJ = sum(w * x)\ng = grad(J, w)\noutput J, g\n",
])
def test_no_copy_once_reverse_mode_has_added_to_the_model_graph(text):
    """equations() without the data differentiates the symbolic graph itself, as does a grad in the
    text while it is built: a copy would carry (and share) those adjoints."""
    model = graphdsl.Model(text)
    values = {"x": np.arange(3.0)}
    if "grad" not in text:
        assert _copy_and_fresh(model, values)[0] is not None
        model.equations()  # (x has no value: on the symbolic graph)
    assert not model.built.as_built()
    copy, fresh = _copy_and_fresh(model, values)
    assert copy is None
    assert model.grad(values, of="J", wrt=["w"])[1]["w"] == pytest.approx(np.arange(3.0), abs=0)

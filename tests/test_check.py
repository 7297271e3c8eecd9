"""The checker: names, defs, shapes and their diagnostics (code, location, text)."""
from __future__ import annotations

import json

import pytest

import graphdsl
from graphdsl import GraphDSLError
from graphdsl.ops.base import Dim


def errors_of(text: str):
    with pytest.raises(GraphDSLError) as info:
        graphdsl.parse(text, "m.gdsl")
    return info.value.errors, info.value


def only_error(text: str):
    errors, err = errors_of(text)
    assert len(errors) == 1, err.format()
    return errors[0], err.format()


D2L = """\
dim d = 4, m = 5, q = 3
dim b
input x : [d, b]
input y : [q, b]
param W1 : [m, d] = randn(std=0.1)
param W2 : [q, m] = randn(std=0.1)
const lam = 0.01
def phi(z) = relu(z)
def loss(o, y) = 0.5 * sum((o - y) ** 2) / b
z = W1 @ x; h = phi(z); o = W2 @ h
L = loss(o, y)
s = lam / 2 * (sqnorm(W1) + sqnorm(W2))
J = L + s
output J
"""


# ---- the graph ----------------------------------------------------------------

def test_d2l_graph_is_bipartite_with_roles_shapes_and_calls():
    g = graphdsl.parse(D2L).graph
    for n, data in g.nodes(data=True):
        assert data["kind"] in ("var", "op")
        for succ in g.successors(n):
            assert g.nodes[succ]["kind"] != data["kind"], (n, succ)
    roles = {n: g.nodes[n]["role"] for n in ("x", "y", "W1", "W2", "lam", "z", "h", "o", "L", "s", "J")}
    assert roles == {"x": "input", "y": "input", "W1": "param", "W2": "param", "lam": "const",
                     "z": "intermediate", "h": "intermediate", "o": "intermediate", "L": "intermediate",
                     "s": "intermediate", "J": "output"}
    assert g.nodes["z"]["shape"] == (Dim("m", 5), Dim("b", None))
    assert g.nodes["o"]["shape"] == (Dim("q", 3), Dim("b", None))
    assert g.nodes["J"]["shape"] == ()
    assert g.nodes["h"]["call"] == ("phi#1",)
    assert g.nodes["L"]["call"] == ("loss#1",)
    assert g.graph["calls"]["phi#1"]["def"] == "phi"


def test_edges_are_keyed_by_argument_position():
    g = graphdsl.parse("input x : [3]\ny = x * x\n").graph
    (op,) = [n for n, d in g.nodes(data=True) if d["kind"] == "op"]
    assert sorted(k for _, _, k in g.in_edges(op, keys=True)) == [0, 1]
    assert g.nodes[op]["op"] == "mul"


def test_node_ids_are_deterministic():
    a = list(graphdsl.parse(D2L).graph.nodes)
    b = list(graphdsl.parse(D2L).graph.nodes)
    assert a == b


def test_def_locals_are_scoped_per_call():
    m = graphdsl.parse("input x : [3]\ndef f(a) { t = a * 2; return t + 1 }\ny = f(x)\nz = f(y)\n")
    g = m.graph
    assert "f#1.t" in g and "f#2.t" in g
    assert g.nodes["f#2.t"]["call"] == ("f#2",)


def test_outputs_default_to_sinks():
    m = graphdsl.parse("input x : [3]\na = x * 2\nb = a + 1\nc = x - 1\n")
    assert m.outputs == ["b", "c"]


# ---- warnings ----------------------------------------------------------------------

def test_oneliner_checks_with_warnings():
    m = graphdsl.parse("z = W1 @ x; h = phi(z); o = W2 @ h; J = loss(o,y) + lam*(norm(W1)+norm(W2))\n")
    codes = sorted(w.code for w in m.warnings)
    assert codes.count("W001") == 5  # W1, x, W2, y, lam
    assert codes.count("W002") == 2  # phi, loss
    assert m.outputs == ["J"]
    opaque = [d["attrs"]["func"] for _, d in m.graph.nodes(data=True) if d.get("op") == "opaque"]
    assert sorted(opaque) == ["loss", "phi"]


def test_strict_turns_warnings_into_errors():
    with pytest.raises(GraphDSLError) as info:
        graphdsl.parse("y = phi(x)\n", strict=True)
    assert {e.code for e in info.value.errors} == {"E101", "E102"}


def test_def_shadowing_a_builtin_warns():
    m = graphdsl.parse("input x : [3]\ndef relu(z) = maximum(z, 0)\ny = relu(x)\n")
    assert [w.code for w in m.warnings] == ["W003"]


# ---- the required error cases ---------------------------------------------------------

def test_undefined_name_with_suggestion():
    e, text = only_error("input x : [3]\ny = relu(xx)\n")
    assert (e.code, e.span.line, e.span.col) == ("E101", 2, 10)
    assert "undefined name `xx`" in e.message and "did you mean `x`?" in text


def test_unknown_function_with_suggestion():
    e, text = only_error("input x : [3]\ny = rellu(x)\n")
    assert (e.code, e.span.line, e.span.col, e.span.end_col) == ("E102", 2, 5, 10)
    assert "unknown function `rellu`" in e.message and "did you mean `relu`?" in text


def test_wrong_number_of_arguments():
    e, _ = only_error("input x : [3]\ny = relu(x, x, x)\n")
    assert (e.code, e.span.line, e.span.col) == ("E103", 2, 5)
    assert "`relu` takes at most 1 argument but 3 were given" in e.message


def test_wrong_number_of_arguments_to_a_def():
    e, text = only_error("input x : [3]\ndef f(a, c) = a * c\ny = f(x)\n")
    assert e.code == "E103" and "`f` takes 2 arguments but 1 was given" in e.message
    assert "defined at line 2" in text


def test_unknown_keyword_with_suggestion():
    e, _ = only_error("input x : [3, 4]\ny = sum(x, axsi=0)\n")
    assert e.code == "E103" and "did you mean `axis=`?" in e.message


def test_name_assigned_twice():
    e, text = only_error("input x : [3]\ny = x\ny = x * 2\n")
    assert (e.code, e.span.line, e.span.col) == ("E104", 3, 1)
    assert "`y` is defined twice" in e.message and "first defined at line 2" in text


def test_declaration_and_assignment_share_one_namespace():
    e, _ = only_error("dim n = 3\ninput x : [n]\nn = x * 2\n")
    assert e.code == "E104" and e.span.line == 3


def test_matmul_inner_dimensions_differ_names_both_shapes():
    text = D2L.replace("o = W2 @ h", "o = W2 @ x")
    e, full = only_error(text)
    assert (e.code, e.span.line, e.span.col) == ("E201", 10, 29)
    assert "`W2 : [q=3, m=5]`" in e.message and "`x : [d=4, b=?]`" in e.message
    assert "^^^^^^" in full and "help:" in full


def test_shapes_that_do_not_broadcast():
    e, full = only_error("dim d = 4, q = 3\ndim b\ninput x : [d, b]\ninput y : [q, b]\nr = x + y\n")
    assert (e.code, e.span.line, e.span.col, e.span.end_col) == ("E202", 5, 5, 10)
    assert "`x : [d=4, b=?]`" in e.message and "`y : [q=3, b=?]`" in e.message
    assert "d=4 against q=3" in e.message


def test_declared_shape_disagrees_with_initialiser():
    e, full = only_error("param w : [2, 3] = [[1, 2], [3, 4]]\n")
    assert (e.code, e.span.line, e.span.col) == ("E203", 1, 20)
    assert "declared [2, 3]" in e.message and "[2, 2]" in e.message


def test_dims_bind_consistently_across_literals():
    e, _ = only_error("dim n\ninput a : [n] = [1, 2, 3]\ninput c : [n] = [1, 2]\n")
    assert e.code == "E203" and e.span.line == 3


def test_recursive_def_direct():
    e, full = only_error("def f(x) = f(x) + 1\ninput a : [2]\ny = f(a)\n")
    assert (e.code, e.span.line, e.span.col) == ("E105", 1, 5)
    assert "calls itself" in e.message


def test_recursive_def_through_another():
    e, full = only_error("def f(x) = g(x) + 1\ndef g(x) = f(x) * 2\ninput a : [2]\ny = f(a)\n")
    assert e.code == "E105" and "through `g`" in e.message and "f -> g -> f" in full


def test_def_body_cannot_see_assigned_names():
    e, _ = only_error("input x : [3]\nt = x * 2\ndef f(a) = a + t\ny = f(x)\n")
    assert e.code == "E101" and "not visible inside a def" in e.message


def test_name_used_before_definition():
    e, _ = only_error("input x : [3]\ny = t * 2\nt = x + 1\n")
    assert e.code == "E101" and "used before it is defined" in e.message


def test_every_semantic_error_is_collected():
    text = "input x : [3]\na = rellu(x)\nb = x @ 2\nc = undefined_thing + xx\nd = sum(x, axsi=1)\n"
    errors, _ = errors_of(text)
    assert [e.code for e in errors] == ["E102", "E204", "E101", "E103"]


def test_at_most_twenty_errors_are_reported():
    text = "input x : [3]\n" + "".join(f"y{i} = rellu(x)\n" for i in range(40))
    errors, _ = errors_of(text)
    assert len(errors) == 20


def test_def_parameter_shapes_are_checked():
    text = "dim k = 3\ninput a : [4, 2]\ninput t : [3, 2]\ndef loss(o: [k, _], t: [k, _]) = sum(o * t)\nJ = loss(a, t)\n"
    e, _ = only_error(text)
    assert e.code == "E202" and "argument `o` of `loss`" in e.message


def test_errors_in_json():
    with pytest.raises(GraphDSLError) as info:
        graphdsl.parse("input x : [3]\ny = rellu(x)\n", "m.gdsl")
    data = json.loads(info.value.to_json())
    (d,) = data["diagnostics"]
    assert d["code"] == "E102" and d["file"] == "m.gdsl" and (d["line"], d["col"]) == (2, 5)
    assert d["help"] == ["did you mean `relu`?"]


# ---- shape rules ------------------------------------------------------------------------

@pytest.mark.parametrize("expr, shape", [
    ("A @ B", (2, 4)), ("u @ B", (4,)), ("A @ u", (2,)), ("u @ u", ()),
    ("T @ B", (5, 2, 4)), ("sum(A, axis=0)", (3,)), ("sum(A, axis=1, keepdims=true)", (2, 1)),
    ("mean(T, axis=[0, 2])", (2,)), ("A.T", (3, 2)), ("reshape(A, [3, -1])", (3, 2)),
    ("concat([A, A], axis=0)", (4, 3)), ("stack([A, A], axis=1)", (2, 2, 3)),
    ("expand_dims(u, 0)", (1, 3)), ("squeeze(expand_dims(u, 0), 0)", (3,)),
    ("broadcast_to(u, [4, 3])", (4, 3)), ("A[0]", (3,)), ("A[:, 1]", (2,)), ("A[0:1]", (1, 3)),
    ("outer(u, v)", (3, 2)), ("trace(B[0:3])", ()), ("onehot(u, 5)", (3, 5)),
    ("softmax(A, axis=0)", (2, 3)), ("cross_entropy(A, A)", ()), ("transpose(T, axes=[2, 0, 1])", (3, 5, 2)),
    ("where(A > 0, A, 0)", (2, 3)), ("clip(A, 0, 1)", (2, 3)), ("A + u", (2, 3)), ("[u, u]", (2, 3)),
])
def test_shape_rules(expr, shape):
    text = ("input A : [2, 3]\ninput B : [3, 4]\ninput u : [3]\ninput v : [2]\ninput T : [5, 2, 3]\n"
            f"r = {expr}\n")
    g = graphdsl.parse(text).graph
    assert tuple(d.size for d in g.nodes["r"]["shape"]) == shape


def test_unknown_shapes_do_not_cascade():
    m = graphdsl.parse("y = relu(x) @ w + 1\n")
    assert m.graph.nodes["y"]["shape"] is None


# ---- scale ------------------------------------------------------------------------------

def test_100k_chain_checks_without_recursion_error():
    text = "input x0 : []\n" + "".join(f"x{i} = x{i - 1} * 1.0001\n" for i in range(1, 100_001))
    m = graphdsl.parse(text)
    assert m.outputs == ["x100000"]
    assert m.graph.number_of_nodes() == 300_001


def test_deep_expression_builds_without_recursion_error():
    m = graphdsl.parse("input a : []\ny = a" + " + a" * 20_000 + "\n")
    assert m.graph.nodes["y"]["shape"] == ()

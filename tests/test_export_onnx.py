"""ONNX export (graphdsl/interop/onnx_export.py, onnx_ops.py): onnxruntime runs the exported model in
float64 and its outputs, and with --with-grads its grad_<of>_<param> outputs, equal graphdsl's Model.eval
and Model.grad to 1e-9 relative on every example with data and on test_ops_fd's cases (every public op,
and through their first, second and third derivatives the internal ops reverse mode emits)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

import graphdsl
from graphdsl.diagnostics import GraphDSLError
from graphdsl.interop.onnx_export import export
from graphdsl.interop.onnx_graph import OPSET, OnnxGraph
from graphdsl.interop.onnx_ops import NO_ONNX_COUNTERPART, ONNX_OPS
from graphdsl.interop.schedule import DimRef, export_program
from graphdsl.ops import REGISTRY
from interop_cases import EXAMPLES, load_values, op_cases, op_model, rel_error
from test_fuzz_programs import _settings, guarded, programs
from test_hostile import run_cli

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parent.parent
RTOL = 1e-9


def _session(data: bytes):
    options = ort.SessionOptions()
    options.log_severity_level = 3  # params are initializers and inputs on purpose: no warning about it
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def run_onnx(data: bytes, feeds: dict) -> dict:
    session = _session(data)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def assert_close(got, want, what: str, rtol=RTOL):
    error = rel_error(got, want)
    assert error <= rtol, f"{what}: relative error {error:.3g}"


def _load(path):
    return graphdsl.load(path), load_values(path)


def inputs_of(program) -> dict:
    return {leaf.name: leaf.value for leaf in program.leaves if leaf.role == "input"}


def check_against_graphdsl(model, values, of=None, wrt=None):
    """Export with gradients, run onnxruntime, compare every output and gradient; the exported program."""
    program = export_program(model, values, with_grads=True, of=of, wrt=wrt)
    got = run_onnx(export(program, version="test"), inputs_of(program))
    want = model.eval(values)
    for name in program.outputs:
        assert_close(got[name], want[name], f"{model.source.name}: output {name}")
    _, grads = model.grad(values, of=of, wrt=wrt)
    of_name = of or model.outputs[0]
    for w, g in grads.items():
        assert_close(got[f"grad_{of_name}_{w}"], g, f"{model.source.name}: grad_{of_name}_{w}")
    return program


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_matches_graphdsl(path):
    model, values = _load(path)
    check_against_graphdsl(model, values)


# ---- every op: test_ops_fd's cases, at each derivative order it checks ------------------------------------
OP_CASES = op_cases(orders=lambda c: c.orders)


@pytest.mark.parametrize("c, order", OP_CASES)
def test_every_op_matches_graphdsl(c, order):
    model, top, values = op_model(c, order)
    check_against_graphdsl(model, values, of=top, wrt=c.wrt_names())


# Random programs of the fuzzer (every builtin, broadcasting, defs, in-language grad, free dims).
@settings(_settings(60), derandomize=True)  # the same 60 programs every run
@given(prog=programs("any"))
def test_generated_programs_match_graphdsl(prog):
    guarded(_matches_graphdsl, prog)  # the fuzzer's time bound and known-bug list


def _matches_graphdsl(prog):
    try:
        model = graphdsl.parse(prog.text)
        value, grads = model.grad(prog.values, of="L", wrt=prog.wrt)
    except GraphDSLError:
        return  # refused by graphdsl (a shape error, non-finite values): nothing to export
    if not all(np.all(np.isfinite(v)) for v in [value, *grads.values()]):
        return
    check_against_graphdsl(model, prog.values, of="L", wrt=prog.wrt)


# The functions composed for float64 (onnx_math.py), elementwise to a few ulps of graphdsl's NumPy and
# SciPy values over their whole range: tails, underflow, overflow, signed zeros, the ends of the domain.
WIDE = [-745.0, -300, -40, -10, -5.5, -1, -0.7, -1e-3, -1e-9, -1e-300, 0, 1e-300, 1e-9, 1e-3, 0.3, 0.5, 0.99,
        2, 5, 8.5, 27.35, 30, 300, 1e6]
UNIT = [-1, -0.999999999, -0.9, -0.5, -1e-9, 0, 1e-12, 0.3, 0.7, 0.999999, 1 - 1e-15, 1.0]
COMPOSED = {
    "atan(x)": WIDE, "sinh(x)": WIDE[1:-1], "cosh(x)": WIDE[1:-1], "erf(x)": WIDE, "gelu(x)": WIDE,
    "softplus(x)": WIDE, "log_sigmoid(x)": WIDE, "sigmoid(x)": WIDE, "elu(x, alpha=0.5)": WIDE,
    "expm1(x)": WIDE[:-2], "log1p(x)": [-1 + 1e-12, -0.5] + [v for v in WIDE if v > -1], "tan(x)": WIDE[1:-1],
    "asin(x)": UNIT, "acos(x)": UNIT, "log2(x)": [v for v in WIDE if v > 0], "log10(x)": [v for v in WIDE if v > 0],
    # their derivatives, the internal ops sigmoid', gelu', gelu'', elu', tanh'
    # (not tanh' = 1 - tanh(x)^2: onnxruntime's Tanh is within an ulp of NumPy's, but not bitwise, and
    # 1 - tanh^2 turns that ulp into 5e-8 relative at x = 10, where tanh' is 8e-9)
    "grad(sum(sigmoid(x)), x)": WIDE, "grad(sum(gelu(x)), x)": WIDE, "grad(sum(grad(sum(gelu(x)), x)), x)": WIDE,
    "grad(sum(elu(x)), x)": WIDE, "grad(sum(softplus(x)), x)": WIDE,
}


@pytest.mark.parametrize("expr", sorted(COMPOSED))
def test_composed_functions_to_a_few_ulps_everywhere(expr):
    x = np.array(COMPOSED[expr])
    model = graphdsl.parse(f"input x : [{len(x)}]\ny = {expr}\noutput y\n")
    got = run_onnx(export(export_program(model, {"x": x}), version="test"), {"x": x})["y"]
    want = model.eval({"x": x})["y"]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    close = (got == want) | (np.abs(got - want) <= 1e-15 * np.abs(want))  # 4.5 ulps
    assert close.all(), f"{expr} at x = {x[~close]}: {got[~close]} against {want[~close]}"


# ---- each entry of the table on its own, against the op's NumPy forward ---------------------------------
def run_one_op(op, args: list, kw, shapes: list, out_shape=(), extra: dict | None = None, dim_sources=None):
    """One step `op(*args, **kw)` as an ONNX model run by onnxruntime; `extra` feeds inputs no argument is
    (the input a free dim is read from)."""
    g = OnnxGraph(onnx, "float64", dim_sources or {})
    feeds = {f"a{k}": np.asarray(a, dtype=np.float64) for k, a in enumerate(args)}
    feeds.update(extra or {})
    all_shapes = dict(zip([f"a{k}" for k in range(len(args))], shapes), **{k: v.shape for k, v in (extra or {}).items()})
    g.arg_shapes, g.out_shape = list(shapes), tuple(out_shape)
    for name in feeds:
        g.reserve(name)
    out = g.rename(ONNX_OPS[op](g, *[f"a{k}" for k in range(len(args))], **kw), g.reserve("out"))
    infos = [onnx.helper.make_tensor_value_info(k, g.elem, [getattr(d, "name", d) for d in all_shapes[k]])
             for k in feeds]
    graph = onnx.helper.make_graph(g.nodes, op, infos, [onnx.helper.make_tensor_value_info(out, g.elem, None)],
                                   initializer=g.initializers)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)])
    return run_onnx(model.SerializeToString(), feeds)["out"]


VARIANTS = 3  # per op: its first few distinct uses (static arguments and shapes) in the cases' gradient plans


def test_each_entry_computes_the_numpy_forward():
    """Every step of the op cases' gradient plans (orders 1 to 3), as the NumPy schedule runs it; each op's
    first VARIANTS distinct uses built alone and run by onnxruntime on the very arguments NumPy had."""
    seen: dict = {}
    for c, order in [p.values for p in OP_CASES]:
        model, top, values = op_model(c, order)
        program = export_program(model, values, with_grads=True, of=top, wrt=c.wrt_names())
        plan = program.plan
        slots = plan._fill(model.leaf_values(*model.compile(values, free_counts=True)))
        with np.errstate(all="ignore"):
            for op_id, (fn, ins, out) in zip(plan.step_ops, plan.steps):
                args = [np.asarray(slots[i], dtype=np.float64) for i in ins]
                want = slots[out] = np.asarray(fn(*args), dtype=np.float64)
                op, kw = plan.graph.nodes[op_id]["op"], plan.static_args(op_id)
                key = repr((kw, [a.shape for a in args]))
                if len(seen.setdefault(op, set())) >= VARIANTS or key in seen[op]:
                    continue
                seen[op].add(key)
                got = run_one_op(op, args, kw, [a.shape for a in args], want.shape)
                assert_close(got, want, f"{c.id} order {order}: {op}{tuple(a.shape for a in args)} {kw}", rtol=1e-12)
    assert sorted(set(ONNX_OPS) - set(seen)) == ["count"]  # count: below


# `count` (a loss's number of averaged positions over a free dim) is in no concrete plan but an export's:
# its entry is run on its own, the free dim read from an input of the size it runs at.
@pytest.mark.parametrize("like, axis", [((3, 4), None), ((3, 4), 1), ((2, 0, 5), 1), ((), None)])
def test_count_of_fixed_sizes(like, axis):
    assert run_one_op("count", [], {"like": like, "axis": axis}, []) == REGISTRY["count"].forward(like=like, axis=axis)


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_count_reads_a_free_dim(axis):
    b = DimRef("b")
    for rows in (4, 7):
        got = run_one_op("count", [], {"like": (b, 3), "axis": axis}, [], extra={"x": np.zeros((rows, 3))},
                         dim_sources={"b": ("x", 0)})
        assert got == REGISTRY["count"].forward(like=(rows, 3), axis=axis)


def test_the_table_and_the_documented_gaps_are_the_registry():
    """opaque (a call of an undefined function) never runs; every other op is in the table or the list."""
    assert set(ONNX_OPS) | NO_ONNX_COUNTERPART == set(REGISTRY) - {"opaque"}
    assert not set(ONNX_OPS) & NO_ONNX_COUNTERPART
    documented = (ROOT / "docs" / "interop.md").read_text()
    assert all(f"`{op}`" in documented for op in NO_ONNX_COUNTERPART)


# ---- free dims: a batch size other than the exported one ----------------------------------------------
def _grown(program, values, times=3):
    """The input data repeated `times` along each free dim's axis, jittered so the rows differ."""
    rng = np.random.default_rng(7)
    grown = dict(values)
    for leaf in program.leaf("input"):
        axes = [a for a, d in enumerate(leaf.shape) if isinstance(d, DimRef)]
        if axes:
            data = np.concatenate([leaf.value] * times, axis=axes[0])
            integer = np.all(leaf.value == np.round(leaf.value))  # labels stay labels
            grown[leaf.name] = data if integer else data + 0.01 * rng.standard_normal(data.shape)
    return grown


FREE_DIM_EXAMPLES = [p for p in EXAMPLES if None in graphdsl.load(p).built.dims.values()]


@pytest.mark.parametrize("path", FREE_DIM_EXAMPLES, ids=lambda p: p.stem)
def test_a_free_dim_takes_another_size_than_the_exported_one(path):
    model, values = _load(path)
    program = export_program(model, values, with_grads=True)
    data = export(program, version="test")
    params = {leaf.name: leaf.value for leaf in program.leaf("param")}
    grown = {**_grown(program, values), **params}
    fixed = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}.get("graphdsl.fixed_dims")
    if fixed:  # the export fixed the dim (a const of its shape, a slice along it): a runtime must refuse
        with pytest.raises(Exception, match="dimensions"):
            run_onnx(data, {k: grown[k] for k in inputs_of(program)})
        return
    got = run_onnx(data, {k: grown[k] for k in inputs_of(program)})
    (out,) = model.outputs
    assert_close(got[out], model.eval(grown)[out], f"{path.stem}: {out} at another batch size")
    _, grads = model.grad(grown)
    for w, g in grads.items():
        assert_close(got[f"grad_{out}_{w}"], g, f"{path.stem}: grad_{out}_{w} at another batch size")


# Indexing by ints, take and the losses along a free dim's axis stay dynamic; slicing it fixes the dim.
FREE_AXIS_MODEL = """dim b
input x : [b, 3]
input lab : [b]
param w : [3, 3] = randn()
z = x @ w
J = sum(z[0] * z[-1]) + sum(z[1, 1:] ** 2) + sum(take(z, lab, axis=1)) + cross_entropy(z, lab)
output J
"""


def _free_axis_values(rng, rows):
    return {"x": rng.standard_normal((rows, 3)), "lab": rng.integers(0, 3, rows).astype(float)}


@pytest.mark.parametrize("rows", [4, 2, 9])
def test_indexing_along_a_free_dim_at_another_size(rows):
    model = graphdsl.parse(FREE_AXIS_MODEL, name="free_axis.gdsl")
    rng = np.random.default_rng(rows)
    program = export_program(model, _free_axis_values(rng, 5), with_grads=True, wrt=["w", "x"])
    data = export(program, version="test")
    assert "graphdsl.fixed_dims" not in {p.key for p in onnx.load_from_string(data).metadata_props}
    values = {**_free_axis_values(rng, rows), "w": program.leaf("param")[0].value}
    got = run_onnx(data, {"x": values["x"], "lab": values["lab"]})
    assert_close(got["J"], model.eval(values)["J"], f"J at b={rows}")
    _, grads = model.grad(values, wrt=["w", "x"])
    for w in ("w", "x"):
        assert_close(got[f"grad_J_{w}"], grads[w], f"grad_J_{w} at b={rows}")


@pytest.mark.parametrize("use", ["z[1:]", "z[::2]", "pad(z, [[1, 0], [0, 0]])", "concat([z, x])", "flatten(z, 0)",
                                 "reshape(z, [-1])"])
def test_a_free_dim_folded_into_a_length_is_fixed_at_the_data_size(use):
    """The graph after z[1:] holds its length (b - 1) as a number: the dim is exported fixed, not wrong."""
    model = graphdsl.parse(FREE_AXIS_MODEL.replace("+ cross_entropy(z, lab)", f"+ sum({use} ** 2)"))
    rng = np.random.default_rng(1)
    values = _free_axis_values(rng, 5)
    program = export_program(model, values, with_grads=True)
    proto = onnx.load_from_string(export(program, version="test"))
    assert {p.key: p.value for p in proto.metadata_props}["graphdsl.fixed_dims"] == "b"
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [5, 3]
    check_against_graphdsl(model, values)
    with pytest.raises(ort.capi.onnxruntime_pybind11_state.InvalidArgument):
        run_onnx(proto.SerializeToString(), _free_axis_values(rng, 6))  # another size is refused, not miscomputed


# ---- the file itself ----------------------------------------------------------------------------------
def _d2l():
    model, values = _load(ROOT / "examples" / "d2l_mlp.gdsl")
    return model, values, export_program(model, values, with_grads=True)


def test_the_file_is_checked_and_names_what_made_it():
    model, values, program = _d2l()
    proto = onnx.load_from_string(export(program, version="9.8.7"))
    onnx.checker.check_model(proto, full_check=True)
    assert max(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")) >= 17
    assert proto.ir_version == 8  # the oldest with opset 18: runtimes older than the onnx package load it
    assert (proto.producer_name, proto.producer_version) == ("graphdsl", "9.8.7")
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["graphdsl.model"].endswith("d2l_mlp.gdsl") and props["graphdsl.version"] == "9.8.7"
    graph = proto.graph
    inputs = {i.name: i for i in graph.input}
    assert list(inputs) == ["x", "y", "W1", "W2"]  # the model's inputs, then its params (with defaults)
    x_dims = [d.dim_param or d.dim_value for d in inputs["x"].type.tensor_type.shape.dim]
    assert x_dims == [4, "b"]  # the free dim is symbolic, named as the dim
    assert inputs["x"].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    initial = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    for leaf in program.leaf("param"):
        np.testing.assert_array_equal(initial[leaf.name], leaf.value)  # this seed's initial values
    assert [o.name for o in graph.output] == ["J", "grad_J_W1", "grad_J_W2"]
    assert {"z", "h", "o", "L", "J", "dJ_dW1"} <= {out for n in graph.node for out in n.output}


@pytest.mark.parametrize("text, values", [
    ("dim b\ninput x : [b, 3]\nJ = sum(x[:, 1:] ** 2) + sum(flatten(x, 0)) + sum(broadcast_to(x[:, 0:1], [0, 4]))",
     {"x": np.zeros((0, 3))}),
    ("input x : [2, 0]\nJ = sum(x[1] ** 2) + sum(take(x, [1, 1, 0])) + sum(reshape(x, [0, 5]))", {"x": np.zeros((2, 0))})])
def test_empty_arrays(text, values):
    """Zero-sized axes (an empty batch): onnxruntime's Expand and Reshape need care with a 0 in a shape."""
    check_against_graphdsl(graphdsl.parse(text + "\noutput J\n"), values)


@pytest.mark.filterwarnings("ignore:Mean of empty slice")
def test_nan_and_empty_reductions_as_numpy():
    """NumPy's max, min, argmax and argmin see a NaN (onnxruntime's skip it), and a mean over nothing is
    NaN (onnxruntime's ReduceMean gives 0): a model may go on to compare or select such a value."""
    text = ("input w : [2, 3]\ninput e : [0, 3]\nL = max(w)\nM = min(w, axis=1)\nA = argmin(w)\nB = argmax(w, axis=1)\n"
            "E = mean(e) + mse(e, e)\nF = mean(e, axis=0)\nK = argmin(abs(w ** [1.0, 0.5, 1.0]), axis=1)\n"
            "output L, M, A, B, E, F, K\n")
    model = graphdsl.parse(text)
    values = {"w": np.array([[1.0, np.nan, -2.0], [0.5, 3, np.nan]]), "e": np.zeros((0, 3))}
    got = run_onnx(export(export_program(model, values), version="test"), values)
    for name, want in model.eval(values, check_finite=False).items():
        np.testing.assert_array_equal(got[name], want, err_msg=name)


def test_a_transposed_matrix_times_a_vector():
    """onnxruntime's Transpose + MatMul fusion computes x.T @ v as x @ v when v is 1-D: the export avoids it."""
    model = graphdsl.parse("input x : [3, 4]\ninput v : [3]\ninput u : [4]\nJ = sum((x.T @ v) * u) + sum(u @ x.T)\n")
    rng = np.random.default_rng(5)
    check_against_graphdsl(model, {"x": rng.standard_normal((3, 4)), "v": rng.standard_normal(3),
                                   "u": rng.standard_normal(4)}, wrt=["x", "v", "u"])


@pytest.mark.parametrize("text, outputs", [
    ("input x : [2]\ny = x * 2\noutput x, y", ["x", "y"]),
    ("input x : [2]\nparam w : [2] = ones()\nJ = sum(w * x)\noutput J, w", ["J", "w"]),
    ("input x : [2]\nconst c = 3\nJ = sum(x * c)\noutput J, c", ["J", "c"])])
def test_an_input_param_or_const_may_be_an_output(text, outputs):
    model = graphdsl.parse(text)
    program = export_program(model, {"x": np.array([1.5, -2.0])})
    got = run_onnx(export(program, version="test"), inputs_of(program))
    want = model.eval({"x": np.array([1.5, -2.0])})
    assert list(got) == outputs
    for name in outputs:
        assert_close(got[name], want[name], name)


def test_an_input_with_a_value_may_be_left_out():
    model = graphdsl.parse("input x : [2] = [1.5, -2.0]\ninput y : [2]\nJ = sum(x * y ** 2)\noutput J\n")
    program = export_program(model, {"y": np.array([3.0, 0.5])}, with_grads=True)
    data = export(program, version="test")
    value, grads = model.grad({"y": np.array([3.0, 0.5])})
    got = run_onnx(data, {"y": np.array([3.0, 0.5])})
    assert_close(got["J"], value, "J with x's own value")
    assert_close(got["grad_J_x"], grads["x"], "grad_J_x")
    assert_close(got["grad_J_y"], grads["y"], "grad_J_y")
    assert_close(run_onnx(data, {"x": np.array([1.0, 1.0]), "y": np.array([3.0, 0.5])})["J"], 9.25, "J with x fed")


def test_nodes_carry_the_users_names_and_lines():
    model, values, program = _d2l()
    graph = onnx.load_from_string(export(program, version="test")).graph
    relu = next(n for n in graph.node if n.name == "h")
    assert relu.op_type == "Relu" and relu.output[0] == "h" and relu.doc_string == "relu, line 20: h"


def test_new_weights_can_be_fed_in_place_of_the_defaults():
    model, values, program = _d2l()
    w1 = np.random.default_rng(3).standard_normal((5, 4))
    got = run_onnx(export(program, version="test"), {**inputs_of(program), "W1": w1})
    assert_close(got["J"], model.eval({**values, "W1": w1})["J"], "J with new W1")
    assert_close(got["grad_J_W1"], model.grad({**values, "W1": w1})[1]["W1"], "grad_J_W1 with new W1")


def test_without_grads_only_the_outputs():
    model, values = _load(ROOT / "examples" / "lenet.gdsl")
    program = export_program(model, values)
    got = run_onnx(export(program, version="test"), inputs_of(program))
    assert list(got) == ["J"]
    assert_close(got["J"], model.eval(values)["J"], "lenet J")


def test_float32_on_request():
    model, values = _load(ROOT / "examples" / "lenet.gdsl")
    program = export_program(model, values, with_grads=True)
    data = export(program, dtype="float32", version="test")
    proto = onnx.load_from_string(data)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    feeds = {k: v.astype(np.float32) for k, v in inputs_of(program).items()}
    got = run_onnx(data, feeds)
    assert got["J"].dtype == np.float32
    assert_close(got["J"], model.eval(values)["J"], "float32 J", rtol=1e-5)
    assert_close(got["grad_J_w1"], model.grad(values)[1]["w1"], "float32 grad_J_w1", rtol=1e-4)


# ---- errors -------------------------------------------------------------------------------------------
def _code_and_line(err):
    diag = err.value.diagnostics[0]
    return diag.code, diag.span.line if diag.span else None


def test_an_op_missing_from_the_table_is_e109_located(monkeypatch):
    model, values = _load(ROOT / "examples" / "rnn.gdsl")
    program = export_program(model, values, with_grads=True)
    monkeypatch.delitem(ONNX_OPS, "tanh")
    with pytest.raises(GraphDSLError) as err:
        export(program, version="test")
    assert "`tanh` has no counterpart in ONNX" in str(err.value)
    code, line = _code_and_line(err)
    assert code == "E116" and "tanh" in model.source.text.splitlines()[line - 1]


def test_a_convolution_over_a_free_spatial_dim_is_fixed_at_the_data_size():
    model = graphdsl.parse("dim H\ninput x : [1, 1, H, H]\ninput w : [1, 1, 2, 2]\nJ = sum(conv2d(x, w) ** 2)\n")
    values = {"x": np.arange(16.0).reshape(1, 1, 4, 4), "w": np.ones((1, 1, 2, 2))}
    program = check_against_graphdsl(model, values)
    proto = onnx.load_from_string(export(program, version="test"))
    assert {p.key: p.value for p in proto.metadata_props}["graphdsl.fixed_dims"] == "H"


# ---- the command line --------------------------------------------------------------------------------
D2L = [str(ROOT / "examples" / "d2l_mlp.gdsl"), "--to", "onnx", "--load", str(ROOT / "examples" / "d2l_mlp.json")]


def test_the_cli_writes_a_model_with_its_gradients(tmp_path):
    out = tmp_path / "m.onnx"
    code, stdout, stderr = run_cli("export", *D2L, "--with-grads", "--seed", "3", "-o", out)
    assert code == 0, stderr
    model, values = _load(ROOT / "examples" / "d2l_mlp.gdsl")
    program = export_program(model, values, seed=3)
    params = {leaf.name: leaf.value for leaf in program.leaf("param")}
    got = run_onnx(out.read_bytes(), {"x": values["x"], "y": values["y"]})
    value, grads = model.grad({**values, **params})
    assert_close(got["J"], value, "J from the CLI's file")
    for w, g in grads.items():
        assert_close(got[f"grad_J_{w}"], g, f"grad_J_{w} from the CLI's file")


def test_the_cli_refuses_an_op_onnx_lacks_before_writing(tmp_path, monkeypatch):
    monkeypatch.delitem(ONNX_OPS, "relu")
    out = tmp_path / "m.onnx"
    code, stdout, stderr = run_cli("export", *D2L, "--with-grads", "-o", out)
    assert code == 1
    assert "E116" in stderr and "`relu` has no counterpart in ONNX" in stderr and "d2l_mlp.gdsl:" in stderr
    assert list(tmp_path.iterdir()) == []


def test_without_onnx_the_command_names_the_extra(tmp_path):
    out = tmp_path / "m.onnx"
    run = subprocess.run([sys.executable, "-c", "import sys; sys.modules['onnx'] = None\n"
                          "from graphdsl.cli import main; sys.exit(main(sys.argv[1:]))",
                          "export", *D2L, "--with-grads", "-o", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1, run.stderr
    assert "E311" in run.stderr and "pip install 'graphdsl[onnx]'" in run.stderr
    assert "Traceback" not in run.stderr and not out.exists()


def test_the_documented_onnx_path_runs(tmp_path):
    """docs/interop.md's ONNX section as written: its export commands, then its Python block."""
    doc = (ROOT / "docs" / "interop.md").read_text()
    section = doc[doc.index("## ONNX"):]
    commands = section.split("```")[1].splitlines()
    (tmp_path / "examples").mkdir()
    for suffix in (".gdsl", ".json"):
        (tmp_path / "examples" / f"d2l_mlp{suffix}").write_bytes((ROOT / "examples" / f"d2l_mlp{suffix}").read_bytes())
    for line in [c for c in commands if c.startswith("graphdsl export")]:
        run = subprocess.run([sys.executable, "-m", "graphdsl", *line.split()[1:]], cwd=tmp_path,
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
    script = section.split("```python\n")[1].split("```")[0]
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert {p.name for p in tmp_path.glob("*.onnx")} == {"mlp.onnx", "mlp_grads.onnx"}



def test_an_export_after_an_eval_of_the_same_model_gets_its_own_build():
    """Model.compile remembers builds by the values' shapes: an export's build (counts read at run
    time) must not be answered by an earlier eval's build of the same shapes, nor the other way round."""
    path = next(p for p in EXAMPLES if p.stem == "torch_mlp")
    fresh_model, values = _load(path)
    wanted = [s.op for s in export_program(fresh_model, values, with_grads=True).steps]
    model, _ = _load(path)
    model.grad(values)
    assert [s.op for s in export_program(model, values, with_grads=True).steps] == wanted
    evaluated = model.compile(values)[0]
    assert evaluated is not model.compile(values, free_counts=True)[0]

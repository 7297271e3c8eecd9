"""`graphdsl export --to onnx`: the compiled schedule as an ONNX model (opset 18, float64 by default).

Graph inputs are the model's inputs (a free dim is a symbolic `dim_param` named
as the dim, so any batch size runs; an input's own value, if it has one, is its
default); params are initializers and also graph inputs with those defaults, so
a user can feed new weights; consts are initializers; dropout masks are ones
(evaluation). Outputs keep the model's names, and with
`export_program(..., with_grads=True)` the gradients of reverse mode are outputs
too, `grad_<of>_<param>`. Every step becomes the nodes of onnx_ops.ONNX_OPS
(each step's tensor and node named as the schedule names it: `h`, `dJ_dW1`);
the producer fields and metadata_props name the model file and the graphdsl
version. An op with no counterpart is E116 before anything is built. A free dim
that a step folds into a fixed length (slicing along its axis, say) is exported
fixed at the data's size, and metadata_props list it (`graphdsl.fixed_dims`):
onnxruntime then refuses other sizes instead of computing with the wrong length.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from . import require, unsupported
from .onnx_graph import OPSET, FixedSize, OnnxGraph
from .onnx_ops import ONNX_OPS
from .schedule import DimRef, _symbolic_shape

LIBRARY = "onnx"
TARGET = "ONNX"


def export(program, *, dtype: str = "float64", version: str | None = None) -> bytes:
    """The serialized ONNX model of `program` (schedule.ExportProgram)."""
    onnx = require("onnx", "export --to onnx")
    _check_supported(program)
    if version is None:
        from .. import __version__ as version
    fixed = _dims_held_fixed(program)
    while True:  # a free dim some step folds into a number is fixed at the data's size, and built again
        try:
            model = _model(onnx, _with_fixed_dims(program, fixed), dtype, str(version), fixed)
            break
        except FixedSize as err:
            fixed.add(err.dim)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def _model(onnx, program, dtype, version, fixed):
    g = OnnxGraph(onnx, dtype, {})
    inputs, env = _leaves(g, program)
    shapes = _shapes(program)
    for step in program.steps:
        env[step.out] = _build_step(g, step, env, shapes)
    outputs = _outputs(g, program, env, shapes)
    graph = onnx.helper.make_graph(g.nodes, _graph_name(program), inputs, outputs, initializer=g.initializers,
                                   doc_string=f"{program.model_name}, exported by graphdsl {version}")
    opsets = [onnx.helper.make_opsetid("", OPSET)]
    # the oldest IR version that has opset 18 (8), not the onnx package's newest: older runtimes load it too
    model = onnx.helper.make_model(graph, opset_imports=opsets, ir_version=onnx.helper.find_min_ir_version_for(opsets),
                                   producer_name="graphdsl", producer_version=version,
                                   doc_string=f"graphdsl model {program.model_name} (graphdsl {version})")
    props = {"graphdsl.model": str(program.model_name), "graphdsl.version": version,
             "graphdsl.dtype": np.dtype(dtype).name}
    if fixed:
        props["graphdsl.fixed_dims"] = ", ".join(sorted(fixed))
    onnx.helper.set_model_props(model, props)
    return model


def _with_fixed_dims(program, names: set):
    """`program` with the free dims `names` made numbers: the sizes the data gave them."""
    if not names:
        return program
    sizes = _free_dim_sizes(program)

    def fix(value):
        if isinstance(value, DimRef) and value.name in names:
            return sizes[value.name]
        if isinstance(value, tuple):
            return tuple(fix(v) for v in value)
        return value

    return dataclasses.replace(
        program, leaves=[dataclasses.replace(leaf, shape=fix(tuple(leaf.shape))) for leaf in program.leaves],
        steps=[dataclasses.replace(step, kw={k: fix(v) for k, v in step.kw.items()}) for step in program.steps],
        free_dims={k: v for k, v in program.free_dims.items() if k not in names})


def _dims_held_fixed(program) -> set:
    """Free dims no input of the schedule binds, and those of a param's or const's shape (its value is
    one array of the data's size): exported fixed from the start."""
    held = {name for name, source in program.free_dims.items() if source is None}
    for leaf in program.leaves:
        if leaf.role in ("param", "const"):
            held |= {d.name for d in leaf.shape if isinstance(d, DimRef)}
    return held


def _free_dim_sizes(program) -> dict:
    """Each free dim's size in this export: read off a leaf's value, else a step's concrete arguments."""
    sizes = {leaf.name: int(leaf.value) for leaf in program.leaves if leaf.role == "dim"}
    for leaf in program.leaves:
        for axis, d in enumerate(leaf.shape):
            if isinstance(d, DimRef) and leaf.value is not None:
                sizes.setdefault(d.name, int(np.shape(leaf.value)[axis]))
    for step in program.steps:
        for key, value in step.kw.items():
            _sizes_in(value, step.bound.get(key), sizes)
    return sizes


def _sizes_in(symbolic, concrete, sizes):
    if isinstance(symbolic, DimRef):
        sizes.setdefault(symbolic.name, int(concrete))
    elif isinstance(symbolic, tuple) and isinstance(concrete, (tuple, list)) and len(symbolic) == len(concrete):
        for s, c in zip(symbolic, concrete):
            _sizes_in(s, c, sizes)


def _check_supported(program):
    for step in program.steps:
        if step.op not in ONNX_OPS:
            raise _unsupported(program, step)


def _unsupported(program, step):
    span = program.graph._node[step.node].get("span") if program.graph is not None else None
    return unsupported(step.op, TARGET, span, program.source,
                       ("export to torch or jax, or write the model without it",))


def _graph_name(program) -> str:
    return str(program.model_name).replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0] or "graphdsl"


# ---- leaves: inputs, params (initializers that are graph inputs too), consts, masks, dims -------------
def _value_info(g, name, shape):
    dims = [d.name if isinstance(d, DimRef) else int(d) for d in shape]
    return g.onnx.helper.make_tensor_value_info(name, g.elem, dims)


def _leaves(g, program):
    """The graph inputs and {var: tensor name} for every leaf."""
    env, inputs = {}, []
    for leaf in program.leaves:
        if leaf.role in ("input", "param"):
            env[leaf.var] = g.reserve(leaf.name)
            inputs.append(_value_info(g, leaf.name, leaf.shape))
            default = leaf.value if leaf.role == "param" else leaf.default
            if default is not None:  # a param's initial value, an input's own (`input x : [2] = [...]`)
                g.initializers.append(g.onnx.numpy_helper.from_array(default.astype(g.np_dtype), leaf.name))
    g.dim_sources.update(_dim_sources(program, env))
    for leaf in program.leaves:
        if leaf.role == "const":
            env[leaf.var] = g.reserve(leaf.var)
            g.initializers.append(g.onnx.numpy_helper.from_array(leaf.value.astype(g.np_dtype), leaf.var))
        elif leaf.role == "mask":  # dropout keeps every element outside training
            env[leaf.var] = g.rename(g.full(leaf.shape, 1.0), g.reserve(leaf.var))
        elif leaf.role == "dim":
            size = DimRef(leaf.name) if leaf.name in g.dim_sources else int(leaf.value)
            env[leaf.var] = g.rename(g.size(size), g.reserve(leaf.var))
    return inputs, env


def _dim_sources(program, env) -> dict:
    """dim name -> (input tensor, axis) for each free dim an input binds."""
    return {name: (env[src[0]], src[1]) for name, src in program.free_dims.items() if src is not None}


def _shapes(program) -> dict:
    """var -> symbolic shape (ints, DimRefs) of every leaf and step result."""
    free = set(program.free_dims)
    shapes = {leaf.var: tuple(leaf.shape) for leaf in program.leaves}
    nodes = program.graph._node
    for step in program.steps:
        shapes[step.out] = _symbolic_shape(nodes[nodes[step.node]["out"]].get("shape"), free)
    return shapes


# ---- steps and outputs ---------------------------------------------------------------------------
def _build_step(g, step, env, shapes) -> str:
    g.arg_shapes = [shapes[a] for a in step.args]
    g.out_shape = shapes[step.out]
    g.prefix = step.out
    first = len(g.nodes)
    out = ONNX_OPS[step.op](g, *[env[a] for a in step.args], **step.kw)
    node = _name_result(g, out, step.out, first)
    # what Netron shows for the node: the op and the user's line
    node.doc_string = f"{step.op}" + (f", line {step.line}: {step.text}" if step.line and step.text else "")
    return step.out


def _name_result(g, out: str, name: str, first: int):
    """The node making the step's result, its output renamed to the schedule's name (an Identity if the
    result is not a node of this step: a constant, or an input)."""
    made = [n for n in g.nodes[first:] if out in n.output]
    if not made or g.is_shared(out):
        g.rename(out, g.reserve(name))
        return g.nodes[-1]
    node = made[-1]
    node.output[list(node.output).index(out)] = g.reserve(name)
    node.name = name
    for later in g.nodes[g.nodes.index(node) + 1:]:
        for k, tensor in enumerate(later.input):
            if tensor == out:
                later.input[k] = name
    return node


def _outputs(g, program, env, shapes) -> list:
    named = list(program.outputs.items()) + list(program.grads.items())
    infos = []
    for name, var in named:
        tensor = env[var]
        if tensor != name:  # an output that is an input, a param or a const is that tensor itself
            g.rename(tensor, g.reserve(name))
        infos.append(_value_info(g, name, shapes[var]))
    return infos


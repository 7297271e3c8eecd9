"""The compiled schedule as exporters and backends read it: named steps in run order.

`export_program(model, ...)` compiles the model as `Model.eval`/`Model.grad` do and
returns the plan's steps (plan.py, the one compiled schedule) with readable
variable names: the user's names where the model has them (`z`, `h`, `J`),
`t7` for anonymous values, `dJ_dW1` for gradients. An exporter writes one line
per step; a backend runs the steps with its own op table (`run_steps`).

Static arguments come in two forms: `Step.bound`, concrete as the plan runs them
(sizes as ints), and `Step.kw`, where a free dim (`dim b`, bound from the data)
is a `DimRef` so that exported code reads it from its inputs' shapes, and
`like=` (the shape of another value) is a tuple of ints and `DimRef`s.
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field

import numpy as np

from ..autodiff import gradients
from ..graph import arguments
from ..ops.base import Dim
from ..values import initial_values, random_draws

# Names an exported file uses for itself: a model value must not shadow them.
RESERVED = {"torch", "jax", "jnp", "lax", "np", "math", "self", "inputs", "params", "dims", "out",
            "nn", "F", "onnx", "helper", "dtype", "device", "base64", "struct"}


@dataclass(frozen=True)
class DimRef:
    """A free dim's size, read at run time from the input that binds it (`ExportProgram.free_dims`)."""

    name: str


@dataclass(frozen=True)
class Leaf:
    var: str  # the Python identifier exported code uses
    node: str  # the graph node id
    role: str  # input, param, const, mask (a dropout mask) or dim (a dim used as a number)
    name: str  # the user's name (the dim's name for role dim)
    shape: tuple  # per axis: an int, or a DimRef for a free dim
    value: np.ndarray | None  # params: the initial value of this export; consts, masks, dims: their value;
    # inputs: the value compiled with (the user's data), None if none was given
    default: np.ndarray | None = None  # inputs: the model's default (`input x : [2] = [...]`), else None


@dataclass(frozen=True)
class Step:
    op: str  # a key of ops.REGISTRY
    args: tuple  # the vars of the arguments, in order
    out: str  # the var of the result
    kw: dict  # static arguments, free dims as DimRef
    bound: dict  # static arguments as the plan runs them (concrete)
    node: str  # the op node's id
    text: str | None  # the user's source text of the value computed, when it has one
    line: int | None  # its line in the model file
    phase: str  # forward or backward (a gradient step)


@dataclass
class ExportProgram:
    model_name: str
    leaves: list  # Leaf, in the plan's order
    steps: list  # Step, in run order
    outputs: dict  # output name -> var
    grads: dict = field(default_factory=dict)  # "grad_J_W1" -> var (with_grads)
    free_dims: dict = field(default_factory=dict)  # dim name -> (input var, axis), or None if no input has it
    plan: object = None  # the plan.Plan the steps come from
    graph: object = None  # the concrete graph
    source: object = None  # the model's diagnostics.Source (for located errors)
    seed: int = 0  # the seed the params' initial values were drawn with
    # what graphdsl's initialisers draw, in order: values.random_draws (an exporter redraws it for another seed)
    draws: list = field(default_factory=list)

    def leaf(self, role: str) -> list:
        return [lf for lf in self.leaves if lf.role == role]


def export_program(model, values: dict | None = None, dims: dict | None = None, seed: int = 0,
                   with_grads: bool = False, of: str | None = None, wrt=None) -> ExportProgram:
    """The model's schedule for its outputs (and, with_grads, d of / d wrt) with named values."""
    compiled, given = model.compile(values, dims, free_counts=True)  # a loss's N read from the data
    built = compiled.built
    targets = list(built.outputs)
    grad_nodes = {}
    if with_grads:
        target, wrt_nodes = model.grad_targets(compiled, of, wrt)
        table = gradients(built.gb, target, wrt_nodes)
        of_name = _display(built, target)
        grad_nodes = {f"grad_{of_name}_{_display(built, w)}": table[w] for w in wrt_nodes}
    plan = model._plan(compiled, tuple(dict.fromkeys(targets + list(grad_nodes.values()))))
    leaf_values = model.leaf_values(compiled, given, seed)
    free = {name for name, size in model.built.dims.items() if size is None and name not in model.dim_overrides}
    names = _Namer(plan.graph)
    defaults = _input_defaults(built, given, seed, model.max_elements)
    leaves = [_leaf(plan, node, names, free, leaf_values, defaults) for node, _ in plan.leaves]
    steps = [_step(plan, op_id, names, free) for op_id in plan.step_ops]
    return ExportProgram(
        model_name=model.source.name, leaves=leaves, steps=steps,
        outputs={_display(built, t): names.var(t) for t in targets},
        grads={k: names.var(v) for k, v in grad_nodes.items()},
        free_dims=_free_dim_sources(leaves, free), plan=plan, graph=plan.graph, source=model.source, seed=seed,
        draws=random_draws(built, given, model.max_elements))


def run_steps(program: ExportProgram, table: dict, leaf_arrays: dict, resolve=None) -> dict:
    """Run the schedule with `table` (op name -> function(*args, **bound)); vars -> results.

    `leaf_arrays` maps each leaf's var to its array in the backend's library; `resolve`,
    if given, turns a step's `bound` into what the backend's functions take.
    """
    env = dict(leaf_arrays)
    for step in program.steps:
        kw = resolve(step) if resolve else step.bound
        env[step.out] = table[step.op](*[env[a] for a in step.args], **kw)
    return env


# ---- naming -------------------------------------------------------------------------
class _Namer:
    """One Python identifier per graph node, stable and unique within the program."""

    def __init__(self, graph):
        self.graph = graph
        self.by_node: dict = {}
        self.taken: set = set(RESERVED)

    def var(self, node: str) -> str:
        name = self.by_node.get(node)
        if name is None:
            name = self.by_node[node] = self._fresh(self._base(node))
        return name

    def _base(self, node: str) -> str:
        if node.startswith("%"):
            return "t" + node[1:]
        if node.startswith("dim:"):
            return node[4:]
        text = re.sub(r"\W+", "_", node.replace("/d", "_d").replace("#", "")).strip("_") or "v"
        return "v_" + text if text[0].isdigit() or keyword.iskeyword(text) else text

    def _fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name


def _display(built, node: str) -> str:
    """The user's name for a node (`J` for an output assigned as J), else the node id."""
    for name, vid in built.assigned.items():
        if vid == node:
            return name
    return node


# ---- leaves and steps ----------------------------------------------------------------
def _leaf(plan, node, names, free, leaf_values, defaults) -> Leaf:
    data = plan.graph._node[node]
    role = data.get("role", "const")
    if node.startswith("dim:"):
        role, name = "dim", node[4:]
    else:
        name = data.get("name") or node
    value = leaf_values.get(node)
    if value is None and data.get("value") is not None:
        value = plan.leaf_value(leaf_values, node)  # a constant of the graph (a literal, a dim's size)
    return Leaf(var=names.var(node), node=node, role=role, name=name,
                shape=_symbolic_shape(data.get("shape"), free),
                value=None if value is None else np.asarray(value, dtype=np.float64),
                default=None if role != "input" or node not in defaults else np.asarray(defaults[node], np.float64))


def _input_defaults(built, given, seed, max_elements) -> dict:
    """The inputs' own values (a literal, or an initialiser drawn with `seed`), whatever data was given."""
    if not any(d.kind == "input" and (d.value is not None or d.init is not None) for d in built.decls.values()):
        return {}
    not_inputs = {k: v for k, v in given.items() if k in built.decls and built.decls[k].kind != "input"}
    drawn = initial_values(built, not_inputs, seed, max_elements)
    return {name: drawn[name] for name, d in built.decls.items() if d.kind == "input" and name in drawn}


def _step(plan, op_id, names, free) -> Step:
    g = plan.graph
    data = g._node[op_id]
    preds = g._pred[op_id]
    args = arguments(preds)
    out = data["out"]
    out_data = g._node[out]
    span = out_data.get("span") or data.get("span")
    return Step(op=data["op"], args=tuple(names.var(a) for a in args), out=names.var(out),
                kw=_symbolic_attrs(data["attrs"], g, free), bound=dict(plan.static_args(op_id)),
                node=op_id, text=out_data.get("text") or out_data.get("name"),
                line=span.line if span is not None else None, phase=data.get("phase", "forward"))


def _symbolic_shape(shape, free) -> tuple:
    if shape is None:
        return ()
    return tuple(DimRef(d.name) if d.name in free else d.size for d in shape)


def _symbolic_attrs(attrs, g, free) -> dict:
    kw = {}
    for key, value in (attrs or {}).items():
        if key == "like":
            value = None if value is None else _symbolic_shape(g._node[value]["shape"], free)
        elif isinstance(value, Dim):
            value = DimRef(value.name) if value.name in free else value.size
        elif isinstance(value, tuple) and value and isinstance(value[0], Dim):
            value = tuple(DimRef(d.name) if d.name in free else d.size for d in value)
        kw[key] = value
    return kw


def _free_dim_sources(leaves, free) -> dict:
    """Where exported code reads each free dim: the first input with an axis of that dim."""
    found = {}
    for leaf in leaves:
        if leaf.role != "input":
            continue
        for axis, d in enumerate(leaf.shape):
            if isinstance(d, DimRef) and d.name not in found:
                found[d.name] = (leaf.var, axis)
    return {name: found.get(name) for name in sorted(free)}

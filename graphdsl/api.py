"""The Python API: parse/load a model, then eval, grad and render it.

A Model holds the symbolic graph (for check and structure-only rendering). Each
set of bound dims gets a concrete graph, its adjoints and its plans, compiled
once and reused by every later call with the same dims.
"""
from __future__ import annotations

import contextlib
import gc
import os
from dataclasses import dataclass, field

import numpy as np

from .autodiff import gradients
from .build import Built, build
from .diagnostics import Diagnostic, GraphDSLError, Source
from .plan import DEFAULT_MAX_ELEMENTS, Plan
from .syntax import parse_program
from .valuefiles import as_array, refuse_nonfinite
from .values import bind_dims, check_dim_names, dropout_masks, initial_values


def parse(text: str, name: str = "<string>", dims: dict | None = None, strict: bool = False) -> "Model":
    return Model(text, name, dims=dims, strict=strict)


def load(path: str | os.PathLike, dims: dict | None = None, strict: bool = False) -> "Model":
    return Model(read_source(path), str(path), dims=dims, strict=strict)


MAX_SOURCE_BYTES = 64 << 20  # a 100,000-node model is a few MB


def read_source(path) -> str:
    path = str(path)
    if os.path.isdir(path):
        raise GraphDSLError(Diagnostic("E006", f"`{path}` is a directory, not a model file",
                                       help=("give the path of a .gdsl file",)))
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_SOURCE_BYTES + 1)  # bounded: /dev/zero or a runaway pipe never ends
    except OSError as err:
        raise GraphDSLError(Diagnostic("E006", f"cannot read `{path}`: {err.strerror or err}")) from None
    except ValueError as err:  # a path with a NUL byte
        raise GraphDSLError(Diagnostic("E006", f"cannot read `{path!r}`: {err}")) from None
    if len(raw) > MAX_SOURCE_BYTES:
        raise GraphDSLError(Diagnostic("E006", f"`{path}` is larger than {MAX_SOURCE_BYTES >> 20} MiB: it is not "
                                               "a model file graphdsl can read",
                                       help=("split the model, or generate it with fewer, larger arrays",)))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise GraphDSLError(Diagnostic("E006", f"`{path}` is not UTF-8 text: byte 0x{raw[err.start]:02x} "
                                               f"at line {line} cannot be decoded",
                                       help=("save the file as UTF-8",))) from None


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector while a graph is built.

    Building allocates hundreds of thousands of long-lived dicts; each of the
    collector's full passes walks all of them, which made a 100,000-node build
    quadratic. Nothing built here forms garbage cycles worth collecting early.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class Compiled:
    """One concrete graph (all dims bound) with its plans, keyed by targets."""

    built: Built
    plans: dict = field(default_factory=dict)
    grad_plans: dict = field(default_factory=dict)  # (of, wrt) as asked -> (plan, wrt node ids)


class Model:
    def __init__(self, text: str, name: str = "<string>", dims=None, strict=False):
        self.source = Source(text, name)
        self.dim_overrides = dict(dims or {})
        self.strict = strict
        with gc_paused():
            self.program = parse_program(text, name)
            self.built = build(self.program, self.source, dims=self.dim_overrides, strict=strict)
        check_dim_names(self.built, self.dim_overrides)
        self.graph = self.built.graph
        self._compiled: dict = {}
        self._keys: dict = {}  # (given names and shapes, dims) -> key of self._compiled
        self.max_elements = DEFAULT_MAX_ELEMENTS
        self.mode = "eval"  # or "train": dropout draws its masks (graphdsl train draws them every step)

    # ---- facts -------------------------------------------------------------------
    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.built.diagnostics if not d.is_error]

    @property
    def outputs(self) -> list[str]:
        return list(self.built.outputs)

    @property
    def params(self) -> list[str]:
        return [n for n, d in self.built.decls.items() if d.kind == "param"]

    @property
    def inputs(self) -> list[str]:
        return [n for n, d in self.built.decls.items() if d.kind == "input"]

    # ---- compiling ----------------------------------------------------------------
    def compile(self, values: dict | None = None, dims: dict | None = None) -> tuple[Compiled, dict]:
        """The concrete graph for these values' dims, and the values as float64 arrays."""
        given = {k: as_array(v, k) for k, v in (values or {}).items()}
        # Binding dims depends only on the names and shapes given: remember its answer.
        sig = (tuple([(k, v.shape) for k, v in given.items()]),
               tuple(sorted(self.dim_overrides.items())) if self.dim_overrides else (),
               tuple(sorted(dims.items())) if dims else ())
        key = self._keys.get(sig)
        if key is not None and key in self._compiled:
            return self._compiled[key], given
        bound = bind_dims(self.built, given, {**self.dim_overrides, **(dims or {})})
        shapes = {k: v.shape for k, v in given.items()}
        key = (tuple(sorted(bound.items(), key=lambda kv: kv[0])),
               tuple(sorted((k, s) for k, s in shapes.items() if self.built.decls[k].shape is None)))
        self._keys[sig] = key
        if key not in self._compiled:
            try:
                with gc_paused():
                    concrete = build(self.program, self.source, dims=bound, input_shapes=shapes,
                                     strict=self.strict)
            except GraphDSLError as err:
                raise err.with_source(self.source)
            self._compiled[key] = Compiled(concrete)
        return self._compiled[key], given

    @staticmethod
    def _refuse_nonfinite(given: dict) -> None:
        """The values a user feeds are checked before running (docs/language.md, E302)."""
        for name, value in given.items():
            refuse_nonfinite(value, f"the value of `{name}`")

    def _plan(self, compiled: Compiled, targets: tuple) -> Plan:
        if targets not in compiled.plans:
            compiled.plans[targets] = Plan(compiled.built.graph, list(targets), self.source, self.max_elements)
        return compiled.plans[targets]

    def leaf_values(self, compiled: Compiled, given: dict, seed: int = 0) -> dict:
        """Every leaf's value: the declarations' (given or initialised) and the dropout masks of self.mode."""
        values = initial_values(compiled.built, given, seed, self.max_elements)
        values.update(dropout_masks(compiled.built, seed, self.mode))
        return values

    # ---- evaluation ---------------------------------------------------------------
    def eval(self, values: dict | None = None, seed: int = 0, outputs=None, dims=None,
             check_finite: bool = True) -> dict[str, np.ndarray]:
        compiled, given = self.compile(values, dims)
        if check_finite:
            self._refuse_nonfinite(given)
        names = self._resolve_outputs(compiled, outputs)
        plan = self._plan(compiled, tuple(names))
        results = plan.run(self.leaf_values(compiled, given, seed), check_finite)
        return {self._display(compiled, n): np.asarray(r) for n, r in zip(names, results)}

    def grad(self, values: dict | None = None, of: str | None = None, wrt=None, seed: int = 0, dims=None,
             check_finite: bool = True):
        """(value of `of`, {name: d of / d name}) for each name in wrt (default: the params)."""
        compiled, given = self.compile(values, dims)
        if check_finite:
            self._refuse_nonfinite(given)
        # The plan for these (of, wrt) is looked up once per compiled graph, then reused.
        key = (of, wrt if wrt is None or isinstance(wrt, str) else tuple(wrt))
        hit = compiled.grad_plans.get(key)
        if hit is None:
            target, wrt = self.grad_targets(compiled, of, wrt)
            with gc_paused():
                table = gradients(compiled.built.gb, target, wrt)
            hit = compiled.grad_plans[key] = (self._plan(compiled, (target,) + tuple(table[w] for w in wrt)), wrt)
        plan, wrt = hit
        results = plan.run(self.leaf_values(compiled, given, seed), check_finite)
        return np.asarray(results[0]), {w: np.asarray(r) for w, r in zip(wrt, results[1:])}

    def grad_targets(self, compiled: Compiled, of, wrt):
        built = compiled.built
        target = self._resolve_of(built, of)
        if wrt is None:
            wrt = [n for n, d in built.decls.items() if d.kind == "param"] or \
                  [n for n, d in built.decls.items() if d.kind == "input"]
        wrt = [w.strip() for w in (wrt.split(",") if isinstance(wrt, str) else wrt)]
        for w in wrt:
            if w in built.dims:
                raise GraphDSLError(Diagnostic("E103", f"--wrt `{w}`: cannot differentiate with respect to a dim, "
                                                       "a size fixed for the run", built.dim_span(w),
                                               help=(f"values: {', '.join(built.decls)}",)), self.source)
            if w not in built.decls and w not in built.assigned:
                raise GraphDSLError(Diagnostic("E101", f"--wrt `{w}`: no such value in the model",
                                               help=(f"values: {', '.join(built.decls)}",)), self.source)
        return target, [built.assigned.get(w, w) for w in wrt]

    def _resolve_of(self, built: Built, of):
        if of is None:
            scalars = built.outputs
            if len(scalars) != 1:
                raise GraphDSLError(Diagnostic(
                    "E106", f"the model has {len(scalars)} outputs; say which to differentiate",
                    help=(f"use --of with one of: {', '.join(scalars) or '(none)'}",)), self.source)
            return scalars[0]
        node = built.assigned.get(of) or (of if of in built.decls else None)
        if node is None:
            raise GraphDSLError(Diagnostic("E106", f"--of `{of}`: no such value in the model",
                                           help=(f"outputs: {', '.join(built.outputs)}",)), self.source)
        return node

    def _resolve_outputs(self, compiled, outputs):
        if outputs is None:
            return list(compiled.built.outputs)
        return [self._resolve_of(compiled.built, o) for o in outputs]

    def _display(self, compiled, vid):
        return compiled.built.graph.nodes[vid].get("name") or vid

    # ---- rendering ------------------------------------------------------------------
    def render(self, values: dict | None = None, view: str = "forward", seed: int = 0, **options):
        from .render import render_model

        return render_model(self, values=values, view=view, seed=seed, **options)

    # ---- explaining -----------------------------------------------------------------
    def explain(self, values: dict | None = None, of: str | None = None, wrt=None, lr: float | None = None,
                seed: int = 0, dims=None, check_finite: bool = True):
        """Backpropagation step by step: an Explanation with .text, .markdown, .latex, .html
        (the backward-pass player, also what a notebook displays)."""
        from .explain import explain

        return explain(self, values, of=of, wrt=wrt, lr=lr, seed=seed, dims=dims, check_finite=check_finite)

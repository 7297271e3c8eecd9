"""The Python API: parse/load a model, then eval, grad and render it.

A Model holds the symbolic graph (for check and structure-only rendering). Each
set of bound dims gets a concrete graph, its adjoints and its plans, compiled
once and reused by every later call with the same dims.
"""
from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from . import memory
from .arrays import all_finite
from .autodiff import gradients
from .bounds import DEFAULT_MAX_OPS, check_text
from .build import Built, as_concrete, build, count_ops
from .loops import element_node
from .diagnostics import Diagnostic, GraphDSLError, Source
from .interop import backends
from .plan import DEFAULT_MAX_ELEMENTS, Plan
from .steady import Route, as_answer
from .syntax import parse_program
from .valuefiles import as_array, refuse_nonfinite
from .values import bind_dims, check_dim_names, dropout_masks, given_or_fixed, initial_values, known_values

if TYPE_CHECKING:
    from .equations import Equations
    from .gradcheck import GradcheckReport
    from .render import Rendering
    from .summary import ModelSummary
    from .train import TrainResult


def parse(text: str, name: str = "<string>", dims: dict | None = None, strict: bool = False,
          max_ops: int | None = DEFAULT_MAX_OPS, max_memory: int | str | None = None, purpose="check") -> "Model":
    """A Model from its text (`name` is what diagnostics call it)."""
    return Model(text, name, dims=dims, strict=strict, max_ops=max_ops, max_memory=max_memory, purpose=purpose)


def load(path: str | os.PathLike, dims: dict | None = None, strict: bool = False,
         max_ops: int | None = DEFAULT_MAX_OPS, max_memory: int | str | None = None, purpose="check") -> "Model":
    """A Model from a .gdsl file."""
    return Model(read_source(path), str(path), dims=dims, strict=strict, max_ops=max_ops, max_memory=max_memory,
                 purpose=purpose)


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


class gc_paused:
    """Pause the cyclic garbage collector while a graph is built, differentiated and planned.

    Building allocates hundreds of thousands of long-lived dicts and frees almost
    none; each of the collector's passes walks all of them, which made a
    100,000-node build quadratic and, in small steps, was a fifth of a
    12,000-node RNN's first gradient. Nothing made here forms garbage cycles
    worth collecting early.

    On leaving, when the region left many new objects behind (a build: the
    young generation's count grew by PROMOTE), they are moved to the oldest
    generation unscanned (`gc.freeze()` then `gc.unfreeze()`): the graph lives as
    long as its model, and the collector would otherwise walk it in a young pass
    and again in a middle one right after. Full collections still see
    everything, so nothing is kept that would otherwise be freed, only collected
    at the next full pass instead of a young one.
    """

    PROMOTE = 10_000

    __slots__ = ("was_enabled", "young")

    def __enter__(self):
        self.was_enabled = gc.isenabled()
        self.young = gc.get_count()[0]
        gc.disable()
        return self

    def __exit__(self, *exc):
        if self.was_enabled:
            # (not when the program froze objects itself: unfreeze would thaw them too)
            if gc.get_count()[0] - self.young > self.PROMOTE and not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()
        return False


@dataclass
class Compiled:
    """One concrete graph (all dims bound) with its plans, keyed by targets."""

    built: Built
    plans: dict = field(default_factory=dict)
    grad_plans: dict = field(default_factory=dict)  # (of, wrt) as asked -> (plan, wrt node ids)
    leaves_checked: bool = False  # the starting values fit the memory budget
    fixed_leaves: tuple | None = None  # values.given_or_fixed(built), made on first use


class Model:
    """A parsed and checked model.

    max_ops: refuse a model whose graph would have more operations (None: no limit);
    max_memory: bytes (or a size such as "2G") a run may need, None for what the
    machine allows (see memory.py); both are checked before the work is done.
    purpose: "check", "eval" or "grad", what the caller will do: the graphs that
    needs are checked against the budget before parsing (eval and grad check
    again when called, whatever the purpose).
    """

    def __init__(self, text: str, name: str = "<string>", dims=None, strict=False,
                 max_ops: int | None = DEFAULT_MAX_OPS, max_memory: int | str | None = None,
                 purpose: str = "check"):
        self.source = Source(text, name)
        self.dim_overrides = dict(dims or {})
        self.strict = strict
        self.max_ops = max_ops
        self.max_memory = memory.parse_size(max_memory) if isinstance(max_memory, str) else max_memory
        self.purpose = purpose
        self._graphs_fit: set = set()  # (stage, budget) already checked
        # what the text shows, before parsing; then the exact count, before building
        memory.check_graph(check_text(text, self.source, max_ops), purpose, self.max_memory, self.source)
        with gc_paused():
            self.program = parse_program(text, name)
            self.ops = count_ops(self.program, self.source, max_ops, dims=self.dim_overrides)
            self.check_graph_memory(purpose)
            self.built = build(self.program, self.source, dims=self.dim_overrides, strict=strict, max_ops=None)
            check_dim_names(self.built, self.dim_overrides)
        self._nx_graph = None
        self._compiled: dict = {}
        self._keys: dict = {}  # (given names and shapes, dims) -> key of self._compiled
        self._routes: dict = {}  # (of, wrt) -> the steady.Route of grad's last call with them
        self.max_elements = DEFAULT_MAX_ELEMENTS
        self.mode = "eval"  # or "train": dropout draws its masks (graphdsl train draws them every step)

    # ---- facts -------------------------------------------------------------------
    @property
    def graph(self):
        """The model's graph as a networkx.MultiDiGraph, made on first use (networkx is imported then).

        A snapshot of `self.built.graph`, the lighter graph graphdsl itself works on: the same
        node attribute dicts, node and adjacency dicts of its own (digraph.to_networkx).
        """
        if self._nx_graph is None:
            self._nx_graph = self.built.graph.to_networkx()
        return self._nx_graph

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
    def compile(self, values: dict | None = None, dims: dict | None = None,
                free_counts: bool = False) -> tuple[Compiled, dict]:
        """The concrete graph for these values' dims, and the values as float64 arrays.

        With free_counts (exporters), sizes of the free dims that a rule would fold into a
        constant (a loss's count N) are read at run time instead, so the graph takes any size.
        """
        # Binding dims depends only on the names and shapes given: remember its answer.
        given, shapes = {}, []
        for k, v in (values or {}).items():  # one loop: Model.grad runs this on every call
            given[k] = v = as_array(v, k)
            shapes.append((k, v.shape))
        sig = (tuple(shapes), tuple(sorted(self.dim_overrides.items())) if self.dim_overrides else (),
               tuple(sorted(dims.items())) if dims else (), free_counts)
        key = self._keys.get(sig)
        if key is not None:
            compiled = self._compiled.get(key)
            if compiled is not None:
                return compiled, given
        bound = bind_dims(self.built, given, {**self.dim_overrides, **(dims or {})})
        shapes = {k: v.shape for k, v in given.items()}
        key = (tuple(sorted(bound.items(), key=lambda kv: kv[0])),
               tuple(sorted((k, s) for k, s in shapes.items() if self.built.decls[k].shape is None)), free_counts)
        self._keys[sig] = key
        if key not in self._compiled:
            self.check_graph_memory("eval")
            try:
                with gc_paused():
                    concrete = as_concrete(self.built, bound, shapes, free_counts) or \
                        build(self.program, self.source, dims=bound, input_shapes=shapes, strict=self.strict,
                              max_ops=None, free_counts=free_counts)  # (counted by the first build)
            except GraphDSLError as err:
                raise err.with_source(self.source)
            self._compiled[key] = Compiled(concrete)
        return self._compiled[key], given

    @staticmethod
    def _refuse_nonfinite(given: dict) -> None:
        """The values a user feeds are checked before running (docs/language.md, E302)."""
        if all_finite(given.values()):  # one check of them all; each alone only when one fails
            return
        for name, value in given.items():
            refuse_nonfinite(value, f"the value of `{name}`")

    def _plan(self, compiled: Compiled, targets: tuple) -> Plan:
        if targets not in compiled.plans:
            with gc_paused():
                plan = Plan(compiled.built.graph, list(targets), self.source, self.max_elements)
            self.check_memory(plan)
            compiled.plans[targets] = plan
        return compiled.plans[targets]

    def check_graph_memory(self, stage: str) -> None:
        """Refuse (E310) before building the graphs of `stage` (check, eval, grad) if they would not fit."""
        if (stage, self.max_memory) not in self._graphs_fit:  # once: a training loop calls grad often
            memory.check_graph(self.ops, stage, self.max_memory, self.source)
            self._graphs_fit.add((stage, self.max_memory))

    def check_memory(self, plan: Plan, keep_all: bool = False, extra: int = 0, what="running this model") -> None:
        """Refuse (E310) a plan whose estimated peak (plus `extra` bytes) exceeds the budget, before it allocates."""
        needed, buffers = memory.plan_estimate(plan, keep_all)
        memory.check(needed + extra, buffers, self.max_memory, plan.graph, self.source, what)

    def leaf_values(self, compiled: Compiled, given: dict, seed: int = 0) -> dict:
        """Every leaf's value: the declarations' (given or initialised) and the dropout masks of self.mode."""
        if not compiled.leaves_checked:  # before drawing initialisers (gradcheck draws before planning)
            needed, buffers = memory.leaves_estimate(compiled.built, given)
            memory.check(needed, buffers, self.max_memory, compiled.built.graph, self.source,
                         "the values of this model")
            compiled.leaves_checked = True
        if compiled.fixed_leaves is None:
            compiled.fixed_leaves = given_or_fixed(compiled.built)
        values = known_values(compiled.fixed_leaves, given)
        if values is None:  # something is drawn from the seeded generator
            values = initial_values(compiled.built, given, seed, self.max_elements)
        if compiled.built.graph.graph.get("dropout_masks"):
            values.update(dropout_masks(compiled.built, seed, self.mode))
        return values

    # ---- evaluation ---------------------------------------------------------------
    def eval(self, values: dict | None = None, seed: int = 0, outputs=None, dims=None,
             check_finite: bool = True, backend: str | None = None, device: str | None = None) -> dict[str, np.ndarray]:
        """The outputs (or `outputs`); backend="torch"/"jax" (device="cuda", ...) runs the same plan there."""
        backends.check(backend, device)
        compiled, given = self.compile(values, dims)
        if check_finite:
            self._refuse_nonfinite(given)
        names = self._resolve_outputs(compiled, outputs)
        plan = self._plan(compiled, tuple(names))
        results = backends.run(plan, self.leaf_values(compiled, given, seed), check_finite, True, backend, device)
        return {self._display(compiled, n): np.asarray(r) for n, r in zip(names, results)}

    def grad(self, values: dict | None = None, of: str | None = None, wrt=None, seed: int = 0, dims=None,
             check_finite: bool = True, backend: str | None = None,
             device: str | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(value of `of`, {name: d of / d name}) for each name in wrt (default: the params);
        backend="torch"/"jax" (device="cuda", ...) runs the same plan there."""
        steady = dims is None and backend is None and device is None  # what a steady.Route can answer
        if steady and self._routes:
            answer = self._repeated(values, of, wrt, check_finite)
            if answer is not None:
                return answer
        backends.check(backend, device)
        self.check_graph_memory("grad")  # before the concrete build
        compiled, given = self.compile(values, dims)
        if check_finite:
            self._refuse_nonfinite(given)
        # The plan for these (of, wrt) is looked up once per compiled graph, then reused.
        key = _asked(of, wrt)
        hit = compiled.grad_plans.get(key)
        if hit is None:
            target, wrt = self.grad_targets(compiled, of, wrt)
            with gc_paused():
                table = gradients(compiled.built.gb, target, wrt)
                hit = compiled.grad_plans[key] = (self._plan(compiled, (target,) + tuple(table[w] for w in wrt)),
                                                  wrt)
        plan, wrt = hit
        results = backends.run(plan, self.leaf_values(compiled, given, seed), check_finite, True, backend, device)
        if steady and plan.calls > 1:  # (its first call ran the reference schedule: no program to route to yet)
            self._remember(key, compiled, given, plan, wrt)
        return as_answer(results, wrt)

    def _repeated(self, values, of, wrt, check_finite: bool):
        """grad's answer by the route of its last call with these of and wrt (steady.py), or None."""
        if not (wrt is None or type(wrt) in (str, list, tuple)):  # (an iterator: the general route reads it once)
            return None
        try:
            route = self._routes.get(_asked(of, wrt))
        except TypeError:  # of or wrt unhashable: the general route reports it where it always has
            return None
        if route is None or route.overrides != self.dim_overrides:
            return None
        self.check_graph_memory("grad")  # (the budget may have changed since)
        arrays = route.arrays(values)
        return None if arrays is None else route.answer(arrays, check_finite)

    def _remember(self, key, compiled: Compiled, given: dict, plan: Plan, wrt) -> None:
        """Keep the route of a grad call that took the general route, for the next call with its (of, wrt)."""
        route = self._routes.get(key)
        if route is not None and route.fits(given, plan, self.dim_overrides):
            return  # (the route could not take this call's values: converted, or not C-ordered)
        leaves = None if compiled.built.graph.graph.get("dropout_masks") else known_values(compiled.fixed_leaves, given)
        route = None if leaves is None else Route.make(given, leaves, plan, wrt, self.dim_overrides)
        if route is None:  # every call draws from the seeded generator, or fills a leaf _Program.fill's slow way
            self._routes.pop(key, None)
        else:
            self._routes[key] = route

    def grad_targets(self, compiled: Compiled, of, wrt):
        """The node to differentiate and those to differentiate by (reverse mode runs next: its memory is checked)."""
        self.check_graph_memory("grad")
        built = compiled.built
        return self._resolve_of(built, of), self.wrt_nodes(built, wrt)

    def wrt_nodes(self, built: Built, wrt) -> list[str]:
        """The graph nodes of `wrt` names (a list or "a,b"); None: the params, or the inputs if there are none."""
        if wrt is None:
            wrt = [n for n, d in built.decls.items() if d.kind == "param"] or \
                  [n for n, d in built.decls.items() if d.kind == "input"]
        wrt = [w.strip() for w in (wrt.split(",") if isinstance(wrt, str) else wrt)]
        for w in wrt:
            if w in built.dims:
                raise GraphDSLError(Diagnostic("E103", f"{self._arg('wrt', w)}: cannot differentiate with respect to a dim, "
                                                       "a size fixed for the run", built.dim_span(w),
                                               help=(f"values: {', '.join(built.decls)}",)), self.source)
            if w not in built.decls and w not in built.assigned:
                raise GraphDSLError(Diagnostic("E101", f"{self._arg('wrt', w)}: no such value in the model",
                                               help=_did_you_mean(w, [*built.decls, *built.assigned])
                                               + (f"values: {', '.join(built.decls)}",)), self.source)
        return [built.assigned.get(w, w) for w in wrt]

    def _resolve_of(self, built: Built, of):
        if of is None:
            scalars = built.outputs
            if len(scalars) != 1:
                raise GraphDSLError(Diagnostic(
                    "E106", f"the model has {len(scalars)} outputs; say which to differentiate",
                    help=(f"use {self._arg('of')} with one of: {', '.join(scalars) or '(none)'}",)), self.source)
            return scalars[0]
        node = built.assigned.get(of) or (of if of in built.decls else None) or element_node(built.sequences, of)
        if node is None:
            raise GraphDSLError(Diagnostic("E106", f"{self._arg('of', of)}: no such value in the model",
                                           help=_did_you_mean(of, [*built.decls, *built.assigned])
                                           + (f"outputs: {', '.join(built.outputs)}",)), self.source)
        return node

    def _resolve_outputs(self, compiled, outputs):
        if outputs is None:
            return list(compiled.built.outputs)
        return [self._resolve_of(compiled.built, o) for o in outputs]

    # Which spelling errors use for an argument: the CLI sets "cli" (`--of`); Python
    # callers see the keyword they passed (`of=`).
    argument_style = "python"

    def _arg(self, name: str, value=None) -> str:
        """--of or of=; with a value: --of `Q` or of='Q', as each caller typed it."""
        if self.argument_style == "cli":
            return f"--{name}" + (f" `{value}`" if value is not None else "")
        return f"{name}=" + (repr(value) if value is not None else "")

    def _display(self, compiled, vid):
        return compiled.built.graph.nodes[vid].get("name") or vid

    # ---- rendering ------------------------------------------------------------------
    def render(self, values: dict | None = None, view: str = "forward", seed: int = 0, **options) -> "Rendering":
        from .render import render_model

        _check_options("render", render_model, options)
        return render_model(self, values=values, view=view, seed=seed, **options)

    # ---- explaining -----------------------------------------------------------------
    def explain(self, values: dict | None = None, of: str | None = None, wrt=None, lr: float | None = None,
                seed: int = 0, dims=None, check_finite: bool = True):
        """Backpropagation step by step: an Explanation with .text, .markdown, .latex, .html
        (the backward-pass player, also what a notebook displays)."""
        from .explain import explain

        return explain(self, values, of=of, wrt=wrt, lr=lr, seed=seed, dims=dims, check_finite=check_finite)

    # ---- the other commands, as methods returning objects --------------------------
    def train(self, values: dict | None = None, lr: float = 0.01, steps: int = 100, optimizer: str = "sgd",
              **options) -> "TrainResult":
        """Minimise the one output (or `of=`) by gradient descent, as `graphdsl train`.

        Returns a TrainResult: `.params` (name -> array), `.losses` (one per step, a
        NumPy array), `.loss` (final, on all the data), `.steps`. Options: batch_size,
        of, params, seed, batch_dim, shuffle, momentum, betas, eps, callback, backend, device.
        """
        from .train import train

        _check_options("train", train, options)
        result = train(self, values, lr=lr, steps=steps, optimizer=optimizer, **options)
        result.losses = np.asarray(result.losses, dtype=float)  # a history array, ready to plot
        result.history.setdefault("loss", result.losses)
        return result

    def equations(self, values: dict | None = None, of: str | None = None, wrt=None,
                  dims: dict | None = None, unroll: bool = False) -> "Equations":
        """The forward and backward equations, as `graphdsl equations`: an Equations object
        whose str() is the text; `.latex()`, `.markdown()`; a notebook shows the Markdown.
        A loop's equations are printed once in terms of its variable unless `unroll`."""
        from .equations import equations

        return equations(self, values, of=of, wrt=wrt, dims=dims, unroll=unroll)

    def gradcheck(self, values: dict | None = None, of: str | None = None, wrt=None, seed: int = 0,
                  step: float = 1e-6, tol: float = 1e-4) -> "GradcheckReport":
        """Gradients against central finite differences, as `graphdsl gradcheck`: a
        GradcheckReport with `.errors` (name -> max relative error), `.worst` and `.ok`."""
        from .gradcheck import GradcheckReport, gradcheck

        return GradcheckReport(gradcheck(self, values, of=of, wrt=wrt, seed=seed, step=step), tol)

    # ---- display ---------------------------------------------------------------------
    def summary(self) -> "ModelSummary":
        """Inputs, params (shapes, element counts, total) and outputs: what repr() shows."""
        from .summary import summarize

        return summarize(self)

    def __repr__(self) -> str:
        return self.summary().text()

    def _repr_html_(self) -> str:
        return self.summary().html()


def _asked(of, wrt) -> tuple:
    """grad's (of, wrt) as a key: wrt a name, names or None (a list made a tuple)."""
    return of, wrt if wrt is None or isinstance(wrt, str) else tuple(wrt)


def _did_you_mean(name: str, candidates) -> tuple[str, ...]:
    from .diagnostics import suggest

    near = suggest(name, candidates)
    return (f"did you mean `{near}`?",) if near else ()


def _check_options(method: str, func, options: dict) -> None:
    """A keyword `func` does not take, refused in the caller's words (not func's name)."""
    import inspect

    known = [p.name for p in inspect.signature(func).parameters.values()
             if p.kind is inspect.Parameter.KEYWORD_ONLY or p.default is not inspect.Parameter.empty]
    for name in options:
        if name not in known:
            from .diagnostics import suggest

            near = suggest(name, known)
            hint = f"did you mean `{near}=`? " if near else ""
            raise TypeError(f"{method}() got an unknown option `{name}=`; {hint}"
                            f"its options are: {', '.join(known)}")

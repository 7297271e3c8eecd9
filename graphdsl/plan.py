"""Compile a concrete graph once into straight-line Python, then run it.

Two schedules come out of one graph:

* the reference schedule: a flat list of (function, input slots, output slot),
  one step per operator node, each slot released after its last use. It is the
  meaning of the graph; the renderer reads it, and a run that produced a NaN or
  Inf re-runs it step by step to name the first node at fault (E302, plan_faults.py).
* the compiled program: the same computation after exact rewrites (see
  `_optimise`), emitted as Python source over local variables and compiled once
  with `compile()`. Every rewrite keeps the numbers bit-for-bit those of the
  reference schedule: folding constants and no-op nodes, leaving broadcasts to
  the ufunc that consumes them instead of materialising them, multiplying by
  0/1 masks kept as booleans, `pow(x, 2)` as `square`, a scalar factor that is a
  power of two moved onto the other scalar, and writing an elementwise result
  into the buffer of an input that dies there (`out=`). Each array is released
  (`del`) right after its last use, so the backward pass holds only the forward
  values it still needs.

When every value of a plan is a scalar, the program runs on Python floats, with
operators and conditionals for + - * / and relu, which is what makes long
scalar chains cost a few tens of nanoseconds per node. Plans with more than
`CHUNK` instructions are split into functions of that size, so compiling and
running stay linear in the number of nodes.

The program is generated on first use, not with the plan: `run(..., tiered=True)`
(what `Model.grad` and `Model.eval` call) answers its first call from the
reference schedule and compiles the program for the calls after it. Generating
and compiling the program is half the cost of a model's first gradient, and a
command that asks once never needs it; the numbers are the same either way.
"""
from __future__ import annotations

import functools
import gc
import math
import tracemalloc
import warnings

import numpy as np

from . import plan_faults as faults
from .arrays import all_finite, c_ordered
from .diagnostics import Diagnostic, GraphDSLError
from .digraph import MultiDiGraph
from .graph import arguments, upstream_in_order
from .ops import REGISTRY, concrete
from .ops.base import Dim

DEFAULT_MAX_ELEMENTS = 2 ** 28

try:  # np.errstate(all="ignore") costs microseconds per entry; set its context variable directly
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj

    _IGNORE = _make_extobj(all="ignore")

    def _quiet():
        return _extobj_contextvar.set(_IGNORE)

    def _loud(token):
        _extobj_contextvar.reset(token)
except Exception:  # pragma: no cover - other NumPy versions
    def _quiet():
        state = np.errstate(all="ignore")
        state.__enter__()
        return state

    def _loud(state):
        state.__exit__(None, None, None)

class Plan:
    def __init__(self, g: MultiDiGraph, targets: list[str], source=None, max_elements=DEFAULT_MAX_ELEMENTS,
                 optimize: bool = True):
        was_enabled = gc.isenabled()
        gc.disable()  # compiling allocates many small objects and frees none: nothing for the collector
        try:
            self._compile(g, targets, source, max_elements, optimize)
        finally:
            if was_enabled:
                gc.enable()

    def _compile(self, g, targets, source, max_elements, optimize):
        self.source = source
        self.targets = list(targets)
        self.graph = g
        # One pass over the needed nodes in a topological order (the graph's insertion order
        # when it is one): any such order gives the same numbers.
        last_reader = self._schedule(g, upstream_in_order(g, self.targets), max_elements)
        self.target_slots = [self.slot[t] for t in self.targets]
        self.frees = self._free_after(last_reader)
        self.nslots = len(self.slot)
        self._optimize = optimize
        self._program = None
        self.calls = 0  # runs so far (the first of a tiered run uses the reference schedule)

    def _schedule(self, g, order, max_elements):
        """Slots for the values and one reference step per op, in `order` ((node, its attributes,
        its predecessors), topological). Returns {slot: the last step that reads it}."""
        self.slot = slot = {}
        self.slot_bytes = slot_bytes = []  # float64 bytes of each slot's value (8 when its shape is unknown)
        self.leaves = leaves = []
        self._bound = bound = {}  # op -> its static arguments made concrete (ops that have any)
        last: dict = {}  # slot -> the last step that reads it (so far)
        self.step_ops = step_ops = []
        outs = []
        steps = []
        # A shape's element count, computed once per shape object (keyed by id: hashing a
        # tuple of Dims calls their Python __hash__; every shape is held by the graph meanwhile).
        sizes: dict = {}
        for n, data, preds in order:
            if data["kind"] == "var":
                shape = data["shape"]
                count = sizes.get(id(shape), -1) if shape is not None else None
                if count == -1:
                    dims = concrete(shape)
                    count = sizes[id(shape)] = None if dims is None else math.prod(dims)
                if count is not None and count > max_elements:
                    faults.too_large(self, n, data, count, max_elements)
                slot[n] = len(slot)
                slot_bytes.append(8 * count if count is not None else 8)
                if not preds:
                    leaves.append((n, slot[n]))
                continue
            op = data["op"]
            if op == "opaque":
                faults.undefined_function(self, n, data)
            forward = REGISTRY[op].forward
            attrs = data["attrs"]
            if attrs:
                kw = _bind_attrs(attrs, g)
                if kw:
                    bound[n] = kw
                    forward = functools.partial(forward, **kw)
            ins = tuple([slot[u] for u in arguments(preds)])
            step = len(steps)
            for s in ins:
                last[s] = step
            steps.append((forward, ins))
            outs.append(data["out"])
            step_ops.append(n)
        self.steps = [(fn, ins, slot[out]) for (fn, ins), out in zip(steps, outs)]
        return last

    @property
    def program(self):
        """The compiled program (a codegen._Program), generated on first use."""
        if self._program is None:
            from .codegen import _Program  # here: a command that runs a plan once never needs it
            was_enabled = gc.isenabled()
            gc.disable()  # as in __init__: many small objects, all kept
            try:
                self._program = _Program(self, self._optimize)
            finally:
                if was_enabled:
                    gc.enable()
        return self._program

    def static_args(self, op_id: str) -> dict:
        """The op's static keyword arguments made concrete (sizes for like=, ints for dims); {} if none."""
        return self._bound.get(op_id, {})

    def _free_after(self, last_reader: dict):
        """frees[i]: slots whose last reader is step i (targets and leaves are kept)."""
        keep = set(self.target_slots) | {s for _, s in self.leaves}
        frees = [[] for _ in self.steps]
        for s, i in last_reader.items():
            if s not in keep:
                frees[i].append(s)
        return [tuple(f) for f in frees]

    # ---- running ---------------------------------------------------------------
    def run(self, leaf_values: dict, check_finite=True, tiered=False) -> list:
        """The targets' values, from the compiled program; errors name the node and its line.

        `tiered`: the first call of the plan runs the reference schedule instead, and
        leaves generating the program to the next call (see the module's docstring).
        """
        self.calls += 1
        first = tiered and self._program is None and self.calls == 1
        try:
            results = self._run_reference_quiet(leaf_values) if first else self._run_compiled(leaf_values)
        except GraphDSLError:  # ours (a missing value): a ValueError too, so let it through
            raise
        except (ValueError, ArithmeticError) as err:  # NumPy refused the data (an empty axis, ...)
            raise faults.failure(self, leaf_values, err) from None
        if check_finite and not all_finite(results):
            faults.locate_nonfinite(self, leaf_values)
        return list(results)

    def _run_compiled(self, leaf_values):
        return self._call(self.program, self.program.fill(leaf_values))

    def run_filled(self, slots: list):
        """The compiled program's results from its leaves' values as `program.fill` gives them, unchecked:
        for Model.grad's repeated route (steady.py), which checks them itself."""
        self.calls += 1
        return self._call(self.program, slots)

    @staticmethod
    def _call(prog, slots):
        if not prog.errstate:
            return prog.fn(slots)
        token = _quiet()
        try:
            return prog.fn(slots)
        finally:
            _loud(token)

    def _run_reference_quiet(self, leaf_values):
        """The reference schedule, as quiet as the compiled program: NumPy's floating-point
        errors and its RuntimeWarnings (`Mean of empty slice` from steps the program folds
        away) are not shown; non-finite results are reported by `run` as E302."""
        slots = self._fill(leaf_values)
        token = _quiet()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                self._step_through(slots, free=True, errstate=False)
        finally:
            _loud(token)
        return [slots[s] for s in self.target_slots]

    def run_reference(self, leaf_values: dict) -> list:
        """The straightforward schedule, one step per node: the meaning the compiled program must match."""
        slots = self._fill(leaf_values)
        self._step_through(slots, free=True)
        return [slots[s] for s in self.target_slots]

    def run_all(self, leaf_values: dict) -> dict:
        """Every value of the plan by node id, nothing freed (the renderer draws them all)."""
        slots = self._fill(leaf_values)
        try:
            self._step_through(slots, free=False)
        except GraphDSLError:  # ours (a missing value): a ValueError too, so let it through
            raise
        except (ValueError, ArithmeticError) as err:
            raise faults.failure(self, leaf_values, err) from None
        return {n: np.asarray(slots[s]) for n, s in self.slot.items() if slots[s] is not None}

    def _step_through(self, slots, free: bool, until=None, errstate=True):
        """Run the reference steps in order; `until(k, value)` may stop at step k by raising."""
        if errstate:
            with np.errstate(all="ignore"):
                return self._step_through(slots, free, until, errstate=False)
        for k, ((fn, ins, out), dead) in enumerate(zip(self.steps, self.frees)):
            if len(ins) == 2:  # most steps: their arguments without a list (this is a command's first run)
                slots[out] = fn(slots[ins[0]], slots[ins[1]])
            elif len(ins) == 1:
                slots[out] = fn(slots[ins[0]])
            else:
                slots[out] = fn(*[slots[i] for i in ins])
            if until is not None:
                until(k, slots[out])
            if free:
                for s in dead:
                    slots[s] = None

    def _fill(self, leaf_values):
        slots = [None] * self.nslots
        for name, s in self.leaves:
            slots[s] = self.leaf_value(leaf_values, name)
        return slots

    def leaf_value(self, leaf_values, name):
        """The given value of leaf `name`, else the graph's constant; E304 when there is neither."""
        value = leaf_values.get(name)
        if value is None:
            value = self.graph.nodes[name].get("value")
        if value is None:
            raise GraphDSLError(Diagnostic("E304", f"no value for `{name}`", self.graph.nodes[name].get("span"),
                                           help=(f"give one with --set {name}=... or --load FILE",)), self.source)
        return c_ordered(value)

    # ---- looking inside ------------------------------------------------------------
    @property
    def source_code(self) -> str:
        """The generated Python of the compiled program (for the curious and for tests)."""
        return self.program.code

    def profile(self, leaf_values: dict, repeats: int = 1) -> list[tuple[str, float, int]]:
        """(op id, seconds, bytes of its result) for every node the compiled program runs.

        Each node is timed on its own in every run; its time is the best of the runs
        (a busy machine's pauses land in one run or another, not in all).

        Nodes the compiler folded away (constants, no-op reshapes, broadcasts left to
        the ufunc that uses them) take no time and are not listed.
        """
        prog = self.program
        fn, times, sizes = prog.instrumented()
        for _ in range(max(1, repeats)):
            with np.errstate(all="ignore"):
                fn(prog.fill(leaf_values))
        rows: dict[str, list] = {}
        for k, ins in enumerate(prog.instrs):
            row = rows.setdefault(ins.op_id, [0.0, 0])
            row[0] += times[k]
            row[1] += sizes[k]
        return [(op, t, b) for op, (t, b) in rows.items()]

    def memory(self, leaf_values: dict | None = None) -> dict:
        """What the compiled program keeps alive: forward values held for the backward pass, and the peak.

        `held`: (value id, bytes, producing op id, op id of its last backward reader) for each
        forward result still alive when the backward pass starts; `held_bytes` their sum;
        `static_peak_bytes`: the largest total of live results along the schedule (views and
        inputs not counted); with leaf_values, `peak_bytes`: the peak measured by tracemalloc
        during one run, above what was allocated before it.
        """
        report = self.program.memory_report()
        if leaf_values is not None:
            slots = self.program.fill(leaf_values)
            tracing = tracemalloc.is_tracing()
            if not tracing:
                tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            with np.errstate(all="ignore"):
                results = self.program.fn(slots)
            report["peak_bytes"] = tracemalloc.get_traced_memory()[1] - base
            if not tracing:
                tracemalloc.stop()
            del results
        return report


def _bind_attrs(attrs, g):
    """The op's static attributes made concrete (like= becomes sizes, dims become ints)."""
    kw = {}
    for key, value in attrs.items():
        if key == "like":
            value = None if value is None else concrete(g._node[value]["shape"])
        elif isinstance(value, Dim):
            value = value.size
        elif isinstance(value, tuple) and value and isinstance(value[0], Dim):
            value = tuple(d.size for d in value)
        kw[key] = value
    return kw

"""Compile a concrete graph once into a flat schedule of NumPy calls, then run it.

The schedule is a list of (function, input slots, output slot) over a list of
slots: no NetworkX look-ups, no recursion and no dict walks on the hot path.
Each slot is released right after its last use, so a backward pass keeps alive
only the forward values it still needs.
"""
from __future__ import annotations

import functools
import math
import time

import networkx as nx
import numpy as np

from .diagnostics import Diagnostic, GraphDSLError
from .ops import REGISTRY, concrete, fmt_shape
from .ops.base import Dim

DEFAULT_MAX_ELEMENTS = 2 ** 28


class Plan:
    def __init__(self, g: nx.MultiDiGraph, targets: list[str], source=None, max_elements=DEFAULT_MAX_ELEMENTS):
        self.source = source
        self.targets = list(targets)
        nodes = set(self.targets)
        for t in self.targets:
            nodes |= nx.ancestors(g, t)
        order = [n for n in nx.topological_sort(g.subgraph(nodes))]
        self.slot = {}
        self.leaves: list[tuple[str, int]] = []
        self.steps: list[tuple] = []
        self.step_ops: list[str] = []
        for n in order:
            data = g.nodes[n]
            if data["kind"] == "var":
                self._check_size(n, data, max_elements)
                self.slot[n] = len(self.slot)
                if g.in_degree(n) == 0:
                    self.leaves.append((n, self.slot[n]))
        for n in order:
            if g.nodes[n]["kind"] == "op":
                self._add_step(g, n)
        self.target_slots = [self.slot[t] for t in self.targets]
        self.frees = self._last_uses()
        self.nslots = len(self.slot)
        self.graph = g

    def _check_size(self, n, data, max_elements):
        sizes = concrete(data["shape"])
        if sizes is not None and math.prod(sizes) > max_elements:
            raise GraphDSLError(Diagnostic(
                "E303", f"`{data.get('name') or data.get('text') or n}` would hold {math.prod(sizes):,} elements "
                        f"{fmt_shape(data['shape'])}, more than the limit of {max_elements:,}", data.get("span"),
                help=("use smaller dims, or raise the limit with --max-elements",)), self.source)

    def _add_step(self, g, op_id):
        data = g.nodes[op_id]
        if data["op"] == "opaque":
            func = data["attrs"]["func"]
            raise GraphDSLError(Diagnostic(
                "E305", f"cannot evaluate `{func}`: it is not defined", data["span"],
                help=(f"define it before evaluating, e.g. `def {func}(z) = relu(z)`",)), self.source)
        fn = _bind(REGISTRY[data["op"]].forward, data["attrs"], g)
        ins = tuple(self.slot[u] for u, _, _ in sorted(g.in_edges(op_id, keys=True), key=lambda e: e[2]))
        self.steps.append((fn, ins, self.slot[data["out"]]))
        self.step_ops.append(op_id)

    def _last_uses(self):
        """frees[i]: slots whose last reader is step i (targets and leaves are kept)."""
        last = {}
        for i, (_, ins, _) in enumerate(self.steps):
            for s in ins:
                last[s] = i
        keep = set(self.target_slots) | {s for _, s in self.leaves}
        frees = [[] for _ in self.steps]
        for s, i in last.items():
            if s not in keep:
                frees[i].append(s)
        return [tuple(f) for f in frees]

    # ---- running ---------------------------------------------------------------
    def run(self, leaf_values: dict, check_finite=True) -> list:
        slots = self._fill(leaf_values)
        with np.errstate(all="ignore"):
            for (fn, ins, out), free in zip(self.steps, self.frees):
                slots[out] = fn(*[slots[i] for i in ins])
                for s in free:
                    slots[s] = None
        results = [slots[s] for s in self.target_slots]
        if check_finite and not all(np.all(np.isfinite(r)) for r in results):
            self._locate_nonfinite(leaf_values)
        return results

    def _fill(self, leaf_values):
        slots = [None] * self.nslots
        for name, s in self.leaves:
            value = leaf_values.get(name)
            if value is None:
                value = self.graph.nodes[name].get("value")
            if value is None:
                raise GraphDSLError(Diagnostic("E304", f"no value for `{name}`",
                                               self.graph.nodes[name].get("span"),
                                               help=(f"give one with --set {name}=... or --load FILE",)),
                                    self.source)
            slots[s] = value
        return slots

    def _locate_nonfinite(self, leaf_values):
        """Re-run slowly to find the first node whose value is NaN or Inf, and say where it comes from."""
        slots = self._fill(leaf_values)
        for name, s in self.leaves:
            if not np.all(np.isfinite(slots[s])):
                self._nonfinite_error(name, slots[s], "is given a value that")
        with np.errstate(all="ignore"):
            for (fn, ins, out), op_id in zip(self.steps, self.step_ops):
                slots[out] = fn(*[slots[i] for i in ins])
                if not np.all(np.isfinite(slots[out])):
                    self._nonfinite_error(self.graph.nodes[op_id]["out"], slots[out], "")

    def _nonfinite_error(self, vid, value, how):
        data = self.graph.nodes[vid]
        kind = "NaN" if np.any(np.isnan(value)) else "Inf"
        label = data.get("name") or data.get("text") or vid
        raise GraphDSLError(Diagnostic(
            "E302", f"`{label}` {how or 'is the first value that'} contains {kind}", data.get("span"),
            notes=(f"{int(np.sum(~np.isfinite(value)))} of {np.size(value)} elements are not finite",),
            help=("check the inputs and the scale of the weights, or pass --allow-nonfinite to go on",)),
            self.source)

    def profile(self, leaf_values: dict, repeats: int = 1) -> list[tuple[str, float, int]]:
        """(op id, seconds per run, bytes of its output) for every step."""
        times = [0.0] * len(self.steps)
        sizes = [0] * len(self.steps)
        for _ in range(repeats):
            slots = self._fill(leaf_values)
            with np.errstate(all="ignore"):
                for k, (fn, ins, out) in enumerate(self.steps):
                    t0 = time.perf_counter()
                    slots[out] = fn(*[slots[i] for i in ins])
                    times[k] += time.perf_counter() - t0
                    sizes[k] = int(np.asarray(slots[out]).nbytes)
        return [(op, t / repeats, b) for op, t, b in zip(self.step_ops, times, sizes)]


def _bind(forward, attrs, g):
    """The op's forward with its static attributes fixed (like= becomes concrete sizes)."""
    kw = {}
    for key, value in attrs.items():
        if key == "like":
            value = None if value is None else concrete(g.nodes[value]["shape"])
        elif isinstance(value, Dim):
            value = value.size
        elif isinstance(value, tuple) and value and isinstance(value[0], Dim):
            value = tuple(d.size for d in value)
        kw[key] = value
    return functools.partial(forward, **kw) if kw else forward

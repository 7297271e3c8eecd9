"""The compiled program of a Plan: exact rewrites of the reference schedule, emitted as Python.

See plan.py for what the two schedules are. `_Program` turns a plan's steps into
instructions (program_ir._Ins) and runs its passes: the rewrites (rewrites.py), the
order and the reuse of buffers (buffers.py), and the Python source (pysource.py); every
rewrite keeps the numbers bit-for-bit those of the reference schedule.

Bit-for-bit needs more than exact arithmetic: a NumPy sum over an axis (and so
softmax, mean, var, ...) adds in an order that follows the memory layout, and a
result written into an input's buffer (`out=`) takes that buffer's layout, where
a new array takes the one NumPy picks from all the inputs. `tanh(W.T) * C`
written into the (column-ordered) buffer of `tanh(W.T)` then gave sums over its
axes that differed from the reference's in the last bit. So a result is written
into a buffer only when every array the operation reads is known to be C-ordered
(the layout NumPy then gives a new array too); leaves are made C-ordered for both
schedules, so that known means something.
"""
from __future__ import annotations

import math

import numpy as np

from .arrays import is_c_ordered
from .buffers import is_fresh, plan_inplace, reorder
from .graph import is_fixed_const
from .ops import REGISTRY, concrete
from .program_ir import _BINARY, _MASKS, _PURE, _Ins
from .pysource import generate
from .rewrites import optimise


class _Program:
    """A plan's steps as instructions, rewritten, ordered and emitted as Python (`fn`)."""

    def __init__(self, plan, optimize: bool):  # plan: a plan.Plan (not imported: plan.py imports this module)
        g = plan.graph
        self.plan = plan
        self.shape: dict[str, tuple | None] = {}
        self.phase: dict[str, str] = {}
        self.consts: dict[str, object] = {}
        self.leaves: list[str] = []
        for n in plan.slot:
            data = g._node[n]
            self.shape[n] = concrete(data["shape"])
            self.phase[n] = data.get("phase", "forward")
        for name, _ in plan.leaves:
            data = g._node[name]
            foldable = is_fixed_const(data) and data.get("value") is not None
            if optimize and foldable:
                self.consts[name] = data["value"]
            else:
                self.leaves.append(name)
        self.targets = list(plan.targets)
        names = [None] * len(plan.slot)
        for n, s in plan.slot.items():
            names[s] = n
        self.instrs = [_Ins(op_id, g._node[op_id]["op"], fn, [names[s] for s in ins],
                            g._node[op_id]["out"], plan.static_args(op_id))
                       for op_id, (fn, ins, _) in zip(plan.step_ops, plan.steps)]
        self.alias: dict[str, str] = {}
        self.bools: set[str] = set()
        self.scalar = False
        self._fresh_count = 0
        if optimize:
            optimise(self)
        else:
            for ins in self.instrs:
                ins.form = "call"
        self.scalar = optimize and self._all_scalar()
        self._assign_forms()
        if optimize and not self.scalar:
            reorder(self)
            plan_inplace(self)
        self.errstate = not self.scalar or any(ins.form not in _PURE for ins in self.instrs)
        self.code, self.namespace = generate(self, instrument=False)
        self.fn = self.namespace["_run"]

    def fill(self, leaf_values) -> list:
        get = leaf_values.get
        values = [get(name) for name in self.leaves]
        for v in values:  # a loop, not any(...): this runs on every call
            if v is None or not is_c_ordered(v):
                values = [self.plan.leaf_value(leaf_values, name) for name in self.leaves]
                break
        if self.scalar:
            values = [float(v) for v in values]
        return values

    def resolve(self, v):
        while v in self.alias:
            v = self.alias[v]
        return v

    def _all_scalar(self) -> bool:
        if not self.instrs:
            return False
        used = {v for ins in self.instrs for v in ins.ins} | {ins.out for ins in self.instrs}
        used |= set(self.leaves) | set(self.targets)
        return all(self.shape.get(v) == () for v in used if v not in self.consts) and \
            all(np.ndim(self.consts[v]) == 0 for v in used if v in self.consts)

    def new_var(self, shape, phase):
        self._fresh_count += 1
        v = f"~{self._fresh_count}"
        self.shape[v] = shape
        self.phase[v] = phase
        return v

    def _assign_forms(self):
        for ins in self.instrs:
            if ins.form is None:
                ins.form, ins.arg = self._form(ins)

    def _form(self, ins):
        op, kw = ins.op, ins.kw
        n = len(ins.ins)
        if op in _BINARY and n == 2:
            return "binary", op
        if op == "neg":
            return "neg", None
        if op == "pow" and n == 2 and ins.ins[1] in self.consts and np.ndim(self.consts[ins.ins[1]]) == 0 \
                and float(self.consts[ins.ins[1]]) == 2.0:
            ins.ins = ins.ins[:1]
            return "square", None
        if op == "square":
            return "square", None
        if op == "relu":
            return "relu", None
        if op in _MASKS and not (op == "relu'" and kw):
            return "mask", op
        if op == "abs":
            return "abs", None
        if op == "matmul" and not self.scalar:
            return "matmul", None
        fwd = REGISTRY[op].forward if op in REGISTRY else None
        if isinstance(fwd, np.ufunc) and not kw and fwd.nin == n:
            return "ufunc", fwd.__name__
        if op == "transpose" and kw.get("axes") is None and not self.scalar:
            return "T", None
        if op == "sum" and not self.scalar:
            return "sum", None
        if op == "sqnorm" and not self.scalar:
            return "sqnorm", None
        return "call", None

    def instrumented(self):
        code, ns = generate(self, instrument=True)
        return ns["_run"], ns["_T"], ns["_B"]

    def memory_report(self) -> dict:
        nbytes = {}
        owned = set()
        for ins in self.instrs:
            shape = self.shape.get(ins.out)
            size = 8 * math.prod(shape) if shape is not None else 0
            if ins.out in self.bools:
                size //= 8
            nbytes[ins.out] = size
            if is_fresh(self, ins) and ins.inplace is None:
                owned.add(ins.out)
        first_backward = next((k for k, ins in enumerate(self.instrs) if self.phase.get(ins.out) == "backward"),
                              len(self.instrs))
        last: dict[str, int] = {}
        producer = {}
        for k, ins in enumerate(self.instrs):
            producer[ins.out] = ins.op_id
            for v in ins.ins:
                last[v] = k
        for t in self.targets:
            last[t] = len(self.instrs)
        held = []
        for k, ins in enumerate(self.instrs[:first_backward]):
            v = ins.out
            if v in owned and last.get(v, -1) >= first_backward:
                reader = self.instrs[last[v]].op_id if last[v] < len(self.instrs) else "(result)"
                held.append((v, nbytes[v], ins.op_id, reader))
        live, peak = 0, 0
        frees: dict[int, list] = {}
        for v, k in last.items():
            frees.setdefault(k, []).append(v)
        for k, ins in enumerate(self.instrs):
            if ins.out in owned:
                live += nbytes[ins.out]
            peak = max(peak, live)
            for v in frees.get(k, ()):
                if v in owned:
                    live -= nbytes[v]
        return {"held": held, "held_bytes": sum(h[1] for h in held), "static_peak_bytes": peak}

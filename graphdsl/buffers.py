"""A compiled program's order and buffers: each value made just before it is first needed,
and an elementwise result written into an input's buffer when that input dies there.

A buffer is reused only when every array the operation reads is known to be C-ordered
(see codegen.py: a sum's bits follow the memory layout).
"""
from __future__ import annotations

import math

from .arrays import is_c_ordered
from .ops import REGISTRY
from .program_ir import _FRESH, _VIEWS


def is_fresh(prog, ins) -> bool:
    """Does the instruction return a new array that nothing else refers to?"""
    shape = prog.shape.get(ins.out)
    if not shape or ins.form in ("reshape", "T") or ins.out in prog.bools:
        return False
    if ins.form in ("binary", "neg", "square", "relu", "mask", "abs", "ufunc", "matmul", "sum", "sqnorm",
                    "tanh_grad", "sum_to"):
        return True
    opdef = REGISTRY.get(ins.op)
    return ins.op in _FRESH or (opdef is not None and opdef.elementwise and ins.op not in ("identity",
                                                                                         "stop_gradient"))


def reorder(prog):
    """Each instruction as late as its readers allow: a value is made just before it is first needed."""
    if len(prog.instrs) < 2:
        return
    producer = {ins.out: k for k, ins in enumerate(prog.instrs)}
    order, done = [], [False] * len(prog.instrs)
    needed = [prog.resolve(t) for t in prog.targets]
    for t in needed:
        root = producer.get(t)
        if root is None or done[root]:
            continue
        stack = [(root, 0)]
        while stack:
            k, i = stack.pop()
            if done[k]:
                continue
            ins = prog.instrs[k]
            while i < len(ins.ins):
                p = producer.get(ins.ins[i])
                i += 1
                if p is not None and not done[p]:
                    stack.append((k, i))
                    stack.append((p, 0))
                    break
            else:
                done[k] = True
                order.append(ins)
    prog.instrs = order


def plan_inplace(prog):
    """Write an elementwise result into an input's buffer when that input dies there."""
    targets = set(prog.targets)
    roots: dict[str, tuple] = {}  # value -> buffers it may share memory with
    for v in prog.leaves:
        roots[v] = ()
    parent: dict[str, str] = {}

    def find(r):
        while r in parent:
            r = parent[r]
        return r

    for ins in prog.instrs:
        if is_fresh(prog, ins):
            roots[ins.out] = (ins.out,)
        else:
            roots[ins.out] = tuple(dict.fromkeys(r for v in ins.ins for r in roots.get(v, ())))
    last: dict[str, float] = {}
    for k, ins in enumerate(prog.instrs):
        for v in ins.ins:
            for r in roots.get(v, ()):
                last[r] = k
    for t in targets:
        for r in roots.get(t, ()):
            last[r] = math.inf
    c_ordered = c_ordered_values(prog)
    for k, ins in enumerate(prog.instrs):
        if ins.form not in ("binary", "neg", "square", "relu", "abs", "ufunc", "tanh_grad") \
                or ins.out in prog.bools:
            continue
        if not all(v in c_ordered for v in ins.ins):
            continue  # the new array's layout could differ from the buffer's, and with it later sums
        shape = prog.shape.get(ins.out)
        if not shape or prog.scalar:
            continue
        for pos, v in enumerate(ins.ins):
            rs = roots.get(v, ())
            if v in prog.bools or v in prog.consts or len(rs) != 1 or rs[0] != v or \
                    prog.shape.get(v) != shape:
                continue
            r = find(v)
            if last.get(r) != k:
                continue
            ins.inplace = pos
            parent[ins.out] = r
            last[r] = last.get(ins.out, k)
            break


def c_ordered_values(prog) -> set:
    """Values known to be C-ordered arrays (or scalars): leaves and constants (made so),
    results of non-view operations on C-ordered values (NumPy keeps the inputs' order), and
    matmul results of rank 3 or less, whatever their inputs' order (`W.T @ g`): NumPy lays
    a matmul's two matrix axes out in C order and its batch axes in its inputs' order, and
    one batch axis has only one order (tests/test_plan.py checks every input layout)."""
    known = set(prog.leaves) | {v for v, c in prog.consts.items() if is_c_ordered(c)}
    for ins in prog.instrs:  # a 1-D view is harmless: a new 1-D array has only one order
        rank = len(prog.shape.get(ins.out) or ())
        view = ins.op in _VIEWS and rank > 1
        if not view and all(v in known for v in ins.ins) or ins.form == "matmul" and rank <= 3:
            known.add(ins.out)
    return known

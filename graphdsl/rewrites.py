"""Exact rewrites of a compiled program's instructions (codegen._Program), before it is emitted.

Each keeps the numbers bit for bit those of the reference schedule (see codegen.py):
no-ops become aliases, constants fold, broadcasts are left to the elementwise ops that
read them, s * (c * X) with c a power of two reassociates, 0/1 masks stay booleans,
tanh' reads tanh, constant indexing and sum_to are inlined, dead code goes.
"""
from __future__ import annotations

import math

import numpy as np

from .ops import REGISTRY
from .program_ir import _MASKS, _Ins, _is_pow2

FOLD_LIMIT = 64  # constant-fold results of at most this many elements


def optimise(prog):
    targets = set(prog.targets)
    kept = []
    for ins in prog.instrs:
        ins.ins = [prog.resolve(v) for v in ins.ins]
        if ins.out not in targets and _is_noop(prog, ins):
            prog.alias[ins.out] = ins.ins[0]
            continue
        if ins.ins and ins.out not in targets and all(v in prog.consts for v in ins.ins) \
                and ins.op not in ("unreduce", "broadcast_to"):  # left to their readers instead
            with np.errstate(all="ignore"):
                value = ins.fn(*[prog.consts[v] for v in ins.ins])
            if np.size(value) <= FOLD_LIMIT:
                prog.consts[ins.out] = value
                continue
        kept.append(ins)
    prog.instrs = kept
    prog.targets = [prog.resolve(t) for t in prog.targets]
    _elide_broadcasts(prog)
    _reassociate_pow2(prog)
    _masks_as_bools(prog)
    _tanh_grads_from_values(prog)
    _static_forms(prog)
    _dead_code(prog)


def _tanh_grads_from_values(prog):
    """tanh'(x) is 1 - tanh(x)**2: when tanh(x) is computed anyway, read it instead of computing it again.

    Exact: np.tanh is deterministic, and `** 2` is np.square's bits. The backward pass
    then holds tanh(x), which it reads anyway for the next weight's gradient, not x.
    """
    made = {}  # x -> tanh(x), for the tanh computed so far: a tanh' may come first (grad inside the program)
    for ins in prog.instrs:
        if ins.op == "tanh" and len(ins.ins) == 1:
            made.setdefault(ins.ins[0], ins.out)
        elif ins.op == "tanh'" and len(ins.ins) == 1 and ins.ins[0] in made:
            ins.ins, ins.form = [made[ins.ins[0]]], "tanh_grad"


def _static_forms(prog):
    """Indexing by a constant key and sum_to with shapes known now: inline, no function call.

    The same NumPy calls as the ops' forward functions (`x[key]`; `sum_to`'s
    np.sum over the broadcast axes with keepdims, then its reshape).
    """
    for ins in prog.instrs:
        if ins.op == "index" and len(ins.ins) == 1 and set(ins.kw) <= {"key", "like"}:
            ins.form, ins.arg = "index", ins.kw.get("key", ())
        elif ins.op == "sum_to" and len(ins.ins) == 1:
            have, like = prog.shape.get(ins.ins[0]), prog.shape.get(ins.out)
            if have is None or like is None or have == like:
                continue
            lead = len(have) - len(like)
            axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(like)
                                              if s == 1 and have[lead + i] != 1)
            kept = tuple(1 if i in axes else s for i, s in enumerate(have))
            ins.form, ins.arg = "sum_to", (axes, None if kept == like else like)


def _is_noop(prog, ins) -> bool:
    op = ins.op
    if op in ("identity", "stop_gradient"):
        return True
    if len(ins.ins) != 1:
        return False
    src, dst = prog.shape.get(ins.ins[0]), prog.shape.get(ins.out)
    if src is None or dst is None:
        return False
    if op in ("sum_to", "broadcast_to", "reshape", "expand_dims", "squeeze") or \
            (op == "unreduce" and not ins.kw.get("mean")):
        return src == dst
    if op == "transpose":
        return len(src) <= 1 and src == dst
    # max/min of a number is that number; not sum or mean: NumPy adds -0.0 to its identity 0.0, so
    # np.sum(-0.0) is +0.0, and the compiled program must give the reference's signs of zero too.
    return op in ("max", "min") and src == () and dst == ()


def _users(prog):
    users: dict[str, list[_Ins]] = {}
    for ins in prog.instrs:
        for v in ins.ins:
            users.setdefault(v, []).append(ins)
    return users


def _elide_broadcasts(prog):
    """A broadcast read only by broadcasting elementwise ops is left to those ops."""
    users = _users(prog)
    targets = set(prog.targets)
    out = []
    for ins in prog.instrs:
        if ins.op in ("unreduce", "broadcast_to") and ins.out not in targets:
            small = _unbroadcast_shape(prog, ins)
            readers = users.get(ins.out, [])
            if small is not None and readers and all(_reads_broadcast(prog, r, ins.out, small) for r in readers):
                src = ins.ins[0]
                if ins.kw.get("mean"):
                    count = float(max(1, math.prod(ins.kw["like"][a] for a in _axes(ins))))
                    mid = prog.new_var(prog.shape.get(src), prog.phase[ins.out])
                    out.append(_Ins(ins.op_id, "div", None, [src, _const(prog, count)], mid, {}))
                    src = mid
                if prog.shape.get(src) not in ((), small):
                    mid = prog.new_var(small, prog.phase[ins.out])
                    out.append(_Ins(ins.op_id, "reshape", None, [src], mid, {}, "reshape", small))
                    src = mid
                for r in readers:
                    r.ins = [src if v == ins.out else v for v in r.ins]
                prog.shape[ins.out] = None
                continue
        out.append(ins)
    prog.instrs = out


def _axes(ins):
    like = ins.kw["like"]
    axis = ins.kw.get("axis")
    if axis is None:
        return tuple(range(len(like)))
    items = axis if isinstance(axis, (list, tuple)) else [axis]
    return tuple(sorted({int(a) % len(like) for a in items}))


def _unbroadcast_shape(prog, ins):
    """The shape the broadcast input has with the reduced axes kept as 1s (None: leave it)."""
    src = prog.shape.get(ins.ins[0])
    like = ins.kw.get("like") if ins.kw.get("like") is not None else ins.kw.get("shape")
    if src is None or like is None:
        return None
    like = tuple(int(s) for s in like)
    if ins.op == "broadcast_to" or ins.kw.get("keepdims") or src == ():
        return src
    axes = _axes(ins)
    small = tuple(1 if i in axes else s for i, s in enumerate(like))
    return small if math.prod(small) == math.prod(src) else None


def _reads_broadcast(prog, reader, v, small) -> bool:
    opdef = REGISTRY.get(reader.op)
    if opdef is None or not opdef.elementwise or reader.op in ("identity", "stop_gradient") or \
            len(reader.ins) < 2 or reader.form is not None:
        return False
    shapes = [small if u == v else prog.shape.get(u) for u in reader.ins]
    if any(s is None for s in shapes) or prog.shape.get(reader.out) is None:
        return False
    try:
        return tuple(np.broadcast_shapes(*shapes)) == prog.shape[reader.out]
    except ValueError:
        return False


def _const(prog, value):
    v = prog.new_var((), "backward")
    prog.consts[v] = np.float64(value)
    return v


def _reassociate_pow2(prog):
    """s * (c * X) with scalars s and c = ±2^k becomes (s * c) * X: one full-size product fewer."""
    users = _users(prog)
    producer = {ins.out: ins for ins in prog.instrs}
    targets = set(prog.targets)
    out = []
    for ins in prog.instrs:
        if ins.op == "mul" and ins.form is None and len(ins.ins) == 2:
            for k in (0, 1):
                s, t = ins.ins[1 - k], ins.ins[k]
                inner = producer.get(t)
                if inner is None or inner.op != "mul" or inner.form is not None or t in targets \
                        or len(users.get(t, [])) != 1 or prog.shape.get(s) != () or s == t:
                    continue
                a, b = inner.ins
                c, x = (a, b) if a in prog.consts else (b, a)
                if c not in prog.consts or not _is_pow2(prog.consts[c]) or x in prog.consts or \
                        prog.shape.get(x) != prog.shape.get(ins.out):
                    continue
                sc = prog.new_var((), prog.phase[ins.out])
                if s in prog.consts:
                    with np.errstate(all="ignore"):
                        prog.consts[sc] = np.multiply(prog.consts[s], prog.consts[c])
                else:
                    out.append(_Ins(ins.op_id, "mul", None, [s, c], sc, {}))
                ins.ins = [sc, x]
                break
        out.append(ins)
    prog.instrs = out


def _masks_as_bools(prog):
    """A 0/1 mask read only as a factor of products is kept as booleans (x * True is x)."""
    users = _users(prog)
    targets = set(prog.targets)
    for ins in prog.instrs:
        if ins.op not in _MASKS or ins.out in targets or (ins.op == "relu'" and ins.kw):
            continue
        readers = users.get(ins.out, [])
        ok = bool(readers)
        for r in readers:
            other = [u for u in r.ins if u != ins.out]
            if r.op != "mul" or r.form is not None or len(other) != 1 or other[0] in prog.bools:
                ok = False
                break
        if ok:
            prog.bools.add(ins.out)


def _dead_code(prog):
    live = set(prog.targets)
    kept = []
    for ins in reversed(prog.instrs):
        if ins.out in live:
            live.update(ins.ins)
            kept.append(ins)
    prog.instrs = kept[::-1]

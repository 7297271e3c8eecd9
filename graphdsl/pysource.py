"""The Python source of a compiled program (codegen._Program), compiled with `exec`.

Straight-line code in functions of at most CHUNK instructions, values in locals, those
read across functions in one shared list; `del` as soon as a value's last reader ran.
`instrument=True` gives the twin that times every instruction (`grad --profile`).
"""
from __future__ import annotations

import math
import time

import numpy as np

from .program_ir import _BINARY, _MASKS, _np_axis

CHUNK = 1000  # instructions per generated function


def generate(prog, instrument: bool):
    ns = {"np": np, "_float64": np.float64, "_add_reduce": np.add.reduce, "_div": _scalar_div,
          "_pc": time.perf_counter}
    names: dict[str, str] = {}
    counter = [0]

    def const_expr(v):
        value = prog.consts[v]
        if prog.scalar and np.ndim(value) == 0 and math.isfinite(float(value)):
            return repr(float(value))
        if v not in names:
            names[v] = f"c{len(names)}"
            # A scalar constant as a NumPy scalar, not a 0-d array: the same IEEE arithmetic,
            # without a ufunc call for every scalar operation (lam / 2, 1 / b, ...).
            ns[names[v]] = value if np.ndim(value) else float(value) if prog.scalar else np.float64(value)
        return names[v]

    local: dict[str, str] = {}

    def var(v):
        if v not in local:
            counter[0] += 1
            local[v] = f"v{counter[0]}"
        return local[v]

    instrs = prog.instrs
    nchunks = max(1, -(-len(instrs) // CHUNK))
    chunk_of = {}
    for k, ins in enumerate(instrs):
        chunk_of[ins.out] = k // CHUNK
    exit_chunk = nchunks - 1
    # last use (instruction index) of every non-constant value; targets live to the end
    last: dict[str, float] = {}
    uses_in: dict[str, set] = {}
    for k, ins in enumerate(instrs):
        for v in ins.ins:
            if v not in prog.consts:
                last[v] = k
                uses_in.setdefault(v, set()).add(k // CHUNK)
    for t in prog.targets:
        if t not in prog.consts:
            last[t] = math.inf
            uses_in.setdefault(t, set()).add(exit_chunk)
    cross: dict[str, int] = {}  # value -> index in the shared list S
    for i, v in enumerate(prog.leaves):
        cross[v] = i
    for ins in instrs:
        v = ins.out
        if any(c != chunk_of[v] for c in uses_in.get(v, ())):
            cross[v] = len(cross)
    nslots = len(cross)
    frees_at: dict[int, list] = {}
    for v, k in last.items():
        if k != math.inf:
            frees_at.setdefault(int(k), []).append(v)
    if instrument:
        ns["_T"] = [math.inf] * len(instrs)
        ns["_B"] = [0] * len(instrs)
    chunks = []
    for c in range(nchunks):
        lines = [f"def _c{c}(S):"]
        loaded = set()
        for k in range(c * CHUNK, min(len(instrs), (c + 1) * CHUNK)):
            ins = instrs[k]
            args = []
            for v in ins.ins:
                if v in prog.consts:
                    args.append(const_expr(v))
                    continue
                if v not in loaded and (v in cross and chunk_of.get(v) != c):
                    # a 0-d leaf read as a NumPy scalar (see const_expr); `[()]` keeps its value
                    scalar_leaf = not prog.scalar and cross[v] < len(prog.leaves) and prog.shape.get(v) == ()
                    lines.append(f"    {var(v)} = S[{cross[v]}]{'[()]' if scalar_leaf else ''}")
                    loaded.add(v)
                args.append(var(v))
            expr = _expr(prog, ins, args, ns)
            target = var(ins.out)
            if instrument:
                lines.append("    _t = _pc()")
            lines.append(f"    {target} = {expr}")
            if instrument:
                lines.append("    _t = _pc() - _t")
                lines.append(f"    if _t < _T[{k}]: _T[{k}] = _t")
                lines.append(f"    _B[{k}] = getattr({target}, 'nbytes', 8)")
            loaded.add(ins.out)
            if ins.out in cross:
                lines.append(f"    S[{cross[ins.out]}] = {target}")
            dead = frees_at.get(k)
            if dead and not prog.scalar:
                lines.append("    del " + ", ".join(var(v) for v in dead))
                for v in dead:
                    loaded.discard(v)
                    if v in cross:
                        lines.append(f"    S[{cross[v]}] = None")
        if c == exit_chunk:
            outs = []
            for t in prog.targets:
                if t in prog.consts:
                    outs.append(const_expr(t))
                    continue
                if t not in loaded:
                    lines.append(f"    {var(t)} = S[{cross[t]}]")
                    loaded.add(t)
                outs.append(var(t))
            lines.append(f"    return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
        elif len(lines) == 1:
            lines.append("    pass")
        chunks.append("\n".join(lines))
    body = chunks
    if nchunks == 1:
        body.append("_run = _c0")
    else:
        calls = "\n".join(f"    _c{c}(S)" for c in range(nchunks - 1))
        body.append(f"def _run(L):\n    S = L + [None] * {nslots - len(prog.leaves)}\n{calls}\n"
                    f"    return _c{nchunks - 1}(S)")
    code = "\n\n".join(body) + "\n"
    exec(compile(code, "<graphdsl plan>", "exec"), ns)
    return code, ns


def _expr(prog, ins, a, ns) -> str:
    """The Python expression of one instruction, by its form (see codegen._form); `a` names its arguments."""
    out = f", out={a[ins.inplace]}" if ins.inplace is not None else ""
    emit = _FORMS.get(ins.form)
    if emit is not None:
        return emit(prog, ins, a, out)
    return (_index if ins.form == "index" else _call)(ins, a, ns)  # these bind a value in the namespace


def _binary(prog, ins, a, out):
    sym, ufunc = _BINARY[ins.op if ins.op in _BINARY else ins.arg]
    if prog.scalar and sym == "/":
        return f"({a[0]} / {a[1]} if {a[1]} else _div({a[0]}, {a[1]}))"
    if out:
        return f"{ufunc}({a[0]}, {a[1]}{out})"
    return f"({a[0]} {sym} {a[1]})"


def _relu(prog, ins, a, out):
    if prog.scalar:  # np.maximum(x, 0.0): x if x > 0, +0.0 for zeros and negatives, NaN stays NaN
        return f"({a[0]} if {a[0]} > 0.0 else (0.0 if {a[0]} <= 0.0 else {a[0]}))"
    return f"np.maximum({a[0]}, 0.0{out})"


def _mask(prog, ins, a, out):
    sym = _MASKS[ins.arg]
    rhs = "0" if ins.op == "relu'" else a[1]
    if prog.scalar:
        return f"(1.0 if {a[0]} {sym} {rhs} else 0.0)"
    if ins.out in prog.bools:
        return f"({a[0]} {sym} {rhs})"
    return f"({a[0]} {sym} {rhs}).astype(_float64)"


def _sum_to(prog, ins, a, out):
    axes, like = ins.arg
    reshape = f".reshape({like!r})" if like is not None else ""
    return f"_add_reduce({a[0]}, {axes!r}, None, None, True){reshape}"


def _reduce(summand):
    def emit(prog, ins, a, out):
        return f"_add_reduce({summand(a[0])}, {_np_axis(ins.kw.get('axis'))!r}, None, None, " \
               f"{bool(ins.kw.get('keepdims', False))})"
    return emit


def _index(ins, a, ns):
    """x[key]: the key (a tuple of ints and slices) bound in the program's namespace."""
    ns["_nk"] = ns.get("_nk", 0) + 1
    ns[f"_k{ns['_nk']}"] = ins.arg
    return f"{a[0]}[_k{ns['_nk']}]"


def _call(ins, a, ns):
    """An op with no form of its own: its NumPy forward, bound in the program's namespace."""
    ns["_nf"] = ns.get("_nf", 0) + 1
    name = f"_f{ns['_nf']}"
    ns[name] = ins.fn
    return f"{name}({', '.join(a)})"


_FORMS = {  # form -> (prog, ins, argument names, ", out=..." or "") -> expression
    "binary": _binary,
    "neg": lambda prog, ins, a, out: f"np.negative({a[0]}{out})" if out else f"(-{a[0]})",
    "square": lambda prog, ins, a, out: f"({a[0]} * {a[0]})" if prog.scalar else f"np.square({a[0]}{out})",
    "relu": _relu,
    "mask": _mask,
    "abs": lambda prog, ins, a, out: f"abs({a[0]})" if prog.scalar else f"np.absolute({a[0]}{out})",
    "ufunc": lambda prog, ins, a, out: f"np.{ins.arg}({', '.join(a)}{out})",
    "matmul": lambda prog, ins, a, out: f"({a[0]} @ {a[1]})",
    "tanh_grad": lambda prog, ins, a, out: f"np.subtract(1.0, np.square({a[0]}){out})",
    "sum_to": _sum_to,
    "T": lambda prog, ins, a, out: f"{a[0]}.T",
    "reshape": lambda prog, ins, a, out: f"{a[0]}.reshape({ins.arg!r})",
    "sum": _reduce(lambda x: x),
    "sqnorm": _reduce(lambda x: f"{x} * {x}"),
}


def _scalar_div(a, b):
    with np.errstate(all="ignore"):
        return np.divide(np.float64(a), np.float64(b))

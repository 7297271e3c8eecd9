"""The compiled program of a Plan: exact rewrites of the reference schedule, emitted as Python.

See plan.py for what the two schedules are. This module holds the rewriting
(`_Program._optimise`) and the code generation (`_Program._generate`); every
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
import time

import numpy as np

from .diagnostics import Diagnostic, GraphDSLError
from .arrays import is_c_ordered
from .graph import is_fixed_const
from .ops import REGISTRY, concrete

CHUNK = 1000  # instructions per generated function
FOLD_LIMIT = 64  # constant-fold results of at most this many elements

_BINARY = {"add": ("+", "np.add"), "sub": ("-", "np.subtract"), "mul": ("*", "np.multiply"),
           "div": ("/", "np.divide")}
_MASKS = {"relu'": ">", "gt": ">", "ge": ">=", "lt": "<", "le": "<=", "eq": "==", "ne": "!="}
_PURE = ("binary", "neg", "square", "relu", "mask", "abs")  # forms a scalar program runs on Python floats
_REDUCTIONS = ("sum", "mean", "max", "min", "sqnorm", "norm", "logsumexp", "var")
# ops whose result is a new array (never a view of an input) when it has at least one axis
_FRESH = {"matmul", "outer", "softmax", "log_softmax", "index_grad", *_REDUCTIONS}


# ops whose result may be a view that is not C-ordered (a transposed, sliced or broadcast array)
_VIEWS = {"transpose", "index", "broadcast_to", "unreduce", "opaque"}


# ---- the compiled program ---------------------------------------------------------------

class _Ins:
    """One instruction: out = form(ins). `form` says how to emit it; `fn` is the reference forward."""

    __slots__ = ("op_id", "op", "fn", "ins", "out", "kw", "form", "arg", "inplace")

    def __init__(self, op_id, op, fn, ins, out, kw, form=None, arg=None):
        self.op_id, self.op, self.fn, self.ins, self.out, self.kw = op_id, op, fn, list(ins), out, kw
        self.form, self.arg, self.inplace = form, arg, None


def _np_axis(axis):
    return None if axis is None else tuple(int(a) for a in axis) if isinstance(axis, (list, tuple)) else int(axis)


def _is_pow2(c) -> bool:
    if np.ndim(c) != 0:
        return False
    c = float(c)
    return c != 0.0 and math.isfinite(c) and abs(math.frexp(c)[0]) == 0.5


class _Program:
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
                            g._node[op_id]["out"], plan._bound[op_id])
                       for op_id, (fn, ins, _) in zip(plan.step_ops, plan.steps)]
        self.alias: dict[str, str] = {}
        self.bools: set[str] = set()
        self.scalar = False
        self._fresh_count = 0
        if optimize:
            self._optimise()
        else:
            for ins in self.instrs:
                ins.form = "call"
        self.scalar = optimize and self._all_scalar()
        self._assign_forms()
        if optimize and not self.scalar:
            self._reorder()
            self._plan_inplace()
        self.errstate = not self.scalar or any(ins.form not in _PURE for ins in self.instrs)
        self.code, self.namespace = self._generate(instrument=False)
        self.fn = self.namespace["_run"]

    # ---- filling leaves ---------------------------------------------------------------
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

    # ---- rewrites (each exact) --------------------------------------------------------------
    def _resolve(self, v):
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

    def _new_var(self, shape, phase):
        self._fresh_count += 1
        v = f"~{self._fresh_count}"
        self.shape[v] = shape
        self.phase[v] = phase
        return v

    def _optimise(self):
        targets = set(self.targets)
        kept = []
        for ins in self.instrs:
            ins.ins = [self._resolve(v) for v in ins.ins]
            if ins.out not in targets and self._is_noop(ins):
                self.alias[ins.out] = ins.ins[0]
                continue
            if ins.ins and ins.out not in targets and all(v in self.consts for v in ins.ins) \
                    and ins.op not in ("unreduce", "broadcast_to"):  # left to their readers instead
                with np.errstate(all="ignore"):
                    value = ins.fn(*[self.consts[v] for v in ins.ins])
                if np.size(value) <= FOLD_LIMIT:
                    self.consts[ins.out] = value
                    continue
            kept.append(ins)
        self.instrs = kept
        self.targets = [self._resolve(t) for t in self.targets]
        self._elide_broadcasts()
        self._reassociate_pow2()
        self._masks_as_bools()
        self._tanh_grads_from_values()
        self._static_forms()
        self._dead_code()

    def _tanh_grads_from_values(self):
        """tanh'(x) is 1 - tanh(x)**2: when tanh(x) is computed anyway, read it instead of computing it again.

        Exact: np.tanh is deterministic, and `** 2` is np.square's bits. The backward pass
        then holds tanh(x), which it reads anyway for the next weight's gradient, not x.
        """
        made = {}  # x -> tanh(x), for the tanh computed so far: a tanh' may come first (grad inside the program)
        for ins in self.instrs:
            if ins.op == "tanh" and len(ins.ins) == 1:
                made.setdefault(ins.ins[0], ins.out)
            elif ins.op == "tanh'" and len(ins.ins) == 1 and ins.ins[0] in made:
                ins.ins, ins.form = [made[ins.ins[0]]], "tanh_grad"

    def _static_forms(self):
        """Indexing by a constant key and sum_to with shapes known now: inline, no function call.

        The same NumPy calls as the ops' forward functions (`x[key]`; `sum_to`'s
        np.sum over the broadcast axes with keepdims, then its reshape).
        """
        for ins in self.instrs:
            if ins.op == "index" and len(ins.ins) == 1 and set(ins.kw) <= {"key", "like"}:
                ins.form, ins.arg = "index", ins.kw.get("key", ())
            elif ins.op == "sum_to" and len(ins.ins) == 1:
                have, like = self.shape.get(ins.ins[0]), self.shape.get(ins.out)
                if have is None or like is None or have == like:
                    continue
                lead = len(have) - len(like)
                axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(like)
                                                  if s == 1 and have[lead + i] != 1)
                kept = tuple(1 if i in axes else s for i, s in enumerate(have))
                ins.form, ins.arg = "sum_to", (axes, None if kept == like else like)

    def _is_noop(self, ins) -> bool:
        op = ins.op
        if op in ("identity", "stop_gradient"):
            return True
        if len(ins.ins) != 1:
            return False
        src, dst = self.shape.get(ins.ins[0]), self.shape.get(ins.out)
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

    def _users(self):
        users: dict[str, list[_Ins]] = {}
        for ins in self.instrs:
            for v in ins.ins:
                users.setdefault(v, []).append(ins)
        return users

    def _elide_broadcasts(self):
        """A broadcast read only by broadcasting elementwise ops is left to those ops."""
        users = self._users()
        targets = set(self.targets)
        out = []
        for ins in self.instrs:
            if ins.op in ("unreduce", "broadcast_to") and ins.out not in targets:
                small = self._unbroadcast_shape(ins)
                readers = users.get(ins.out, [])
                if small is not None and readers and all(self._reads_broadcast(r, ins.out, small) for r in readers):
                    src = ins.ins[0]
                    if ins.kw.get("mean"):
                        count = float(max(1, math.prod(ins.kw["like"][a] for a in self._axes(ins))))
                        mid = self._new_var(self.shape.get(src), self.phase[ins.out])
                        out.append(_Ins(ins.op_id, "div", None, [src, self._const(count)], mid, {}))
                        src = mid
                    if self.shape.get(src) not in ((), small):
                        mid = self._new_var(small, self.phase[ins.out])
                        out.append(_Ins(ins.op_id, "reshape", None, [src], mid, {}, "reshape", small))
                        src = mid
                    for r in readers:
                        r.ins = [src if v == ins.out else v for v in r.ins]
                    self.shape[ins.out] = None
                    continue
            out.append(ins)
        self.instrs = out

    def _axes(self, ins):
        like = ins.kw["like"]
        axis = ins.kw.get("axis")
        if axis is None:
            return tuple(range(len(like)))
        items = axis if isinstance(axis, (list, tuple)) else [axis]
        return tuple(sorted({int(a) % len(like) for a in items}))

    def _unbroadcast_shape(self, ins):
        """The shape the broadcast input has with the reduced axes kept as 1s (None: leave it)."""
        src = self.shape.get(ins.ins[0])
        like = ins.kw.get("like") if ins.kw.get("like") is not None else ins.kw.get("shape")
        if src is None or like is None:
            return None
        like = tuple(int(s) for s in like)
        if ins.op == "broadcast_to" or ins.kw.get("keepdims") or src == ():
            return src
        axes = self._axes(ins)
        small = tuple(1 if i in axes else s for i, s in enumerate(like))
        return small if math.prod(small) == math.prod(src) else None

    def _reads_broadcast(self, reader, v, small) -> bool:
        opdef = REGISTRY.get(reader.op)
        if opdef is None or not opdef.elementwise or reader.op in ("identity", "stop_gradient") or \
                len(reader.ins) < 2 or reader.form is not None:
            return False
        shapes = [small if u == v else self.shape.get(u) for u in reader.ins]
        if any(s is None for s in shapes) or self.shape.get(reader.out) is None:
            return False
        try:
            return tuple(np.broadcast_shapes(*shapes)) == self.shape[reader.out]
        except ValueError:
            return False

    def _const(self, value):
        v = self._new_var((), "backward")
        self.consts[v] = np.float64(value)
        return v

    def _reassociate_pow2(self):
        """s * (c * X) with scalars s and c = ±2^k becomes (s * c) * X: one full-size product fewer."""
        users = self._users()
        producer = {ins.out: ins for ins in self.instrs}
        targets = set(self.targets)
        out = []
        for ins in self.instrs:
            if ins.op == "mul" and ins.form is None and len(ins.ins) == 2:
                for k in (0, 1):
                    s, t = ins.ins[1 - k], ins.ins[k]
                    inner = producer.get(t)
                    if inner is None or inner.op != "mul" or inner.form is not None or t in targets \
                            or len(users.get(t, [])) != 1 or self.shape.get(s) != () or s == t:
                        continue
                    a, b = inner.ins
                    c, x = (a, b) if a in self.consts else (b, a)
                    if c not in self.consts or not _is_pow2(self.consts[c]) or x in self.consts or \
                            self.shape.get(x) != self.shape.get(ins.out):
                        continue
                    sc = self._new_var((), self.phase[ins.out])
                    if s in self.consts:
                        with np.errstate(all="ignore"):
                            self.consts[sc] = np.multiply(self.consts[s], self.consts[c])
                    else:
                        out.append(_Ins(ins.op_id, "mul", None, [s, c], sc, {}))
                    ins.ins = [sc, x]
                    break
            out.append(ins)
        self.instrs = out

    def _masks_as_bools(self):
        """A 0/1 mask read only as a factor of products is kept as booleans (x * True is x)."""
        users = self._users()
        targets = set(self.targets)
        for ins in self.instrs:
            if ins.op not in _MASKS or ins.out in targets or (ins.op == "relu'" and ins.kw):
                continue
            readers = users.get(ins.out, [])
            ok = bool(readers)
            for r in readers:
                other = [u for u in r.ins if u != ins.out]
                if r.op != "mul" or r.form is not None or len(other) != 1 or other[0] in self.bools:
                    ok = False
                    break
            if ok:
                self.bools.add(ins.out)

    def _dead_code(self):
        live = set(self.targets)
        kept = []
        for ins in reversed(self.instrs):
            if ins.out in live:
                live.update(ins.ins)
                kept.append(ins)
        self.instrs = kept[::-1]

    # ---- forms: how each instruction is written ----------------------------------------------
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

    def _fresh(self, ins) -> bool:
        """Does the instruction return a new array that nothing else refers to?"""
        shape = self.shape.get(ins.out)
        if not shape or ins.form in ("reshape", "T") or ins.out in self.bools:
            return False
        if ins.form in ("binary", "neg", "square", "relu", "mask", "abs", "ufunc", "matmul", "sum", "sqnorm",
                        "tanh_grad", "sum_to"):
            return True
        opdef = REGISTRY.get(ins.op)
        return ins.op in _FRESH or (opdef is not None and opdef.elementwise and ins.op not in ("identity",
                                                                                             "stop_gradient"))

    # ---- scheduling -----------------------------------------------------------------------------
    def _reorder(self):
        """Each instruction as late as its readers allow: a value is made just before it is first needed."""
        if len(self.instrs) < 2:
            return
        producer = {ins.out: k for k, ins in enumerate(self.instrs)}
        order, done = [], [False] * len(self.instrs)
        needed = [self._resolve(t) for t in self.targets]
        for t in needed:
            root = producer.get(t)
            if root is None or done[root]:
                continue
            stack = [(root, 0)]
            while stack:
                k, i = stack.pop()
                if done[k]:
                    continue
                ins = self.instrs[k]
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
        self.instrs = order

    def _plan_inplace(self):
        """Write an elementwise result into an input's buffer when that input dies there."""
        targets = set(self.targets)
        roots: dict[str, tuple] = {}  # value -> buffers it may share memory with
        for v in self.leaves:
            roots[v] = ()
        parent: dict[str, str] = {}

        def find(r):
            while r in parent:
                r = parent[r]
            return r

        for ins in self.instrs:
            if self._fresh(ins):
                roots[ins.out] = (ins.out,)
            else:
                roots[ins.out] = tuple(dict.fromkeys(r for v in ins.ins for r in roots.get(v, ())))
        last: dict[str, float] = {}
        for k, ins in enumerate(self.instrs):
            for v in ins.ins:
                for r in roots.get(v, ()):
                    last[r] = k
        for t in targets:
            for r in roots.get(t, ()):
                last[r] = math.inf
        c_ordered = self._c_ordered_values()
        for k, ins in enumerate(self.instrs):
            if ins.form not in ("binary", "neg", "square", "relu", "abs", "ufunc", "tanh_grad") \
                    or ins.out in self.bools:
                continue
            if not all(v in c_ordered for v in ins.ins):
                continue  # the new array's layout could differ from the buffer's, and with it later sums
            shape = self.shape.get(ins.out)
            if not shape or self.scalar:
                continue
            for pos, v in enumerate(ins.ins):
                rs = roots.get(v, ())
                if v in self.bools or v in self.consts or len(rs) != 1 or rs[0] != v or \
                        self.shape.get(v) != shape:
                    continue
                r = find(v)
                if last.get(r) != k:
                    continue
                ins.inplace = pos
                parent[ins.out] = r
                last[r] = last.get(ins.out, k)
                break

    def _c_ordered_values(self) -> set:
        """Values known to be C-ordered arrays (or scalars): leaves and constants (made so), and
        results of non-view operations on C-ordered values (NumPy keeps the inputs' order)."""
        known = set(self.leaves) | {v for v, c in self.consts.items() if is_c_ordered(c)}
        for ins in self.instrs:  # a 1-D view is harmless: a new 1-D array has only one order
            view = ins.op in _VIEWS and len(self.shape.get(ins.out) or ()) > 1
            if not view and all(v in known for v in ins.ins):
                known.add(ins.out)
        return known

    # ---- code generation --------------------------------------------------------------------------
    def _generate(self, instrument: bool):
        ns = {"np": np, "_float64": np.float64, "_add_reduce": np.add.reduce, "_div": _scalar_div,
              "_pc": time.perf_counter}
        names: dict[str, str] = {}
        counter = [0]

        def const_expr(v):
            value = self.consts[v]
            if self.scalar and np.ndim(value) == 0 and math.isfinite(float(value)):
                return repr(float(value))
            if v not in names:
                names[v] = f"c{len(names)}"
                # A scalar constant as a NumPy scalar, not a 0-d array: the same IEEE arithmetic,
                # without a ufunc call for every scalar operation (lam / 2, 1 / b, ...).
                ns[names[v]] = value if np.ndim(value) else float(value) if self.scalar else np.float64(value)
            return names[v]

        local: dict[str, str] = {}

        def var(v):
            if v not in local:
                counter[0] += 1
                local[v] = f"v{counter[0]}"
            return local[v]

        instrs = self.instrs
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
                if v not in self.consts:
                    last[v] = k
                    uses_in.setdefault(v, set()).add(k // CHUNK)
        for t in self.targets:
            if t not in self.consts:
                last[t] = math.inf
                uses_in.setdefault(t, set()).add(exit_chunk)
        cross: dict[str, int] = {}  # value -> index in the shared list S
        for i, v in enumerate(self.leaves):
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
                    if v in self.consts:
                        args.append(const_expr(v))
                        continue
                    if v not in loaded and (v in cross and chunk_of.get(v) != c):
                        # a 0-d leaf read as a NumPy scalar (see const_expr); `[()]` keeps its value
                        scalar_leaf = not self.scalar and cross[v] < len(self.leaves) and self.shape.get(v) == ()
                        lines.append(f"    {var(v)} = S[{cross[v]}]{'[()]' if scalar_leaf else ''}")
                        loaded.add(v)
                    args.append(var(v))
                expr = self._expr(ins, args, ns)
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
                if dead and not self.scalar:
                    lines.append("    del " + ", ".join(var(v) for v in dead))
                    for v in dead:
                        loaded.discard(v)
                        if v in cross:
                            lines.append(f"    S[{cross[v]}] = None")
            if c == exit_chunk:
                outs = []
                for t in self.targets:
                    if t in self.consts:
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
            body.append(f"def _run(L):\n    S = L + [None] * {nslots - len(self.leaves)}\n{calls}\n"
                        f"    return _c{nchunks - 1}(S)")
        code = "\n\n".join(body) + "\n"
        exec(compile(code, "<graphdsl plan>", "exec"), ns)
        return code, ns

    def _expr(self, ins, a, ns) -> str:
        form = ins.form
        ip = ins.inplace
        out = f", out={a[ip]}" if ip is not None else ""
        if form == "binary":
            sym, ufunc = _BINARY[ins.op if ins.op in _BINARY else ins.arg]
            if self.scalar and sym == "/":
                return f"({a[0]} / {a[1]} if {a[1]} else _div({a[0]}, {a[1]}))"
            if ip is not None:
                return f"{ufunc}({a[0]}, {a[1]}{out})"
            return f"({a[0]} {sym} {a[1]})"
        if form == "neg":
            return f"np.negative({a[0]}{out})" if ip is not None else f"(-{a[0]})"
        if form == "square":
            if self.scalar:
                return f"({a[0]} * {a[0]})"
            return f"np.square({a[0]}{out})"
        if form == "relu":
            if self.scalar:  # np.maximum(x, 0.0): x if x > 0, +0.0 for zeros and negatives, NaN stays NaN
                return f"({a[0]} if {a[0]} > 0.0 else (0.0 if {a[0]} <= 0.0 else {a[0]}))"
            return f"np.maximum({a[0]}, 0.0{out})"
        if form == "mask":
            sym = _MASKS[ins.arg]
            rhs = "0" if ins.op == "relu'" else a[1]
            if self.scalar:
                return f"(1.0 if {a[0]} {sym} {rhs} else 0.0)"
            if ins.out in self.bools:
                return f"({a[0]} {sym} {rhs})"
            return f"({a[0]} {sym} {rhs}).astype(_float64)"
        if form == "abs":
            if self.scalar:
                return f"abs({a[0]})"
            return f"np.absolute({a[0]}{out})"
        if form == "ufunc":
            return f"np.{ins.arg}({', '.join(a)}{out})"
        if form == "matmul":
            return f"({a[0]} @ {a[1]})"
        if form == "tanh_grad":
            return f"np.subtract(1.0, np.square({a[0]}){out})"
        if form == "index":
            ns["_nk"] = ns.get("_nk", 0) + 1
            ns[f"_k{ns['_nk']}"] = ins.arg
            return f"{a[0]}[_k{ns['_nk']}]"
        if form == "sum_to":
            axes, like = ins.arg
            reshape = f".reshape({like!r})" if like is not None else ""
            return f"_add_reduce({a[0]}, {axes!r}, None, None, True){reshape}"
        if form == "T":
            return f"{a[0]}.T"
        if form == "reshape":
            return f"{a[0]}.reshape({ins.arg!r})"
        if form == "sum":
            return f"_add_reduce({a[0]}, {_np_axis(ins.kw.get('axis'))!r}, None, None, " \
                   f"{bool(ins.kw.get('keepdims', False))})"
        if form == "sqnorm":
            return f"_add_reduce({a[0]} * {a[0]}, {_np_axis(ins.kw.get('axis'))!r}, None, None, " \
                   f"{bool(ins.kw.get('keepdims', False))})"
        ns["_nf"] = ns.get("_nf", 0) + 1
        name = f"_f{ns['_nf']}"
        ns[name] = ins.fn
        return f"{name}({', '.join(a)})"

    # ---- instrumented twin, memory facts ------------------------------------------------------------
    def instrumented(self):
        code, ns = self._generate(instrument=True)
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
            if self._fresh(ins) and ins.inplace is None:
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


def _scalar_div(a, b):
    with np.errstate(all="ignore"):
        return np.divide(np.float64(a), np.float64(b))

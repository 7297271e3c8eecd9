"""PyTorch replays a program's forward plan op by op and differentiates it: values and gradients compared."""
from __future__ import annotations

import numpy as np

from graphdsl import GraphDSLError
from fuzz.stats import NONFINITE_IN_TORCH, RECORD, STATS, TORCH_OPS_SEEN

# ---- PyTorch: the same graph, op by op, differentiated by autograd ----------------------------------------
#
# TORCH (graphdsl/interop/torch_ops.py, the one table the torch exporter and
# backend use too) maps every operator of the table (graphdsl/ops REGISTRY,
# internal ones included, since in-language `grad` puts them in the graph) to a
# PyTorch function of the same arguments and static attributes. A program's forward
# plan is replayed through it in float64 and torch.autograd differentiates the
# result: values and gradients must agree with graphdsl's to TORCH_RTOL,
# relative to the largest magnitude of the array compared. A test fails when an
# operator has no entry, so a new one cannot be forgotten.

try:
    import torch
    from graphdsl.interop.torch_ops import NOT_IN_TORCH, TORCH, sizes as _ints
except ImportError:  # pragma: no cover - torch is an optional dev dependency
    torch = None
    TORCH, NOT_IN_TORCH = {}, frozenset({"opaque"})
    _ints = None

TORCH_RTOL = 1e-9
# Below this magnitude the comparison is absolute (TORCH_RTOL * TORCH_FLOOR = 1e-13): a gradient that
# cancels to about zero (bce(sigmoid(2x), sigmoid(x)) at x = 1e-9) is rounding noise on either side.
TORCH_FLOOR = 1e-4


def torch_run(plan, leaves: dict, wrt_ids):
    """Replay a plan's reference schedule in PyTorch; the targets and the leaf tensors of wrt_ids."""
    g = plan.graph
    slots: list = [None] * plan.nslots
    tensors = {}
    for name, s in plan.leaves:
        value = np.asarray(plan.leaf_value(leaves, name), dtype=np.float64)
        t = torch.tensor(value, dtype=torch.float64, requires_grad=name in wrt_ids)
        slots[s] = tensors[name] = t
    for op_id, (_, ins, out) in zip(plan.step_ops, plan.steps):
        op = g.nodes[op_id]["op"]
        TORCH_OPS_SEEN.add(op)
        slots[out] = TORCH[op](*[slots[i] for i in ins], **plan.static_args(op_id))
    return [slots[s] for s in plan.target_slots], tensors


def rel_error(got, want, floor=0.0) -> float:
    """max |got - want|, relative to the largest magnitude of either or `floor` (0 for empty arrays)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"shapes {got.shape} and {want.shape}"
    if not got.size:
        return 0.0
    scale = max(float(np.max(np.abs(got))), float(np.max(np.abs(want))), floor, 1e-300)
    return float(np.max(np.abs(got - want))) / scale


def torch_value_and_grads(plan, leaves, wrt):
    """L and dL/d(each of wrt) by PyTorch autograd, as NumPy arrays (None: a leaf L does not use)."""
    (out,), tensors = torch_run(plan, leaves, set(wrt))
    used = [w for w in wrt if w in tensors]
    found = torch.autograd.grad(out, [tensors[w] for w in used], allow_unused=True) if used and \
        out.requires_grad else [None] * len(used)
    by_leaf = dict(zip(used, found))
    return out.detach().numpy(), [None if by_leaf.get(w) is None else by_leaf[w].numpy() for w in wrt]


def torch_agrees(model, prog):
    """Value and gradients of L against PyTorch autograd replaying the same graph (float64).

    Where they differ by more than TORCH_RTOL, PyTorch runs once more on the leaves moved by
    four units in the last place: a program whose result moves as much under that (cos of a
    value of 1e12) is ill-conditioned, and no float64 computation can be asked for more.
    """
    try:
        value, grads = model.grad(prog.values, of=prog.target, wrt=prog.wrt)
    except GraphDSLError as err:
        STATS["torch_skipped_" + err.errors[0].code] += 1
        return
    compiled, given = model.compile(prog.values)
    target, wrt_ids = model.grad_targets(compiled, prog.target, prog.wrt)
    plan = model._plan(compiled, (target,))
    leaves = model.leaf_values(compiled, given)
    t_value, t_grads = torch_value_and_grads(plan, leaves, wrt_ids)
    ours = [value] + [grads[w] for w in prog.wrt]
    theirs = [t_value] + [np.zeros(np.shape(grads[w])) if t is None else t for w, t in zip(prog.wrt, t_grads)]
    if not all(np.all(np.isfinite(t)) for t in theirs):
        STATS["torch_nonfinite"] += 1  # graphdsl gave finite numbers (or it would have raised E302)
        NONFINITE_IN_TORCH.append(prog.text)  # for the campaign's report: which programs, and why
        return
    worst = max(rel_error(a, b, TORCH_FLOOR) for a, b in zip(ours, theirs))
    STATS["torch_compared"] += len(ours)
    if worst > TORCH_RTOL:
        moved = {k: np.asarray(v, dtype=np.float64) * (1 + 2.0 ** -50 * np.sign(np.sin(np.arange(np.size(v)) + 1))
                                                        .reshape(np.shape(v))) for k, v in leaves.items()}
        m_value, m_grads = torch_value_and_grads(plan, moved, wrt_ids)
        moved_theirs = [m_value] + [np.zeros(np.shape(t)) if m is None else m for t, m in zip(theirs[1:], m_grads)]
        spread = max(rel_error(a, b, TORCH_FLOOR) for a, b in zip(theirs, moved_theirs))
        if worst <= 10 * spread:
            STATS["torch_ill_conditioned"] += 1
            return
        if comparison_at_a_tie(plan, leaves):
            STATS["torch_tie"] += 1
            return
    RECORD["torch_worst_rel"] = max(RECORD.get("torch_worst_rel", 0.0), worst)
    assert worst <= TORCH_RTOL, f"graphdsl and PyTorch differ: relative error {worst:.3e}"


COMPARISONS = {"lt", "le", "gt", "ge", "eq", "ne"}


def comparison_at_a_tie(plan, leaves) -> bool:
    """A comparison whose two sides agree to rounding (var of a constant row: 1e-33 in NumPy, 0 in
    PyTorch, against relu's 0): its result is a coin toss between two correct float64 libraries, and the
    values downstream of it are not a disagreement about derivatives."""
    values, g = plan.run_all(leaves), plan.graph
    for op_id in plan.step_ops:
        if g.nodes[op_id]["op"] not in COMPARISONS:
            continue
        a, b = (np.asarray(values[u], dtype=np.float64)
                for _, u in sorted((k, u) for u, keys in g._pred[op_id].items() for k in keys))
        if np.any(np.abs(a - b) <= 1e-12 * (1 + np.maximum(np.abs(a), np.abs(b)))):
            return True
    return False

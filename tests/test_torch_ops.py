"""graphdsl/interop/torch_ops.py, the one table from op names to PyTorch, entry by entry.

Every op of graphdsl.ops.REGISTRY but `opaque` has an entry, and each entry computes
what the op's NumPy forward computes: the gradient plans of tests/test_ops_fd.py's
cases (every public op; up to third order, so the internal ops reverse mode emits
appear too) run step by step, each step's torch result compared with its NumPy
result on the same inputs.
"""
from __future__ import annotations

import numpy as np
import pytest

from graphdsl.ops import REGISTRY

torch = pytest.importorskip("torch")
from graphdsl.interop.torch_ops import CREATES, NOT_IN_TORCH, TORCH  # noqa: E402
from interop_cases import op_cases, op_model  # noqa: E402

RTOL = 1e-12
SEEN: set = set()


def test_every_op_has_an_entry_and_no_other():
    assert sorted(set(REGISTRY) - set(TORCH) - NOT_IN_TORCH) == []
    assert sorted(set(TORCH) - set(REGISTRY)) == []
    assert CREATES == {name for name, op in REGISTRY.items() if op.nargs[1] == 0}


@pytest.mark.parametrize("c, order", op_cases())
def test_each_entry_computes_the_numpy_forward(c, order):
    model, top, values = op_model(c, order)
    compiled, given = model.compile(values)
    target, wrt = model.grad_targets(compiled, top, None)
    from graphdsl.autodiff import gradients

    table = gradients(compiled.built.gb, target, wrt)
    plan = model._plan(compiled, (target,) + tuple(table[w] for w in wrt))
    leaves = model.leaf_values(compiled, given)
    slots = plan._fill(leaves)
    with np.errstate(all="ignore"):
        for op_id, (fn, ins, out) in zip(plan.step_ops, plan.steps):
            args = [slots[i] for i in ins]
            want = np.asarray(fn(*args), dtype=np.float64)
            op = plan.graph.nodes[op_id]["op"]
            got = TORCH[op](*[torch.tensor(np.asarray(a, dtype=np.float64)) for a in args], **plan.static_args(op_id))
            got = got.detach().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
            assert got.shape == want.shape, f"{op}: shape {got.shape}, NumPy {want.shape}"
            scale = max(float(np.max(np.abs(want), initial=0.0)), 1e-300)
            both_nan = np.isnan(got) & np.isnan(want)
            error = float(np.max(np.where(both_nan, 0.0, np.abs(got - want)), initial=0.0)) / scale
            assert error <= RTOL, f"{op}: relative error {error:.3g}"
            SEEN.add(op)
            slots[out] = want


@pytest.mark.parametrize("like, axis", [((3, 4), None), ((3, 4), 1), ((2, 0, 5), 1), ((), None), ((5,), 0)])
def test_count_the_one_entry_only_a_symbolic_build_emits(like, axis):
    """count reads sizes a symbolic build does not know yet, so no concrete plan above has it."""
    want = REGISTRY["count"].forward(like=like, axis=axis)
    got = TORCH["count"](like=like, axis=axis)
    assert got.dtype == torch.float64 and float(got) == float(want)
    SEEN.add("count")


def test_the_cases_run_every_entry():
    """After the cases above: every op of the table was compared (the internal ones included)."""
    if not SEEN:
        pytest.skip("run with the per-case tests")
    missing = sorted(set(TORCH) - SEEN)
    # only those no gradient up to third order emits from the cases' programs
    assert missing == [], f"{missing} (seen: {sorted(SEEN)})"

"""`--backend torch`: a plan's steps (plan.py, the one compiled schedule) run by PyTorch.

The same steps as the NumPy reference schedule (plan.step_ops, the input and
output slots of plan.steps, the concrete static arguments plan.static_args), each
computed by torch_ops.TORCH on `device` in `dtype`; slots are released after
their last use as the reference schedule releases them. Autograd is off: the
gradients are graphdsl's own reverse-mode steps, run like any other.
"""
from __future__ import annotations

import numpy as np

from . import require

LIBRARY = "torch"


def run_plan(plan, leaf_values: dict, device: str | None = None, dtype: str = "float64") -> list:
    """NumPy arrays of the plan's targets, in order; `leaf_values` as plan.run takes them."""
    torch = require(LIBRARY, "--backend torch")
    slots = run_on_device(plan, leaf_values, device, dtype)
    return [_to_numpy(torch, slots[s]) for s in plan.target_slots]


def run_on_device(plan, leaf_values: dict, device: str | None = None, dtype: str = "float64", given=None) -> list:
    """The plan's slots as tensors on `device` (the targets kept); `given`: leaf node -> tensor to use as is."""
    torch = require(LIBRARY, "--backend torch")
    steps = prepared(plan, device, dtype)
    tdtype = getattr(torch, dtype)
    slots: list = [None] * plan.nslots
    for name, s in plan.leaves:
        if given is not None and name in given:
            slots[s] = given[name]
        else:
            value = np.asarray(plan.leaf_value(leaf_values, name), dtype=np.float64)
            slots[s] = torch.as_tensor(value, dtype=tdtype, device=device)
    with torch.no_grad():
        for fn, kw, ins, out, dead in steps:
            slots[out] = fn(*[slots[i] for i in ins], **kw)
            for s in dead:
                slots[s] = None
    return slots


def prepared(plan, device, dtype) -> list:
    """(function, static arguments, input slots, output slot, slots freed) per step, made once per plan."""
    cache = plan.__dict__.setdefault("_torch_steps", {})
    key = (str(device), dtype)
    if key not in cache:
        import torch

        from .torch_ops import CREATES, TORCH

        made = {"dtype": getattr(torch, dtype), "device": device}
        steps = []
        for op_id, (_, ins, out), dead in zip(plan.step_ops, plan.steps, plan.frees):
            op = plan.graph._node[op_id]["op"]
            kw = dict(plan.static_args(op_id), **(made if op in CREATES else {}))
            steps.append((TORCH[op], kw, ins, out, dead))
        cache[key] = steps
    return cache[key]


def _to_numpy(torch, value):
    if not isinstance(value, torch.Tensor):
        return np.asarray(value, dtype=np.float64)
    return value.detach().to("cpu", torch.float64).numpy()


def check_device(device: str | None) -> None:
    """E312 before any work: a device torch cannot name, or one this machine does not have."""
    torch = require(LIBRARY, "--backend torch")
    from ..diagnostics import Diagnostic, GraphDSLError

    if device is None:
        return
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as err:
        raise GraphDSLError(Diagnostic("E312", f"--device `{device}` is not a device torch knows ({err})",
                                       help=("use cpu, cuda, cuda:1, mps, ...",))) from None
    available = {"cpu": lambda: True, "cuda": torch.cuda.is_available,
                 "mps": lambda: hasattr(torch.backends, "mps") and torch.backends.mps.is_available()}
    probe = available.get(parsed.type, lambda: False)
    if not probe() or (parsed.type == "cuda" and parsed.index is not None
                       and parsed.index >= torch.cuda.device_count()):
        raise GraphDSLError(Diagnostic(
            "E312", f"--device `{device}`: this machine has no such device for torch",
            help=("run on the CPU (leave out --device, or --device cpu), or on a machine with that GPU "
                  "and a torch built for it",)))

"""`--backend jax`: a plan's own schedule (plan.py) run by JAX, through THE JAX table (jax_ops.JAX).

The steps are the plan's: `plan.step_ops` names each step's op, `plan.steps` its input and
output slots, `plan.static_args` its concrete static arguments. The whole step list is traced
once into one `jax.jit` function per plan (and device and dtype), cached on the plan, so a
training loop pays for tracing and XLA's compilation once. The jitted schedule is not bit
for bit the op-by-op one (XLA fuses steps and may sum in another order), but both stay at
float64 rounding from NumPy: at most 1.3e-14 relative on the examples, where the bound is
1e-10 (tests/test_backend_jax.py checks both). Jitted, LeNet's gradient takes 3.4 ms against
NumPy's 14 ms; the small examples pay about 1 ms of dispatch per call.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from ..diagnostics import Diagnostic, GraphDSLError
from . import require, unsupported

LIBRARY = "jax"  # what backends.py requires before run_plan is called
DTYPES = ("float64", "float32")


def run_plan(plan, leaf_values: dict, device: str | None = None, dtype: str = "float64") -> list:
    """The plan's targets (NumPy arrays, in order) computed by JAX; leaf_values as plan.run takes them."""
    jax = _jax()
    prepared = _prepared(plan, jax, device, dtype)
    leaves = [np.asarray(plan.leaf_value(leaf_values, name), dtype=dtype) for name, _ in plan.leaves]
    results = [np.asarray(r, dtype=np.float64) for r in prepared(*[jax.device_put(v, prepared.device) for v in leaves])]
    if not all(np.isfinite(r).all() for r in results):
        # JAX cannot raise under jit: a label or index out of range gives NaN (jax_ops). NumPy's schedule
        # refuses such data with a located error (E305); NaN from the data itself is the caller's to locate.
        plan.run(leaf_values, check_finite=False)
    return results


def check_device(device: str | None) -> None:
    """E312 before any work: a device JAX does not see here."""
    _device(_jax(), device)


def _jax():
    jax = require(LIBRARY, "--backend jax")
    jax.config.update("jax_enable_x64", True)  # float64 as NumPy; float32 arrays stay float32
    return jax


class _Prepared:
    """One plan's schedule as a jitted function of its leaves, on one device."""

    def __init__(self, plan, jax, device, dtype):
        from .jax_ops import JAX
        g = plan.graph
        self.steps = []
        for op_id, (_, ins, out) in zip(plan.step_ops, plan.steps):
            op = g.nodes[op_id]["op"]
            if op not in JAX:
                raise unsupported(op, "JAX", g.nodes[op_id].get("span"), plan.source)
            self.steps.append((partial(JAX[op], **plan.static_args(op_id)), ins, out))
        self.leaf_slots = [s for _, s in plan.leaves]
        self.target_slots = list(plan.target_slots)
        self.nslots = plan.nslots
        self.device = _device(jax, device)
        self.run = jax.jit(self.schedule)  # runs where its arguments are (run_plan puts them on the device)

    def schedule(self, *leaves):
        slots = [None] * self.nslots
        for s, value in zip(self.leaf_slots, leaves):
            slots[s] = value
        for fn, ins, out in self.steps:
            slots[out] = fn(*[slots[i] for i in ins])
        return tuple(slots[s] for s in self.target_slots)

    def __call__(self, *leaves):
        return self.run(*leaves)


def _prepared(plan, jax, device, dtype) -> _Prepared:
    if dtype not in DTYPES:
        raise GraphDSLError(Diagnostic("E103", f"--dtype {dtype}: the JAX backend computes in "
                                               f"{' or '.join(DTYPES)}"))
    cache = plan.__dict__.setdefault("_jax_prepared", {})
    key = (device, dtype)
    if key not in cache:
        cache[key] = _Prepared(plan, jax, device, dtype)
    return cache[key]


def _device(jax, name: str | None):
    """`cpu`, `gpu`/`cuda`, `tpu`, optionally `:index`; None: JAX's default device; else E312."""
    if name is None:
        return None
    kind, _, index = name.partition(":")
    kind = {"cuda": "gpu"}.get(kind, kind)
    try:
        devices = jax.devices(kind)
        return devices[int(index or 0)]
    except (RuntimeError, ValueError, IndexError) as err:
        available = ", ".join(sorted({d.platform for d in jax.devices()}))
        raise GraphDSLError(Diagnostic(
            "E312", f"--device `{name}`: JAX has no such device here ({str(err).splitlines()[0][:120]})",
            help=(f"devices JAX sees: {available}",))) from None

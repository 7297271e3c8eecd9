"""Which library runs a plan: `--backend numpy|torch|jax` (and `--device`) for eval, grad and train.

NumPy (plan.run: the reference schedule, then the compiled program) is the default
and the reference; the others run the same plan's steps with their op table
(torch_backend.run_plan, jax_backend.run_plan) and give its numbers to float64
rounding. Errors stay graphdsl's: a library refusing the data or a NaN/Inf in a
result is located by the NumPy schedule (E305, E302), as `plan.run` locates it.
"""
from __future__ import annotations

import importlib
import importlib.util

from .. import plan_faults as faults
from ..arrays import all_finite
from ..diagnostics import Diagnostic, GraphDSLError

BACKENDS = {"numpy": None, "torch": "graphdsl.interop.torch_backend", "jax": "graphdsl.interop.jax_backend"}


def backend_module(backend: str | None):
    """The backend's module (None for NumPy); E311 naming the extra when its library is missing."""
    if backend in (None, "numpy"):
        return None
    if backend not in available():
        raise ValueError(f"unknown backend `{backend}`; use one of: {', '.join(available())}")
    from . import require

    try:
        module = importlib.import_module(BACKENDS[backend])
    except ImportError:  # a backend that imports its library at the top
        require(backend, f"--backend {backend}")  # E311 naming the extra
        raise
    require(getattr(module, "LIBRARY", backend), f"--backend {backend}")
    return module


def available() -> list:
    """The backends this installation has (numpy, and each whose module graphdsl.interop holds)."""
    return [name for name, module in BACKENDS.items() if module is None or importlib.util.find_spec(module)]


def check(backend: str | None, device: str | None) -> None:
    """Refuse a missing library (E311) or device (E312) before any work."""
    module = backend_module(backend)
    if module is None:
        if device not in (None, "cpu"):
            raise GraphDSLError(Diagnostic("E312", f"--device `{device}` needs --backend torch or jax",
                                           help=("the NumPy backend runs on the CPU only",)))
        return
    checker = getattr(module, "check_device", None)
    if checker is not None:
        checker(device)


def run(plan, leaf_values: dict, check_finite: bool = True, tiered: bool = False,
        backend: str | None = None, device: str | None = None) -> list:
    """The plan's targets, as `plan.run` gives them, computed by `backend` on `device`."""
    module = backend_module(backend)
    if module is None:
        return plan.run(leaf_values, check_finite, tiered)
    try:
        results = module.run_plan(plan, leaf_values, device=device)
    except GraphDSLError:  # ours (a missing value): a ValueError too, so let it through
        raise
    except Exception as err:  # the library refused the data: let the reference schedule say where
        raise _located(plan, leaf_values, err) from None
    if check_finite and not all_finite(results):  # (float64 NumPy arrays: both backends convert)
        faults.locate_nonfinite(plan, leaf_values)  # the NumPy schedule names the first node at fault
    return results


def _located(plan, leaf_values, err) -> GraphDSLError:
    return faults.failure(plan, leaf_values, err) if isinstance(err, (ValueError, ArithmeticError, RuntimeError,
                                                                     IndexError, TypeError)) else err


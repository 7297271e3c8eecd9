"""graphdsl beyond NumPy: exporters (torch, jax, onnx) and backends (torch, jax).

Every exporter and backend starts from `schedule.export_program`, the model's
compiled schedule (plan.py) seen as named steps; each maps op names to its own
library in one table of its own. The libraries are optional extras: `require`
imports one or says which extra installs it (E311, exit 1); an op a target lacks is E116.
"""
from __future__ import annotations

import importlib

from ..diagnostics import Diagnostic, GraphDSLError

# The extra that installs each optional library (pyproject.toml [project.optional-dependencies]).
EXTRAS = {"torch": "torch", "jax": "jax", "jaxlib": "jax", "onnx": "onnx", "onnxruntime": "onnx"}


def require(module: str, what: str):
    """The imported `module`, or E311 naming the extra to install; `what` says who needs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        extra = EXTRAS.get(module.split(".")[0], module.split(".")[0])
        raise GraphDSLError(Diagnostic(
            "E311", f"{what} needs {module.split('.')[0]}, which is not installed ({err.msg})",
            help=(f"install it with: pip install 'graphdsl[{extra}]'",))) from None


def unsupported(op: str, target: str, span, source, alternatives=()) -> GraphDSLError:
    """E116: an op of the model has no counterpart in `target` (raised before anything is written)."""
    return GraphDSLError(Diagnostic(
        "E116", f"`{op}` has no counterpart in {target}", span,
        help=tuple(alternatives) or (f"export to another target, or write the model without `{op}`",)), source)

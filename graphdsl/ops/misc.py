"""Identity, opaque calls, and the table of names the language can call."""
from __future__ import annotations

from .base import REGISTRY, OpDef, register, unary_same


def _opaque_forward(*args, **attrs):  # never reached: the planner refuses opaque nodes first
    raise RuntimeError("opaque operator evaluated")


register(OpDef("identity", lambda x: x, unary_same, lambda b, n: [n.g], (1, 1), latex="{0}", internal=True))
register(OpDef("opaque", _opaque_forward, lambda s, a: None, None, (0, 10_000), {"func": None},
               internal=True, differentiable=True))

# Names users call that are not operator names of their own.
ALIASES = {"dot": "matmul"}
SPECIAL_FORMS = ("grad",)

BUILTINS = sorted(
    [name for name, op in REGISTRY.items()
     if not op.internal and op.symbol is None and not name.endswith("'") and name not in ("neg",)]
    + ["matmul"] + list(ALIASES) + list(SPECIAL_FORMS)
)
BUILTINS = sorted(set(BUILTINS))

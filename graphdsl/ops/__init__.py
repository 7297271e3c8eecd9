"""The operator table: one OpDef per primitive, registered by family modules."""
from . import construct, conv, einsum, elementwise, gather, linalg, neural, pool, reduce, shape  # noqa: F401  (registration)
from .base import REGISTRY, Dim, OpDef, ShapeError, concrete, fmt_shape, register  # noqa: F401
from .misc import BUILTINS, ALIASES  # noqa: F401

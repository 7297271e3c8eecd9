"""THE table from graphdsl's operators to JAX (graphdsl/interop/jax_ops.py), entry by entry.

Every operator of the table (internal ones included: reverse mode emits them) must have
an entry, and each entry must compute what the op's NumPy forward computes on real
inputs: the arguments and static arguments of the steps that the finite-difference
models and the examples run (tests/op_samples.py), in float64.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)

from graphdsl.interop.jax_ops import JAX, NOT_IN_JAX  # noqa: E402
from graphdsl.ops import REGISTRY  # noqa: E402
from interop_cases import rel_error  # noqa: E402
from op_samples import samples  # noqa: E402

RTOL = 1e-12  # relative to the larger magnitude of the arrays compared (absolute below 1e-4)


def test_the_table_covers_every_operator():
    assert set(JAX) == set(REGISTRY) - NOT_IN_JAX
    assert NOT_IN_JAX == {"opaque"}


def test_every_operator_has_real_samples():
    """The sampled models reach every entry (count, built only while sizes are unknown, has its own test)."""
    assert set(samples()) | {"count"} == set(JAX)


@pytest.mark.parametrize("op", sorted(JAX))
def test_entry_computes_the_numpy_forward(op):
    for where, args, bound, want in samples().get(op, ()):
        got = np.asarray(jax.jit(functools.partial(JAX[op], **bound))(*args))  # as the backend runs it
        assert got.dtype == np.float64, f"{op} at {where}: dtype {got.dtype}"
        err = rel_error(got, want)
        assert err <= RTOL, f"{op} at {where} {bound}: relative error {err:.2e}"


@pytest.mark.parametrize("like, axis", [((3, 4), None), ((3, 4), 1), ((2, 5, 3), 0), ((4,), None)])
def test_count(like, axis):
    want = REGISTRY["count"].forward(like=like, axis=axis)
    assert float(JAX["count"](like=like, axis=axis)) == float(want)


def test_labels_and_indices_numpy_refuses_give_nan():
    """JAX cannot raise under jit; NaN lets the backend hand the data to NumPy's located error."""
    jnp = jax.numpy
    for labels in ([0.0, 3.0], [0.5, 1.0], [-1.0, 0.0]):
        assert np.isnan(np.asarray(jax.jit(functools.partial(JAX["onehot"], k=3))(jnp.asarray(labels)))).all()
    x = jnp.arange(6.0).reshape(2, 3)
    for idx in ([0.0, 2.0], [-3.0], [0.25]):
        assert np.isnan(np.asarray(JAX["take"](x, jnp.asarray(idx)))).all()
        assert np.isnan(np.asarray(JAX["take_grad"](jnp.ones((len(idx), 3)), jnp.asarray(idx), like=(2, 3)))).all()
    np.testing.assert_array_equal(JAX["take"](x, jnp.asarray([-2.0, 1.0])), [[0, 1, 2], [3, 4, 5]])

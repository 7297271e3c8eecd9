"""What the interop tests share: the models they run (the examples with data, the op cases of
tests/test_ops_fd.py with their values) and the one comparison they make."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import test_ops_fd as opcases

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.gdsl") if p.with_suffix(".json").exists())
# Below this magnitude a comparison is absolute (rtol * FLOOR), as in the fuzzer: a gradient that
# cancels to about zero is rounding noise on either side.
FLOOR = 1e-4


def rel_error(got, want, floor: float = FLOOR) -> float:
    """max |got - want|, relative to the largest magnitude of either (at least `floor`)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"shapes {got.shape} and {want.shape}"
    if not got.size:
        return 0.0
    scale = max(float(np.max(np.abs(got))), float(np.max(np.abs(want))), floor)
    return float(np.max(np.abs(got - want))) / scale


def load_values(path) -> dict:
    return {k: np.asarray(v, dtype=float) for k, v in json.loads(Path(path).with_suffix(".json").read_text()).items()}


def op_cases(orders=lambda c: sorted({1, max(c.orders)})) -> list:
    """pytest params (case, order): every op case at the orders `orders(case)`, the zero cases at order 1."""
    params = [pytest.param(c, order, id=f"{c.id}-order{order}") for c in opcases.CASES for order in orders(c)]
    return params + [pytest.param(c, 1, id=f"zero-{c.id}") for c in opcases.ZERO_CASES]


def op_model(c, order):
    """(model, the name of its scalar top, values): `J<order>` over `Y = <the case's expression>`."""
    model, top, y_shape = opcases._top_model(c, order)
    values = c.values()
    rng = np.random.default_rng(order)
    values["w__"] = rng.standard_normal(y_shape)
    for k in range(2, order + 1):
        for x in c.wrt_names():
            values[f"v{k}__{x}"] = rng.standard_normal(np.shape(values[x]))
    return model, top, values


def cli_grad_agrees(backend: str, rtol: float) -> None:
    """`graphdsl grad --backend <backend>` on torch_mlp gives the NumPy backend's value and gradients."""
    from test_hostile import run_cli  # the CLI in process: exit code, stdout, stderr

    path, data = ROOT / "examples" / "torch_mlp.gdsl", ROOT / "examples" / "torch_mlp.json"
    runs = {}
    for name in ("numpy", backend):
        code, out, err = run_cli("grad", path, "--load", data, "--json", "--backend", name, "--device", "cpu")
        assert code == 0, err
        runs[name] = json.loads(out)
    assert rel_error(runs[backend]["value"], runs["numpy"]["value"]) <= rtol
    for w, g in runs["numpy"]["grads"].items():
        assert rel_error(runs[backend]["grads"][w], g) <= rtol, w

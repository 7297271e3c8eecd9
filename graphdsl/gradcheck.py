"""Gradients against central finite differences (`graphdsl gradcheck`, Model.gradcheck)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GradcheckReport:
    """The largest relative error per value, and whether all are within `tol`."""

    errors: dict  # name -> max relative error over the random directions
    tol: float

    @property
    def worst(self) -> float:
        return max(self.errors.values(), default=0.0)

    @property
    def ok(self) -> bool:
        return self.worst <= self.tol

    @property
    def failed(self) -> list[str]:
        return [n for n, e in self.errors.items() if e > self.tol]

    def __repr__(self) -> str:
        rows = ", ".join(f"{n}: {e:.3e}" for n, e in self.errors.items())
        return f"GradcheckReport({'ok' if self.ok else 'FAIL'}, tol={self.tol:g}, {{{rows}}})"


def gradcheck(model, values, of=None, wrt=None, seed=0, step=1e-6, directions=3) -> dict[str, float]:
    """Largest relative error of <grad, v> against central differences along seeded random v."""
    values = dict(values or {})
    compiled, given = model.compile(values)
    # the declarations' values (dropout masks are not values one gives: each run draws them again, the same)
    leaves = {k: v for k, v in model.leaf_values(compiled, given, seed).items() if k in compiled.built.decls}
    _, grads = model.grad({**values, **leaves}, of=of, wrt=wrt, seed=seed)
    target = of or _one_output(model)
    rng = np.random.default_rng(seed + 1)
    report = {}
    for name, g in grads.items():
        worst = 0.0
        for _ in range(directions):
            v = rng.standard_normal(np.shape(g))
            f = lambda t: float(np.sum(model.eval({**leaves, name: leaves[name] + t * v}, seed=seed,  # noqa: E731
                                                  outputs=[target])[target]))
            numeric = (f(step) - f(-step)) / (2 * step)
            analytic = float(np.sum(g * v))
            scale = max(abs(numeric), abs(analytic), 1e-12)
            worst = max(worst, abs(numeric - analytic) / scale)
        report[name] = worst
    return report


def _one_output(model) -> str:
    node = model.outputs[0]
    return model.graph.nodes[node].get("name") or node

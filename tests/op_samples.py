"""Real inputs for every operator: each step a model of tests/test_ops_fd.py runs, recorded.

An op table for another library (graphdsl/interop/jax_ops.py, torch_ops.py, ...) is
checked entry by entry against the NumPy forward on these: the arguments and the
plan's concrete static arguments (`bound`) of every step of the finite-difference
models at their highest derivative order (so the internal ops reverse mode emits,
conv_input_grad, unreduce, sum_to, ..., are there too) and of the examples' gradients.
"""
from __future__ import annotations

import functools
import subprocess
import sys

import numpy as np

import graphdsl
from graphdsl.interop.schedule import export_program, run_steps
from graphdsl.ops import REGISTRY
from interop_cases import EXAMPLES, ROOT, load_values, op_model  # noqa: F401  (EXAMPLES, ROOT: for the tests)
from test_ops_fd import CASES, ZERO_CASES


def example(path):
    """An example model and its data (float64 arrays)."""
    return graphdsl.load(path), load_values(path)


def case_values(c, order=None):
    """(model, its scalar top, values) of a finite-difference case, at its highest order by default."""
    return op_model(c, max(c.orders) if order is None else order)


def _programs():
    for c in CASES:
        model, top, values = case_values(c)
        yield c.id, export_program(model, values, with_grads=True, of=top, wrt=c.wrt_names())
    for c in ZERO_CASES:
        model, top, values = case_values(c, 1)
        yield c.id, export_program(model, values, with_grads=True, of=top, wrt=c.wrt_names())
    for path in EXAMPLES:
        model, values = example(path)
        of = model.outputs[0]
        yield path.stem, export_program(model, values, with_grads=True, of=of)


@functools.lru_cache(maxsize=None)
def samples(per_op: int = 4) -> dict:
    """op name -> up to `per_op` distinct calls [(where, args, bound, NumPy result)], in the order met."""
    found: dict = {}

    def recorder(name):
        forward = REGISTRY[name].forward

        def run(*args, **bound):
            out = forward(*args, **bound)
            calls = found.setdefault(name, [])
            key = (tuple(np.shape(a) for a in args), repr(sorted(bound.items())))
            if len(calls) < per_op and key not in {k for k, *_ in calls}:
                calls.append((key, where[0], tuple(np.array(a, dtype=np.float64) for a in args), dict(bound),
                              np.array(out, dtype=np.float64)))
            return out
        return run

    table = {name: recorder(name) for name in REGISTRY}
    where = [None]
    with np.errstate(all="ignore"):
        for where[0], program in _programs():
            run_steps(program, table, {leaf.var: leaf.value for leaf in program.leaves})
    return {op: [c[1:] for c in calls] for op, calls in found.items()}


def cli_without(library: str, *argv):
    """The command line run in a fresh Python where importing `library` fails (as when it is not installed)."""
    script = f"import sys; sys.modules[{library!r}] = None\nfrom graphdsl.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", script, *map(str, argv)], capture_output=True, text=True, cwd=ROOT)

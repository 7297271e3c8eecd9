"""The torch backend against the NumPy one on the wide MLP step (d=1024, m=1024, q=1024, b=512).

    python benchmarks/backend_torch.py              # about a minute on 2 cores
    python benchmarks/backend_torch.py --seconds 2  # shorter

One step is `Model.grad` of run.py's D2L MLP (loss and both gradients) with
`backend="numpy"` (the default) and `backend="torch"` (the same plan's steps, each
by torch_ops, converting the leaves to tensors and the results back to NumPy), on
the CPU and, when torch sees one, on cuda. The answers are compared first (1e-10).
Times are medians of batches (run.py's best_times: pairs alternate, the ratio is
the median of the pairs' ratios), wall-clock: torch uses its own threads.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import numpy as np  # noqa: E402

import graphdsl  # noqa: E402
from run import MLP, best_times  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="time budget per comparison (default 6)")
    args = ap.parse_args(argv)
    import torch

    d = m = q = 1024
    b = 512
    model = graphdsl.parse(MLP, name="wide_mlp.gdsl", dims={"d": d, "m": m, "q": q})
    rng = np.random.default_rng(0)
    values = {"x": rng.standard_normal((d, b)), "y": rng.standard_normal((q, b)),
              "W1": rng.standard_normal((m, d)) * 0.03, "W2": rng.standard_normal((q, m)) * 0.03}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    ref_value, ref_grads = model.grad(values)
    print(f"wide MLP step (d={d}, m={m}, q={q}, b={b}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads, {os.cpu_count()} cores")
    for device in devices:
        value, grads = model.grad(values, backend="torch", device=device)
        worst = max(np.max(np.abs(grads[k] - ref_grads[k])) / np.max(np.abs(ref_grads[k])) for k in grads)
        assert abs(value - ref_value) <= 1e-10 * abs(ref_value) and worst <= 1e-10, (value, ref_value, worst)
        fns = {"torch": lambda: model.grad(values, backend="torch", device=device),
               "numpy": lambda: model.grad(values)}
        t = best_times(fns, args.seconds, pair=("torch", "numpy"), clock=time.perf_counter)
        print(f"  {device:5s}: torch backend {t['torch'] * 1e3:8.2f} ms, NumPy backend {t['numpy'] * 1e3:8.2f} ms, "
              f"torch/NumPy {t['ratio']:.2f}x (same numbers to 1e-10: largest gradient difference {worst:.1e})")
    if "cuda" not in devices:
        print("  cuda : not available on this machine (torch.cuda.is_available() is False)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

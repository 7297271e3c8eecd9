"""Build and compile time per iteration of a looped RNN, at 250, 1,000 and 4,000 iterations.

    python benchmarks/loops.py

A loop is unrolled: its body is lowered once per iteration, so build, reverse
mode and compile should cost the same per iteration whatever the length. The
columns are milliseconds per iteration (wall clock; the tests never assert
times, tests/test_loops.py counts the work instead). The recursion limit is
lowered to prove that nothing recurses per iteration.
"""
from __future__ import annotations

import sys
import time

import numpy as np

import graphdsl

RNN = """\
dim n = 8, m = 4, T = {T}
input X : [m, T]
param W : [n, n] = randn(std=0.3)
param U : [n, m] = randn(std=0.3)
param c : [n] = zeros()
h[0] = 0 * c
for t in 1..T {{
    z = W @ h[t-1] + U @ X[:, t-1] + c
    h[t] = tanh(z)
}}
J = sum(h[T] ** 2)
output J
"""


def per_iteration(T: int) -> tuple[float, float, float, int]:
    text = RNN.format(T=T)
    x = np.random.default_rng(0).standard_normal((4, T))
    start = time.perf_counter()
    model = graphdsl.parse(text, f"rnn{T}", max_ops=None)  # parse and the symbolic build
    built = time.perf_counter()
    model.grad({"X": x}, of="J")  # the concrete build, reverse mode, the plan, one run
    first = time.perf_counter()
    model.grad({"X": x}, of="J")  # the generated program (codegen) and a run
    second = time.perf_counter()
    ms = 1000.0 / T
    return (built - start) * ms, (first - built) * ms, (second - first) * ms, model.built.graph.number_of_nodes()


def main() -> int:
    sys.setrecursionlimit(1000)  # prove nothing recurses per iteration
    per_iteration(10)  # warm up: the parser, imports
    print(f"{'iterations':>10} {'nodes':>8} {'check build':>12} {'grad 1st':>10} {'grad 2nd':>10}   (ms per iteration)")
    for T in (250, 1000, 4000):
        check, first, second, nodes = per_iteration(T)
        print(f"{T:>10,} {nodes:>8,} {check:>12.3f} {first:>10.3f} {second:>10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

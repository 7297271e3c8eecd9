"""Time `graphdsl check` on large generated models (issue: front end).

    python benchmarks/check_large.py            # 10,000 statements and a 100,000-node chain

Prints wall-clock seconds; the tests never assert times.
"""
from __future__ import annotations

import sys
import time

import graphdsl


def mlp_statements(n: int) -> str:
    """n statements of a realistic mix: matmuls, activations, reductions, a def."""
    lines = ["dim d = 8, b = 4", "input x0 : [d, b]", "param W : [d, d] = randn(std=0.1)",
             "def phi(z) = tanh(z) * 0.5 + relu(z)"]
    for i in range(1, n + 1):
        kind = i % 4
        prev = f"x{i - 1}"
        expr = {0: f"W @ {prev}", 1: f"phi({prev})", 2: f"{prev} + 0.1 * sigmoid({prev})",
                3: f"{prev} - mean({prev}, axis=0, keepdims=true)"}[kind]
        lines.append(f"x{i} = {expr}")
    lines.append(f"J = sum(x{n} ** 2)")
    return "\n".join(lines) + "\n"


def chain(n: int) -> str:
    return "input x0 : []\n" + "".join(f"x{i} = x{i - 1} * 1.0001\n" for i in range(1, n + 1))


def timed(label: str, text: str) -> float:
    start = time.perf_counter()
    model = graphdsl.parse(text, label)
    seconds = time.perf_counter() - start
    print(f"{label:<34} {len(text.splitlines()):>8,} lines {model.graph.number_of_nodes():>8,} nodes "
          f"{seconds:6.2f} s")
    return seconds


def main() -> int:
    sys.setrecursionlimit(1000)  # prove nothing recurses per node
    from graphdsl.syntax import get_parser

    start = time.perf_counter()
    get_parser()
    print(f"{'build the parser (once per process)':<52} {time.perf_counter() - start:6.2f} s")
    timed("check 10,000 statements (MLP mix)", mlp_statements(10_000))
    timed("check 10,000-statement chain", chain(10_000))
    timed("check 100,000-node chain", chain(100_000))
    return 0


if __name__ == "__main__":
    sys.exit(main())

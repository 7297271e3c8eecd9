"""Time rendering a 2,000-node model to SVG (layout included), with values and gradients.

    python benchmarks/render_2000.py [--nodes 2000] [--renderer auto|system|embedded] [--out FILE.svg]

The model is a deep chain of small tanh layers (8 nodes a layer), so every
node has a value and a gradient; above 300 nodes the labels turn compact.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import graphdsl  # noqa: E402
from graphdsl.render import backends  # noqa: E402


def chain_model(layers: int) -> str:
    lines = ["dim n = 3", "input x : [n] = [0.5, -0.2, 0.1]"]
    for i in range(1, layers + 1):
        lines.append(f"param w{i} : [n] = randn(std=0.5)")
        lines.append(f"param b{i} : [n] = zeros()")
    prev = "x"
    for i in range(1, layers + 1):
        lines.append(f"h{i} = tanh(w{i} * {prev} + b{i})")
        prev = f"h{i}"
    lines.append(f"J = sum({prev} ** 2)")
    lines.append("output J")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=2000, help="about this many drawn nodes (default 2000)")
    ap.add_argument("--renderer", choices=backends.CHOICES, default=None)
    ap.add_argument("--view", default="forward", choices=("forward", "backward", "both"))
    ap.add_argument("--out", help="keep the SVG here")
    args = ap.parse_args(argv)
    layers = max(1, (args.nodes - 4) // 8)
    text = chain_model(layers)
    t0 = time.perf_counter()
    model = graphdsl.parse(text, "chain.gdsl")
    t1 = time.perf_counter()
    r = model.render(view=args.view, renderer=args.renderer)
    t2 = time.perf_counter()
    svg = r.svg()
    t3 = time.perf_counter()
    out = args.out or os.path.join(tempfile.mkdtemp(prefix="graphdsl-bench-"), "chain.svg")
    r.save(out)
    print(f"model: {layers} layers, {model.graph.number_of_nodes()} graph nodes, {len(r.scene.nodes)} drawn "
          f"({args.view} view, {'compact' if r.scene.compact else 'full'} labels)")
    print(f"renderer: {r.backend('svg')} Graphviz")
    print(f"parse + build:                {t1 - t0:7.3f} s")
    print(f"values, gradients, DOT:       {t2 - t1:7.3f} s  ({len(r.dot) / 1e6:.2f} MB of DOT)")
    print(f"layout to SVG:                {t3 - t2:7.3f} s  ({len(svg) / 1e6:.2f} MB of SVG)")
    print(f"total to SVG:                 {t3 - t0:7.3f} s")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

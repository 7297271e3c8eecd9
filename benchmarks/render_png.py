"""PNG time for a 170-node model (a 6-layer MLP with layer norm) and a 500-node model (a deep MLP).

    PYTHONPATH=. python benchmarks/render_png.py [--renderer auto|system|embedded]

Prints, for each model, its drawn nodes, the time to the SVG and the time to the PNG (the PNG is
made from the same layout: rasterised from the SVG, or by the system `dot` when that is faster).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import graphdsl  # noqa: E402
from render_models import chain, mlp_layernorm  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--renderer", default=None, choices=("auto", "system", "embedded"))
    args = ap.parse_args()
    models = [("mlp6 layernorm", mlp_layernorm(6), "forward"), ("deep mlp", chain(62), "forward")]
    for name, source, view in models:
        model = graphdsl.parse(source, "bench.gdsl")
        t0 = time.perf_counter()
        r = model.render(view=view, renderer=args.renderer)
        r.svg()
        t1 = time.perf_counter()
        png = r.png()
        t2 = time.perf_counter()
        print(f"{name:15s} {view:8s} {len(r.scene.nodes):4d} nodes drawn ({r.scene.total} in the view): "
              f"render+SVG {t1 - t0:5.2f} s, PNG {t2 - t1:5.2f} s ({len(png) / 1e6:.1f} MB), "
              f"total {t2 - t0:5.2f} s", flush=True)


if __name__ == "__main__":
    main()

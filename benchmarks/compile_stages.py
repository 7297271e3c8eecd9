"""Where the time from text to first gradient goes, stage by stage (CPU seconds, one process).

    python benchmarks/compile_stages.py                 # the T=1000 RNN (benchmarks/rnn_unrolled.py)
    python benchmarks/compile_stages.py --rnn 4000
    python benchmarks/compile_stages.py --chain 100000  # benchmarks/run.py's scalar chain
    python benchmarks/compile_stages.py --profile tottime  # and cProfile's top functions

Each stage is timed by wrapping the function api.py calls for it (parse, build, reverse
mode, plan, the memory estimate, the first run); the garbage collector's passes are timed
through gc.callbacks and reported apart (they also count inside the stage they interrupt).
The parser's tables are loaded before timing, as a CLI command has them. With --repeat N
each stage is its best (least) time over N fresh processes: load from other
processes only ever adds time.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]

# Model builds twice: symbolically in Model() (free dims unknown), then with the bound dims in compile();
# with every dim fixed, compile copies the symbolic build instead (build.as_concrete).
STAGES = [("parse", "parse_program"), ("count ops", "count_ops"), (("build (symbolic)", "build (concrete)"), "build"),
          ("copy of the build", "as_concrete"), ("reverse mode", "gradients"), ("plan", "Plan")]
METHODS = [("memory estimate", "check_memory"), ("leaf values", "leaf_values")]


def _timed(owner, name: str, label, spent: dict) -> None:
    """Time every call of owner.name under `label`; a tuple of labels names the first calls apart."""
    inner = getattr(owner, name)
    labels = [label] if isinstance(label, str) else list(label)

    def wrapper(*args, **kwargs):
        this = labels.pop(0) if len(labels) > 1 else labels[0]
        start = time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[this] = spent.get(this, 0.0) + time.process_time() - start
    setattr(owner, name, wrapper)


def measure(kind: str, n: int, profile: str | None = None) -> dict:
    """{stage: CPU seconds} from text to the first gradient, in this process."""
    import graphdsl
    from graphdsl import api, plan
    from graphdsl.syntax import get_parser

    get_parser()
    if kind == "rnn":
        from rnn_unrolled import WRT, rnn_source, rnn_values
        text, values, of, wrt = rnn_source(n), rnn_values(n), "J", WRT
    else:
        from run import chain_source
        text, values, of, wrt = chain_source(n), {"x": 0.5}, f"t{n}", ["x"]
    spent: dict = {}
    for label, name in STAGES:
        _timed(api, name, label, spent)
    for label, name in METHODS:
        _timed(api.Model, name, label, spent)
    _timed(plan.Plan, "run", "first run", spent)
    gc_start = [0.0]

    def on_gc(phase, info):
        if phase == "start":
            gc_start[0] = time.process_time()
        else:
            spent["(garbage collector)"] = spent.get("(garbage collector)", 0.0) + time.process_time() - gc_start[0]
    gc.callbacks.append(on_gc)
    profiler = None
    if profile:
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    start = time.process_time()
    model = graphdsl.Model(text, max_ops=None)  # a benchmark: no operation limit
    model.grad(values, of=of, wrt=wrt)
    total = time.process_time() - start
    if profiler is not None:
        import pstats
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats(profile).print_stats(30)
    gc.callbacks.remove(on_gc)
    compiled = next(iter(model._compiled.values()))
    staged = sum(v for k, v in spent.items() if not k.startswith("("))
    return {"nodes": model.built.graph.number_of_nodes(), "nodes with adjoints": compiled.built.graph.number_of_nodes(),
            **spent, "other": total - staged, "total": total}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rnn", type=int, default=1000, help="unrolled RNN of T steps (default 1000)")
    ap.add_argument("--chain", type=int, help="scalar chain of N operations instead")
    ap.add_argument("--repeat", type=int, default=1, help="best of N fresh processes")
    ap.add_argument("--profile", metavar="SORT", help="also print cProfile's top 30 (sorted by SORT) to stderr")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    kind, n = ("chain", args.chain) if args.chain else ("rnn", args.rnn)
    if args.child or (args.repeat == 1 and args.profile):
        print(json.dumps(measure(kind, n, args.profile)))
        return 0
    runs = []
    for _ in range(args.repeat):
        cmd = [sys.executable, os.path.abspath(__file__), "--child", f"--{kind}", str(n)]
        runs.append(json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout))
    nodes = runs[0]["nodes"]
    print(f"{kind} n={n}: {nodes:,} nodes ({runs[0]['nodes with adjoints']:,} with adjoints), CPU seconds, "
          f"best of {len(runs)} process(es), load average {os.getloadavg()[0]:.1f}")
    for key in runs[0]:
        if key.startswith("nodes"):
            continue
        value = min(r.get(key, 0.0) for r in runs)
        print(f"  {key:<22} {value:7.3f} s  {value / nodes * 1e6:6.1f} µs/node")
    return 0


if __name__ == "__main__":
    sys.exit(main())

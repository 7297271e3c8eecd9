"""Instructions executed from text to the first gradient, stage by stage (valgrind's callgrind).

    python benchmarks/instructions.py                    # the T=300 RNN of benchmarks/rnn_unrolled.py
    python benchmarks/instructions.py --rnn 1000
    python benchmarks/instructions.py --root ../other    # another checkout of graphdsl, for a before/after

Timing compile on a shared two-core machine moves by up to 70% from one process to the
next; the number of instructions moves by about 2% of the total (a stage by up to 10%: the
hash seed is fixed, addresses are not), so it tells a change of a few percent apart. It is
not time: cache misses and page faults are not counted, so a change that only saves memory
traffic shows here as little or nothing.

Each level runs in a fresh process under callgrind (about 50 times slower than without):
imports only, then parse, then Model() (parse again and the symbolic build), then the
concrete build (Model.compile), reverse mode (with the collector paused, as `Model.grad`
pauses it), the plan, and the first run; each stage is the difference between two levels.
Each process ends with os._exit, so the interpreter's teardown (freeing every object, and
a collector pass) is not counted in a level. Needs `valgrind` on the PATH.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

LEVELS = ["imports", "parse", "Model() (parse + symbolic build)", "concrete build", "reverse mode", "plan",
          "first run"]

CHILD = r"""
import sys
sys.path[:0] = [{root!r}, {here!r}]
import graphdsl
from graphdsl.api import gc_paused
from graphdsl.autodiff import gradients
from graphdsl.syntax import get_parser, parse_program
from rnn_unrolled import WRT, rnn_source, rnn_values
get_parser()
text, values, level = rnn_source({n}), rnn_values({n}), {level}
if level >= 1:
    parse_program(text, "rnn")
if level >= 2:
    model = graphdsl.Model(text, max_ops=None)
if level >= 3:
    compiled, given = model.compile(values)
if level >= 4:
    with gc_paused():
        table = gradients(compiled.built.gb, "J", WRT)
if level >= 5:
    plan = model._plan(compiled, ("J",) + tuple(table[w] for w in WRT))
if level >= 6:
    plan.run(model.leaf_values(compiled, given), tiered=True)
import os
os._exit(0)  # no teardown: freeing what a level built, and the collector's pass at exit, are not its work
"""


def count(level: int, n: int, root: str) -> int:
    """Instructions of one fresh process that runs the pipeline up to `level`."""
    code = CHILD.format(root=root, here=os.path.join(root, "benchmarks"), n=n, level=level)
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", code],
                         capture_output=True, text=True, env=env, check=True).stderr
    return int(re.search(r"Collected : (\d+)", out).group(1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rnn", type=int, default=300, help="unrolled RNN of T steps (default 300)")
    ap.add_argument("--root", default=ROOT, help="the graphdsl checkout to measure (default: this one)")
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: nothing measured", file=sys.stderr)
        return 1
    root = os.path.abspath(args.root)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = list(pool.map(lambda level: count(level, args.rnn, root), range(len(LEVELS))))
    print(f"RNN T={args.rnn} ({root}): millions of instructions (callgrind, PYTHONHASHSEED=0)")
    for level in range(1, len(LEVELS)):
        print(f"  {LEVELS[level]:<34} {(counts[level] - counts[level - 1]) / 1e6:8.1f}")
    print(f"  {'Model() to the first gradient':<34} {(counts[-1] - counts[1]) / 1e6:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

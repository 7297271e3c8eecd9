"""How quick graphdsl feels: command latency, compile time per node, steady state. One run, ratios.

    python benchmarks/speed.py            # about two minutes on 2 cores
    python benchmarks/speed.py --quick    # fewer repeats, a chain of 20,000 operations instead of 100,000

Prints, from this one run:

1. CLI latency: `graphdsl check|eval|grad` of the D2L MLP (examples/d2l_mlp.gdsl
   with its data) against `python -c "import numpy"`, run alternately as whole
   processes; the ratio is the median of the pairs' ratios, in wall-clock and in
   CPU time (the children's user+system time).
2. Compile: an RNN unrolled over T steps (benchmarks/rnn_unrolled.py), from
   parse to the first gradient, in a fresh process each time (imports not
   counted, the parser's tables from the cache): microseconds per node of the
   model's graph at T=1000, and the T=4000 time against the T=1000 time (linear
   would be 4x). T=1000 and T=4000 alternate; each figure is the best of the runs.
   The second call's time, which generates and compiles the program, is shown too.
   Then a long scalar chain (benchmarks/run.py's) once, parse to first gradient: of
   100,000 operations (266,670 nodes: a literal constant for two of every three), then
   of 37,500 operations (100,003 nodes).
3. Steady state: the T=1000 RNN's forward and backward pass (`Model.grad`)
   against the same computation written by hand in NumPy (`numpy_rnn_step`), and
   the D2L MLP step with b=1 (`numpy_step` in run.py); PyTorch eager when
   installed. Pairs of short batches, the median of the pairs' ratios, each batch
   timed on the wall clock and in CPU time (see run.py's `both_times`); the
   answers are compared first.

Every figure is given in wall-clock time and in CPU time (time.process_time, or the
children's rusage for whole processes): on a machine shared with other work the
wall clock counts their time too. `benchmarks/compile_stages.py` breaks the compile
figure down by stage.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]

import numpy as np  # noqa: E402

import graphdsl  # noqa: E402
from rnn_unrolled import WRT, numpy_rnn_step, rnn_source, rnn_values  # noqa: E402
from run import LAM, MLP, both_times, chain_source, numpy_step, torch, torch_stepper  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
D2L = ["examples/d2l_mlp.gdsl", "--load", "examples/d2l_mlp.json"]
CLI = {"check": ["check", "examples/d2l_mlp.gdsl"], "eval": ["eval"] + D2L, "grad": ["grad"] + D2L}
BARS = {"cli": 2.5, "us_per_node": 40.0, "growth": 4.6, "rnn": 1.3, "tiny": 1.3}


# ---- 1. command latency ------------------------------------------------------------------------

def _process(argv) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def compile_bytecode() -> None:
    """Write graphdsl's bytecode (__pycache__) before the commands are timed, as `pip install` does.

    Run from a source tree with PYTHONDONTWRITEBYTECODE set, every command would otherwise
    compile graphdsl's sources again (about 0.12 s of a 0.3 s `grad` here), which an
    installed package never does; NumPy's own bytecode was written when it was installed.
    """
    import compileall

    compileall.compile_dir(os.path.join(ROOT, "graphdsl"), quiet=1)


def cli_rows(runs: int) -> list:
    numpy_cmd = [sys.executable, "-c", "import numpy"]
    compile_bytecode()
    rows = []
    for name, args in CLI.items():
        cmd = [sys.executable, "-m", "graphdsl.cli"] + args
        _process(cmd)  # warm the disk cache and the parser cache
        _process(numpy_cmd)
        ours, base = [], []
        for k in range(runs):
            pair = (cmd, numpy_cmd) if k % 2 == 0 else (numpy_cmd, cmd)
            got = {id(c): _process(c) for c in pair}
            ours.append(got[id(cmd)])
            base.append(got[id(numpy_cmd)])
        wall = statistics.median(a[0] / b[0] for a, b in zip(ours, base))
        cpu = statistics.median(a[1] / b[1] for a, b in zip(ours, base))
        rows.append((name, statistics.median(a[0] for a in ours), statistics.median(b[0] for b in base), wall, cpu))
    return rows


# ---- 2. compile ------------------------------------------------------------------------------------

COMPILE_CHILD = r"""
import json, sys, time
sys.path[:0] = [{root!r}, {here!r}]
import graphdsl
from graphdsl.syntax import get_parser
get_parser()
kind, n = sys.argv[1], int(sys.argv[2])
if kind == "rnn":
    from rnn_unrolled import WRT, rnn_source, rnn_values
    text, values, of, wrt = rnn_source(n), rnn_values(n), "J", WRT
else:
    from run import chain_source
    text, values, of, wrt = chain_source(n), {{"x": 0.5}}, "t%d" % n, ["x"]
w0, c0 = time.perf_counter(), time.process_time()
model = graphdsl.Model(text, max_ops=None)  # a benchmark: no operation limit
model.grad(values, of=of, wrt=wrt)
w1, c1 = time.perf_counter(), time.process_time()
model.grad(values, of=of, wrt=wrt)
w2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({{"nodes": model.built.graph.number_of_nodes(), "wall": w1 - w0, "cpu": c1 - c0,
                  "second_wall": w2 - w1, "second_cpu": c2 - c1}}))
"""


def _compile_once(kind: str, n: int) -> dict:
    code = COMPILE_CHILD.format(root=ROOT, here=HERE)
    out = subprocess.run([sys.executable, "-c", code, kind, str(n)], cwd=ROOT, env=ENV, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def compile_rows(runs: int, chain: int) -> dict:
    best: dict = {}
    for _ in range(runs):
        for T in (1000, 4000):
            got = _compile_once("rnn", T)
            old = best.get(T)
            best[T] = got if old is None else {k: min(v, old[k]) for k, v in got.items()}
    for n in (chain, chain * 3 // 8):  # n operations, then about n nodes (an operation is 2.67 nodes here)
        best["chain", n] = _compile_once("chain", n)
    return best


# ---- 3. steady state --------------------------------------------------------------------------------

def torch_rnn_step(v):
    t = {k: torch.from_numpy(np.array(a)) for k, a in v.items()}
    params = {k: t[k].clone().requires_grad_() for k in WRT}

    def step():
        for p in params.values():
            p.grad = None
        h = torch.zeros((3, 1), dtype=torch.float64)
        for x in t["xs"]:
            h = torch.tanh(params["W_xh"] @ x + params["W_hh"] @ h + params["b_h"])
        J = ((params["W_hy"] @ h + params["b_y"] - t["target"]) ** 2).mean()
        J.backward()
        return J, {k: p.grad for k, p in params.items()}
    return step


def steady_rows(seconds: float) -> list:
    rows = []
    T = 1000
    v = rnn_values(T)
    model = graphdsl.Model(rnn_source(T), max_ops=None)
    J, grads = model.grad(v, of="J", wrt=WRT)
    J_np, grads_np = numpy_rnn_step(v)
    assert abs(float(J) - J_np) <= 1e-12 * abs(J_np)
    assert all(np.allclose(grads[k], grads_np[k], rtol=1e-10, atol=1e-14) for k in WRT)
    fns = {"graphdsl": lambda: model.grad(v, of="J", wrt=WRT), "numpy": lambda: numpy_rnn_step(v)}
    if torch is not None:
        fns["torch"] = torch_rnn_step(v)
    rows.append(("RNN T=1000 forward+backward", both_times(fns, seconds), "rnn"))

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 1)), rng.standard_normal((3, 1))
    W1, W2 = 0.1 * rng.standard_normal((5, 4)), 0.1 * rng.standard_normal((3, 5))
    mlp = graphdsl.Model(MLP)
    values = {"x": x, "y": y, "W1": W1, "W2": W2}
    J, g = mlp.grad(values, of="J", wrt=["W1", "W2"])
    J_np, dW1, dW2 = numpy_step(x, y, W1, W2, LAM)
    assert np.isclose(float(J), J_np, rtol=1e-13) and np.allclose(g["W1"], dW1) and np.allclose(g["W2"], dW2)
    fns = {"graphdsl": lambda: mlp.grad(values, of="J", wrt=["W1", "W2"]), "numpy": lambda: numpy_step(x, y, W1, W2)}
    if torch is not None:
        fns["torch"] = torch_stepper(x, y, W1, W2)
    rows.append(("D2L MLP step, b=1", both_times(fns, seconds), "tiny"))
    return rows


# ---- the report ----------------------------------------------------------------------------------------

def met(value, bar) -> str:
    return "yes" if value <= bar else "NO"


def met_both(wall, cpu, bar) -> str:
    """Whether the bar is met on the wall clock and on CPU time (what load from other processes disturbs less)."""
    return f"wall {met(wall, bar)}, CPU {met(cpu, bar)}"


SECTIONS = ("cli", "compile", "steady")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, a chain of 20,000 operations")
    ap.add_argument("--only", choices=SECTIONS, action="append", help="run only this section (repeatable)")
    args = ap.parse_args(argv)
    runs, seconds, chain = (5, 3.0, 20_000) if args.quick else (9, 8.0, 100_000)
    print(f"graphdsl speed: Python {sys.version.split()[0]}, NumPy {np.__version__}, "
          f"PyTorch {torch.__version__ if torch is not None else 'not installed'}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("Wall-clock and CPU time (the process's own) side by side: on a shared machine other processes "
          "inflate the wall clock far more than CPU time.")
    only = set(args.only or SECTIONS)
    if "cli" in only:
        report_cli(runs)
    if "compile" in only:
        report_compile(runs, chain)
    if "steady" in only:
        report_steady(seconds)
    return 0


def report_cli(runs: int) -> None:
    print("\n1. command latency against `python -c \"import numpy\"` (whole processes, alternating, "
          f"{runs} pairs; graphdsl's bytecode written first, as pip install does)")
    print(f"   {'command':<8} {'graphdsl':>9} {'numpy':>8} {'wall ratio':>11} {'CPU ratio':>10}  bar   met")
    for name, ours, base, wall, cpu in cli_rows(runs):
        print(f"   {name:<8} {ours * 1e3:7.0f}ms {base * 1e3:6.0f}ms {wall:10.2f}x {cpu:9.2f}x  "
              f"{BARS['cli']}x  {met_both(wall, cpu, BARS['cli'])}")


def report_compile(runs: int, chain: int) -> None:
    print(f"\n2. compile: parse through the first gradient, fresh process, best of {max(2, runs // 2)}")
    best = compile_rows(max(2, runs // 2), chain)
    for T in (1000, 4000):
        r = best[T]
        print(f"   RNN T={T}: {r['nodes']:,} nodes, {r['wall']:.2f} s wall ({r['wall'] / r['nodes'] * 1e6:.1f} µs/node), "
              f"{r['cpu']:.2f} s CPU ({r['cpu'] / r['nodes'] * 1e6:.1f} µs/node); second call (generates and "
              f"compiles the program) {r['second_wall']:.2f} s wall, {r['second_cpu']:.2f} s CPU")
    per_node = best[1000]["wall"] / best[1000]["nodes"] * 1e6
    per_node_cpu = best[1000]["cpu"] / best[1000]["nodes"] * 1e6
    growth = best[4000]["wall"] / best[1000]["wall"]
    growth_cpu = best[4000]["cpu"] / best[1000]["cpu"]
    print(f"   µs per node at T=1000: {per_node:.1f} wall, {per_node_cpu:.1f} CPU   bar {BARS['us_per_node']:.0f}   "
          f"met: {met_both(per_node, per_node_cpu, BARS['us_per_node'])}")
    print(f"   T=4000 / T=1000: {growth:.2f}x wall, {growth_cpu:.2f}x CPU   bar {BARS['growth']}x   "
          f"met: {met_both(growth, growth_cpu, BARS['growth'])}")
    for n in (chain, chain * 3 // 8):
        c = best["chain", n]
        print(f"   scalar chain of {n:,} operations, {c['nodes']:,} nodes: {c['wall']:.2f} s wall, {c['cpu']:.2f} s "
              f"CPU to the first gradient ({c['cpu'] / c['nodes'] * 1e6:.1f} µs/node CPU); second call "
              f"{c['second_wall']:.2f} s wall")


def report_steady(seconds: float) -> None:
    print("\n3. steady state against hand-written NumPy (pairs of batches, median of the pairs' ratios)")
    for what, r, bar in steady_rows(seconds):
        (gw, gc_), (nw, nc), (rw, rc) = r["graphdsl"], r["numpy"], r["ratio"]
        extra = (f"; PyTorch eager {r['torch'][1] * 1e3:.3f} ms CPU ({r['torch'][1] / nc:.2f}x NumPy)"
                 if "torch" in r else "")
        print(f"   {what}: graphdsl {gc_ * 1e3:.3f} ms CPU ({gw * 1e3:.3f} wall), NumPy {nc * 1e3:.3f} ms CPU "
              f"({nw * 1e3:.3f} wall), ratio {rw:.2f}x wall, {rc:.2f}x CPU   bar {BARS[bar]}x   "
              f"met: {met_both(rw, rc, BARS[bar])}{extra}")


if __name__ == "__main__":
    sys.exit(main())

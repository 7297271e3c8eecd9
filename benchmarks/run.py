"""graphdsl against hand-written NumPy (and PyTorch eager and micrograd when installed), in one process.

    python benchmarks/run.py            # everything, about eight minutes on 2 cores
    python benchmarks/run.py --quick    # fewer repeats, and a chain of 20,000 operations instead of 100,000

Prints one table of times and ratios from this one run. graphdsl and the
hand-written NumPy code run in pairs of short batches, back to back, for about
ten seconds a row; a time is the median of its batches and a ratio the median of
the pairs' ratios, so that a load that comes and goes on a shared machine slows
both sides alike. The garbage collector is paused within a batch, as timeit
does. graphdsl is timed through its public
API (`Model.grad`, which checks values and results for NaN/Inf); its one-time
parse, differentiation and compilation are reported apart. PyTorch and
micrograd build their graph anew on every call, which is their cost too.

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, when set, slow a current NumPy down: the
script re-executes itself once without them (for its own process only).
"""
from __future__ import annotations

import os
import sys

_BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(v in os.environ for v in _BLAS_VARS) and os.environ.get("GRAPHDSL_BENCH_CHILD") != "1":
    _env = {k: v for k, v in os.environ.items() if k not in _BLAS_VARS}
    _env["GRAPHDSL_BENCH_CHILD"] = "1"
    os.execve(sys.executable, [sys.executable] + sys.argv, _env)

import argparse  # noqa: E402
import gc  # noqa: E402
import importlib.util  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

import numpy as np  # noqa: E402

import graphdsl  # noqa: E402

try:
    import torch
except Exception:  # noqa: BLE001 - optional
    torch = None
try:
    from micrograd.engine import Value
except Exception:  # noqa: BLE001 - optional
    Value = None

MLP = """
dim d = 4, m = 5, q = 3
dim b
input x : [d, b]
input y : [q, b]
param W1 : [m, d] = randn(std=0.1)
param W2 : [q, m] = randn(std=0.1)
const lam = 0.01

def phi(z) = relu(z)
def loss(o, y) = 0.5 * sum((o - y) ** 2) / b

z = W1 @ x; h = phi(z); o = W2 @ h
L = loss(o, y)
s = lam / 2 * (sqnorm(W1) + sqnorm(W2))
J = L + s
output J
"""
LAM = 0.01
SIZES = [("tiny", (4, 5, 3, 1), 2.0), ("MNIST-like", (784, 256, 10, 64), 1.10),
         ("wide", (1024, 1024, 1024, 512), 1.05)]


# ---- the same MLP step, by hand ---------------------------------------------------------

def numpy_step(x, y, W1, W2, lam=LAM):
    """Forward and backward of D2L 5.3's MLP with weight decay, as one would write it in NumPy."""
    b = x.shape[1]
    z = W1 @ x
    h = np.maximum(z, 0.0)
    o = W2 @ h
    r = o - y
    J = 0.5 * np.sum(r ** 2) / b + lam / 2 * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
    g = r / b  # dJ/do
    dW2 = g @ h.T + lam * W2
    dz = (W2.T @ g) * (z > 0)
    dW1 = dz @ x.T + lam * W1
    return J, dW1, dW2


def torch_stepper(x, y, W1, W2, lam=LAM):
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    W1t = torch.from_numpy(W1.copy()).requires_grad_()
    W2t = torch.from_numpy(W2.copy()).requires_grad_()
    b = x.shape[1]

    def step():
        W1t.grad = None
        W2t.grad = None
        o = W2t @ torch.relu(W1t @ xt)
        J = 0.5 * ((o - yt) ** 2).sum() / b + lam / 2 * ((W1t ** 2).sum() + (W2t ** 2).sum())
        J.backward()
        return J, W1t.grad, W2t.grad
    return step


def micrograd_stepper(x, y, W1, W2, lam=LAM):
    d, b = x.shape
    m, q = W1.shape[0], W2.shape[0]

    def step():
        w1 = [[Value(float(v)) for v in row] for row in W1]
        w2 = [[Value(float(v)) for v in row] for row in W2]
        J = Value(0.0)
        for j in range(b):
            h = [sum((w1[i][k] * float(x[k, j]) for k in range(d)), Value(0.0)).relu() for i in range(m)]
            for i in range(q):
                r = sum((w2[i][k] * h[k] for k in range(m)), Value(0.0)) - float(y[i, j])
                J = J + 0.5 * r ** 2 / b
        J = J + lam / 2 * (sum((v ** 2 for row in w1 for v in row), Value(0.0))
                           + sum((v ** 2 for row in w2 for v in row), Value(0.0)))
        J.backward()
        return J.data, [[v.grad for v in row] for row in w1], [[v.grad for v in row] for row in w2]
    return step


# ---- scalar chains ------------------------------------------------------------------------------

def chain_source(n: int) -> str:
    """n scalar operations: * 1.0001, + 0.001, relu, repeated."""
    lines = ["input x : []", "t0 = x"]
    for i in range(1, n + 1):
        lines.append(f"t{i} = " + (f"t{i - 1} * 1.0001", f"t{i - 1} + 0.001", f"relu(t{i - 1})")[(i - 1) % 3])
    lines.append(f"output t{n}")
    return "\n".join(lines) + "\n"


def micrograd_chain(n):
    def run():
        x = Value(0.5)
        t = x
        for i in range(n):
            k = i % 3
            t = t * 1.0001 if k == 0 else t + 0.001 if k == 1 else t.relu()
        t.backward()
        return x.grad
    return run


def torch_chain(n):
    def run():
        x = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
        t = x
        for i in range(n):
            k = i % 3
            t = t * 1.0001 if k == 0 else t + 0.001 if k == 1 else torch.relu(t)
        t.backward()
        return x.grad
    return run


# ---- timing ---------------------------------------------------------------------------------------

def best_times(fns: dict, seconds: float, pair=("graphdsl", "numpy"), clock=time.perf_counter) -> dict:
    """Seconds per call of each function, and graphdsl's ratio to NumPy ("ratio").

    On a shared machine the load comes and goes within seconds. graphdsl and NumPy
    are therefore timed in pairs of short batches, back to back (which one goes
    first alternates), and the ratio is the median of the pairs' ratios: a change
    of load between pairs cancels out. Times are the medians of the batches.
    PyTorch's thread pool spins for a while after each call and would steal the
    cores from whatever ran next, so it and micrograd are timed in batches of their own.
    `clock`: time.perf_counter (wall) or time.process_time (this process's CPU time,
    which a busy machine's other processes disturb much less).
    """
    both = both_times(fns, seconds, pair)
    which = 1 if clock is time.process_time else 0
    return {k: v[which] for k, v in both.items()}


def both_times(fns: dict, seconds: float, pair=("graphdsl", "numpy")) -> dict:
    """As best_times, with every time and ratio a (wall, CPU) pair: each batch is timed on both clocks at once."""
    pair = [k for k in pair if k in fns]
    samples = _batches({k: fns[k] for k in pair}, seconds)
    out = {k: _medians(v) for k, v in samples.items()}
    if len(pair) == 2:
        out["ratio"] = _medians([(a[0] / b[0], a[1] / b[1]) for a, b in zip(samples[pair[0]], samples[pair[1]])])
    for k in fns:
        if k not in pair:
            out[k] = _medians(_batches({k: fns[k]}, seconds / 2)[k])
    return out


def _medians(samples) -> tuple:
    return tuple(statistics.median(s[i] for s in samples) for i in (0, 1))


def _batches(fns, seconds):
    """{name: [(wall seconds, CPU seconds) per call of each batch]}."""
    calls = {}
    for k, f in fns.items():  # warm up (compiled plans, caches, specialised bytecode) and size a batch
        f()
        f()  # a plan's second call generates its program: not a call to size batches by
        start = time.perf_counter()
        f()
        f()
        once = max((time.perf_counter() - start) / 2, 1e-7)
        calls[k] = max(1, int(0.02 / once))  # batches of about 20 ms
    samples = {k: [] for k in fns}
    deadline = time.perf_counter() + seconds
    rounds = 0
    while rounds < 7 or time.perf_counter() < deadline:
        for k, f in (fns.items() if rounds % 2 == 0 else reversed(fns.items())):
            n = calls[k]
            gc.disable()
            try:
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(n):
                    f()
                samples[k].append(((time.perf_counter() - wall) / n, (time.process_time() - cpu) / n))
            finally:
                gc.enable()
        rounds += 1
    return samples


def peak_bytes(f) -> int:
    """Peak of memory traced during one call, above what was allocated before it."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = f()
        peak = tracemalloc.get_traced_memory()[1] - base
        del result
    finally:
        tracemalloc.stop()
    return peak


# ---- the table ----------------------------------------------------------------------------------------

class Table:
    def __init__(self):
        self.rows = []

    def add(self, what, graphdsl_, numpy_="", ratio="", target="", met="", torch_="", micrograd_=""):
        self.rows.append((what, graphdsl_, numpy_, ratio, target, met, torch_, micrograd_))
        print(f"  .. {what}: {graphdsl_}  {ratio}", file=sys.stderr, flush=True)

    def print(self):
        head = ("benchmark", "graphdsl", "NumPy by hand", "ratio", "target", "met", "PyTorch eager", "micrograd")
        widths = [max(len(str(r[i])) for r in self.rows + [head]) for i in range(len(head))]
        line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
        print(line(head))
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for r in self.rows:
            print(line(r))


def us(seconds):
    return f"{seconds * 1e6:,.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:,.2f} ms"


def ok(flag):
    return "yes" if flag else "NO"


def mlp_rows(table, args):
    rng = np.random.default_rng(0)
    for label, (d, m, q, b), target in SIZES:
        x, y = rng.standard_normal((d, b)), rng.standard_normal((q, b))
        W1, W2 = 0.1 * rng.standard_normal((m, d)), 0.1 * rng.standard_normal((q, m))
        model = graphdsl.parse(MLP, f"mlp-{label}.gdsl", dims={"d": d, "m": m, "q": q})
        values = {"x": x, "y": y, "W1": W1, "W2": W2}
        J, grads = model.grad(values, of="J", wrt=["W1", "W2"])
        Jn, dW1, dW2 = numpy_step(x, y, W1, W2)
        assert np.allclose(J, Jn, rtol=1e-10) and np.allclose(grads["W1"], dW1, rtol=1e-9, atol=1e-12) \
            and np.allclose(grads["W2"], dW2, rtol=1e-9, atol=1e-12), f"{label}: graphdsl and NumPy disagree"
        fns = {"graphdsl": lambda: model.grad(values, of="J", wrt=["W1", "W2"]),
               "numpy": lambda: numpy_step(x, y, W1, W2)}
        if torch is not None:
            fns["torch"] = torch_stepper(x, y, W1, W2)
            Jt, g1, g2 = fns["torch"]()
            assert np.allclose(g1.numpy(), dW1, rtol=1e-9, atol=1e-12), f"{label}: PyTorch disagrees"
        if Value is not None and label == "tiny":
            fns["micrograd"] = micrograd_stepper(x, y, W1, W2)
            Jm, g1, _ = fns["micrograd"]()
            assert np.allclose(np.array(g1), dW1, rtol=1e-9, atol=1e-12), "micrograd disagrees"
        t = best_times(fns, args.seconds * (3 if label == "wide" else 1))
        ratio = t["ratio"]
        rel = lambda k: f"{us(t[k])} ({t[k] / t['numpy']:.1f}x)" if k in t else "n/a"  # noqa: E731
        table.add(f"MLP step {label} (d={d}, m={m}, q={q}, b={b})", us(t["graphdsl"]), us(t["numpy"]),
                  f"{ratio:.2f}x", f"≤ {target:.2f}x", ok(ratio <= target), rel("torch"),
                  rel("micrograd") if label == "tiny" else "n/a")
        if label == "wide":
            mem_rows(table, model, values, x, y, W1, W2)


def mem_rows(table, model, values, x, y, W1, W2):
    ours = peak_bytes(lambda: model.grad(values, of="J", wrt=["W1", "W2"]))
    theirs = peak_bytes(lambda: numpy_step(x, y, W1, W2))
    ratio = ours / theirs
    table.add("peak memory, wide step (tracemalloc)", f"{ours / 2**20:,.1f} MiB", f"{theirs / 2**20:,.1f} MiB",
              f"{ratio:.2f}x", "≤ 1.25x", ok(ratio <= 1.25), "n/a", "n/a")


def chain_rows(table, args):
    n1 = 1000
    n2 = 20_000 if args.quick else 100_000
    model = graphdsl.parse(chain_source(n1), "chain-1k.gdsl")
    value, grads = model.grad({"x": 0.5}, wrt=["x"])
    fns = {"graphdsl": lambda: model.grad({"x": 0.5}, wrt=["x"])}
    if torch is not None:
        fns["torch"] = torch_chain(n1)
        assert abs(float(fns["torch"]()) - float(grads["x"])) < 1e-9
    if Value is not None:
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * n1))
        fns["micrograd"] = micrograd_chain(n1)
        assert abs(fns["micrograd"]() - float(grads["x"])) < 1e-9
    start = time.perf_counter()
    big = graphdsl.parse(chain_source(n2), "chain-big.gdsl")
    built = time.perf_counter()
    big.grad({"x": 0.5}, wrt=["x"])
    compiled = time.perf_counter()
    fns["big"] = lambda: big.grad({"x": 0.5}, wrt=["x"])
    # the long chain is timed in pairs with the short one: the ratio of per-node times
    t = best_times(fns, args.seconds, pair=("big", "graphdsl"))
    per = {k: t[k] / (n2 if k == "big" else n1) for k in fns}
    rel = lambda k: f"{per[k] * 1e6:.2f} µs/op" if k in per else "n/a"  # noqa: E731
    table.add("scalar chain, 1,000 operations (mul, add, relu), fwd+bwd", rel("graphdsl"), "", "",
              "≤ 1.0 µs/op", ok(per["graphdsl"] <= 1e-6), rel("torch"), rel("micrograd"))
    ratio = t["ratio"] * n1 / n2
    table.add(f"scalar chain, {n2:,} operations: per op against 1,000", f"{per['big'] * 1e6:.3f} µs/op", "",
              f"{ratio:.2f}x", "≤ 1.5x", ok(ratio <= 1.5), "", "")
    table.notes.append(f"chain of {n2:,} operations ({len(big.built.graph):,} nodes), once: parse + build "
                       f"{built - start:.1f} s, gradient graph + compile {compiled - built:.1f} s")
    del fns, big, model
    gc.collect()


def check_row(table, args):
    spec = importlib.util.spec_from_file_location("check_large", os.path.join(HERE, "check_large.py"))
    if spec is None or not os.path.exists(os.path.join(HERE, "check_large.py")):
        table.add("check, 10,000 statements", "n/a")
        return
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from graphdsl.syntax import parse_program

    text = mod.mlp_statements(10_000)
    path = os.path.join(tempfile.mkdtemp(prefix="graphdsl-bench-"), "big.gdsl")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    parse_program("x = 1\n", "warm.gdsl")  # the parser is built once per process; time a model, not lark
    start = time.perf_counter()
    graphdsl.load(path)
    total = time.perf_counter() - start
    start = time.perf_counter()
    parse_program(text, path)
    parse = time.perf_counter() - start
    table.add("check, 10,000 statements (graphdsl.load)", f"{total:.2f} s", "", "", "≤ 2 s", ok(total <= 2.0))
    table.notes.append(f"check of 10,000 statements: parsing (syntax.py) {parse:.2f} s, building and shape "
                       f"checks (build.py) {total - parse:.2f} s")


def render_row(table, args):
    path = os.path.join(HERE, "render_2000.py")
    if importlib.util.find_spec("graphdsl.render") is None or not os.path.exists(path):
        table.add("render a 2,000-node graph to SVG", "n/a")
        return
    spec = importlib.util.spec_from_file_location("render_2000", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    try:
        start = time.perf_counter()
        model = graphdsl.parse(mod.chain_model((2000 - 4) // 8), "chain.gdsl")
        svg = model.render(view="forward").svg()
        seconds = time.perf_counter() - start
        table.add("render a 2,000-node graph to SVG (parse, values, layout)", f"{seconds:.2f} s", "", "", "", "",
                  "", "")
        table.notes.append(f"render: {len(svg) / 1e6:.2f} MB of SVG")
    except Exception as err:  # noqa: BLE001 - report, don't stop the other rows
        table.add("render a 2,000-node graph to SVG", f"failed: {type(err).__name__}: {err}"[:80])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and a long chain of 20,000 operations")
    ap.add_argument("--seconds", type=float, default=None, help="time spent on each measurement (default 10)")
    ap.add_argument("--only", default="mlp,chain,check,render", help="comma-separated: mlp,chain,check,render")
    args = ap.parse_args(argv)
    args.seconds = args.seconds or (3.0 if args.quick else 10.0)
    only = set(args.only.split(","))
    table = Table()
    table.notes = []
    if "mlp" in only:
        mlp_rows(table, args)
    if "chain" in only:
        chain_rows(table, args)
    if "check" in only:
        check_row(table, args)
    if "render" in only:
        render_row(table, args)
    print()
    print(f"graphdsl benchmarks: Python {platform.python_version()}, NumPy {np.__version__}, "
          f"PyTorch {torch.__version__ if torch is not None else 'not installed'}, "
          f"micrograd {'installed' if Value is not None else 'not installed'}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    try:
        from threadpoolctl import threadpool_info

        blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')}, {i.get('num_threads')} threads)"
                for i in threadpool_info() if i.get("user_api") == "blas"]
        print("BLAS: " + ", ".join(blas))
    except Exception:  # noqa: BLE001 - optional
        pass
    print()
    table.print()
    for note in table.notes:
        print(f"- {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

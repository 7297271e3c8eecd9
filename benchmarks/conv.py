"""A LeNet-sized forward + backward pass: graphdsl's compiled plan against PyTorch eager (CPU, float64).

    python benchmarks/conv.py              # batch 64 of 1x28x28 images
    python benchmarks/conv.py --batch 16

LeNet-5 as D2L writes it: conv 6@5x5 (padding 2), sigmoid, avg pool 2; conv
16@5x5, sigmoid, avg pool 2; then 120, 84, 10 dense with cross-entropy on
integer labels. Prints the median of several timed runs of each and their
ratio; the gradients are compared first, so the two compute the same thing.
The tests never assert times.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

# Both sides on one thread: PyTorch through set_num_threads, NumPy's BLAS through these (read at
# import). On a shared machine a threaded BLAS also stalls when the other core is busy.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

import graphdsl  # noqa: E402

LENET = """
dim N
input x : [N, 1, 28, 28]
input labels : [N]
param w1 : [6, 1, 5, 5] = randn(std=0.2)
param b1 : [1, 6, 1, 1] = zeros()
param w2 : [16, 6, 5, 5] = randn(std=0.1)
param b2 : [1, 16, 1, 1] = zeros()
param v1 : [400, 120] = glorot()
param v2 : [120, 84] = glorot()
param v3 : [84, 10] = glorot()
h1 = avg_pool2d(sigmoid(conv2d(x, w1, padding=2) + b1), 2)
h2 = avg_pool2d(sigmoid(conv2d(h1, w2) + b2), 2)
h3 = sigmoid(flatten(h2) @ v1)
h4 = sigmoid(h3 @ v2)
J = cross_entropy(h4 @ v3, labels)
output J
"""
PARAMS = ["w1", "b1", "w2", "b2", "v1", "v2", "v3"]


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm up (plans compile, caches fill)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    import torch
    F = torch.nn.functional
    torch.set_num_threads(1)

    rng = np.random.default_rng(0)
    model = graphdsl.parse(LENET, "lenet")
    data = {"x": rng.standard_normal((args.batch, 1, 28, 28)), "labels": rng.integers(0, 10, args.batch)}
    compiled, given = model.compile(data)
    values = {**model.leaf_values(compiled, given), **data}
    t = {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=k in PARAMS) for k, v in values.items()}

    def ours():
        return model.grad(values, of="J", wrt=PARAMS)

    def theirs():
        h1 = F.avg_pool2d(torch.sigmoid(F.conv2d(t["x"], t["w1"], padding=2) + t["b1"]), 2)
        h2 = F.avg_pool2d(torch.sigmoid(F.conv2d(h1, t["w2"]) + t["b2"]), 2)
        h4 = torch.sigmoid(torch.sigmoid(h2.flatten(1) @ t["v1"]) @ t["v2"])
        loss = F.cross_entropy(h4 @ t["v3"], t["labels"].long())
        return loss, torch.autograd.grad(loss, [t[p] for p in PARAMS])

    (j, grads), (tj, tgrads) = ours(), theirs()
    worst = max(float(np.max(np.abs(grads[p] - g.numpy())) / max(np.max(np.abs(g.numpy())), 1e-300))
                for p, g in zip(PARAMS, tgrads))
    print(f"LeNet-5, batch {args.batch}, float64, one thread: loss {float(j):.6f} (PyTorch {tj.item():.6f}), "
          f"largest relative gradient difference {worst:.1e}")
    mine, torch_s = median_seconds(ours, args.repeats), median_seconds(theirs, args.repeats)
    print(f"forward + backward: graphdsl {mine * 1e3:.1f} ms, PyTorch eager {torch_s * 1e3:.1f} ms, "
          f"ratio {mine / torch_s:.2f}x")


if __name__ == "__main__":
    main()

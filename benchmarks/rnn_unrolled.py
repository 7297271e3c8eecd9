"""An RNN unrolled over T steps (examples/rnn.gdsl written out T times), with data.

    python benchmarks/rnn_unrolled.py 1000 > rnn1000.gdsl

`rnn_source(T)` is the model text, `rnn_values(T, seed)` its inputs and targets,
`numpy_rnn_step(values)` the same forward and backward pass written by hand.
"""
from __future__ import annotations

import sys

import numpy as np

D, H, B = 2, 3, 4


def rnn_source(T: int) -> str:
    lines = [f"dim d = {D}, hdim = {H}, T = {T}", "dim b",
             "input xs : [T, d, b]", "input target : [1, b]",
             "param W_xh : [hdim, d] = randn(std=0.5)", "param W_hh : [hdim, hdim] = randn(std=0.5)",
             "param b_h : [hdim, 1] = zeros()", "param W_hy : [1, hdim] = randn(std=0.5)",
             "param b_y : [1, 1] = zeros()", "const h0 : [hdim, 1] = zeros()",
             "def cell(x, h) = tanh(W_xh @ x + W_hh @ h + b_h)"]
    lines += [f"h{t + 1} = cell(xs[{t}], h{t})" for t in range(T)]
    lines += [f"yhat = W_hy @ h{T} + b_y", "J = mse(yhat, target)", "output J"]
    return "\n".join(lines) + "\n"


def rnn_values(T: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"xs": rng.standard_normal((T, D, B)), "target": rng.standard_normal((1, B)),
            "W_xh": 0.5 * rng.standard_normal((H, D)), "W_hh": 0.5 * rng.standard_normal((H, H)),
            "b_h": np.zeros((H, 1)), "W_hy": 0.5 * rng.standard_normal((1, H)), "b_y": np.zeros((1, 1))}


if __name__ == "__main__":
    sys.stdout.write(rnn_source(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))


WRT = ["W_xh", "W_hh", "b_h", "W_hy", "b_y"]


def numpy_rnn_step(v: dict):
    """J and its gradients with respect to WRT, written by hand (backpropagation through time)."""
    xs, W_xh, W_hh, b_h = v["xs"], v["W_xh"], v["W_hh"], v["b_h"]
    hs = [np.zeros((W_hh.shape[0], xs.shape[2]))]  # h0 = 0 (broadcast over the batch)
    for x in xs:
        hs.append(np.tanh(W_xh @ x + W_hh @ hs[-1] + b_h))
    e = v["W_hy"] @ hs[-1] + v["b_y"] - v["target"]
    J = np.mean(e ** 2)
    dy = e * (2.0 / e.size)
    dW_xh, dW_hh, db_h = np.zeros_like(W_xh), np.zeros_like(W_hh), np.zeros_like(b_h)
    dh = v["W_hy"].T @ dy
    for t in range(len(xs) - 1, -1, -1):
        da = dh * (1.0 - hs[t + 1] ** 2)
        dW_xh += da @ xs[t].T
        dW_hh += da @ hs[t].T
        db_h += da.sum(axis=1, keepdims=True)
        dh = W_hh.T @ da
    return J, {"W_xh": dW_xh, "W_hh": dW_hh, "b_h": db_h, "W_hy": dy @ hs[-1].T,
               "b_y": dy.sum(axis=1, keepdims=True)}

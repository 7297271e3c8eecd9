"""Generated models for the rendering tests and benchmarks: sizes a person meets past the toy examples."""
from __future__ import annotations


def mlp_layernorm(layers: int = 6, width: int = 8) -> str:
    """An MLP of `layers` blocks (linear, layer norm, tanh), about 170 nodes at 6 layers."""
    lines = [f"dim d = {width}", "dim b = 4", "input x : [d, b] = randn(std=1)", "input target : [d, b] = randn(std=1)", "const eps = 1e-5",
             "def layernorm(a, g, be) {",
             "  mu = mean(a, axis=0, keepdims=true)",
             "  v = var(a, axis=0, keepdims=true)",
             "  return g * (a - mu) / sqrt(v + eps) + be",
             "}",
             "def block(h, W, c, g, be) = tanh(layernorm(W @ h + c, g, be))"]
    for i in range(1, layers + 1):
        lines += [f"param W{i} : [d, d] = randn(std=0.5)", f"param c{i} : [d, 1] = zeros()",
                  f"param g{i} : [d, 1] = ones()", f"param be{i} : [d, 1] = zeros()"]
    prev = "x"
    for i in range(1, layers + 1):
        lines.append(f"h{i} = block({prev}, W{i}, c{i}, g{i}, be{i})")
        prev = f"h{i}"
    lines += [f"J = mse({prev}, target)", "output J"]
    return "\n".join(lines) + "\n"


def rnn(steps: int = 4) -> str:
    """An RNN unrolled over `steps` steps with shared weights, one output at the end."""
    lines = ["dim d = 3, hdim = 4, b = 2", f"dim T = {steps}", "input xs : [T, d, b] = randn(std=1)", "input target : [1, b] = randn(std=1)",
             "param W_xh : [hdim, d] = randn(std=0.5)", "param W_hh : [hdim, hdim] = randn(std=0.5)",
             "param b_h : [hdim, 1] = zeros()", "param W_hy : [1, hdim] = randn(std=0.5)",
             "const h0 : [hdim, 1] = zeros()",
             "def cell(x, h) = tanh(W_xh @ x + W_hh @ h + b_h)"]
    prev = "h0"
    for t in range(1, steps + 1):
        lines.append(f"h{t} = cell(xs[{t - 1}], {prev})")
        prev = f"h{t}"
    lines += [f"yhat = W_hy @ {prev}", "J = mse(yhat, target)", "output J"]
    return "\n".join(lines) + "\n"


def chain(n_layers: int) -> str:
    """A deep MLP without defs: about 8 nodes a layer (for the PNG benchmark's 500 nodes)."""
    lines = ["dim d = 4, b = 3", "input x : [d, b] = randn(std=1)"]
    for i in range(1, n_layers + 1):
        lines += [f"param W{i} : [d, d] = randn(std=0.5)", f"param c{i} : [d, 1] = zeros()"]
    prev = "x"
    for i in range(1, n_layers + 1):
        lines.append(f"h{i} = tanh(W{i} @ {prev} + c{i})")
        prev = f"h{i}"
    lines += [f"J = sum({prev} ** 2)", "output J"]
    return "\n".join(lines) + "\n"

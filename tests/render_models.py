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


def loop_rnn(steps: int = 12, cell: bool = False) -> str:
    """The RNN written with a loop (issue 15): `h[t] = tanh(W h[t-1] + U x[t-1] + c)`, t = 1..steps;
    with `cell`, the body calls a def."""
    body = "cell(xs[t-1], h[t-1])" if cell else "tanh(W_hh @ h[t-1] + W_xh @ xs[t-1] + b_h)"
    lines = ["dim d = 3, hdim = 4, b = 2", f"dim T = {steps}", "input xs : [T, d, b] = randn(std=1)",
             "input target : [1, b] = randn(std=1)",
             "param W_xh : [hdim, d] = randn(std=0.5)", "param W_hh : [hdim, hdim] = randn(std=0.5)",
             "param b_h : [hdim, 1] = zeros()", "param W_hy : [1, hdim] = randn(std=0.5)",
             "const h0 : [hdim, b] = zeros()"]
    if cell:
        lines.append("def cell(x, h) = tanh(W_xh @ x + W_hh @ h + b_h)")
    lines += ["h[0] = h0", "for t in 1..T {", f"    h[t] = {body}", "}",
              "yhat = W_hy @ h[T]", "J = mse(yhat, target)", "output J"]
    return "\n".join(lines) + "\n"


def nested_loops(layers: int = 2, steps: int = 3) -> str:
    """A stacked RNN: layer l reads layer l-1 at each step (`h[l, t]`), two loops nested."""
    lines = ["dim d = 3, b = 2", f"dim L = {layers}, T = {steps}", "input xs : [T, d, b] = randn(std=1)",
             "param W : [d, d] = randn(std=0.4)", "param U : [d, d] = randn(std=0.4)",
             "const z : [d, b] = zeros()",
             "for t in 1..T {", "    h[0, t] = xs[t-1]", "}",
             "for l in 1..L {", "    h[l, 0] = z",
             "    for t in 1..T {", "        h[l, t] = tanh(W @ h[l, t-1] + U @ h[l-1, t])", "    }", "}",
             "J = sum(h[L, T] ** 2)", "output J"]
    return "\n".join(lines) + "\n"

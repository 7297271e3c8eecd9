"""The loop examples (issue 15) against PyTorch in float64, written by hand here: values and gradients to
1e-9; the RNN written with a loop equals the step-by-step one bit for bit; the language model learns."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import graphdsl
from graphdsl.train import train
from graphdsl.values import load_file

torch = pytest.importorskip("torch")
F = torch.nn.functional

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TOL = 1e-9


def load(name):
    model = graphdsl.load(EXAMPLES / f"{name}.gdsl")
    data = load_file(str(EXAMPLES / f"{name}.json"))
    leaves = model.leaf_values(*model.compile(data), 0)
    return model, data, leaves


def params(model, leaves):
    return {k: torch.tensor(leaves[k], dtype=torch.float64, requires_grad=True) for k in model.params}


def t64(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64)


def agree(model, data, p, loss):
    """graphdsl's value and gradients against the torch loss (already computed from the tensors p)."""
    loss.backward()
    value, grads = model.grad(data)
    assert float(value) == pytest.approx(loss.item(), rel=TOL)
    assert set(grads) == set(p)
    for k, tensor in p.items():
        np.testing.assert_allclose(grads[k], tensor.grad.numpy(), rtol=TOL, atol=TOL * 1e-3, err_msg=k)


def torch_cell(module, leaves, suffix=""):
    """A torch.nn recurrent module with the model's stacked gate weights W [in, G], U [H, G], b [G]; its
    hidden-side bias zero (in a GRU it sits inside r ⊙ (...), so b alone is the gates' bias)."""
    with torch.no_grad():
        getattr(module, "weight_ih" + suffix).copy_(t64(leaves["W"].T))
        getattr(module, "weight_hh" + suffix).copy_(t64(leaves["U"].T))
        getattr(module, "bias_ih" + suffix).copy_(t64(leaves["b"]))
        getattr(module, "bias_hh" + suffix).zero_()
    return module


# ---- rnn: the loop version of the step-by-step RNN -----------------------------------------------------

STEP_BY_STEP = (EXAMPLES / "rnn.gdsl").read_text(encoding="utf-8").split("h[0] = h0")[0].replace(
    "const h0 : [hdim, b]", "const h0 : [hdim, 1]") + """
h1 = cell(xs[0], h0)
h2 = cell(xs[1], h1)
h3 = cell(xs[2], h2)
yhat = W_hy @ h3 + b_y
J = mse(yhat, target)
output J
"""


def test_rnn_loop_equals_the_step_by_step_rnn_bit_for_bit():
    """examples/rnn.gdsl used to be written out step by step with h0 : [hdim, 1]; the loop keeps its numbers."""
    data = load_file(str(EXAMPLES / "rnn.json"))
    loop, steps = graphdsl.load(EXAMPLES / "rnn.gdsl"), graphdsl.parse(STEP_BY_STEP, "rnn_steps.gdsl")
    assert not any(line.startswith("for ") for line in STEP_BY_STEP.splitlines())
    assert "for t in 1..T {" in (EXAMPLES / "rnn.gdsl").read_text()
    (a, ga), (b, gb) = loop.grad(data), steps.grad(data)
    assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    assert set(ga) == set(gb) and all(ga[k].tobytes() == gb[k].tobytes() for k in ga)
    for seed in (1, 2):
        assert loop.eval(data, seed=seed)["J"].tobytes() == steps.eval(data, seed=seed)["J"].tobytes()


def test_rnn_matches_pytorch():
    model, data, leaves = load("rnn")
    p = params(model, leaves)
    h = torch.zeros(3, 4, dtype=torch.float64)
    for x in t64(data["xs"]):
        h = torch.tanh(p["W_xh"] @ x + p["W_hh"] @ h + p["b_h"])
    agree(model, data, p, F.mse_loss(p["W_hy"] @ h + p["b_y"], t64(data["target"])))


# ---- char_gru: embedding, GRU cell, integer-label cross-entropy -------------------------------------------

def torch_gru_lm(p, tokens, targets):
    H = 16
    h = torch.zeros(tokens.shape[1], H, dtype=torch.float64)
    total = 0
    for tok, tgt in zip(tokens, targets):
        a = p["emb"][tok] @ p["W"] + p["b"]  # embedding lookup, then the input's part of the gates
        u = h @ p["U"]
        r = torch.sigmoid(a[:, :H] + u[:, :H])
        z = torch.sigmoid(a[:, H:2 * H] + u[:, H:2 * H])
        n = torch.tanh(a[:, 2 * H:] + r * u[:, 2 * H:])
        h = (1 - z) * n + z * h
        total = total + F.cross_entropy(h @ p["W_o"] + p["b_o"], tgt)
    return total / tokens.shape[0]


def test_char_gru_matches_pytorch():
    model, data, leaves = load("char_gru")
    p = params(model, leaves)
    tokens, targets = (torch.tensor(np.asarray(data[k]), dtype=torch.long) for k in ("tokens", "targets"))
    agree(model, data, p, torch_gru_lm(p, tokens, targets))


def test_char_gru_agrees_with_torch_nn_gru():
    """The cell is PyTorch's GRU: torch.nn.GRU with the same weights (gates r, z, n) gives the same states."""
    model, data, leaves = load("char_gru")
    gru = torch_cell(torch.nn.GRU(8, 16, dtype=torch.float64), leaves, "_l0")
    tokens = torch.tensor(np.asarray(data["tokens"]), dtype=torch.long)
    states, _ = gru(t64(leaves["emb"])[tokens])
    ours = model.eval(data, outputs=["h[1]", "h[12]"])
    np.testing.assert_allclose(ours["h[1]"], states[0].detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours["h[12]"], states[-1].detach().numpy(), rtol=1e-12, atol=1e-14)


def test_char_gru_learns_the_text():
    model, data, _ = load("char_gru")
    result = train(model, data, lr=0.05, steps=60, optimizer="adam")
    assert result.losses[0] == pytest.approx(2.6506, abs=1e-3)  # about ln 14: a uniform guess
    assert result.loss < 0.6 * result.losses[0]


# ---- lstm: a def that returns two values -----------------------------------------------------------------

def test_lstm_matches_pytorch():
    model, data, leaves = load("lstm")
    p = params(model, leaves)
    H = 6
    h = c = torch.zeros(32, H, dtype=torch.float64)
    for x in t64(data["xs"]):
        a = x @ p["W"] + h @ p["U"] + p["b"]
        i, f, g, o = (a[:, k * H:(k + 1) * H] for k in range(4))
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
    agree(model, data, p, F.mse_loss(h @ p["w_out"] + p["b_out"], t64(data["target"])))


def test_lstm_cell_is_torch_lstm_cell():
    """Gates i, f, g, o in PyTorch's order: torch.nn.LSTMCell with the same weights gives h and c."""
    model, data, leaves = load("lstm")
    cell = torch_cell(torch.nn.LSTMCell(2, 6, dtype=torch.float64), leaves)
    h = c = torch.zeros(32, 6, dtype=torch.float64)
    for x in t64(data["xs"]):
        h, c = cell(x, (h, c))
    out = model.eval(data, outputs=["h[8]", "c[8]"])
    np.testing.assert_allclose(out["h[8]"], h.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out["c[8]"], c.detach().numpy(), rtol=1e-12, atol=1e-14)


# ---- causal attention: einsum, tril mask, -inf -------------------------------------------------------------

def test_causal_attention_matches_pytorch():
    model, data, leaves = load("causal_attention")
    p = params(model, leaves)
    X = t64(data["X"])
    Q, K, V = X @ p["Wq"], X @ p["Wk"], X @ p["Wv"]
    mask = torch.ones(6, 6, dtype=torch.bool).tril()
    scores = (Q @ K.T / 2.0).masked_fill(~mask, float("-inf"))
    A = torch.softmax(scores, dim=-1)
    agree(model, data, p, F.mse_loss(A @ V, t64(data["target"])))
    weights = model.eval(data, outputs=["A"])["A"]
    assert np.all(weights[np.triu_indices(6, 1)] == 0.0)  # exactly: exp(-inf) is 0
    np.testing.assert_allclose(weights, A.detach().numpy(), rtol=1e-12, atol=1e-15)


def test_causal_attention_equals_torch_sdpa():
    """PyTorch's own causal scaled dot-product attention gives the same output."""
    model, data, leaves = load("causal_attention")
    X = t64(data["X"])
    Q, K, V = (X @ t64(leaves[k]) for k in ("Wq", "Wk", "Wv"))
    out = F.scaled_dot_product_attention(Q[None], K[None], V[None], is_causal=True)[0]
    np.testing.assert_allclose(model.eval(data, outputs=["out"])["out"], out.numpy(), rtol=1e-12, atol=1e-14)


def test_causal_attention_equations_write_einsum_as_the_model_does():
    model, data, _ = load("causal_attention")
    eqs = model.equations(data)
    assert '  scores = einsum("id,jd->ij", Q, K) / sqrt(dk)' in eqs.text().splitlines()
    assert r"\mathrm{einsum}_{id,jd \to ij}(Q, K)" in eqs.latex()

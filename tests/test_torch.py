"""Values and gradients against PyTorch autograd (float64), on models written in the language."""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pytest

import graphdsl

torch = pytest.importorskip("torch")
F = torch.nn.functional

RTOL = 1e-9


@dataclass
class TorchCase:
    id: str
    text: str
    values: dict  # name -> numpy array (or a callable rng -> array)
    torch_fn: object  # dict of torch tensors -> {output name: tensor}
    of: str = "J"
    wrt: tuple | None = None  # default: every value given
    outputs: tuple = ()  # further outputs whose values are compared


def _rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def _values(c: TorchCase):
    rng = _rng(c.id)
    return {k: np.asarray(v(rng) if callable(v) else v, dtype=np.float64) for k, v in c.values.items()}


def normal(*shape, scale=1.0):
    return lambda rng: scale * rng.standard_normal(shape)


def away(*shape):
    """Normal values kept away from 0, where relu-like kinks are."""
    def make(rng):
        x = rng.standard_normal(shape)
        return np.sign(x) * (0.2 + np.abs(x))
    return make


def probs(*shape):
    def make(rng):
        e = np.exp(rng.standard_normal(shape))
        return e / e.sum(axis=-1, keepdims=True)
    return make


CASES: list[TorchCase] = []


def case(id, text, torch_fn, of="J", wrt=None, outputs=(), **values):
    CASES.append(TorchCase(id, text, values, torch_fn, of, wrt, outputs))


# 1. An MLP with weight decay (Dive into Deep Learning 5.3).
case("mlp", """
dim d = 4, m = 5, q = 3
dim b
input x : [d, b]
input y : [q, b]
param W1 : [m, d]
param b1 : [m, 1]
param W2 : [q, m]
const lam = 0.01
def loss(o, y) = 0.5 * sum((o - y) ** 2) / b
z = W1 @ x + b1; h = relu(z); o = W2 @ h
J = loss(o, y) + lam / 2 * (sqnorm(W1) + sqnorm(W2))
""", lambda t: {"J": 0.5 * ((t["W2"] @ torch.relu(t["W1"] @ t["x"] + t["b1"]) - t["y"]) ** 2).sum() / 6
                + 0.01 / 2 * ((t["W1"] ** 2).sum() + (t["W2"] ** 2).sum())},
     x=normal(4, 6), y=normal(3, 6), W1=normal(5, 4), b1=normal(5, 1), W2=normal(3, 5))

# 2. Softmax regression, cross entropy with probability and one-hot targets (and class indices).
case("softmax-regression-prob", """
input X : [8, 4]
input T : [8, 3]
param W : [4, 3]
param c : [3]
Z = X @ W + c
J = cross_entropy(Z, T)
""", lambda t: {"J": F.cross_entropy(t["X"] @ t["W"] + t["c"], t["T"])},
     wrt=("W", "c", "T", "X"), X=normal(8, 4), T=probs(8, 3), W=normal(4, 3), c=normal(3))
LABELS = np.array([0, 2, 1, 1, 0, 2, 2, 1])
case("softmax-regression-onehot", """
input X : [8, 4]
input labels : [8]
param W : [4, 3]
param c : [3]
Z = X @ W + c
J = cross_entropy(Z, onehot(labels, 3))
P = softmax(Z, axis=-1)
""", lambda t: {"J": F.cross_entropy(t["X"] @ t["W"] + t["c"], torch.as_tensor(LABELS)),
                "P": torch.softmax(t["X"] @ t["W"] + t["c"], dim=-1)},
     wrt=("W", "c", "X"), outputs=("P",), X=normal(8, 4), labels=LABELS.astype(float), W=normal(4, 3),
     c=normal(3))
case("cross_entropy-axis0", """
input Z : [3, 5]
input T : [3, 5]
J = cross_entropy(Z, T, axis=0)
""", lambda t: {"J": F.cross_entropy(t["Z"].T, t["T"].T)},
     Z=normal(3, 5), T=lambda rng: probs(5, 3)(rng).T)

# 3. One attention head.
case("attention-head", """
dim n = 5, dm = 6, dk = 4
input X : [n, dm]
input R : [n, dk]
param Wq : [dm, dk]
param Wk : [dm, dk]
param Wv : [dm, dk]
Q = X @ Wq; K = X @ Wk; V = X @ Wv
A = softmax(Q @ K.T / sqrt(dk))
H = A @ V
J = sum(H * R)
output J, A
""", lambda t: _attention(t), outputs=("A",),
     X=normal(5, 6), R=normal(5, 4), Wq=normal(6, 4), Wk=normal(6, 4), Wv=normal(6, 4))


def _attention(t):
    q, k, v = t["X"] @ t["Wq"], t["X"] @ t["Wk"], t["X"] @ t["Wv"]
    a = torch.softmax(q @ k.T / np.sqrt(4.0), dim=-1)
    return {"J": ((a @ v) * t["R"]).sum(), "A": a}


# 4. An RNN unrolled over four steps.
case("rnn-4-steps", """
dim h = 3, n = 2
input xs : [4, n]
input target : [h]
param Wx : [h, n]
param Wh : [h, h]
param bh : [h]
def cell(hp, x) = tanh(Wx @ x + Wh @ hp + bh)
h0 = tanh(Wx @ xs[0] + bh)
h1 = cell(h0, xs[1])
h2 = cell(h1, xs[2])
h3 = cell(h2, xs[3])
J = mse(h3, target)
""", lambda t: {"J": _rnn(t)}, xs=normal(4, 2), target=normal(3), Wx=normal(3, 2), Wh=normal(3, 3),
     bh=normal(3))


def _rnn(t):
    h = torch.tanh(t["Wx"] @ t["xs"][0] + t["bh"])
    for s in range(1, 4):
        h = torch.tanh(t["Wx"] @ t["xs"][s] + t["Wh"] @ h + t["bh"])
    return F.mse_loss(h, t["target"])


# 5. Layer norm, composed from primitives.
case("layer-norm", """
input x : [4, 6]
input r : [4, 6]
param gamma : [6]
param beta : [6]
const eps = 1e-5
def layernorm(x) {
  mu = mean(x, axis=-1, keepdims=true)
  v = var(x, axis=-1, keepdims=true)
  return (x - mu) / sqrt(v + eps) * gamma + beta
}
Y = layernorm(x)
J = sum(Y * r)
output J, Y
""", lambda t: _layer_norm(t), outputs=("Y",), x=normal(4, 6), r=normal(4, 6), gamma=normal(6), beta=normal(6))


def _layer_norm(t):
    y = F.layer_norm(t["x"], (6,), t["gamma"], t["beta"], eps=1e-5)
    return {"J": (y * t["r"]).sum(), "Y": y}


# 6. Broadcasting: row and column bias vectors, scalars, a rank-3 batch.
case("broadcast-biases", """
input X : [5, 3]
param W : [3, 4]
param row : [4]
param col : [5, 1]
param s : []
param B : [2, 1, 4]
Y = (X @ W + row) * s - col
J = sum(tanh(Y + B) ** 2) / 3
""", lambda t: {"J": (torch.tanh((t["X"] @ t["W"] + t["row"]) * t["s"] - t["col"] + t["B"]) ** 2).sum() / 3},
     X=normal(5, 3), W=normal(3, 4), row=normal(4), col=normal(5, 1), s=normal(), B=normal(2, 1, 4))

# 7. gelu / elu / leaky_relu / softplus / sigmoid / log_sigmoid.
case("activations-net", """
input x : [6, 3]
param W1 : [3, 5]
param W2 : [5, 5]
param W3 : [5, 2]
h1 = gelu(x @ W1)
h2 = elu(h1 @ W2, alpha=0.7) + leaky_relu(h1 @ W2, alpha=0.1)
h3 = softplus(h2 @ W3) + log_sigmoid(h2 @ W3) * sigmoid(h2 @ W3)
J = mean(h3 ** 2)
""", lambda t: {"J": _activations(t)}, x=away(6, 3), W1=normal(3, 5), W2=normal(5, 5), W3=normal(5, 2))


def _activations(t):
    h1 = F.gelu(t["x"] @ t["W1"])
    z = h1 @ t["W2"]
    h2 = F.elu(z, alpha=0.7) + F.leaky_relu(z, negative_slope=0.1)
    u = h2 @ t["W3"]
    h3 = F.softplus(u) + F.logsigmoid(u) * torch.sigmoid(u)
    return (h3 ** 2).mean()


# 8. Logistic regression with bce_with_logits (and bce of sigmoid).
case("logistic-regression", """
input X : [10, 3]
input y : [10]
param w : [3]
param c : []
z = X @ w + c
J = bce_with_logits(z, y) + 0.5 * bce(sigmoid(z), y)
""", lambda t: {"J": F.binary_cross_entropy_with_logits(t["X"] @ t["w"] + t["c"], t["y"])
                + 0.5 * F.binary_cross_entropy(torch.sigmoid(t["X"] @ t["w"] + t["c"]), t["y"])},
     X=normal(10, 3, scale=2.0), y=lambda rng: rng.uniform(0, 1, 10), w=normal(3), c=normal())

# 9. logsumexp and log_softmax.
case("logsumexp-log_softmax", """
input x : [3, 4, 2]
input r : [3, 4, 2]
L = logsumexp(x, axis=1)
M = logsumexp(x, axis=[0, 2], keepdims=true)
S = log_softmax(x, axis=1)
J = sum(L ** 2) + sum(M) + sum(S * r) + logsumexp(x)
output J, L, S
""", lambda t: {"L": torch.logsumexp(t["x"], 1), "S": F.log_softmax(t["x"], 1),
                "J": (torch.logsumexp(t["x"], 1) ** 2).sum() + torch.logsumexp(t["x"], (0, 2), keepdim=True).sum()
                + (F.log_softmax(t["x"], 1) * t["r"]).sum() + torch.logsumexp(t["x"].reshape(-1), 0)},
     outputs=("L", "S"), x=normal(3, 4, 2, scale=3.0), r=normal(3, 4, 2))

# 10. max/min reductions, maximum, minimum, clip.
case("max-min-clip", """
input x : [4, 5]
input c : [5]
J = sum(max(x, axis=1) ** 2) + min(x) + sum(max(x, axis=0, keepdims=true) * c) + sum(maximum(x, c) * x) +
    sum(minimum(x, 0.3)) + sum(clip(x, -0.5, 0.7) ** 2) + sum(clip(x, lo=c - 1, hi=c + 1) * 2)
""", lambda t: {"J": (torch.amax(t["x"], 1) ** 2).sum() + torch.amin(t["x"])
                + (torch.amax(t["x"], 0, keepdim=True) * t["c"]).sum() + (torch.maximum(t["x"], t["c"]) * t["x"]).sum()
                + torch.minimum(t["x"], torch.tensor(0.3, dtype=torch.float64)).sum()
                + (torch.clamp(t["x"], -0.5, 0.7) ** 2).sum() + (torch.clamp(t["x"], t["c"] - 1, t["c"] + 1) * 2).sum()},
     x=normal(4, 5, scale=1.5), c=normal(5))

# 11. matmul with 1-D vectors and batches.
case("matmul-vectors", """
input u : [3]
input v : [3]
input M : [3, 4]
input N : [4, 3]
input B : [2, 4, 3]
J = (u @ v) * sum(u @ M) + sum(N @ u) ** 2 + dot(v, u) + sum((B @ v) ** 2) + sum(u @ N.T) + sum(outer(u, v) * M.T[:3])
""", lambda t: {"J": (t["u"] @ t["v"]) * (t["u"] @ t["M"]).sum() + (t["N"] @ t["u"]).sum() ** 2
                + torch.dot(t["v"], t["u"]) + ((t["B"] @ t["v"]) ** 2).sum() + (t["u"] @ t["N"].T).sum()
                + (torch.outer(t["u"], t["v"]) * t["M"].T[:3]).sum()},
     u=normal(3), v=normal(3), M=normal(3, 4), N=normal(4, 3), B=normal(2, 4, 3))

# 12. transpose / reshape / concat / stack / indexing / squeeze / expand_dims / broadcast_to.
case("shape-ops", """
input x : [2, 3, 4]
input y : [2, 4]
a = transpose(x, axes=[2, 0, 1])
b = reshape(a, [4, -1])
c = concat([b, y.T, b[:, 1:3]], axis=1)
d = stack([c[0], c[-1], c[1] * c[2]], axis=1)
e = squeeze(expand_dims(d, 0), 0)
f = broadcast_to(x[1, :, 2], [5, 3])
J = sum(e ** 2) + sum(f * f[0]) + sum(x[:, 1, ::2] * y[1, 1:3]) + trace(y @ y.T)
""", lambda t: {"J": _shape_ops(t)}, x=normal(2, 3, 4), y=normal(2, 4))


def _shape_ops(t):
    x, y = t["x"], t["y"]
    b = x.permute(2, 0, 1).reshape(4, -1)
    c = torch.cat([b, y.T, b[:, 1:3]], dim=1)
    d = torch.stack([c[0], c[-1], c[1] * c[2]], dim=1)
    e = d.unsqueeze(0).squeeze(0)
    f = torch.broadcast_to(x[1, :, 2], (5, 3))
    return (e ** 2).sum() + (f * f[0]).sum() + (x[:, 1, ::2] * y[1, 1:3]).sum() + torch.trace(y @ y.T)


# 13. Elementwise odds and ends: pow with a variable exponent, where, var, norm, mse, abs, log1p...
case("elementwise-mix", """
input p : [3, 4]
input q : [4]
input m : [3, 4]
J = sum(p ** q) + sum(where(m, exp(q) * p, log(p))) + var(p, axis=0)[1] + norm(p) + norm(p - 1, axis=1)[0] +
    mse(p, q) + sum(abs(q) * reciprocal(p)) + sum(log1p(p) + expm1(-p) + sqrt(p) + square(q) + sin(p) * cos(q)) +
    sum(2 ** q) + sum(-p / (q + 3))
""", lambda t: {"J": (t["p"] ** t["q"]).sum() + torch.where(t["m"] != 0, torch.exp(t["q"]) * t["p"], torch.log(t["p"])).sum()
                + torch.var(t["p"], 0, unbiased=False)[1] + torch.linalg.norm(t["p"])
                + torch.linalg.norm(t["p"] - 1, dim=1)[0] + F.mse_loss(t["p"], t["q"].expand(3, 4))
                + (torch.abs(t["q"]) * torch.reciprocal(t["p"])).sum()
                + (torch.log1p(t["p"]) + torch.expm1(-t["p"]) + torch.sqrt(t["p"]) + torch.square(t["q"])
                   + torch.sin(t["p"]) * torch.cos(t["q"])).sum()
                + (2 ** t["q"]).sum() + (-t["p"] / (t["q"] + 3)).sum()},
     wrt=("p", "q"), p=lambda rng: rng.uniform(0.5, 2.0, (3, 4)), q=away(4),
     m=lambda rng: (rng.uniform(size=(3, 4)) > 0.5).astype(float))

# 14. A second derivative: the gradient norm penalty of a tanh layer (double backward in PyTorch).
case("gradient-penalty", """
input x : [3]
param W : [2, 3]
L = sum(tanh(W @ x) ** 2)
gx = grad(L, x)
J = L + sqnorm(gx)
""", lambda t: {"J": _penalty(t)}, x=normal(3), W=normal(2, 3))


def _penalty(t):
    x = t["x"]
    loss = (torch.tanh(t["W"] @ x) ** 2).sum()
    (gx,) = torch.autograd.grad(loss, x, create_graph=True)
    return loss + (gx ** 2).sum()


# ---- the comparison ------------------------------------------------------------------------

def _relerr(ours, theirs):
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    scale = max(float(np.max(np.abs(theirs))) if theirs.size else 0.0, 1e-300)
    return float(np.max(np.abs(ours - theirs))) / scale if ours.size else 0.0


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
def test_matches_pytorch(c: TorchCase, torch_record):
    values = _values(c)
    wrt = list(c.wrt) if c.wrt is not None else list(values)
    m = graphdsl.parse(c.text, name=c.id)
    value, grads = m.grad(values, of=c.of, wrt=wrt)
    outs = m.eval(values, outputs=[c.of, *c.outputs])

    tensors = {k: torch.tensor(v, dtype=torch.float64, requires_grad=k in wrt) for k, v in values.items()}
    expected = c.torch_fn(tensors)
    tgrads = torch.autograd.grad(expected[c.of], [tensors[k] for k in wrt], allow_unused=True)

    errors = [_relerr(value, expected[c.of].detach().numpy())]
    for name in c.outputs:
        errors.append(_relerr(outs[name], expected[name].detach().numpy()))
    for name, tg in zip(wrt, tgrads):
        theirs = np.zeros(values[name].shape) if tg is None else tg.numpy()
        assert grads[name].shape == theirs.shape, f"d{c.of}/d{name}: {grads[name].shape} vs {theirs.shape}"
        errors.append(_relerr(grads[name], theirs))
        np.testing.assert_allclose(grads[name], theirs, rtol=RTOL, atol=RTOL * max(1.0, np.abs(theirs).max()),
                                   err_msg=f"{c.id}: d{c.of}/d{name}")
    torch_record.add(max(errors), c.id)
    assert max(errors) < RTOL, f"{c.id}: relative error {max(errors):.3e}"


def test_there_are_at_least_ten_models():
    assert len(CASES) >= 10


# ---- kinks, ties and boundaries: the subgradient PyTorch picks ---------------------------------

EDGES = [
    ("norm-at-zero", "input x : [3]\nJ = norm(x)", {"x": [0.0, 0.0, 0.0]},
     lambda t: torch.linalg.norm(t["x"])),
    ("norm-axis-at-zero", "input x : [2, 3]\nJ = sum(norm(x, axis=1))", {"x": [[0.0, 0.0, 0.0], [1.0, -2.0, 2.0]]},
     lambda t: torch.linalg.norm(t["x"], dim=1).sum()),
    ("pow-zero-exponent", "input x : [3]\nJ = sum(x ** 0)", {"x": [0.0, 2.0, -1.0]}, lambda t: (t["x"] ** 0).sum()),
    ("pow-zero-base", "input x : [3]\ninput y : [3]\nJ = sum(x ** y)", {"x": [0.0, 0.0, 2.0], "y": [0.0, 2.0, 1.5]},
     lambda t: (t["x"] ** t["y"]).sum()),
    ("pow-square-at-zero", "input x : [2]\nJ = sum(x ** 2 + x ** 3)", {"x": [0.0, -1.5]},
     lambda t: (t["x"] ** 2 + t["x"] ** 3).sum()),
    ("bce-saturated", "input p : [4]\ninput y : [4]\nJ = bce(p, y)",
     {"p": [0.0, 1.0, 0.0, 0.3], "y": [0.0, 1.0, 1.0, 1.0]},
     lambda t: F.binary_cross_entropy(t["p"], t["y"])),
    ("relu-abs-at-zero", "input x : [3]\nJ = sum(relu(x) + abs(x) + leaky_relu(x, 0.1) + elu(x))",
     {"x": [0.0, 1.0, -1.0]},
     lambda t: (torch.relu(t["x"]) + torch.abs(t["x"]) + F.leaky_relu(t["x"], 0.1) + F.elu(t["x"])).sum()),
    ("clip-at-bounds", "input x : [4]\nJ = sum(clip(x, -0.5, 0.5) * x)", {"x": [-0.5, 0.5, 0.7, 0.0]},
     lambda t: (torch.clamp(t["x"], -0.5, 0.5) * t["x"]).sum()),
    ("maximum-minimum-ties", "input a : [3]\ninput c : [3]\nJ = sum(maximum(a, c) * 2 + minimum(a, c))",
     {"a": [1.0, 2.0, 3.0], "c": [1.0, 0.0, 3.0]},
     lambda t: (torch.maximum(t["a"], t["c"]) * 2 + torch.minimum(t["a"], t["c"])).sum()),
    ("max-min-ties", "input x : [2, 3]\nJ = max(x) + sum(min(x, axis=1) * [1, 2])",
     {"x": [[1.0, 3.0, 3.0], [0.0, 0.0, 2.0]]},
     lambda t: torch.amax(t["x"]) + (torch.amin(t["x"], 1) * torch.tensor([1.0, 2.0], dtype=torch.float64)).sum()),
    ("saturated-activations", "input x : [4]\nJ = sum(sigmoid(x) + softplus(x) + log_sigmoid(x) + tanh(x) + gelu(x))",
     {"x": [-1000.0, -40.0, 40.0, 1000.0]},
     lambda t: (torch.sigmoid(t["x"]) + F.softplus(t["x"]) + F.logsigmoid(t["x"]) + torch.tanh(t["x"])
                + F.gelu(t["x"])).sum()),
    ("bce_with_logits-saturated", "input z : [4]\ninput y : [4]\nJ = bce_with_logits(z, y)",
     {"z": [-1000.0, -40.0, 40.0, 1000.0], "y": [1.0, 0.0, 0.0, 1.0]},
     lambda t: F.binary_cross_entropy_with_logits(t["z"], t["y"])),
    ("softmax-cross_entropy-large", "input z : [2, 3]\ninput y : [2, 3]\nJ = cross_entropy(z, y) + sum(softmax(z) * y)",
     {"z": [[1000.0, -1000.0, 0.0], [5.0, 5.0, 5.0]], "y": [[0.0, 1.0, 0.0], [0.2, 0.3, 0.5]]},
     lambda t: F.cross_entropy(t["z"], t["y"]) + (torch.softmax(t["z"], -1) * t["y"]).sum()),
]


@pytest.mark.parametrize("id, text, values, torch_fn", EDGES, ids=[e[0] for e in EDGES])
def test_edges_match_pytorch(id, text, values, torch_fn, torch_record):
    values = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    wrt = list(values) if not id.startswith("bce-") else ["p"]  # PyTorch's target gradient is inf at p = 0, 1
    value, grads = graphdsl.parse(text, name=id).grad(values, of="J", wrt=wrt)
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in values.items()}
    expected = torch_fn(tensors)
    tgrads = torch.autograd.grad(expected, [tensors[k] for k in wrt])
    errors = [_relerr(value, expected.detach().numpy())]
    for name, tg in zip(wrt, tgrads):
        assert np.all(np.isfinite(grads[name])), f"{id}: d/d{name} = {grads[name]}"
        errors.append(_relerr(grads[name], tg.numpy()))
        # PyTorch's bce keeps p (1 - p) above float32(1e-12) = 9.99999996e-13, we above 1e-12
        rtol = 1e-8 if id == "bce-saturated" else RTOL
        np.testing.assert_allclose(grads[name], tg.numpy(), rtol=rtol, atol=1e-15, err_msg=f"{id}: d/d{name}")
    if id != "bce-saturated":
        torch_record.add(max(errors), id)

"""The v2 builtins against PyTorch autograd in float64: values, gradients and second derivatives.

Each case is a model `J = ...` in the language and the same computation in
PyTorch. First order compares J and dJ/dx for every x in wrt; second order adds
`K = sum(grad(J, x) ** 2) + ...` to the model and compares dK/dx with PyTorch's
double backward (create_graph=True). Agreement is to 1e-9 relative.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import graphdsl
from graphdsl.diagnostics import GraphDSLError

torch = pytest.importorskip("torch")
F = torch.nn.functional

RTOL = 1e-9


def _rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def _compare(record, where, ours, theirs):
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    assert ours.shape == theirs.shape, f"{where}: shape {ours.shape} against PyTorch's {theirs.shape}"
    scale = max(float(np.max(np.abs(theirs), initial=0.0)), 1e-300)
    record.add(float(np.max(np.abs(ours - theirs), initial=0.0)) / scale, where)
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=RTOL * scale, err_msg=where)


def check(record, id, text, values, torch_fn, wrt, second=True):
    """J and dJ/d(wrt) (and dK/d(wrt) for K = sum of squared gradients) equal PyTorch's."""
    values = {k: np.asarray(v, dtype=float) for k, v in values.items()}
    tensors = {k: torch.tensor(v, requires_grad=k in wrt) for k, v in values.items()}
    tj = torch_fn(**tensors)
    tgrads = torch.autograd.grad(tj, [tensors[w] for w in wrt], create_graph=second)
    model = graphdsl.parse(text + "output J\n", name=id)
    j, grads = model.grad(values, of="J", wrt=list(wrt))
    _compare(record, f"{id} J", j, tj.detach().numpy())
    for w, tg in zip(wrt, tgrads):
        _compare(record, f"{id} dJ/d{w}", grads[w], tg.detach().numpy())
    if not second:
        return
    tk = sum((tg ** 2).sum() for tg in tgrads)
    tkgrads = torch.autograd.grad(tk, [tensors[w] for w in wrt], allow_unused=True)
    k_text = " + ".join(f"sum(grad(J, {w}) ** 2)" for w in wrt)
    model = graphdsl.parse(text + f"K = {k_text}\noutput K\n", name=id + "-second")
    k, kgrads = model.grad(values, of="K", wrt=list(wrt))
    _compare(record, f"{id} K", k, tk.detach().numpy())
    for w, tg in zip(wrt, tkgrads):
        _compare(record, f"{id} dK/d{w}", kgrads[w], np.zeros(values[w].shape) if tg is None else tg.numpy())


def _decls(values):
    return "".join(f"input {k} : [{', '.join(map(str, np.shape(v)))}]\n" for k, v in values.items())


# ---- convolution ------------------------------------------------------------------------------

CONV2D = [  # (x shape, w shape, stride, padding, dilation, groups)
    ((2, 3, 6, 6), (4, 3, 3, 3), 1, 0, 1, 1),
    ((1, 2, 7, 6), (3, 2, 3, 2), 2, 1, 1, 1),
    ((2, 2, 8, 7), (2, 2, 2, 3), [2, 1], [1, 0], [2, 1], 1),
    ((1, 4, 5, 5), (6, 2, 3, 3), 1, 1, 1, 2),
    ((1, 4, 6, 6), (4, 1, 2, 2), [1, 2], 2, 2, 4),  # depthwise
]


def _pair(v):
    return tuple(v) if isinstance(v, list) else v


def _kw(stride, padding, dilation, groups):
    return f"stride={stride}, padding={padding}, dilation={dilation}, groups={groups}"


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", CONV2D, ids=str)
def test_conv2d_matches_torch_to_second_order(xs, ws, stride, padding, dilation, groups, torch_record):
    rng = _rng(f"conv2d{xs}{ws}")
    values = {"x": rng.standard_normal(xs), "w": rng.standard_normal(ws)}
    y = F.conv2d(torch.zeros(xs, dtype=torch.float64), torch.zeros(ws, dtype=torch.float64),
                 stride=_pair(stride), padding=_pair(padding), dilation=_pair(dilation), groups=groups)
    values["r"] = rng.standard_normal(tuple(y.shape))
    text = _decls(values) + f"J = sum(tanh(conv2d(x, w, {_kw(stride, padding, dilation, groups)})) * r)\n"

    def torch_fn(x, w, r):
        return (torch.tanh(F.conv2d(x, w, stride=_pair(stride), padding=_pair(padding), dilation=_pair(dilation),
                                    groups=groups)) * r).sum()
    check(torch_record, f"conv2d{xs}", text, values, torch_fn, ("x", "w"))


CONV1D = [((2, 3, 9), (4, 3, 3), 1, 0, 1, 1), ((1, 4, 10), (2, 2, 3), 2, 2, 2, 2),
          ((2, 2, 7), (4, 1, 2), 3, 1, 1, 2)]


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", CONV1D, ids=str)
def test_conv1d_matches_torch_to_second_order(xs, ws, stride, padding, dilation, groups, torch_record):
    rng = _rng(f"conv1d{xs}{ws}")
    values = {"x": rng.standard_normal(xs), "w": rng.standard_normal(ws)}
    y = F.conv1d(torch.zeros(xs, dtype=torch.float64), torch.zeros(ws, dtype=torch.float64), stride=stride,
                 padding=padding, dilation=dilation, groups=groups)
    values["r"] = rng.standard_normal(tuple(y.shape))
    text = _decls(values) + f"J = sum(conv1d(x, w, {_kw(stride, padding, dilation, groups)}) ** 2 * r)\n"

    def torch_fn(x, w, r):
        return (F.conv1d(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups) ** 2 * r).sum()
    check(torch_record, f"conv1d{xs}", text, values, torch_fn, ("x", "w"))


# ---- pooling ------------------------------------------------------------------------------------

def test_max_pool_ties_send_the_gradient_to_the_first_maximum(torch_record):
    rng = _rng("max-pool-ties")
    x = rng.integers(0, 3, (2, 2, 6, 6)).astype(float)  # many ties in every window
    values = {"x": x, "r": rng.standard_normal((2, 2, 3, 3))}
    text = _decls(values) + "J = sum(max_pool2d(x, 2) * r)\n"
    check(torch_record, "max_pool2d-ties", text, values, lambda x, r: (F.max_pool2d(x, 2) * r).sum(), ("x", "r"))
    _, grads = graphdsl.parse(text + "output J\n").grad(values, of="J", wrt=["x"])
    window = x[0, 0, :2, :2].ravel()
    first = int(np.argmax(window))  # row-major first maximum
    assert grads["x"][0, 0, first // 2, first % 2] == values["r"][0, 0, 0, 0]
    assert np.count_nonzero(grads["x"][0, 0, :2, :2]) == 1


@pytest.mark.parametrize("k, stride, padding", [(2, None, 0), ([3, 2], 1, 1), (3, 2, 1)], ids=str)
def test_pools_match_torch(k, stride, padding, torch_record):
    rng = _rng(f"pool{k}{stride}{padding}")
    x = np.round(rng.standard_normal((2, 3, 7, 6)), 1)  # rounded: some ties
    kk, ss = _pair(k), (_pair(stride) if stride is not None else None)
    y = F.max_pool2d(torch.tensor(x), kk, ss, padding)
    values = {"x": x, "r": rng.standard_normal(tuple(y.shape))}
    args = f"{k}" + (f", stride={stride}" if stride is not None else "") + f", padding={padding}"
    text = _decls(values) + f"J = sum(max_pool2d(x, {args}) * r) + sum(avg_pool2d(x, {args}) ** 2 * r)\n"

    def torch_fn(x, r):
        return (F.max_pool2d(x, kk, ss, padding) * r).sum() + (F.avg_pool2d(x, kk, ss, padding) ** 2 * r).sum()
    check(torch_record, f"pools{k}", text, values, torch_fn, ("x", "r"))


@pytest.mark.parametrize("k, stride, padding", [((2, 2), (2, 2), (0, 0)), ((3, 3), (1, 1), (1, 1)),
                                              ((3, 2), (2, 1), (1, 0)), ((7, 7), (1, 1), (3, 3)),
                                              ((1, 4), (2, 2), (0, 0)), ((8, 8), (1, 1), (0, 0))], ids=str)
def test_avg_pool_by_taps_has_the_bits_of_numpys_mean_over_the_windows(k, stride, padding):
    """avg_pool2d sums its windows one tap at a time (quicker than mean over two strided axes), in the
    order NumPy's mean adds them: the same bits, so the reference values and docs did not move."""
    from graphdsl.ops.conv import windows
    from graphdsl.ops.pool import _avg_pool

    x = _rng(f"taps{k}{stride}{padding}").standard_normal((3, 2, 15, 17))
    want = windows(x, k, stride, padding, (1, 1)).mean(axis=(-2, -1))
    got = _avg_pool(x, k=list(k), stride=list(stride), padding=list(padding))
    assert got.flags.c_contiguous and np.array_equal(got.view(np.int64), want.view(np.int64))


def test_lenet_block_matches_torch(torch_record):
    rng = _rng("lenet")
    values = {"x": rng.standard_normal((4, 1, 8, 8)), "w1": 0.5 * rng.standard_normal((3, 1, 3, 3)),
              "w2": 0.5 * rng.standard_normal((4, 3, 2, 2)), "v": 0.5 * rng.standard_normal((16, 5)),
              "t": rng.integers(0, 5, 4)}
    text = _decls(values) + """h1 = max_pool2d(relu(conv2d(x, w1, padding=1)), 2)
h2 = avg_pool2d(sigmoid(conv2d(h1, w2, padding=[1, 0], stride=[1, 2])), 2, stride=1)
J = cross_entropy(flatten(h2) @ v, t)
"""

    def torch_fn(x, w1, w2, v, t):
        h1 = F.max_pool2d(F.relu(F.conv2d(x, w1, padding=1)), 2)
        h2 = F.avg_pool2d(torch.sigmoid(F.conv2d(h1, w2, padding=(1, 0), stride=(1, 2))), 2, stride=1)
        return F.cross_entropy(h2.flatten(1) @ v, t.long())
    check(torch_record, "lenet", text, values, torch_fn, ("x", "w1", "w2", "v"))


# ---- gather and integer labels ---------------------------------------------------------------------

def test_take_with_repeated_and_negative_indices_to_second_order(torch_record):
    rng = _rng("take")
    idx = np.array([[0, 4, -1, 2], [2, 2, -5, 4]])
    values = {"E": rng.standard_normal((5, 3)), "idx": idx, "r": rng.standard_normal((2, 4, 3))}
    text = _decls(values) + "J = sum(take(E, idx, axis=0) ** 3 * r)\n"
    check(torch_record, "take-axis0", text, values,
          lambda E, idx, r: (E[idx.long() % 5] ** 3 * r).sum(), ("E", "r"))


def test_take_along_a_middle_axis(torch_record):
    rng = _rng("take-axis1")
    values = {"x": rng.standard_normal((2, 4, 3)), "idx": np.array([3, 3, 0, -1, 1]),
              "r": rng.standard_normal((2, 5, 3))}
    text = _decls(values) + "J = sum(sin(take(x, idx, axis=1)) * r)\n"
    check(torch_record, "take-axis1", text, values,
          lambda x, idx, r: (torch.sin(torch.index_select(x, 1, idx.long() % 4)) * r).sum(), ("x",))


def test_take_out_of_range_is_a_located_error():
    m = graphdsl.parse("input E : [5, 3]\ninput idx : [3]\nJ = sum(take(E, idx))\noutput J\n")
    with pytest.raises(GraphDSLError) as info:
        m.eval({"E": np.ones((5, 3)), "idx": np.array([0.0, 7.0, 1.0])})
    text = str(info.value)
    assert "E305" in text and "index 7" in text and "size 5" in text and "3 | J = sum(take(E, idx))" in text


@pytest.mark.parametrize("zs, axis", [((6, 4), -1), ((3, 4, 5), 1), ((4, 3), 1)], ids=str)
def test_cross_entropy_with_integer_labels_matches_torch(zs, axis, torch_record):
    rng = _rng(f"ce{zs}{axis}")
    k = zs[axis]
    labels_shape = tuple(s for i, s in enumerate(zs) if i != axis % len(zs))
    values = {"z": 3 * rng.standard_normal(zs), "t": rng.integers(0, k, labels_shape)}
    text = _decls(values) + f"J = cross_entropy(z, t, axis={axis})\n"

    def torch_fn(z, t):
        return F.cross_entropy(torch.movedim(z, axis, 1), t.long())
    check(torch_record, f"ce{zs}", text, values, torch_fn, ("z",))


def test_cross_entropy_label_out_of_range_is_an_error():
    m = graphdsl.parse("input z : [2, 3]\ninput t : [2]\nJ = cross_entropy(z, t)\noutput J\n")
    with pytest.raises(GraphDSLError, match="E305"):
        m.eval({"z": np.zeros((2, 3)), "t": np.array([0.0, 3.0])})


# ---- elementwise, cumsum, pad, triangles, constructors -----------------------------------------------

ELEMENTWISE = {"tan": torch.tan, "atan": torch.atan, "asin": torch.asin, "acos": torch.acos, "sinh": torch.sinh,
               "cosh": torch.cosh, "erf": torch.erf, "log2": torch.log2, "log10": torch.log10}


@pytest.mark.parametrize("op", sorted(ELEMENTWISE))
def test_elementwise_matches_torch(op, torch_record):
    rng = _rng(op)
    values = {"a": rng.uniform(0.1, 0.9, (3, 4)), "r": rng.standard_normal((3, 4))}
    text = _decls(values) + f"J = sum({op}(a) * r)\n"
    check(torch_record, op, text, values, lambda a, r: (ELEMENTWISE[op](a) * r).sum(), ("a",))


def test_floor_ceil_round_match_torch_with_zero_gradient():
    a = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49, -0.51, 3.7])
    m = graphdsl.parse("input a : [9]\nF = floor(a)\nC = ceil(a)\nR = round(a)\nJ = sum(F + C + R)\n"
                       "output F, C, R, J\n")
    out = m.eval({"a": a})
    t = torch.tensor(a)
    np.testing.assert_array_equal(out["F"], torch.floor(t).numpy())
    np.testing.assert_array_equal(out["C"], torch.ceil(t).numpy())
    np.testing.assert_array_equal(out["R"], torch.round(t).numpy())  # half to even
    _, grads = m.grad({"a": a}, of="J", wrt=["a"])
    np.testing.assert_array_equal(grads["a"], np.zeros(9))


def test_cumsum_pad_and_triangles_match_torch(torch_record):
    rng = _rng("cumsum-pad")
    values = {"a": rng.standard_normal((3, 4)), "r": rng.standard_normal((4, 7))}
    text = _decls(values) + ("J = sum(pad(cumsum(tril(a, k=1), 1) * triu(a, -1), [[1, 0], [2, 1]], value=0.5) ** 2"
                             " * r)\n")

    def torch_fn(a, r):
        y = torch.cumsum(torch.tril(a, 1), 1) * torch.triu(a, -1)
        return (F.pad(y, (2, 1, 1, 0), value=0.5) ** 2 * r).sum()
    check(torch_record, "cumsum-pad-tril", text, values, torch_fn, ("a",))


def test_argmax_argmin_constructors_and_literals():
    x = np.array([[1.0, 3.0, 3.0], [2.0, -1.0, -1.0]])
    m = graphdsl.parse("input x : [2, 3]\nA = argmax(x, 1)\nB = argmin(x, axis=0)\nC = argmax(x)\n"
                       "D = arange(4) + eye(2)[0, 0] + sum(ones([2, 2])) + sum(zeros([3]))\n"
                       "E = exp(where(tril(ones([3, 3])), 0, -inf))\nP = pi\noutput A, B, C, D, E, P\n")
    out = m.eval({"x": x})
    t = torch.tensor(x)
    np.testing.assert_array_equal(out["A"], torch.argmax(t, 1).numpy())
    np.testing.assert_array_equal(out["B"], torch.argmin(t, 0).numpy())
    assert out["A"].dtype == np.float64 and out["C"] == 1.0
    np.testing.assert_array_equal(out["D"], np.arange(4) + 5.0)
    np.testing.assert_array_equal(out["E"], np.exp(np.where(np.tril(np.ones((3, 3))), 0.0, -np.inf)))
    assert out["P"] == pytest.approx(np.pi, rel=1e-15)


def test_masked_attention_with_minus_inf_matches_torch(torch_record):
    rng = _rng("attention")
    values = {"q": rng.standard_normal((4, 3)), "k": rng.standard_normal((4, 3)), "v": rng.standard_normal((4, 2))}
    text = _decls(values) + ("s = where(tril(ones([4, 4])), q @ k.T / sqrt(3), -inf)\n"
                             "J = sum(softmax(s, axis=-1) @ v)\n")

    def torch_fn(q, k, v):
        s = (q @ k.T / np.sqrt(3)).masked_fill(torch.tril(torch.ones(4, 4)) == 0, -float("inf"))
        return (torch.softmax(s, -1) @ v).sum()
    check(torch_record, "attention-inf", text, values, torch_fn, ("q", "k", "v"))


@pytest.mark.parametrize("spec, shapes", [
    ("ij,jk->ik", [(3, 4), (4, 2)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("ij->", [(3, 4)]),
    ("ij,j,k->ki", [(3, 4), (4,), (2,)]),
    ("ijk->kij", [(2, 3, 4)]),
], ids=lambda v: v if isinstance(v, str) else None)
def test_einsum_matches_torch_to_second_order(spec, shapes, torch_record):
    rng = _rng(spec)
    names = "abcd"[:len(shapes)]
    values = {n: rng.standard_normal(s) for n, s in zip(names, shapes)}
    text = _decls(values) + f'J = sum(sin(einsum("{spec}", {", ".join(names)})))\n'
    check(torch_record, f"einsum {spec}", text, values,
          lambda **t: torch.sin(torch.einsum(spec, *[t[n] for n in names])).sum(), tuple(names))


# ---- dropout -----------------------------------------------------------------------------------------

DROPOUT = "input x : [200, 50]\nparam w : [50, 3]\nh = dropout(x, 0.3)\nJ = sum(tanh(h @ w))\noutput J, h\n"


def _dropout_run(seed, mode):
    m = graphdsl.parse(DROPOUT)
    m.mode = mode
    rng = _rng("dropout")
    values = {"x": rng.uniform(1.0, 2.0, (200, 50)), "w": rng.standard_normal((50, 3))}
    out = m.eval(values, seed=seed, outputs=["h"])
    _, grads = m.grad(values, of="J", wrt=["x", "w"], seed=seed)
    return values, out["h"], grads


def test_dropout_is_the_identity_in_eval_mode(torch_record):
    values, h, grads = _dropout_run(0, "eval")
    np.testing.assert_array_equal(h, values["x"])
    t = torch.tensor(values["x"], requires_grad=True)
    torch.tanh(F.dropout(t, 0.3, training=False) @ torch.tensor(values["w"])).sum().backward()
    _compare(torch_record, "dropout eval dJ/dx", grads["x"], t.grad.numpy())


def test_dropout_masks_are_reproducible_by_seed_and_scale_the_kept_elements(torch_record):
    values, h, grads = _dropout_run(3, "train")
    _, h_again, _ = _dropout_run(3, "train")
    _, h_other, _ = _dropout_run(4, "train")
    np.testing.assert_array_equal(h, h_again)
    assert not np.array_equal(h, h_other)
    mask = h / values["x"]
    kept = mask != 0
    np.testing.assert_allclose(mask[kept], 1 / 0.7, rtol=1e-15)  # the rest scaled by 1/(1-p)
    assert abs(1 - kept.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / mask.size)  # 4 sigma
    # the gradient goes through the same mask as the value
    t = torch.tensor(values["x"], requires_grad=True)
    torch.tanh((t * torch.tensor(mask)) @ torch.tensor(values["w"])).sum().backward()
    _compare(torch_record, "dropout train dJ/dx", grads["x"], t.grad.numpy())


def test_dropout_mode_flag_on_the_command_line(tmp_path, capsys):
    from graphdsl.cli import main
    (tmp_path / "m.gdsl").write_text("input x : [2, 50]\nh = dropout(x, 0.5)\noutput h\n")
    ones = "[" + ",".join(["[" + ",".join(["1"] * 50) + "]"] * 2) + "]"
    printed = {}
    for mode in ("eval", "train"):
        assert main(["eval", str(tmp_path / "m.gdsl"), "--set", f"x={ones}", "--mode", mode, "--json"]) == 0
        printed[mode] = np.array(__import__("json").loads(capsys.readouterr().out)["outputs"]["h"])
    np.testing.assert_array_equal(printed["eval"], np.ones((2, 50)))
    assert set(np.unique(printed["train"])) <= {0.0, 2.0} and 0 < np.count_nonzero(printed["train"]) < 100


def test_training_draws_a_fresh_mask_every_step_and_reports_the_loss_without_dropout():
    from graphdsl.train import train
    text = "input x : [8, 4]\ninput y : [8, 1]\nparam w : [4, 1] = ones()\nJ = mse(dropout(x, 0.5) @ w, y)\n"
    rng = _rng("dropout-train")
    values = {"x": rng.standard_normal((8, 4)), "y": rng.standard_normal((8, 1))}
    model = graphdsl.parse(text + "output J\n")  # a tiny lr: the params barely move, the masks change
    result = train(model, values, lr=1e-12, steps=4)
    assert len(set(np.round(result.losses, 12))) == 4  # a new mask each step
    again = train(model, values, lr=1e-12, steps=4)
    np.testing.assert_array_equal(result.losses, again.losses)  # the same masks for the same seed
    no_dropout = float(np.mean((values["x"] @ np.ones((4, 1)) - values["y"]) ** 2))
    assert result.loss == pytest.approx(no_dropout, rel=1e-9)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_gradcheck_through_dropout(mode):
    from graphdsl.commands.evaluate import gradcheck
    model = graphdsl.parse("input x : [4, 5]\nparam w : [5, 3] = randn()\nJ = sum(tanh(dropout(x, 0.4) @ w))\n"
                           "output J\n")
    model.mode = mode
    worst = gradcheck(model, {"x": _rng("gc").standard_normal((4, 5))}, seed=2)
    assert set(worst) == {"w"} and worst["w"] < 1e-6


def test_dropout_p_out_of_range_is_an_error():
    with pytest.raises(GraphDSLError, match="E103"):
        graphdsl.parse("input x : [3]\nh = dropout(x, 1.5)\noutput h\n")


# ---- the LeNet example -----------------------------------------------------------------------------

def test_lenet_example_trains_and_classifies_fresh_images():
    import importlib.util
    from pathlib import Path

    from graphdsl.train import train
    from graphdsl.values import load_file
    examples = Path(__file__).resolve().parent.parent / "examples"
    spec = importlib.util.spec_from_file_location("lenet_data", examples / "lenet_data.py")
    lenet_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lenet_data)
    x, labels = lenet_data.make(0)  # the shipped file is what the script writes
    shipped = load_file(str(examples / "lenet.json"))
    np.testing.assert_array_equal(shipped["x"], x)
    np.testing.assert_array_equal(shipped["labels"], labels)
    model = graphdsl.load(examples / "lenet.gdsl")
    result = train(model, shipped, lr=0.02, steps=150, optimizer="adam")
    assert result.losses[0] > 1.0 and result.loss < 1e-3
    fresh, fresh_labels = lenet_data.make(1)
    logits = model.eval({"x": fresh, "labels": fresh_labels, **result.params}, outputs=["logits"])["logits"]
    assert np.mean(np.argmax(logits, axis=1) == fresh_labels) >= 0.95


# ---- located errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ("input x : [1, 1, 8, 8]\nparam w : [2, 1, 3, 3]\nJ = sum(conv2d(x, w, stride=2, padding=0, dilation=4))\n",
     ["E205", "H=8, kh=3, padding=0, dilation=4, stride=2 -> 0"]),
    ("input x : [1, 3, 8, 8]\nparam w : [2, 2, 3, 3]\nJ = sum(conv2d(x, w))\n", ["E205", "C=3", "groups=1"]),
    ("input x : [1, 1, 2, 8]\nJ = sum(max_pool2d(x, 3))\n", ["E205", "H=2, kh=3, padding=0, stride=3 -> 0"]),
    ("input x : [1, 3, 8]\nparam w : [2, 3, 9]\nJ = sum(conv1d(x, w))\n", ["E205", "L=8, k=9"]),
    ("input x : [3, 8]\nparam w : [2, 3, 3]\nJ = sum(conv1d(x, w))\n", ["E204", "rank 3"]),
    ("input x : [1, 1, 8, 8]\nparam w : [2, 1, 3, 3]\nJ = sum(conv2d(x, w, stride=[1, 2, 3]))\n",
     ["E204", "stride="]),
    ("input x : [2, 3]\nJ = sum(pad(x, [[1, 1]]))\n", ["E204", "pair"]),
    ("input z : [2, 3]\ninput t : [3]\nJ = cross_entropy(z, t)\n", ["E202", "labels"]),
    ('input a : [2, 3]\nJ = sum(einsum("ij,jk->ik", a, a))\n', ["E202", "letter 'j'"]),
    ('input a : [2, 3]\nJ = sum(einsum("ij", a))\n', ["E103", "explicit output"]),
    ('input a : [2, 3]\nJ = sum(a) + "ij"\n', ["E103", "einsum's subscripts"]),
])
def test_bad_shapes_are_located_errors(text, words):
    with pytest.raises(GraphDSLError) as info:
        graphdsl.parse(text + "output J\n")
    message = str(info.value)
    for word in words:
        assert word in message, message
    assert "| J = " in message  # the line is shown

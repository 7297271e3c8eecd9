"""Gradient descent on a model's params, minimising one scalar output.

Everything expensive happens once, before the first step: the model is
compiled for the batch's dims, reverse mode adds the adjoints, and one Plan
computes the loss and every gradient. Each step then only slices the batch,
runs that plan on the current arrays and updates the params in NumPy.

    from graphdsl import load
    from graphdsl.train import train
    result = train(load("examples/mazur.gdsl"), lr=0.5, steps=10000)
    result.loss, result.losses[-1], result.params["W1"]
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import memory
from .arrays import all_finite
from .autodiff import gradients
from .diagnostics import Diagnostic, GraphDSLError
from .interop import backends
from .valuefiles import as_array
from .values import dropout_masks

OPTIMIZERS = ("sgd", "momentum", "adam")
_STATE_ARRAYS = {"sgd": 0, "momentum": 1, "adam": 2}  # arrays of a param's size each optimizer keeps


@dataclass
class TrainResult:
    """What training gives back: the losses of every step and the final params."""

    params: dict  # name -> final array
    losses: list  # the (batch) loss at each step, before that step's update
    loss: float  # the loss of the final params (on all the data)
    steps: int  # steps completed
    of: str
    interrupted: bool = False  # stopped by Ctrl-C (or a callback) before `steps`
    seconds: float = 0.0
    batch_dim: str | None = None
    history: dict = field(default_factory=dict)

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else float("inf")

    def to_json(self) -> dict:
        return {"steps": self.steps, "loss": self.loss, "params": self.params}


class Diverged(GraphDSLError):
    """Training met a NaN or Inf (E302). `kept` is the TrainResult of the last params whose values
    and loss were finite, to save or resume from, or None when the initial params already fail."""

    def __init__(self, diagnostic: Diagnostic, source, kept: TrainResult | None):
        super().__init__(diagnostic, source)
        self.kept = kept


class Optimizer:
    """One update rule; `step(params, grads)` returns the new params (the old arrays are left alone)."""

    def __init__(self, name: str, lr: float, momentum: float = 0.9, betas=(0.9, 0.999), eps: float = 1e-8):
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer `{name}`; use one of: {', '.join(OPTIMIZERS)}")
        self.name, self.lr, self.momentum, self.betas, self.eps = name, lr, momentum, betas, eps
        self.state: dict = {}
        self.t = 0

    def step(self, params: dict, grads: dict) -> dict:
        self.t += 1
        lr = self.lr
        if self.name == "sgd":
            return {k: p - lr * grads[k] for k, p in params.items()}
        if self.name == "momentum":  # PyTorch's SGD(momentum=0.9): v = mu v + g; p -= lr v
            out = {}
            for k, p in params.items():
                v = self.state.get(k)
                v = grads[k] if v is None else self.momentum * v + grads[k]
                self.state[k] = v
                out[k] = p - lr * v
            return out
        b1, b2 = self.betas  # Adam (Kingma and Ba 2015), bias-corrected
        out = {}
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for k, p in params.items():
            m, v = self.state.get(k, (0.0, 0.0))
            g = grads[k]
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            self.state[k] = (m, v)
            out[k] = p - lr * (m / c1) / (np.sqrt(v / c2) + self.eps)
        return out


def batch_axes(model, batch_dim: str | None = None):
    """(the free dim that batches run along, {input name: its axis along that dim})."""
    built = model.built
    free = [k for k, v in built.declared_dims.items() if v is None and k not in model.dim_overrides]
    axes_of: dict[str, dict[str, int]] = {}
    for name, decl in built.decls.items():
        if decl.kind != "input" or decl.shape is None:
            continue
        for axis, d in enumerate(decl.shape):
            if d.name in free:
                axes_of.setdefault(d.name, {})[name] = axis
    if batch_dim is not None:
        if batch_dim not in axes_of:
            raise GraphDSLError(Diagnostic(
                "E304", f"--batch-dim `{batch_dim}` is not a free dim of any input",
                help=(f"free dims of inputs: {', '.join(axes_of) or '(none)'}",)), model.source)
        return batch_dim, axes_of[batch_dim]
    if not axes_of:
        return None, {}
    if len(axes_of) > 1:
        raise GraphDSLError(Diagnostic(
            "E304", f"the inputs have several free dims ({', '.join(axes_of)}); say which one batches run along",
            help=("use --batch-dim NAME (Python: batch_dim=...)",)), model.source)
    dim = next(iter(axes_of))
    return dim, axes_of[dim]


def _full_inputs(model, given, axes):
    data = {}
    for name in axes:
        if name in given:
            data[name] = given[name]
        elif model.built.decls[name].value is not None:
            data[name] = np.asarray(model.built.decls[name].value, dtype=np.float64)
    sizes = {name: arr.shape[axes[name]] for name, arr in data.items() if arr.ndim > axes[name]}
    if len(set(sizes.values())) > 1:
        detail = ", ".join(f"`{k}` has {v}" for k, v in sizes.items())
        raise GraphDSLError(Diagnostic("E301", f"the inputs disagree on the number of examples: {detail}"),
                            model.source)
    return data, (next(iter(sizes.values())) if sizes else None)


class _Batches:
    """Index sets of `size` drawn from a fresh permutation each epoch; a batch may span two epochs."""

    def __init__(self, n: int, size: int, rng, shuffle: bool):
        self.n, self.size, self.rng, self.shuffle = n, size, rng, shuffle
        self.order = np.arange(0)

    def next(self) -> np.ndarray:
        while len(self.order) < self.size:
            fresh = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
            self.order = np.concatenate([self.order, fresh])
        idx, self.order = self.order[: self.size], self.order[self.size:]
        return idx


def train(model, values: dict | None = None, lr: float = 0.01, steps: int = 100, optimizer: str = "sgd",
          batch_size: int | None = None, of: str | None = None, params=None, seed: int = 0,
          batch_dim: str | None = None, shuffle: bool = True, momentum: float = 0.9, betas=(0.9, 0.999),
          eps: float = 1e-8, callback=None, progress=None, backend: str | None = None,
          device: str | None = None, distributed=None) -> TrainResult:
    """Minimise the scalar `of` (default: the one output) over `params` (default: all params).

    values: inputs (and, to resume, params) by name. batch_size: examples per step,
    sliced along the inputs' free dim (the one declared `dim b` without a size);
    None or >= the data size means full batch. callback(step, loss, params) is
    called after every step with the params by name and may return True to stop.
    progress(step, loss) is called now and then for a progress display. backend
    ("torch", "jax") and device run each step's plan there (interop/backends.py);
    distributed (an interop.torch_distributed.DataParallel, one rank of a torchrun
    job) gives this process its shard of every batch and all-reduces the step. Ctrl-C
    stops training cleanly: the result has interrupted=True and the params reached
    so far. A NaN or Inf in the loss or the params raises Diverged, which keeps the
    last finite params.
    """
    _check_hyper(lr, steps, batch_size)
    backends.check(backend, device)
    given = {k: as_array(v, k) for k, v in (values or {}).items()}
    dim, axes = batch_axes(model, batch_dim)
    if batch_size is not None and dim is None:
        raise GraphDSLError(Diagnostic(
            "E304", "mini-batches need an input with a free dim to slice, and this model has none",
            help=("declare the examples' dim without a size (`dim b`) and use it in the inputs' shapes, "
                  "e.g. `input x : [d, b]`; or train on the whole data without --batch-size",)), model.source)
    data, n = _full_inputs(model, given, axes)
    batched = dim is not None and batch_size is not None and n is not None and batch_size < n
    rng = np.random.default_rng(seed)
    batches = _Batches(n, batch_size, rng, shuffle) if batched else None
    local = _sharding(model, distributed, dim, n, batch_size if batched else n)

    # ---- compile once -------------------------------------------------------------------
    first = {k: np.take(v, local(np.arange(batch_size if batched else n)), axis=axes[k])
             for k, v in data.items()} if batched or distributed else {}
    model.check_graph_memory("grad")  # before the concrete build
    compiled, given_b = model.compile({**given, **first})
    target, wrt = model.grad_targets(compiled, of, _param_names(model, compiled, params))
    table = gradients(compiled.built.gb, target, wrt)
    plan = model._plan(compiled, (target,) + tuple(table[w] for w in wrt))
    # the loop also holds the current params, their update and the optimizer's state
    held = (2 + _STATE_ARRAYS.get(optimizer, 0)) * sum(memory.value_bytes(compiled.built.graph, w) for w in wrt)
    model.check_memory(plan, extra=held, what=f"training with {optimizer}")
    leaves = model.leaf_values(compiled, given_b, seed)
    of_name = compiled.built.graph.nodes[target].get("name") or target
    names = [compiled.built.graph.nodes[w].get("name") or w for w in wrt]
    current = {w: np.array(leaves[w], dtype=np.float64) for w in wrt}
    opt = Optimizer(optimizer, lr, momentum, betas, eps)
    if distributed is not None:  # this rank's shard of each batch, its loss weighted by its share
        size = batch_size if batched else n
        run = distributed.runner(wrt, current, len(local(np.arange(size))) / size)
    else:
        def run(plan, leaves):
            return backends.run(plan, leaves, False, False, backend, device)

    # ---- the loop: run the plan, update the arrays ------------------------------------------
    losses: list[float] = []
    interrupted = False
    start = time.perf_counter()
    done = 0
    good = current

    def kept(params, updates, now):  # what Diverged keeps: params reached after `updates` steps
        if updates < 0 or not all_finite(params.values()):  # (given initial params may hold an Inf)
            return None
        return TrainResult(dict(zip(names, params.values())), losses[: updates + 1], losses[updates], updates,
                           of_name, True, now - start, dim if batched else None)

    try:
        for step in range(steps):
            if batched:
                idx = local(batches.next())
                for k, v in data.items():
                    leaves[k] = np.take(v, idx, axis=axes[k])
            leaves.update(current)
            leaves.update(dropout_masks(compiled.built, seed, "train", step))
            results = run(plan, leaves)
            loss = float(np.asarray(results[0]).reshape(-1)[0]) if np.size(results[0]) else float("nan")
            if not math.isfinite(loss):  # the params of `step` updates fail: keep those before them
                raise _diverged(model, f"`{of_name}`", step, lr, losses, kept(good, step - 1, time.perf_counter()))
            losses.append(loss)
            good = current  # a finite loss, and finite values unless given so (kept() checks)
            updated = opt.step(current, dict(zip(wrt, results[1:])))
            if not all_finite(updated.values()):
                raise _diverged(model, "the params", step, lr, losses, kept(good, step, time.perf_counter()))
            # One statement, so that a signal (KeyboardInterrupt) never separates the params from
            # their step count: CPython runs signal handlers only at calls and backward jumps.
            current, done = updated, step + 1
            if progress is not None:
                progress(done, loss)
            if callback is not None and callback(done, loss, dict(zip(names, current.values()))):
                interrupted = done < steps
                break
    except KeyboardInterrupt:
        interrupted = True
    seconds = time.perf_counter() - start
    leaves.update(dropout_masks(compiled.built, seed, "eval"))  # the final loss is measured without dropout
    final = _final_loss(model, compiled, target, leaves, current, given, data, batched or distributed is not None,
                        seed, backend, device if distributed is None else distributed.device)
    return TrainResult(dict(zip(names, current.values())), losses, final, done, of_name, interrupted, seconds,
                       dim if batched else None)


def _sharding(model, distributed, dim, n, size):
    """idx -> the indices of it this process takes: all of them, or its rank's shard."""
    if distributed is None:
        return lambda idx: idx
    if dim is None or n is None:
        raise GraphDSLError(Diagnostic(
            "E304", "distributed training shards the batch along the inputs' free dim, and this model has none",
            help=("declare the examples' dim without a size (`dim b`) and use it in the inputs' shapes",)),
            model.source)
    if size < distributed.world:
        raise GraphDSLError(Diagnostic(
            "E304", f"a batch of {size} examples cannot be shared by {distributed.world} processes",
            help=("use fewer processes (--nproc_per_node) or a larger --batch-size",)), model.source)
    return distributed.shard


def _param_names(model, compiled, params):
    decls = compiled.built.decls
    if params is None:
        names = [n for n, d in decls.items() if d.kind == "param"]
        if not names:
            raise GraphDSLError(Diagnostic("E304", "the model has no params to train",
                                           help=("declare the values to learn with `param`, e.g. "
                                                 "`param W : [n, m] = randn(std=0.1)`",)), model.source)
        return names
    names = [p.strip() for p in (params.split(",") if isinstance(params, str) else params)]
    known = ", ".join(n for n, d in decls.items() if d.kind == "param") or "(none)"
    for p in names:
        if p not in decls or decls[p].kind != "param":
            raise GraphDSLError(Diagnostic("E304", f"`{p}` is not a param of the model",
                                           help=(f"params: {known}",)), model.source)
    return names


def _final_loss(model, compiled, target, leaves, current, given, data, batched, seed, backend, device) -> float:
    """The loss of the final params on all the data (one forward pass, no gradients)."""
    if batched:
        full, given_f = model.compile({**given, **data})
        values = model.leaf_values(full, given_f, seed)
        values.update(current)
        forward = model._plan(full, (target,))
    else:
        values = dict(leaves)
        values.update(current)
        forward = model._plan(compiled, (target,))
    try:
        return float(np.asarray(backends.run(forward, values, False, False, backend, device)[0]).reshape(-1)[0])
    except KeyboardInterrupt:
        return float("nan")


def _diverged(model, what, step, lr, losses, kept: TrainResult | None) -> Diverged:
    last = f"; the loss before was {losses[-1]:.6g}" if losses else ""
    if kept is None:
        notes = ("the initial params already give a NaN or Inf: there are no finite params to keep",)
    else:
        notes = (f"the last params with finite values and a finite loss are those after step {kept.steps}"
                 + (" (the initial params)" if kept.steps == 0 else ""),)
    return Diverged(Diagnostic(
        "E302", f"training diverged: {what} became NaN or Inf at step {step + 1}{last}", notes=notes,
        help=(f"lower the learning rate (now {lr:g}), or check the data and the initial values",)), model.source,
        kept)


def _check_hyper(lr, steps, batch_size):
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"the learning rate must be a positive number, not {lr!r}")
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a whole number >= 0, not {steps!r}")
    if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
        raise ValueError(f"the batch size must be a whole number >= 1, not {batch_size!r}")


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise GraphDSLError(Diagnostic(
            "E309", "drawing the loss curve needs matplotlib, which is not installed",
            help=("install it with `pip install 'graphdsl[plot]'` (or `pip install matplotlib`)",))) from None


def plot_losses(losses, path, title: str = "", force: bool = False) -> None:
    """Draw the loss curve to `path` (png, svg or pdf) with matplotlib (the `plot` extra).

    An existing write-protected file is refused (E308) unless `force`."""
    require_matplotlib()
    import io

    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    from .fileio import atomic_write

    fmt = str(path).rsplit(".", 1)[-1].lower() if "." in str(path) else "png"
    if fmt not in ("png", "svg", "pdf"):
        raise GraphDSLError(Diagnostic("E308", f"cannot draw the loss curve as `.{fmt}`",
                                       help=("use a .png, .svg or .pdf file name",)))
    fig = Figure(figsize=(6, 3.6), dpi=120)
    ax = fig.add_subplot(1, 1, 1)
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, lw=1.2)
    if len(losses) and min(losses) > 0 and max(losses) / max(min(losses), 1e-300) > 100:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    atomic_write(path, buf.getvalue(), force)

"""`train --backend torch --distributed` under torchrun: data-parallel steps with DistributedDataParallel.

Each rank runs train.py's one training loop on its shard of every batch (the
batch's examples split into `world` contiguous parts along the batch dim, the
free dim train.batch_axes finds) and computes its loss and graphdsl's reverse-mode
gradients with the torch backend. The gradients reach DDP through a
torch.autograd.Function whose backward hands them over, so DDP's own all-reduce
(gloo on the CPU, nccl on cuda) averages them across ranks; every rank then
applies the same update with train.py's Optimizer.

Exactness: a rank's loss is weighted by its share of the batch (n_r / n, times
`world` because DDP averages), so the averaged gradient is the whole batch's
gradient when the loss is a mean over the batch plus terms that do not depend on
it (weight decay): J(batch) = sum_r (n_r / n) J(shard_r). A loss that sums over
the batch instead is not split this way (see docs/interop.md); nor does dropout
draw the masks a single process draws. The step's loss is the weighted sum of the
ranks' losses (an all-reduce), the whole batch's loss for such a J.
"""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist

from .torch_backend import run_on_device


class DataParallel:
    """One rank of a torchrun job: its shard of each batch and the all-reduced step."""

    def __init__(self, device: str | None = None):
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0))
        self.device = _rank_device(device, self.local_rank)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.startswith("cuda") else "gloo")
        self.rank, self.world = dist.get_rank(), dist.get_world_size()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, idx: np.ndarray) -> np.ndarray:
        """This rank's contiguous part of a batch's example indices."""
        return np.array_split(np.asarray(idx), self.world)[self.rank]

    def runner(self, wrt: list, initial: dict, share: float):
        """run(plan, leaves) -> [loss, grads...] as train.py's loop takes them: the batch's loss and
        gradients, from this rank's shard (`share` = its examples / the batch's) and the others'."""
        ddp = torch.nn.parallel.DistributedDataParallel(_Params([initial[w] for w in wrt], self.device))
        params = list(ddp.module.values)
        scale = self.world * share  # DDP divides the sum of the ranks' gradients by world

        def run(plan, leaves):
            with torch.no_grad():
                for p, w in zip(params, wrt):
                    p.copy_(torch.as_tensor(np.asarray(leaves[w]), dtype=p.dtype, device=p.device))
            for p in params:
                p.grad = None
            loss = ddp(_ShardStep(plan, leaves, wrt, self.device)) * scale
            loss.backward()  # DDP all-reduces the gradients
            total = (loss.detach() / self.world).reshape(1)
            dist.all_reduce(total)  # the weighted sum of the ranks' losses
            return [total.reshape(()).cpu().numpy()] + [p.grad.detach().cpu().numpy() for p in params]

        return run

    def close(self, finished: bool = True):
        """Leave the job; after a finished run, together (gloo may abort a process whose peer is still
        writing when it leaves)."""
        if dist.is_initialized():
            if finished:
                dist.barrier()
            dist.destroy_process_group()


class _ShardStep:
    """What a forward call of the DDP module needs: the plan, its leaves, the params' node ids."""

    def __init__(self, plan, leaves, wrt, device):
        self.plan, self.leaves, self.wrt, self.device = plan, leaves, wrt, device


class _Params(torch.nn.Module):
    """The trained params as one nn.Parameter each (DDP registers its all-reduce hooks on them)."""

    def __init__(self, arrays, device):
        super().__init__()
        self.values = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.as_tensor(np.asarray(a, dtype=np.float64), device=device)) for a in arrays])

    def forward(self, step: _ShardStep):
        return _PlanLoss.apply(step, *self.values)


class _PlanLoss(torch.autograd.Function):
    """The loss of the plan's first target; its backward returns graphdsl's gradients (the other targets)."""

    @staticmethod
    def forward(ctx, step: _ShardStep, *params):
        slots = run_on_device(step.plan, step.leaves, step.device, given=dict(zip(step.wrt, params)))
        loss, *grads = [slots[s] for s in step.plan.target_slots]
        ctx.grads = grads
        return loss.clone()

    @staticmethod
    def backward(ctx, g):
        return (None, *[g * grad for grad in ctx.grads])


def _rank_device(device, local_rank) -> str:
    if device is None or device == "cpu":
        return "cpu"
    if device == "cuda":
        return f"cuda:{local_rank}"  # one GPU per process, as torchrun starts them
    return device


def under_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))

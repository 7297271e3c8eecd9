"""`train --backend torch --distributed` under torchrun, 2 processes on the CPU (gloo).

Each rank trains on its shard of every batch; the final loss (on the whole data)
and the saved params must equal a single process's `train --backend torch` on
the whole batch, and the NumPy backend's, to 1e-10. torch_mlp's batches of 5
split 3 + 2, so the ranks' losses are weighted unequally; d2l_mlp is full-batch
with weight decay (a term that does not depend on the batch).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
from interop_cases import ROOT, rel_error  # noqa: E402

RTOL = 1e-10
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _train(argv, folder: Path, distributed: bool):
    save = folder / ("dist.npz" if distributed else "single.npz")
    cmd = (TORCHRUN + ["-m", "graphdsl"] if distributed else [sys.executable, "-m", "graphdsl"])
    cmd += ["train", *map(str, argv), "--json", "--save", str(save)]
    if distributed:
        cmd += ["--backend", "torch", "--distributed"]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=folder, env=_env(), timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, run.stdout  # rank 0 alone prints
    with np.load(save) as params:
        return json.loads(lines[0]), dict(params)


CASES = {
    "torch_mlp-batches-of-5-adam": ["examples/torch_mlp.gdsl", "--load", "examples/torch_mlp.json",
                                    "--lr", "0.05", "--steps", "25", "--batch-size", "5", "--optimizer", "adam"],
    "d2l_mlp-full-batch-sgd": ["examples/d2l_mlp.gdsl", "--load", "examples/d2l_mlp.json", "--lr", "0.2",
                               "--steps", "40"],
}


@pytest.mark.parametrize("name", list(CASES))
def test_two_ranks_equal_one_process_on_the_whole_batch(name, tmp_path):
    argv = [str(ROOT / a) if a.startswith("examples/") else a for a in CASES[name]]
    dist, dist_params = _train(argv, tmp_path, distributed=True)
    single, single_params = _train(argv + ["--backend", "torch"], tmp_path, distributed=False)
    numpy_run, numpy_params = _train(argv, tmp_path, distributed=False)
    assert dist["steps"] == single["steps"] == numpy_run["steps"]
    assert rel_error(dist["loss"], single["loss"]) <= RTOL
    assert rel_error(dist["loss"], numpy_run["loss"]) <= RTOL
    assert set(dist_params) == set(single_params)
    for k in dist_params:
        assert rel_error(dist_params[k], single_params[k]) <= RTOL, k
        assert rel_error(dist_params[k], numpy_params[k]) <= RTOL, k
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist.npz", "single.npz"]  # rank 1 wrote nothing


def test_distributed_outside_torchrun_is_a_usage_error(tmp_path):
    env = {k: v for k, v in _env().items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    run = subprocess.run([sys.executable, "-m", "graphdsl", "train", str(ROOT / "examples" / "d2l_mlp.gdsl"),
                          "--load", str(ROOT / "examples" / "d2l_mlp.json"), "--lr", "0.1", "--steps", "2",
                          "--backend", "torch", "--distributed"], capture_output=True, text=True, env=env)
    assert run.returncode == 2 and "torchrun" in run.stderr and "Traceback" not in run.stderr
    run = subprocess.run([sys.executable, "-m", "graphdsl", "train", str(ROOT / "examples" / "d2l_mlp.gdsl"),
                          "--load", str(ROOT / "examples" / "d2l_mlp.json"), "--lr", "0.1", "--steps", "2",
                          "--distributed"], capture_output=True, text=True, env=env)
    assert run.returncode == 2 and "--backend torch" in run.stderr


def test_torchrun_is_where_the_docs_say():
    assert shutil.which("torchrun", path=str(Path(sys.executable).parent)) is not None

"""docs/interop.md's path runs as written: its export is what `graphdsl export` writes, and its two
Python files (train_mlp.py, train_ddp.py under torchrun) print what the page says, which is what
`graphdsl train` gives."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("torch")
from interop_cases import ROOT, rel_error  # noqa: E402

DOC = (ROOT / "docs" / "interop.md").read_text()


def _block_after(marker: str) -> str:
    """The fenced code block that follows `marker` in the page."""
    found = re.search(re.escape(marker) + r".*?```(?:python)?\n(.*?)```", DOC, re.S)
    assert found, marker
    return found.group(1)


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("interop_doc")
    for suffix in (".gdsl", ".json"):
        shutil.copy(ROOT / "examples" / f"torch_mlp{suffix}", d)
    run = subprocess.run([sys.executable, "-m", "graphdsl", "export", "torch_mlp.gdsl", "--to", "torch", "-o",
                          "mlp.py", "--load", "torch_mlp.json"], cwd=d, env=_env(), capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "wrote mlp.py (torch, 9 steps)", run.stderr
    return d


def test_the_excerpt_is_the_exported_file(folder):
    exported = (folder / "mlp.py").read_text().splitlines()
    excerpt = [line for line in _block_after("Its model, one line per value").splitlines() if line.strip()]
    start = exported.index(excerpt[0])
    body = [line for line in exported[start:] if line.strip()]
    missing = [line for line in excerpt if line not in body]
    assert missing == []


def test_train_mlp_prints_what_graphdsl_train_gives(folder):
    (folder / "train_mlp.py").write_text(_block_after("(train_mlp.py):"))
    run = subprocess.run([sys.executable, "train_mlp.py"], cwd=folder, env=_env(), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "J after 100 steps: 0.149831599574"
    assert "$ python train_mlp.py\nJ after 100 steps: 0.149831599574" in DOC
    ours = subprocess.run([sys.executable, "-m", "graphdsl", "train", "torch_mlp.gdsl", "--load", "torch_mlp.json",
                           "--lr", "0.1", "--steps", "100", "--json"], cwd=folder, env=_env(), capture_output=True,
                          text=True)
    loss = json.loads(ours.stdout)["loss"]
    assert rel_error(loss, float(run.stdout.split(":")[1])) <= 1e-10


def test_train_ddp_under_torchrun(folder):
    (folder / "train_ddp.py").write_text(_block_after("(train_ddp.py):"))
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "train_ddp.py"], cwd=folder, env=_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "J after 100 steps: 0.149831599574"

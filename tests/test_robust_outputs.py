"""Nothing lost (issue 10, items 15-17): outputs never destroy inputs, signals and divergence still save,
write-protected files are kept unless --force.

Every test drives the real command line (graphdsl.cli.main in process, or a subprocess that gets real
signals) and checks what the user is owed: the input file byte for byte, the saved params against the
closed form of gradient descent on sum(w * w), and the exit status.
"""
from __future__ import annotations

import json
import math
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import graphdsl
from graphdsl import fileio
from graphdsl.cli import make_parser
from graphdsl.diagnostics import GraphDSLError
from graphdsl.train import Diverged, train

ROOT = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
QUADRATIC = "param w : [2] = [1.0, -2.0]\nJ = sum(w * w)\noutput J\n"
W0 = np.array([1.0, -2.0])


from test_hostile import run_cli  # noqa: E402  (the CLI in process: exit code, stdout, stderr)


def sgd_quadratic(lr: float, steps: int) -> np.ndarray:
    """The params of plain gradient descent on sum(w * w) after `steps` steps: w (1 - 2 lr)^steps."""
    return W0 * (1 - 2 * lr) ** steps


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".graphdsl-"))


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A folder holding the model m.gdsl, a value file d.json and an array w.npy; the tests run in it."""
    (tmp_path / "m.gdsl").write_text(QUADRATIC, encoding="utf-8")
    (tmp_path / "d.json").write_text('{"w": [3.0, 4.0]}', encoding="utf-8")
    np.save(tmp_path / "w.npy", np.array([5.0, 6.0]))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def no_work(monkeypatch):
    """Make loading the model an internal error (exit 3): a refusal must come before any work."""
    import graphdsl.commands.common as common

    def loaded(*a, **k):
        raise AssertionError("the model was loaded before the outputs were checked")

    monkeypatch.setattr(common, "load", loaded)


# ---- 15: an output is never one of the inputs ---------------------------------------------------------------

WRITERS = {  # command line -> (the output option as named, the input it would destroy)
    "render m.gdsl -o m.gdsl --format dot": ("--output `m.gdsl`", "the model file `m.gdsl`"),
    "equations m.gdsl -o m.gdsl": ("--output `m.gdsl`", "the model file `m.gdsl`"),
    "grad m.gdsl --save m.gdsl": ("--save `m.gdsl`", "the model file `m.gdsl`"),
    "train m.gdsl --lr 0.1 --steps 5 --save m.gdsl": ("--save `m.gdsl`", "the model file `m.gdsl`"),
    "train m.gdsl --lr 0.1 --steps 5 --plot m.gdsl": ("--plot `m.gdsl`", "the model file `m.gdsl`"),
    "render m.gdsl --load d.json -o d.json": ("--output `d.json`", "the --load file `d.json`"),
    "equations m.gdsl --load d.json -o ./d.json": ("--output `./d.json`", "the --load file `d.json`"),
    "grad m.gdsl --set w=w.npy --save w.npy": ("--save `w.npy`", "the --set file `w.npy`"),
    "train m.gdsl --lr 0.1 --steps 5 --set w=w.npy --save w.npy": ("--save `w.npy`", "the --set file `w.npy`"),
}


@pytest.mark.parametrize("argv", list(WRITERS))
def test_an_output_that_is_an_input_is_refused_before_any_work(folder, monkeypatch, argv):
    before = {name: (folder / name).read_bytes() for name in ("m.gdsl", "d.json", "w.npy")}
    no_work(monkeypatch)
    code, out, err = run_cli(*argv.split())
    option, victim = WRITERS[argv]
    assert code == 1, err
    assert "error[E308]" in err and option in err and victim in err and "would destroy it" in err
    assert "Traceback" not in err and out == ""
    assert {name: (folder / name).read_bytes() for name in before} == before
    assert leftovers(folder) == []


def _link(folder: Path, how: str) -> str:
    """Another name for m.gdsl: a symlink, a hard link, an absolute path, or `./` and `..` detours."""
    if how == "symlink":
        os.symlink("m.gdsl", folder / "out.dot")
        return "out.dot"
    if how == "symlink-chain":
        os.symlink("m.gdsl", folder / "a.dot")
        os.symlink(folder / "a.dot", folder / "out.dot")
        return "out.dot"
    if how == "hardlink":
        os.link(folder / "m.gdsl", folder / "out.dot")
        return "out.dot"
    if how == "absolute":
        return str(folder / "m.gdsl")
    (folder / "sub").mkdir()
    return "sub/../m.gdsl"


@pytest.mark.parametrize("how", ["symlink", "symlink-chain", "hardlink", "absolute", "detour"])
@pytest.mark.parametrize("command", [["render", "--format", "dot", "-o"], ["equations", "-o"], ["grad", "--save"],
                                     ["train", "--lr", "0.1", "--steps", "5", "--save"]])
def test_an_output_that_leads_to_the_model_is_refused(folder, monkeypatch, how, command):
    other = _link(folder, how)
    assert os.path.samefile(other, "m.gdsl")  # the test's premise: both names are one file
    no_work(monkeypatch)
    code, out, err = run_cli(command[0], "m.gdsl", *command[1:], other)
    assert code == 1 and "error[E308]" in err and f"`{other}`" in err and "the model file `m.gdsl`" in err, err
    if how in ("symlink", "symlink-chain"):
        assert os.path.realpath(folder / "m.gdsl") in err  # the note says where the link leads
    if how == "hardlink":
        assert "hard links to one file" in err
    assert (folder / "m.gdsl").read_text(encoding="utf-8") == QUADRATIC
    assert os.path.samefile(other, "m.gdsl") and leftovers(folder) == []


def test_force_never_allows_writing_over_an_input(folder):
    os.chmod(folder / "m.gdsl", 0o444)  # the clash is the message, not the protection
    code, _, err = run_cli("grad", "m.gdsl", "--save", "m.gdsl", "--force")
    assert code == 1 and "is the model file `m.gdsl`" in err and "write-protected" not in err, err
    assert (folder / "m.gdsl").read_text(encoding="utf-8") == QUADRATIC


def test_two_outputs_that_are_one_file_are_refused(folder, monkeypatch):
    no_work(monkeypatch)
    os.symlink("p.png", folder / "q.png")  # the target need not exist yet
    code, _, err = run_cli("train", "m.gdsl", "--lr", "0.1", "--steps", "5", "--save", "q.png", "--plot", "p.png")
    assert code == 1 and "error[E308]" in err and "--plot `p.png` and --save `q.png` are the same file" in err
    assert not (folder / "p.png").exists()


def test_a_different_output_is_written(folder):
    """The check refuses clashes only: the same commands with another file name succeed."""
    code, _, err = run_cli("grad", "m.gdsl", "--load", "d.json", "--save", "g.npz")
    assert code == 0, err
    with np.load(folder / "g.npz", allow_pickle=False) as saved:
        np.testing.assert_array_equal(saved["w"], [6.0, 8.0])  # d(sum w^2)/dw = 2w at w = [3, 4]
    code, _, err = run_cli("render", "m.gdsl", "--load", "d.json", "-o", "g.dot")
    assert code == 0 and (folder / "g.dot").read_text().startswith("digraph"), err


def test_an_output_name_with_a_nul_byte_is_a_diagnostic(folder):
    code, _, err = run_cli("grad", "m.gdsl", "--save", "a\0b.npz")
    assert code == 1 and "error[E308]" in err and "NUL byte" in err and "internal error" not in err, err


def test_devices_are_not_clashes():
    """/dev/null read and written is one device, written straight through: nothing to destroy."""
    code, out, err = run_cli("render", "/dev/null", "-o", "/dev/null", "--format", "dot")
    assert code == 0 and "wrote /dev/null" in out, err


def _writing_options():
    """(command, option) for every option that the parser registers as an output file."""
    subparsers = make_parser()._subparsers._group_actions[0].choices
    return [(name, what) for name, p in subparsers.items() for what, _ in p.get_default("output_options") or ()]


REQUIRED = {"train": ["--lr", "0.1", "--steps", "5"], "render": ["--format", "dot"], "export": ["--to", "torch"]}


def test_every_writing_command_registers_its_outputs():
    """The known writers go through the one check; a new command's outputs are listed here when added."""
    assert set(_writing_options()) == {("render", "--output"), ("equations", "--output"), ("grad", "--save"),
                                       ("train", "--save"), ("train", "--plot"),
                                       ("explain", "--output"), ("export", "--output")}


@pytest.mark.parametrize("command,option", _writing_options())
def test_every_registered_output_refuses_the_model_and_has_force(folder, monkeypatch, command, option):
    no_work(monkeypatch)
    code, _, err = run_cli(command, "m.gdsl", *REQUIRED.get(command, []), option, "m.gdsl")
    assert code == 1 and f"{option} `m.gdsl` is the model file" in err, err
    assert any("--force" in a.option_strings for a in
               make_parser()._subparsers._group_actions[0].choices[command]._actions)


# ---- 17: a write-protected output is kept unless --force ------------------------------------------------------

PROTECTED = {
    "render": ["render", "m.gdsl", "-o", "out.dot"],
    "equations": ["equations", "m.gdsl", "-o", "out.dot"],
    "grad": ["grad", "m.gdsl", "--save", "out.dot"],
    "train": ["train", "m.gdsl", "--lr", "0.1", "--steps", "5", "--save", "out.dot"],
}


@pytest.mark.parametrize("mode", [0o444, 0o400, 0o000])
@pytest.mark.parametrize("command", list(PROTECTED))
def test_a_write_protected_output_is_kept_unless_forced(folder, monkeypatch, command, mode):
    target = folder / "out.dot"
    target.write_bytes(b"precious")
    os.chmod(target, mode)
    with monkeypatch.context() as m:
        no_work(m)
        code, out, err = run_cli(*PROTECTED[command])
    assert code == 1 and "error[E308]" in err and "write-protected" in err and "--force" in err, err
    assert target.read_bytes() == b"precious" and stat.S_IMODE(os.stat(target).st_mode) == mode
    code, out, err = run_cli(*PROTECTED[command], "--force")
    assert code == 0, err
    assert target.read_bytes() != b"precious" and stat.S_IMODE(os.stat(target).st_mode) == mode
    assert leftovers(folder) == []


def test_a_write_protected_file_behind_a_symlink_is_kept(folder):
    (folder / "real.npz").write_bytes(b"precious")
    os.chmod(folder / "real.npz", 0o444)
    os.symlink("real.npz", folder / "link.npz")
    code, _, err = run_cli("grad", "m.gdsl", "--save", "link.npz")
    assert code == 1 and "write-protected" in err and (folder / "real.npz").read_bytes() == b"precious"


def test_the_api_keeps_write_protected_files_unless_forced(tmp_path):
    target = tmp_path / "g.npz"
    target.write_bytes(b"precious")
    os.chmod(target, 0o444)
    picture = graphdsl.parse(QUADRATIC).render()
    for write in (lambda **k: fileio.save_npz(target, {"g": np.ones(2)}, **k),
                  lambda **k: picture.save(target, "dot", **k)):
        with pytest.raises(GraphDSLError) as info:
            write()
        assert info.value.errors[0].code == "E308" and target.read_bytes() == b"precious"
    picture.save(target, "dot", force=True)
    assert target.read_text().startswith("digraph")
    fileio.save_npz(target, {"g": np.ones(2)}, force=True)
    with np.load(target, allow_pickle=False) as saved:
        assert saved["g"].tolist() == [1.0, 1.0]


@pytest.mark.skipif(not IS_ROOT or not hasattr(os, "fork"), reason="needs root to become another user")
@pytest.mark.parametrize("owner,mode", [("root", 0o644), ("nobody", 0o444)])
def test_a_non_root_user_cannot_replace_a_file_it_may_not_write(owner, mode):
    """The rename needs only the folder's permission: a user with a writable folder could replace any
    file in it. As user `nobody` (uid 65534): root's 0o644 file and nobody's own 0o444 file are kept."""
    shared = Path(tempfile.mkdtemp(prefix="graphdsl-shared-"))
    try:
        os.chmod(shared, 0o777)
        (shared / "m.gdsl").write_text(QUADRATIC, encoding="utf-8")
        target = shared / "g.npz"
        target.write_bytes(b"precious")
        os.chmod(target, mode)
        if owner == "nobody":
            os.chown(target, 65534, 65534)

        def as_nobody(*argv) -> int:
            pid = os.fork()
            if pid == 0:  # the child: become nobody, run the command, report its exit status
                code = 99
                try:
                    os.setgid(65534)
                    os.setuid(65534)
                    code = run_cli(*argv)[0]
                finally:
                    os._exit(code)
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

        assert as_nobody("grad", shared / "m.gdsl", "--save", target) == 1
        assert target.read_bytes() == b"precious"
        assert as_nobody("grad", shared / "m.gdsl", "--save", target, "--force") == 0
        assert target.read_bytes() != b"precious"
    finally:
        for p in shared.iterdir():
            p.unlink()
        shared.rmdir()


# ---- 16: SIGTERM and SIGHUP save like Ctrl-C; checkpoints; divergence keeps the last finite params --------------

# The child runs the real CLI; a wrapper around Plan.run says on stderr when the training loop is under way.
CHILD = """\
import signal, sys
from graphdsl import plan
from graphdsl.cli import main
real, calls = plan.Plan.run, [0]
def run(self, *a, **k):
    calls[0] += 1
    if calls[0] == 20:
        sys.stderr.write("training\\n")
        sys.stderr.flush()
    return real(self, *a, **k)
plan.Plan.run = run
# as in an interactive terminal, whatever the test runner's own signal dispositions are
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
signal.signal(signal.SIGHUP, signal.SIG_IGN if {ignore_hup} else signal.SIG_DFL)
sys.exit(main({argv!r}))
"""
LR = 1e-7  # slow enough that w (1 - 2 lr)^steps stays far from 0 for millions of steps


def start_training(folder: Path, *extra, ignore_hup=False) -> subprocess.Popen:
    argv = ["train", str(folder / "m.gdsl"), "--lr", str(LR), "--steps", "1000000000", "--json", *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", CHILD.format(argv=argv, ignore_hup=ignore_hup)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr.readline() == "training\n"
    return proc


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("training did not stop on the signal")
    return proc.returncode, out, err


def check_saved(path: Path, steps: int) -> np.ndarray:
    with np.load(path, allow_pickle=False) as saved:
        assert saved.files == ["w"]
        w = saved["w"]
    assert np.isfinite(w).all()
    np.testing.assert_allclose(w, sgd_quadratic(LR, steps), rtol=1e-9)
    return w


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_signal_stops_training_and_saves(tmp_path, signame):
    (tmp_path / "m.gdsl").write_text(QUADRATIC, encoding="utf-8")
    save = tmp_path / "p.npz"
    proc = start_training(tmp_path, "--save", str(save))
    number = getattr(signal, signame)
    proc.send_signal(number)
    code, out, err = finish(proc)
    assert code == 128 + number, err
    result = json.loads(out)
    assert result["interrupted"] is True and result["signal"] == signame and result["steps"] >= 1
    w = check_saved(save, result["steps"])
    np.testing.assert_array_equal(w, result["params"]["w"])
    assert "Traceback" not in err and leftovers(tmp_path) == []
    # the saved file resumes: zero more steps give the loss of the saved params
    code, out, err = run_cli("train", tmp_path / "m.gdsl", "--load", save, "--lr", "0.1", "--steps", "0", "--json")
    assert code == 0 and json.loads(out)["loss"] == pytest.approx(float(np.sum(w * w)), rel=1e-12)


def test_an_ignored_sighup_stays_ignored(tmp_path):
    """Under nohup SIGHUP is ignored on purpose: training goes on, and the later SIGTERM stops it."""
    (tmp_path / "m.gdsl").write_text(QUADRATIC, encoding="utf-8")
    proc = start_training(tmp_path, "--save", str(tmp_path / "p.npz"), ignore_hup=True)
    proc.send_signal(signal.SIGHUP)
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc)
    assert code == 128 + signal.SIGTERM and json.loads(out)["signal"] == "SIGTERM", err


def test_checkpoints_survive_a_hard_kill(tmp_path):
    """SIGKILL cannot be caught: what is left is the last checkpoint, a whole file after a multiple of N steps."""
    (tmp_path / "m.gdsl").write_text(QUADRATIC, encoding="utf-8")
    save = tmp_path / "p.npz"
    proc = start_training(tmp_path, "--save", str(save), "--checkpoint-every", "7")
    while not save.exists() and proc.poll() is None:  # the first checkpoint is written after step 7
        time.sleep(0.01)
    proc.kill()
    finish(proc)
    with np.load(save, allow_pickle=False) as saved:
        w = saved["w"]
    steps = math.log(w[0] / W0[0]) / math.log(1 - 2 * LR)  # invert w0 (1 - 2 lr)^steps
    assert round(steps) > 0 and round(steps) % 7 == 0
    check_saved(save, round(steps))


def test_checkpoints_are_written_every_n_steps(folder, monkeypatch):
    writes = []
    real = fileio.atomic_write

    def spy(path, data, force=False):
        real(path, data, force)
        with np.load(path, allow_pickle=False) as saved:
            writes.append(saved["w"].copy())

    monkeypatch.setattr(fileio, "atomic_write", spy)
    code, out, err = run_cli("train", "m.gdsl", "--lr", "0.1", "--steps", "10", "--checkpoint-every", "4",
                             "--save", "p.npz")
    assert code == 0 and "every 4 steps" in out, err
    assert len(writes) == 3  # after steps 4 and 8, then the final params
    for w, steps in zip(writes, (4, 8, 10)):
        np.testing.assert_allclose(w, W0 * 0.8 ** steps, rtol=1e-12)


@pytest.mark.parametrize("extra,words", [
    (["--checkpoint-every", "5"], "--save"),
    (["--checkpoint-every", "0", "--save", "p.npz"], "N >= 1"),
])
def test_checkpoint_usage_errors(folder, extra, words):
    code, _, err = run_cli("train", "m.gdsl", "--lr", "0.1", "--steps", "5", *extra)
    assert code == 2 and words in err


def test_signal_handlers_are_restored(folder):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    assert run_cli("train", "m.gdsl", "--lr", "0.1", "--steps", "3")[0] == 0
    assert {s: signal.getsignal(s) for s in before} == before


def _last_finite(lr):
    """Gradient descent on sum(w * w) by hand until the loss overflows: (the last params with a finite
    loss, their step count, the step at which the loss became Inf)."""
    w, steps = W0.copy(), 0
    with np.errstate(over="ignore"):
        while True:
            nxt = w - lr * 2 * w
            if not math.isfinite(float(np.sum(nxt * nxt))):
                return w, steps, steps + 2
            w, steps = nxt, steps + 1


def test_divergence_saves_the_last_finite_params(folder):
    kept, steps, bad = _last_finite(10.0)
    code, _, err = run_cli("train", "m.gdsl", "--lr", "10", "--steps", "100000", "--save", "p.npz")
    assert code == 1 and "error[E302]" in err and f"became NaN or Inf at step {bad}" in err, err
    assert f"those after step {steps}" in err and "saved them to p.npz" in err and "--load p.npz" in err
    with np.load(folder / "p.npz", allow_pickle=False) as saved:
        np.testing.assert_array_equal(saved["w"], kept)


def test_divergence_of_the_params_while_the_loss_stays_finite(folder):
    """1/w at w = 1e-160: the loss 1e160 is finite, the gradient -1/w^2 overflows, so w becomes Inf
    (and the loss after it, 1/Inf = 0, would look fine). The initial params are kept."""
    (folder / "r.gdsl").write_text("param w : [1] = [1e-160]\nJ = sum(1 / w)\n", encoding="utf-8")
    code, _, err = run_cli("train", "r.gdsl", "--lr", "1", "--steps", "5", "--save", "p.npz")
    assert code == 1 and "the params became NaN or Inf at step 1" in err and "(the initial params)" in err, err
    with np.load(folder / "p.npz", allow_pickle=False) as saved:
        assert saved["w"].tolist() == [1e-160]


def test_divergence_at_the_start_saves_nothing(folder):
    (folder / "r.gdsl").write_text("param w : [1] = [-1.0]\nJ = sum(log(w))\n", encoding="utf-8")
    code, _, err = run_cli("train", "r.gdsl", "--lr", "1", "--steps", "5", "--save", "p.npz")
    assert code == 1 and "no finite params to keep" in err and not (folder / "p.npz").exists(), err


def test_the_api_raises_diverged_with_the_kept_params():
    kept, steps, _ = _last_finite(10.0)
    with pytest.raises(Diverged) as info:
        train(graphdsl.parse(QUADRATIC), lr=10.0, steps=100000)
    assert info.value.errors[0].code == "E302" and info.value.kept.steps == steps
    np.testing.assert_array_equal(info.value.kept.params["w"], kept)


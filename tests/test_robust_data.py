"""Input data a hostile or careless user gives (issue 10, items 3, 4, 8, 14 and the small ones).

Each test drives the real command line (graphdsl.cli.main, in process, or in a
subprocess with a timeout where a regression would block or fill memory) and
checks the exit status, the diagnostic code and the words a user needs: the
file (or --set), the entry and, for NaN/Inf, the first bad index. Where data are
accepted, the result is compared with NumPy computed here.
"""
from __future__ import annotations

import io
import json
import math
import os
import socket
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

import graphdsl
from graphdsl import GraphDSLError
from graphdsl import valuefiles

ROOT = Path(__file__).resolve().parents[1]
TANH = "input x : [2]\ny = tanh(x)\nJ = sum(y)\n"  # finite output even for x = Inf: only a data check sees it
DIMS = "dim m = 3\nparam w : [m] = ones()\nJ = sum(w)\n"
HUGE_INT = "9" * 5000


from test_hostile import run_cli  # noqa: E402  (the CLI in process: exit code, stdout, stderr)


def run_subprocess(*argv, cwd, timeout=60) -> tuple[int, str, str]:
    """The CLI in its own process: a regression that blocks (a FIFO) fails the test instead of hanging it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "graphdsl.cli", *map(str, argv)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A fresh folder as the working directory, so that paths in messages are the short names given."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.gdsl").write_text(TANH)
    (tmp_path / "d.gdsl").write_text(DIMS)
    return tmp_path


def json_eval(*argv) -> dict:
    code, out, err = run_cli("eval", *argv, "--json")
    assert code == 0, err
    return json.loads(out)["outputs"]


def assert_refused(result, code: str, *words, status=1):
    status_got, out, err = result
    assert status_got == status, (status_got, err)
    assert f"error[{code}]" in err, err
    for w in words:
        assert w in err, f"{w!r} not in {err!r}"
    assert "Traceback" not in err and "internal error" not in err


def refusal_peak(read, *args) -> int:
    """The most memory Python held while `read(*args)` refused its input (the model file is not read here)."""
    tracemalloc.start()
    try:
        with pytest.raises(GraphDSLError):
            read(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---- 3. NaN and Inf in data are refused before running -----------------------------------------------

def _write_nonfinite(folder: Path, kind: str) -> list:
    """The value-file arguments for x = [1, <bad>] in each way a user can give it."""
    if kind == "set_infinity":
        return ["--set", "x=[1, Infinity]"]
    if kind == "set_nan":
        return ["--set", "x=[1, NaN]"]
    if kind == "json_1e400":
        (folder / "v.json").write_text('{"x": [1, 1e400]}')
        return ["--load", "v.json"]
    if kind == "json_null":
        (folder / "v.json").write_text('{"x": [1, null]}')
        return ["--load", "v.json"]
    if kind == "json_string_nan":
        (folder / "v.json").write_text('{"x": [1, "NaN"]}')
        return ["--load", "v.json"]
    if kind == "npz_inf":
        np.savez(folder / "v.npz", x=np.array([1.0, np.inf]))
        return ["--load", "v.npz"]
    if kind == "npy_minus_inf":
        np.save(folder / "x.npy", np.array([1.0, -np.inf]))
        return ["--set", "x=x.npy"]
    raise AssertionError(kind)


NONFINITE = {  # kind: (where, what)
    "set_infinity": ("`x` (--set)", "Inf at index [1]"),
    "set_nan": ("`x` (--set)", "NaN at index [1]"),
    "json_1e400": ("`x` in `v.json`", "Inf at index [1]"),
    "json_null": ("`x` in `v.json`", "NaN at index [1]"),
    "json_string_nan": ("`x` in `v.json`", "NaN at index [1]"),
    "npz_inf": ("`x` in `v.npz`", "Inf at index [1]"),
    "npy_minus_inf": ("`x` in `x.npy`", "-Inf at index [1]"),
}


@pytest.mark.parametrize("kind", sorted(NONFINITE))
def test_nonfinite_data_is_refused_though_the_output_is_finite(folder, kind):
    given = _write_nonfinite(folder, kind)
    where, what = NONFINITE[kind]
    assert_refused(run_cli("eval", "t.gdsl", *given), "E302", f"{where} is not finite: {what}",
                   "--allow-nonfinite")


@pytest.mark.parametrize("kind", ["set_infinity", "json_1e400", "npz_inf"])
def test_allow_nonfinite_lets_the_data_through(folder, kind):
    given = _write_nonfinite(folder, kind)
    got = json_eval("t.gdsl", *given, "--allow-nonfinite")
    assert got["J"] == pytest.approx(math.tanh(1.0) + 1.0)  # tanh(Inf) = 1


@pytest.mark.parametrize("command", [["eval"], ["grad", "--wrt", "x"], ["gradcheck", "--wrt", "x"],
                                     ["equations", "--wrt", "x"], ["render", "-o", "out.dot"],
                                     ["render", "-o", "out.json"]])
def test_every_command_refuses_nonfinite_data_and_writes_nothing(folder, command):
    argv = [command[0], "t.gdsl", *command[1:], "--set", "x=[1, Infinity]"]
    assert_refused(run_cli(*argv), "E302", "`x` (--set) is not finite: Inf at index [1]")
    assert not list(folder.glob("out.*"))


def test_nonfinite_params_and_consts_are_refused_with_the_first_bad_index(folder):
    (folder / "m.gdsl").write_text("input x : [2, 3]\nparam w : [2, 3] = zeros()\nconst c = 2\n"
                                   "J = sum(tanh(x * w)) + c\n")
    x = np.ones((2, 3))
    w = np.zeros((2, 3))
    w[1, 0], w[1, 2] = -np.inf, np.nan
    np.savez(folder / "v.npz", x=x, w=w)
    assert_refused(run_cli("eval", "m.gdsl", "--load", "v.npz"), "E302",
                   "`w` in `v.npz` is not finite: -Inf at index [1, 0]", "2 of 6 elements are not finite")
    np.savez(folder / "v.npz", x=x)
    assert_refused(run_cli("eval", "m.gdsl", "--load", "v.npz", "--set", "c=-Infinity"), "E302",
                   "`c` (--set) is not finite: -Inf")


def test_train_refuses_nonfinite_data_before_the_first_step(folder):
    (folder / "m.gdsl").write_text("input x : [2]\nparam w : [2] = zeros()\nJ = sum(tanh(x * w) ** 2)\n")
    (folder / "v.json").write_text('{"x": [1, 1e999]}')
    assert_refused(run_cli("train", "m.gdsl", "--load", "v.json", "--steps", "2", "--lr", "0.1",
                           "--save", "p.npz"),
                   "E302", "`x` in `v.json` is not finite: Inf at index [1]")
    assert not (folder / "p.npz").exists()


def test_api_refuses_nonfinite_values_unless_told():
    model = graphdsl.parse(TANH)
    with pytest.raises(GraphDSLError) as info:
        model.eval({"x": [1.0, np.inf]})
    assert info.value.diagnostics[0].code == "E302" and "`x` is not finite: Inf at index [1]" in str(info.value)
    got = model.eval({"x": [1.0, np.inf]}, check_finite=False)["J"]
    assert float(got) == pytest.approx(math.tanh(1.0) + 1.0)


@pytest.mark.parametrize("value, words", [(["1", "2"], "holds strings"), ([1j, 2], "holds complex numbers"),
                                          (np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[D]"),
                                           "holds dates and times")])
def test_api_does_not_coerce_strings_or_dates(value, words):
    with pytest.raises(GraphDSLError) as info:
        graphdsl.parse(TANH).eval({"x": value})
    assert info.value.diagnostics[0].code == "E306" and f"the value of `x` {words}" in str(info.value)


def test_api_reads_booleans_and_integers_as_numbers():
    model = graphdsl.parse(TANH)
    assert float(model.eval({"x": [True, False]})["J"]) == pytest.approx(math.tanh(1.0))
    assert float(model.eval({"x": np.array([3, -2], dtype=np.int8)})["J"]) == pytest.approx(math.tanh(3) + math.tanh(-2))


# ---- 8. --set and .json parse numbers the same bounded way ----------------------------------------------

@pytest.mark.parametrize("number, what", [(HUGE_INT, "Inf"), ("-" + HUGE_INT, "-Inf"), ("9" * 400, "Inf"),
                                          ("-1" + "0" * 310, "-Inf"), ("1e400", "Inf")])
def test_a_number_beyond_float64_is_the_same_diagnostic_from_set_and_json(folder, number, what):
    from_set = run_cli("eval", "t.gdsl", "--set", f"x=[1, {number}]")
    (folder / "v.json").write_text(f'{{"x": [1, {number}]}}')
    from_json = run_cli("eval", "t.gdsl", "--load", "v.json")
    assert_refused(from_set, "E302", f"`x` (--set) is not finite: {what} at index [1]", "1.8e308")
    assert_refused(from_json, "E302", f"`x` in `v.json` is not finite: {what} at index [1]", "1.8e308")
    assert from_set[2].replace("`x` (--set)", "`x` in `v.json`") == from_json[2]
    assert len(from_set[2]) < 600  # the number is not echoed back


def test_integers_in_json_are_read_as_float64_exactly(folder):
    (folder / "v.json").write_text('{"x": [3, -2]}')
    assert json_eval("t.gdsl", "--load", "v.json")["J"] == pytest.approx(math.tanh(3) + math.tanh(-2))
    assert json_eval("t.gdsl", "--set", "x=[3, -2]")["J"] == pytest.approx(math.tanh(3) + math.tanh(-2))


# ---- 4. --dim -------------------------------------------------------------------------------------------

def test_dim_override_takes_effect(folder):
    assert json_eval("d.gdsl")["J"] == 3.0
    assert json_eval("d.gdsl", "--dim", "m=16")["J"] == 16.0


@pytest.mark.parametrize("command", ["eval", "grad", "check", "render"])
def test_dim_of_unknown_name_is_an_error_with_did_you_mean(folder, command):
    extra = ["-o", "out.dot"] if command == "render" else []
    assert_refused(run_cli(command, "d.gdsl", *extra, "--dim", "M=16"), "E304",
                   "the model has no dim of that name", "dim `M`", "did you mean `m`?")
    assert not list(folder.glob("out.*"))


def test_dim_far_from_every_name_lists_the_dims(folder):
    assert_refused(run_cli("eval", "d.gdsl", "--dim", "batch=4"), "E304", "dim `batch`", "its dims are: m")


def test_dim_given_a_param_name_says_what_it_is(folder):
    assert_refused(run_cli("eval", "d.gdsl", "--dim", "w=4"), "E304", "`w`: it is a param, not a dim",
                   "--set w=")


@pytest.mark.parametrize("size, words", [("1.5", "must be a whole number"), ("abc", "must be a whole number"),
                                         ("", "must be a whole number"), ("1e3", "must be a whole number"),
                                         ("-3", "must be >= 0"), (HUGE_INT, "is too large")])
def test_dim_bad_sizes_are_usage_errors(folder, size, words):
    status, out, err = run_cli("eval", "d.gdsl", "--dim", f"m={size}")
    assert status == 2 and f"--dim m: the size" in err and words in err and "Traceback" not in err
    assert len(err) < 600  # a 5000-digit size is not echoed back whole


def test_dim_huge_but_well_formed_is_refused_before_allocating(folder):
    assert_refused(run_cli("eval", "d.gdsl", "--dim", "m=10000000000000"), "E303",
                   "would hold 10,000,000,000,000 elements")


def test_dim_given_twice_is_a_usage_error(folder):
    status, _, err = run_cli("eval", "d.gdsl", "--dim", "m=4", "--dim", "m=5")
    assert status == 2 and "--dim m is given twice" in err


def test_api_refuses_unknown_dims():
    with pytest.raises(GraphDSLError) as info:
        graphdsl.parse(DIMS, dims={"M": 16})
    assert info.value.diagnostics[0].code == "E304" and "did you mean `m`?" in str(info.value)
    model = graphdsl.parse(DIMS)
    with pytest.raises(GraphDSLError, match="no dim of that name"):
        model.eval(dims={"mm": 4})
    assert float(model.eval(dims={"m": 5})["J"]) == 5.0


# ---- 14. only regular files, bounded -------------------------------------------------------------------

@pytest.mark.parametrize("given", [["--load", "fifo.json"], ["--load", "fifo.npz"], ["--set", "x=fifo.npy"]])
def test_a_fifo_is_refused_without_blocking(folder, given):
    os.mkfifo(folder / given[1].split("=")[-1])
    result = run_subprocess("eval", "t.gdsl", *given, cwd=folder)
    assert_refused(result, "E306", "is a named pipe (FIFO), not a value file", given[1].split("=")[-1])


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_is_refused_without_reading_it(folder):
    (folder / "zero.json").symlink_to("/dev/zero")
    for given in (["--load", "zero.json"], ["--load", "/dev/zero"], ["--set", "x=zero.npy"]):
        if given[0] == "--set":
            (folder / "zero.npy").symlink_to("/dev/zero")
        result = run_subprocess("eval", "t.gdsl", *given, cwd=folder)
        assert_refused(result, "E306", "is a character device, not a value file")


def test_a_directory_and_a_socket_are_refused(folder):
    (folder / "d.json").mkdir()
    assert_refused(run_cli("eval", "t.gdsl", "--load", "d.json"), "E306", "`d.json` is a directory")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind("s.json")  # relative: the folder's absolute path may be too long for a socket address
        assert_refused(run_subprocess("eval", "t.gdsl", "--load", "s.json", cwd=folder), "E306",
                       "`s.json` is a socket")
    finally:
        sock.close()


def test_a_missing_value_file_says_so(folder):
    assert_refused(run_cli("eval", "t.gdsl", "--load", "nope.json"), "E306",
                   "cannot read `nope.json`: No such file or directory")


def test_a_huge_sparse_json_is_refused_from_its_size_before_reading(folder):
    with open(folder / "big.json", "wb") as fh:
        fh.truncate(10 << 30)  # 10 GiB, sparse: nothing on disk
    assert_refused(run_cli("eval", "t.gdsl", "--load", "big.json"), "E306",
                   "`big.json` is 10,240 MiB; a .json value file may be at most 16 MiB", ".npz")
    assert refusal_peak(valuefiles.load_file, "big.json") < 1 << 20


def test_the_json_size_limit_is_the_documented_constant(folder, monkeypatch):
    documented = f"value) is at most {valuefiles.MAX_JSON_BYTES >> 20} MiB"
    assert documented in (ROOT / "docs" / "language.md").read_text()
    text = '{"x": [1, 2]}'
    (folder / "v.json").write_text(text)
    monkeypatch.setattr(valuefiles, "MAX_JSON_BYTES", len(text))
    assert json_eval("t.gdsl", "--load", "v.json")["J"] == pytest.approx(math.tanh(1) + math.tanh(2))
    monkeypatch.setattr(valuefiles, "MAX_JSON_BYTES", len(text) - 1)
    assert_refused(run_cli("eval", "t.gdsl", "--load", "v.json"), "E306", "may be at most")
    assert_refused(run_cli("eval", "t.gdsl", "--set", f"x={text}"), "E306", "--set x: the value is longer than")


@pytest.mark.parametrize("name", ["big.npy", "big.npz"])
def test_a_huge_sparse_array_file_is_refused_without_reading_it(folder, name):
    with open(folder / name, "wb") as fh:
        fh.truncate(10 << 30)
    given = ["--set", f"x={name}"] if name.endswith(".npy") else ["--load", name]
    assert_refused(run_cli("eval", "t.gdsl", *given), "E306", f"`{name}` is not an .npy file"
                   if name.endswith(".npy") else f"`{name}` is neither an .npz archive nor a .json file")
    if name.endswith(".npy"):
        assert refusal_peak(valuefiles.parse_set, f"x={name}") < 1 << 20
    else:
        assert refusal_peak(valuefiles.load_file, name) < 1 << 20


def test_the_arrays_of_one_npz_are_bounded_together(folder):
    np.savez(folder / "v.npz", x=np.ones(2), y=np.ones(9))
    (folder / "m.gdsl").write_text("dim n\ninput x : [2]\ninput y : [n]\nJ = sum(x) + sum(y)\n")
    assert_refused(run_cli("eval", "m.gdsl", "--load", "v.npz", "--max-elements", "10"), "E303",
                   "the arrays in `v.npz` hold 11 elements together, more than the limit of 10")
    assert json_eval("m.gdsl", "--load", "v.npz", "--max-elements", "11")["J"] == 11.0


def test_a_json_value_is_bounded_by_max_elements(folder):
    (folder / "v.json").write_text('{"x": [1, 2]}')
    assert_refused(run_cli("eval", "t.gdsl", "--load", "v.json", "--max-elements", "1"), "E303",
                   "`x` in `v.json` has 2 elements, more than the limit of 1")


def test_an_npz_member_that_is_not_an_array_is_refused_unread(folder):
    with zipfile.ZipFile(folder / "v.npz", "w", compression=zipfile.ZIP_DEFLATED) as z:
        buf = io.BytesIO()
        np.save(buf, np.ones(2))
        z.writestr("x.npy", buf.getvalue())
        z.writestr("notes.txt", bytes(50 << 20))  # 50 MB of zeros, 50 kB compressed: must not be inflated
    assert_refused(run_cli("eval", "t.gdsl", "--load", "v.npz"), "E306", "`notes.txt` in `v.npz` is not an .npy array")
    assert refusal_peak(valuefiles.load_file, "v.npz") < 1 << 20


# ---- the small ones -------------------------------------------------------------------------------------

def test_duplicate_json_keys_are_refused_at_any_level(folder):
    (folder / "v.json").write_text('{"x": [1, 2], "x": [3, 4]}')
    assert_refused(run_cli("eval", "t.gdsl", "--load", "v.json"), "E306", "`v.json` gives `x` twice")
    (folder / "v.json").write_text('{"x": [1, 2], "y": {"a": 1, "a": 2}}')
    assert_refused(run_cli("eval", "t.gdsl", "--load", "v.json"), "E306",
                   "`y` in `v.json` holds an object", "the key `a` twice")


def test_repeated_set_is_refused_but_set_may_override_load(folder):
    assert_refused(run_cli("eval", "t.gdsl", "--set", "x=[1, 2]", "--set", "x=[3, 4]"), "E306",
                   "--set x is given twice")
    (folder / "v.json").write_text('{"x": [1, 2]}')
    got = json_eval("t.gdsl", "--load", "v.json", "--set", "x=[3, 4]")["J"]
    assert got == pytest.approx(math.tanh(3) + math.tanh(4))


@pytest.mark.parametrize("text, words", [('{"x": [1, "1"]}', 'holds the string "1" at index [1], not a number'),
                                         ('{"x": ["2", 1]}', 'holds the string "2" at index [0]'),
                                         ('{"x": [1, [2]]}', "is not a rectangular array of numbers"),
                                         ('{"x": "12"}', 'holds the string "12", not a number'),
                                         ('{"x": [1, {"v": 2}]}', "holds an object {...} at index [1]")])
def test_json_strings_and_objects_are_not_coerced(folder, text, words):
    (folder / "v.json").write_text(text)
    assert_refused(run_cli("eval", "t.gdsl", "--load", "v.json"), "E306", f"`x` in `v.json` {words}")


def test_set_strings_are_not_coerced(folder):
    assert_refused(run_cli("eval", "t.gdsl", "--set", 'x=[1, "1"]'), "E306",
                   '`x` (--set) holds the string "1" at index [1], not a number')


@pytest.mark.parametrize("array, words", [
    (np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[D]"), "holds dates and times (dtype datetime64[D])"),
    (np.array([1, 2], dtype="timedelta64[s]"), "holds time spans"),
    (np.array([b"1", b"2"]), "holds bytes"),
    (np.array(["1", "2"]), "holds strings"),
    (np.zeros(2, dtype=[("a", "f8")]), "holds structured records"),
    (np.array([1 + 0j, 2]), "holds complex numbers"),
])
def test_npz_arrays_that_are_not_numbers_are_refused(folder, array, words):
    np.savez(folder / "v.npz", x=array)
    np.save(folder / "x.npy", array)
    assert_refused(run_cli("eval", "t.gdsl", "--load", "v.npz"), "E306", f"`x` in `v.npz` {words}")
    assert_refused(run_cli("eval", "t.gdsl", "--set", "x=x.npy"), "E306", f"`x` in `x.npy` {words}")


def test_booleans_are_read_as_0_and_1(folder):
    want = math.tanh(1.0) + math.tanh(0.0)
    (folder / "v.json").write_text('{"x": [true, false]}')
    assert json_eval("t.gdsl", "--load", "v.json")["J"] == pytest.approx(want)
    np.savez(folder / "v.npz", x=np.array([True, False]))
    assert json_eval("t.gdsl", "--load", "v.npz")["J"] == pytest.approx(want)
    assert "`true`/`false` (read as 1 and 0)" in (ROOT / "docs" / "language.md").read_text()


def test_integer_npz_arrays_are_read_exactly(folder):
    np.savez(folder / "v.npz", x=np.array([3, -2], dtype=np.int16))
    assert json_eval("t.gdsl", "--load", "v.npz")["J"] == pytest.approx(math.tanh(3) + math.tanh(-2))


def test_a_json_file_with_a_byte_order_mark_is_read(folder):
    (folder / "v.json").write_bytes(b"\xef\xbb\xbf" + b'{"x": [0.5, 2]}')
    assert json_eval("t.gdsl", "--load", "v.json")["J"] == pytest.approx(math.tanh(0.5) + math.tanh(2))


def test_a_json_file_that_is_not_utf8_names_the_byte_and_line(folder):
    (folder / "v.json").write_bytes(b'{"x":\n [1, 2\xff]}')
    assert_refused(run_cli("eval", "t.gdsl", "--load", "v.json"), "E306",
                   "`v.json` is not UTF-8 text: byte 0xff at line 2")


def test_invalid_json_names_the_file_and_position(folder):
    (folder / "v.json").write_text('{"x": [1, 2,]}')
    assert_refused(run_cli("eval", "t.gdsl", "--load", "v.json"), "E306", "`v.json` is not valid JSON",
                   "line 1 column")
    (folder / "v.json").write_text("[1, 2]")
    assert_refused(run_cli("eval", "t.gdsl", "--load", "v.json"), "E306",
                   "`v.json` must hold a JSON object mapping names to arrays, not an array")


def test_graphdsl_json_output_reads_back(folder):
    """What `eval --json` writes (NaN as a string) is a value file again, refused or allowed like any NaN."""
    (folder / "m.gdsl").write_text("input x : [2]\nz = log(x)\nJ = sum(z)\noutput z\n")
    code, out, err = run_cli("eval", "m.gdsl", "--set", "x=[1, -1]", "--allow-nonfinite", "--json")
    assert code == 0, err
    (folder / "z.json").write_text(json.dumps({"x": json.loads(out)["outputs"]["z"]}))
    assert_refused(run_cli("eval", "t.gdsl", "--load", "z.json"), "E302", "`x` in `z.json` is not finite: NaN")
    got = json_eval("t.gdsl", "--load", "z.json", "--allow-nonfinite")["J"]
    assert got == "NaN"


def test_a_damaged_npz_member_is_named(folder):
    np.savez(folder / "v.npz", x=np.ones(2))
    data = bytearray((folder / "v.npz").read_bytes())
    at = data.index(np.ones(2).tobytes())
    data[at + 3] ^= 0xFF  # the stored CRC no longer matches
    (folder / "v.npz").write_bytes(bytes(data))
    assert_refused(run_cli("eval", "t.gdsl", "--load", "v.npz"), "E306", "cannot read `x` in `v.npz`", "CRC")


def test_mixed_json_items_are_read_by_type(folder):
    """Numbers among strings, nulls and huge integers: each item read as its own type says."""
    (folder / "m.gdsl").write_text("dim n\ninput x : [n]\ny = x * 1\noutput y\n")
    (folder / "v.json").write_text(f'{{"x": [1.5, "NaN", null, true, {2 ** 70}, "-Infinity", {"9" * 400}, 7]}}')
    got = json_eval("m.gdsl", "--load", "v.json", "--allow-nonfinite")["y"]
    assert got == [1.5, "NaN", "NaN", 1.0, float(2 ** 70), "-Infinity", "Infinity", 7.0]


def test_the_first_bad_item_is_named_in_reading_order(folder):
    (folder / "v.json").write_text('{"x": [[1, 2, 3], [null, "NaN", "two"], [4, "5", 6]]}')
    assert_refused(run_cli("eval", "t.gdsl", "--load", "v.json"), "E306",
                   '`x` in `v.json` holds the string "two" at index [1, 2], not a number')
    (folder / "v.json").write_text('{"x": [[1, 2], [null, 3]]}')
    assert_refused(run_cli("eval", "t.gdsl", "--load", "v.json"), "E302",
                   "`x` in `v.json` is not finite: NaN at index [1, 0]")

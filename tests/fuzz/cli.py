"""The command line run in process on generated programs and on token and byte mutants."""
from __future__ import annotations

import io
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from graphdsl.cli import main
from fuzz.checks import strict_json
from fuzz.gen import programs
from fuzz.loops import loop_programs
from fuzz.guard import known_cli_bug
from fuzz.stats import STATS

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.gdsl"))
EXAMPLE_TEXTS = [p.read_text(encoding="utf-8") for p in EXAMPLES]


# ---- the CLI, in process ------------------------------------------------------------------------

def run_cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse: usage errors and --help
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def clean(code, out, err, argv):
    """The CLI's promise: exit 0 or 1 (2 for usage), diagnostics, never a traceback or an internal error."""
    STATS[f"cli_exit_{code}"] += 1
    assert "Traceback" not in out + err, f"traceback from {argv}:\n{err}"
    label = known_cli_bug(argv, err)
    if label is not None:
        STATS["known_bug:" + label] += 1
        return
    assert "internal error" not in err, f"internal error from {argv}:\n{err}"
    assert code in (0, 1), f"exit {code} from {argv}:\n{err}"
    if "--error-format" in argv and code == 1:
        data = strict_json(err)
        assert data["diagnostics"], err
    if "--json" in argv and code == 0:
        strict_json(out)


# ---- mutations --------------------------------------------------------------------------------

TOKEN = re.compile(r"[ \t]+|\r?\n|#[^\n]*|[A-Za-z_]\w*|\d+\.?\d*(?:[eE][+-]?\d+)?|\*\*|[<>=!]=|.", re.S)
EXTRA_TOKENS = ["dim", "input", "param", "const", "def", "return", "output", "true", "false", "grad", "(", ")",
                "[", "]", "{", "}", ",", ";", "\n", "=", "**", "@", ".T", "_", ":", "#", "\t", "\r\n", "\r", "'",
                "^", "\\", "&&", "1e999", "0", "-1", "1e-400", "0/0", "\x00", "\ufeff", "é", "中", "\x1b[2J",
                "\u202e", "\x0c", "\u2028", "99999999999999999999", "[" * 300, "(" * 300, "x" * 300]


@st.composite
def token_mutants(draw, sources=None):
    """A program (generated or an example) with tokens or characters deleted, inserted, swapped or duplicated."""
    if sources is None and draw(st.booleans()):
        text = draw(st.one_of(programs("any"), loop_programs("any"))).text  # loops and defs of two values too
    else:
        text = draw(st.sampled_from(sources or EXAMPLE_TEXTS))
    by_char = draw(st.booleans())  # mutate characters, or whole tokens
    toks = list(text) if by_char else TOKEN.findall(text)
    vocab = sorted(set(toks)) + EXTRA_TOKENS
    for _ in range(draw(st.integers(1, 5))):
        if not toks:
            toks = [draw(st.sampled_from(vocab))]
        i = draw(st.integers(0, len(toks) - 1))
        kind = draw(st.sampled_from(["delete", "insert", "swap", "duplicate", "replace"]))
        if kind == "delete":
            del toks[i: i + draw(st.integers(1, 3))]
        elif kind == "insert":
            toks.insert(i, draw(st.sampled_from(vocab)))
        elif kind == "replace":
            toks[i] = draw(st.sampled_from(vocab))
        elif kind == "swap":
            j = draw(st.integers(0, len(toks) - 1))
            toks[i], toks[j] = toks[j], toks[i]
        else:
            toks[i:i] = toks[i: i + draw(st.integers(1, 8))]
    return "".join(toks)


@st.composite
def byte_mutants(draw):
    """Bytes that are mostly not valid UTF-8: random bytes, or an example with bad bytes spliced in."""
    kind = draw(st.sampled_from(["random", "splice", "splice", "truncate"]))
    if kind == "random":
        return draw(st.binary(max_size=300))
    data = bytearray(draw(st.sampled_from(EXAMPLE_TEXTS)).encode("utf-8"))
    if kind == "truncate":  # cut inside a multi-byte character, or anywhere
        data += "é中".encode("utf-8")
        return bytes(data[: len(data) - draw(st.integers(1, 4))])
    bad = [b"\xff", b"\xfe", b"\xc3", b"\xe4\xb8", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80",
           b"\x00", b"\xef\xbb\xbf", b"\r", b"\x1b"]
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.sampled_from(bad)) if draw(st.booleans()) else draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


COMMANDS = [["check"], ["check", "--strict"], ["eval", "--json"], ["eval"], ["grad", "--json"], ["grad"],
            ["gradcheck"], ["equations"], ["render", "-o", "{dir}/out.dot"], ["render", "-o", "{dir}/out.json"],
            ["train", "--steps", "2", "--lr", "0.01", "--quiet", "--json", "--save", "{dir}/p.npz"]]


def cli_on(folder: Path, text_or_bytes, values: dict | None, command: list, json_errors: bool):
    path = folder / "m.gdsl"
    if isinstance(text_or_bytes, bytes):
        path.write_bytes(text_or_bytes)
    else:
        path.write_bytes(text_or_bytes.encode("utf-8", "surrogatepass"))
    argv = [command[0], path] + [c.replace("{dir}", str(folder)) for c in command[1:]]
    if values and command[0] != "check":
        np.savez(folder / "v.npz", **values)
        argv += ["--load", folder / "v.npz"]
    if json_errors:
        argv += ["--error-format", "json"]
    argv = [str(a) for a in argv]
    code, out, err = run_cli(*argv)
    clean(code, out, err, argv)
    return code, err

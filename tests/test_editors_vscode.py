"""The VS Code extension: its files agree, and its TextMate grammar tokenizes the examples."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXT = ROOT / "editors" / "vscode"
GRAMMAR = json.loads((EXT / "syntaxes/gdsl.tmLanguage.json").read_text(encoding="utf-8"))
EXAMPLES = sorted((ROOT / "examples").glob("*.gdsl"))


def _python_regex(pattern: str) -> re.Pattern:
    # Oniguruma's Unicode classes, in Python's spelling (the only ones the grammar uses).
    pattern = pattern.replace(r"[\p{L}_]", r"[^\W\d]").replace(r"[\p{L}\p{N}_]", r"\w")
    assert r"\p" not in pattern, pattern
    return re.compile(pattern)


RULES = [(_python_regex(r["match"]), r) for r in GRAMMAR["patterns"]]


def tokenize_line(line: str) -> list[tuple[str, str]]:
    """TextMate's rule for one line of match-only patterns: at each position the
    pattern matching earliest wins, ties going to the first listed."""
    out, pos = [], 0
    while pos < len(line):
        best = None
        for rx, rule in RULES:
            m = rx.search(line, pos)
            if m and m.end() > m.start() and (best is None or m.start() < best[0].start()):
                best = (m, rule)
        if best is None:
            break
        m, rule = best
        if "captures" in rule:
            out.extend((m.group(int(k)), c["name"]) for k, c in rule["captures"].items())
        else:
            out.append((m.group(), rule["name"]))
        pos = m.end()
    return out


def _scopes(text):
    return [tok for line in text.split("\n") for tok in tokenize_line(line)]


def test_a_model_line_by_line():
    toks = _scopes("param W1 : [m, d] = randn(std=0.1)  # weights\ndef phi(z) = relu(z)\nλ = sum(x ** 2)")
    assert ("param", "storage.type.gdsl") in toks and ("W1", "variable.other.gdsl") in toks
    assert ("randn", "support.function.builtin.gdsl") in toks and ("0.1", "constant.numeric.gdsl") in toks
    assert ("# weights", "comment.line.number-sign.gdsl") in toks
    assert ("def", "storage.type.function.gdsl") in toks and ("phi", "entity.name.function.gdsl") in toks
    assert ("λ", "variable.other.gdsl") in toks and ("**", "keyword.operator.gdsl") in toks


def test_numbers_inside_names_are_not_numbers():
    assert _scopes("W1 = x2") == [("W1", "variable.other.gdsl"), ("=", "keyword.operator.gdsl"),
                                  ("x2", "variable.other.gdsl")]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_tokenizes_sensibly(path):
    from graphdsl.editors.vocabulary import builtins, keywords

    text = path.read_text(encoding="utf-8")
    toks = _scopes(text)
    for word, scope in toks:
        if scope == "variable.other.gdsl":
            assert word not in keywords()
    # every line that is not blank or a comment yields a token for each non-space run start
    code = "".join(line.split("#")[0] for line in text.split("\n"))
    covered = sum(len(w) for w, s in toks if not s.startswith("comment"))
    assert covered >= len(re.sub(r"[\s()\[\]{},:;.]", "", code))
    called = set(re.findall(r"\b(\w+)\s*\(", code)) & set(builtins())
    assert called <= {w for w, s in toks if s == "support.function.builtin.gdsl"}


def test_grammar_file_is_generated_from_the_op_table():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_grammar", EXT / "make_grammar.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.text() == (EXT / "syntaxes/gdsl.tmLanguage.json").read_text(encoding="utf-8"), \
        "run python editors/vscode/make_grammar.py"


def test_manifest_wires_language_grammar_and_server():
    manifest = json.loads((EXT / "package.json").read_text(encoding="utf-8"))
    (language,) = manifest["contributes"]["languages"]
    (grammar,) = manifest["contributes"]["grammars"]
    assert language["extensions"] == [".gdsl"] and grammar["language"] == language["id"]
    assert grammar["scopeName"] == GRAMMAR["scopeName"]
    for rel in (grammar["path"], language["configuration"], manifest["main"]):
        assert (EXT / rel).is_file(), rel
    json.loads((EXT / language["configuration"]).read_text(encoding="utf-8"))
    assert manifest["contributes"]["configuration"]["properties"]["graphdsl.server.command"]["default"] == \
        ["graphdsl", "lsp"]
    assert "vscode-languageclient" in manifest["dependencies"]


def test_extension_script_parses_under_node():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    subprocess.run([node, "--check", str(EXT / "extension.js")], check=True)


# ---- the same grammar in VS Code's own engine (vscode-textmate on Oniguruma) -------------------

@pytest.fixture(scope="module")
def node_modules(tmp_path_factory):
    """vscode-textmate and vscode-oniguruma, installed with npm into a temporary folder."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node/npm are not installed")
    folder = tmp_path_factory.mktemp("npm")
    try:
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent", "vscode-textmate@9",
                        "vscode-oniguruma@2"], cwd=folder, check=True, capture_output=True, timeout=300)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        pytest.skip(f"npm could not install vscode-textmate (offline?): {err}")
    return folder / "node_modules"


def test_vscode_textmate_tokenizes_the_examples_as_the_python_reading(node_modules, tmp_path):
    import os

    greek = tmp_path / "greek.gdsl"
    greek.write_text("const λ = 0.01\nparam θ1 : [3] = zeros()\nJ = λ * sqnorm(θ1)\n", encoding="utf-8")
    files = EXAMPLES + [greek]
    out = subprocess.run([shutil.which("node"), str(EXT / "test/tokenize.js"), *map(str, files)],
                         env={**os.environ, "NODE_PATH": str(node_modules)}, capture_output=True, text=True,
                         check=True, timeout=120)
    per_file = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(per_file) == len(files)
    assert ["θ1", "variable.other.gdsl"] in per_file[-1] and ["λ", "variable.other.gdsl"] in per_file[-1]
    for path, tokens in zip(files, per_file):
        scoped = [tuple(t) for t in tokens if t[1] != "source.gdsl"]  # unscoped: brackets, commas
        assert scoped == _scopes(path.read_text(encoding="utf-8")), path.name
        assert ("output", "storage.type.gdsl") in scoped or "output" not in path.read_text(encoding="utf-8")

"""docs/api.md: every ```python block runs, in order, in one namespace."""
from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_api_doc_examples_run():
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 5
    namespace: dict = {}
    cwd = os.getcwd()
    os.chdir(ROOT)  # the examples use paths relative to the repository
    try:
        for i, block in enumerate(blocks):
            exec(compile(block, f"docs/api.md block {i + 1}", "exec"), namespace)
    finally:
        os.chdir(cwd)
    assert namespace["report"].ok and namespace["result"].loss < namespace["result"].losses[0]


def test_the_summary_shown_in_the_doc_is_what_repr_prints(monkeypatch):
    monkeypatch.chdir(ROOT)
    import graphdsl

    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    shown = re.search(r"```\n(graphdsl model .*?)```", text, re.S).group(1).rstrip()
    assert repr(graphdsl.load("examples/d2l_mlp.gdsl")) == shown

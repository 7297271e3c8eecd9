"""The walkthrough in Markdown: a display-math block per step (GitHub and Jupyter render them),
the notes as text, and the plain-text walkthrough at the end for copying numbers."""
from __future__ import annotations

from .latex import sections
from .text import format_text


def format_markdown(walk) -> str:
    lines = [f"# Backpropagation step by step: `{walk.name}`", ""]
    for title, blocks in sections(walk):
        lines += [f"## {title}", ""]
        rows: list = []
        for block_rows, note in blocks:  # one display block per run of steps, broken where words come
            rows += block_rows
            if note:
                lines += _display(rows) + [note, ""]
                rows = []
        lines += _display(rows)
    lines += ["<details><summary>The same as text</summary>", "", "```text"]
    lines += format_text(walk).rstrip("\n").split("\n") + ["```", "", "</details>"]
    return "\n".join(lines) + "\n"


def _display(rows) -> list:
    if not rows:
        return []
    body = ["  " + r + r" \\" for r in rows[:-1]] + ["  " + rows[-1]]
    return ["$$", r"\begin{aligned}"] + body + [r"\end{aligned}", "$$", ""]

"""The equations as Markdown: LaTeX blocks between $$, each followed by the plain text."""
from __future__ import annotations

from .latex import latex_block
from .text import text_lines


def format_markdown(eqs) -> str:
    lines = [f"# Equations of `{eqs.name}`", "", "## Forward", ""] + \
        _section(eqs.forward, eqs.roller(backward=False))
    if eqs.backward:
        lines += ["", f"## Backward (reverse mode, d{eqs.of}/dv, last to first)", ""] + \
            _section(eqs.backward, eqs.roller(backward=True))
    return "\n".join(lines) + "\n"


def _section(eqs, roller) -> list:
    math = ["$$"] + latex_block(eqs, "aligned", roller) + ["$$"] if eqs else ["(none)"]
    return math + ["", "As text:", "", "```"] + text_lines(eqs, roller) + ["```"]

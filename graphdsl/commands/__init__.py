"""Subcommands. Each module adds its parsers with `add_parsers(sub)` (or `add_parser`)."""
from . import check, equations, evaluate, explain, lsp, render, train

# Later modules (render, equations, train, ...) are appended here.
MODULES = [check, evaluate, equations, explain, train, render, lsp]

"""Subcommands. Each module adds its parsers with `add_parsers(sub)` (or `add_parser`).

The CLI imports only the module of the command it runs (`modules_for`): the
render, train and equations modules pull in much that `check` never needs.
"""
from __future__ import annotations

import importlib

# Later modules (render, equations, train, ...) are appended here, in help order.
MODULE_NAMES = ["check", "evaluate", "equations", "explain", "train", "export", "render", "lsp"]
# The command names each module defines; a name not listed here loads them all.
COMMANDS = {"check": "check", "eval": "evaluate", "grad": "evaluate", "gradcheck": "evaluate",
            "equations": "equations", "explain": "explain", "train": "train", "export": "export", "render": "render", "doctor": "render",
            "lsp": "lsp"}


def modules_for(command: str | None) -> list:
    """The command modules to load for `command` (all of them for None or an unknown name)."""
    names = [COMMANDS[command]] if command in COMMANDS else MODULE_NAMES
    return [importlib.import_module(f".{name}", __name__) for name in names]


def __getattr__(name):  # `commands.MODULES`, every module, for whoever wants them all
    if name == "MODULES":
        return modules_for(None)
    raise AttributeError(name)

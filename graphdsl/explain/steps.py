"""The walkthrough's data: its steps, each an equation with the engine's value of every name in it."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Entry:
    """What a name in an equation stands for: its value, its shape (Dims) and where it is in the graph."""

    value: np.ndarray
    shape: tuple | None
    node: str  # the graph node the player marks
    kind: str  # "value" | "grad" | "local" | "rate"


@dataclass
class Part:
    """One contribution to the gradient of a value that feeds several others."""

    expr: object  # Ex
    value: np.ndarray
    via: list  # names of the values whose gradients it carries back


@dataclass
class Step:
    kind: str  # "forward" | "aux" | "local" | "backward" | "update"
    node: str  # the value computed (for a gradient or an update: the value it belongs to)
    lhs: object  # Sym
    forms: list  # symbolic right-hand sides, most explicit last; the last one gets the numbers
    value: np.ndarray
    shape: tuple | None
    reads: list = field(default_factory=list)  # [(node, kind)] the values the step reads
    parts: list = field(default_factory=list)  # [Part] at a fan-out
    note: str = ""  # the step in words, where words help


@dataclass
class Walkthrough:
    """One training step of one model, written out."""

    name: str  # the model's file name
    of: str  # the display name of the loss
    of_node: str
    start: list  # [(name, role, node, value)]: params, inputs, consts
    forward: list  # [Step]
    backward: list  # [Step], in reverse topological order
    lookup: dict  # name -> Entry: every name an equation may mention
    loss: float
    lr: float | None = None  # set when an update is shown
    lr_asked: bool = False
    updates: list = field(default_factory=list)  # [Step] with kind "update"
    loss_after: float | None = None

    @property
    def steps(self) -> list:
        return self.forward + self.backward + self.updates

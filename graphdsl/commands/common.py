"""What every subcommand shares: value options, loading, printing arrays."""
from __future__ import annotations

import argparse

import numpy as np

from ..api import Model, load
from ..bounds import DEFAULT_MAX_OPS
from ..diagnostics import Diagnostic, GraphDSLError
from ..memory import parse_size
from ..values import load_file, parse_set


class UsageError(Exception):
    """A bad command line (exit 2), as opposed to a bad model (exit 1)."""


def add_model_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="the model file (.gdsl)")
    p.add_argument("--max-ops", type=_count, default=DEFAULT_MAX_OPS, metavar="N",
                   help=f"refuse a model whose graph would have more operations, defs inlined; counted before "
                        f"building (default {DEFAULT_MAX_OPS:,})")


def _count(text: str) -> int:
    try:
        n = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got `{text}`")
    return n


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_value_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("values")
    g.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a value: a JSON number or array, or an .npy path (repeatable)")
    g.add_argument("--load", action="append", default=[], metavar="FILE",
                   help="values from an .npz or .json file (repeatable; later wins)")
    g.add_argument("--dim", action="append", default=[], metavar="NAME=INT", help="a dim's size")
    g.add_argument("--seed", type=int, default=0, help="seed of the initialisers (default 0)")
    g.add_argument("--max-elements", type=int, default=2 ** 28, metavar="N",
                   help="refuse any value with more elements (default 2**28)")
    g.add_argument("--max-memory", type=_size, default=None, metavar="SIZE",
                   help="refuse a run estimated to need more memory, e.g. 2G or 500M (default: the smaller of "
                        "the address-space limit and the memory available)")
    g.add_argument("--allow-nonfinite", action="store_true", help="go on when a value is NaN or Inf")


def parse_dims(items) -> dict[str, int]:
    dims = {}
    for item in items:
        name, sep, raw = item.partition("=")
        try:
            size = int(raw)
        except ValueError:
            size = -1
        if not sep or not name.strip().isidentifier() or size < 0:
            raise UsageError(f"--dim expects NAME=INT with INT >= 0, got `{item}`")
        dims[name.strip()] = size
    return dims


def load_model(args) -> Model:
    model = load(args.file, dims=parse_dims(getattr(args, "dim", [])), strict=getattr(args, "strict", False),
                 max_ops=getattr(args, "max_ops", DEFAULT_MAX_OPS), max_memory=getattr(args, "max_memory", None),
                 purpose=_PURPOSE.get(getattr(args, "command", None), "check"))
    if hasattr(args, "max_elements"):
        model.max_elements = args.max_elements
    return model


# which graphs each command builds (memory.GRAPH_BYTES_PER_OP): checked against the budget before parsing
_PURPOSE = {"eval": "eval", "render": "eval", "grad": "grad", "gradcheck": "grad", "train": "grad",
            "equations": "grad"}


def gather_values(args) -> dict[str, np.ndarray]:
    values: dict[str, np.ndarray] = {}
    limit = getattr(args, "max_elements", 2 ** 28)  # checked in the file headers, before loading
    for path in args.load:
        values.update(load_file(path, limit))
    for item in args.set:
        name, value = parse_set(item, limit)
        values[name] = value
    return values


def summarise(value, precision: int = 6) -> str:
    """A value for a table: in full when small, else shape and min/mean/max."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.size <= 12:
        return np.array2string(arr, precision=precision, suppress_small=False, separator=", ",
                               max_line_width=200).replace("\n", "")
    finite = arr[np.isfinite(arr)]
    bad = arr.size - finite.size
    stats = (f"min {finite.min():.{precision}g}, mean {finite.mean():.{precision}g}, "
             f"max {finite.max():.{precision}g}") if finite.size else "no finite values"
    return stats + (f", {bad} non-finite" if bad else "")


def shape_text(arr) -> str:
    return "[" + ", ".join(str(s) for s in np.shape(arr)) + "]"


def model_error(code: str, message: str, help=()) -> GraphDSLError:
    return GraphDSLError(Diagnostic(code, message, help=tuple(help)))

"""What every subcommand shares: value options, loading, printing arrays."""
from __future__ import annotations

import argparse
import re

import numpy as np

from ..api import Model, load
from ..bounds import DEFAULT_MAX_OPS
from ..diagnostics import Diagnostic, GraphDSLError
from ..memory import parse_size
from ..outputs import Named, check_outputs
from ..valuefiles import load_file, parse_set


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


def add_output_option(p: argparse.ArgumentParser, *flags: str, **kw) -> None:
    """An option naming a file the command writes. check_command_outputs vets it before any work;
    the first one also gives the command --force."""
    action = p.add_argument(*flags, **kw)
    outputs = p.get_default("output_options") or ()
    if not outputs:
        p.add_argument("--force", action="store_true",
                       help="replace an existing output file even if it is write-protected")
    p.set_defaults(output_options=outputs + (Named(max(action.option_strings, key=len), action.dest),))


def check_command_outputs(args) -> None:
    """Refuse (E308), before any work, an output that is an input, another output, write-protected
    (unless --force) or in a folder that cannot be written."""
    outputs = [Named(what, getattr(args, dest)) for what, dest in getattr(args, "output_options", ())]
    check_outputs(outputs, input_files(args), getattr(args, "force", False))


def input_files(args) -> list[Named]:
    """Every file the command may read: the model, --load files, and --set values that may name one.

    Every --set value is a candidate, whatever values.parse_set makes of it; check_outputs
    keeps those that exist. A false alarm needs a file named like a JSON number; a missed
    one would lose data.
    """
    files = [Named("the model file", args.file)] if getattr(args, "file", None) else []
    files += [Named("the --load file", path) for path in getattr(args, "load", ())]
    if getattr(args, "values", None):  # explain's positional VALUES file
        files.append(Named("the VALUES file", args.values))
    for item in getattr(args, "set", ()):
        raw = item.partition("=")[2].strip()
        if raw:
            files.append(Named("the --set file", raw))
    return files


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


def add_mode_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=("eval", "train"), default="eval",
                   help="train: dropout zeroes elements (seeded by --seed); eval: dropout is the identity "
                        "(default eval)")


def add_backend_options(p: argparse.ArgumentParser) -> None:
    """--backend numpy|torch|jax and --device (docs/interop.md): the same plan, run by another library."""
    from ..interop.backends import available

    p.add_argument("--backend", choices=available(), default="numpy",
                   help="the library that runs the plan (default numpy; torch and jax need graphdsl[torch], "
                        "graphdsl[jax])")
    p.add_argument("--device", metavar="DEVICE", default=None,
                   help="with --backend torch or jax: where to run, e.g. cpu, cuda, cuda:1 (default: cpu)")


MAX_DIM_DIGITS = 18  # a size of 19 digits is beyond any array (and int64); larger text is not worth converting


def parse_dims(items) -> dict[str, int]:
    """--dim NAME=INT items; a malformed one, or a name given twice, is a usage error (exit 2)."""
    dims = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep or not name.isidentifier():
            raise UsageError(f"--dim expects NAME=INT, got `{_clip(item)}`")
        digits = re.fullmatch(r"([+-]?)([0-9]+)", raw)
        if digits is None:
            raise UsageError(f"--dim {name}: the size must be a whole number, got `{_clip(raw)}`")
        if digits[1] == "-" and digits[2].strip("0"):
            raise UsageError(f"--dim {name}: the size must be >= 0, got {_clip(raw)}")
        if len(digits[2].lstrip("0")) > MAX_DIM_DIGITS:
            raise UsageError(f"--dim {name}: the size {_clip(raw)} is too large (at most {MAX_DIM_DIGITS} digits)")
        if name in dims:
            raise UsageError(f"--dim {name} is given twice")
        dims[name] = int(raw)
    return dims


def _clip(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:20]}...({len(text):,} characters)"


def load_model(args) -> Model:
    model = load(args.file, dims=parse_dims(getattr(args, "dim", [])), strict=getattr(args, "strict", False),
                 max_ops=getattr(args, "max_ops", DEFAULT_MAX_OPS), max_memory=getattr(args, "max_memory", None),
                 purpose=_PURPOSE.get(getattr(args, "command", None), "check"))
    model.argument_style = "cli"  # errors name --of, not of=
    if hasattr(args, "max_elements"):
        model.max_elements = args.max_elements
    model.mode = getattr(args, "mode", "eval")
    return model


# which graphs each command builds (memory.GRAPH_BYTES_PER_OP): checked against the budget before parsing
_PURPOSE = {"eval": "eval", "render": "eval", "grad": "grad", "gradcheck": "grad", "train": "grad",
            "equations": "grad"}


def gather_values(args) -> dict[str, np.ndarray]:
    """--load files in order (a later file wins), then --set values (each name once)."""
    values: dict[str, np.ndarray] = {}
    limit = getattr(args, "max_elements", 2 ** 28)  # checked in the file headers, before loading
    allow = getattr(args, "allow_nonfinite", False)
    for path in args.load:
        values.update(load_file(path, limit, allow_nonfinite=allow))
    set_names = set()
    for item in args.set:
        name, value = parse_set(item, limit, allow_nonfinite=allow)
        if name in set_names:
            raise model_error("E306", f"--set {name} is given twice", help=("give each name once",))
        set_names.add(name)
        values[name] = value
    return values


def summarise(value, precision: int = 6) -> str:
    """A value for a table: in full when small, else shape and min/mean/max."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.size <= 12:
        # `g`, not NumPy's default: a whole number prints as `14`, not `14.`
        return np.array2string(arr, separator=", ", max_line_width=200,
                               formatter={"float_kind": lambda v: f"{v:.{precision}g}"}).replace("\n", "")
    finite = arr[np.isfinite(arr)]
    bad = arr.size - finite.size
    stats = (f"min {finite.min():.{precision}g}, mean {finite.mean():.{precision}g}, "
             f"max {finite.max():.{precision}g}") if finite.size else "no finite values"
    return stats + (f", {bad} non-finite" if bad else "")


def shape_text(arr) -> str:
    return "[" + ", ".join(str(s) for s in np.shape(arr)) + "]"


def model_error(code: str, message: str, help=()) -> GraphDSLError:
    return GraphDSLError(Diagnostic(code, message, help=tuple(help)))

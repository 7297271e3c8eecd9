"""graphdsl export FILE --to torch|jax|onnx -o OUT: the model for another engine (docs/interop.md)."""
from __future__ import annotations

import importlib
import importlib.util

import numpy as np

from .. import __version__
from ..fileio import atomic_write
from ..interop import require
from ..interop.schedule import export_program
from .common import add_model_argument, add_output_option, add_value_options, gather_values, load_model

# The exporter of each target: a module with LIBRARY (the import it needs) and export(program, dtype, version).
TARGETS = {"torch": "graphdsl.interop.torch_export", "jax": "graphdsl.interop.jax_export",
           "onnx": "graphdsl.interop.onnx_export"}


def add_parsers(sub):
    p = sub.add_parser("export", help="write the model for PyTorch, JAX or ONNX",
                       description="write the model as a PyTorch module, a JAX module or an ONNX model, with "
                                   "its initial values (--load, or the initialisers with --seed)")
    add_model_argument(p)
    p.add_argument("--to", required=True, choices=available_targets(), help="the engine to export to")
    add_output_option(p, "-o", "--output", required=True, metavar="OUT", help="the file to write")
    add_value_options(p)
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="the floating-point type of the exported model (default float64)")
    p.add_argument("--with-grads", action="store_true",
                   help="onnx: add the reverse-mode gradients as outputs grad_<of>_<name>; torch and jax "
                        "differentiate the exported forward with their own autodiff, so it adds nothing there")
    p.add_argument("--of", metavar="NAME", help="with --with-grads: the scalar to differentiate")
    p.add_argument("--wrt", metavar="A,B", help="with --with-grads: the values to differentiate by "
                                                "(default: the params)")
    p.set_defaults(run=run_export)


def available_targets() -> list:
    """The targets whose exporter this installation has (each a module of graphdsl.interop)."""
    return sorted(t for t, module in TARGETS.items() if importlib.util.find_spec(module) is not None)


def run_export(args, out) -> int:
    try:
        exporter = importlib.import_module(TARGETS[args.to])
    except ImportError:  # an exporter that imports its library at the top
        require(args.to, f"export --to {args.to}")  # E311 naming the extra
        raise
    require(getattr(exporter, "LIBRARY", args.to), f"export --to {args.to}")  # E311, before any work
    model = load_model(args)  # --dim is applied here
    values = stand_ins(model, gather_values(args))
    program = export_program(model, values, None, seed=args.seed, with_grads=args.with_grads,
                             of=args.of, wrt=args.wrt)
    data = exporter.export(program, dtype=args.dtype, version=__version__)  # E109 raises before writing
    atomic_write(args.output, data, args.force)
    out.line(f"wrote {args.output} ({args.to}, {len(program.steps)} steps)")
    return 0


def stand_ins(model, values: dict) -> dict:
    """`values`, with zeros for the inputs not given: an export writes none of the inputs' values, only
    reads their shapes (exported code takes free dims from its inputs at run time; a free dim no value
    binds stands at its --dim size, else 1, while the schedule is compiled)."""
    decls = model.built.decls
    bound = {}
    for name, value in values.items():
        shape = decls[name].shape if name in decls else None
        for d, size in zip(shape or (), np.shape(value)):
            if d.name and d.size is None:
                bound.setdefault(d.name, size)
    filled = dict(values)
    for name, decl in decls.items():
        if decl.kind != "input" or name in values or decl.value is not None or decl.init is not None \
                or decl.shape is None:
            continue
        filled[name] = np.zeros(tuple(d.size if d.size is not None else bound.get(d.name, 1) for d in decl.shape))
    return filled

"""graphdsl equations: the forward and backward equations, as text, LaTeX or Markdown."""
from __future__ import annotations

import sys

from ..equations import equations
from ..fileio import atomic_write
from .common import add_model_argument, add_output_option, add_value_options, gather_values, load_model, parse_dims

HELP = "print the forward and backward (backpropagation) equations"


def add_parsers(sub):
    p = sub.add_parser("equations", help=HELP,
                       description=HELP + ": the model's named values in order, then d(of)/dv for each "
                                          "value between the params and `of`, read off the gradient graph "
                                          "that reverse mode built, last to first.")
    add_model_argument(p)
    add_value_options(p)
    p.add_argument("--format", choices=("text", "latex", "markdown"), default="text",
                   help="text (default), LaTeX (align* environments) or Markdown with LaTeX blocks")
    p.add_argument("--of", metavar="NAME", help="the scalar to differentiate (default: the one output)")
    p.add_argument("--wrt", metavar="A,B", help="the values the backward equations lead to (default: all params)")
    p.add_argument("--standalone", action="store_true", help="with --format latex: a complete document")
    p.add_argument("--unroll", action="store_true",
                   help="print a loop's equations for every iteration (default: once, in terms of the loop "
                        "variable: `for t = 1..T: h[t] = ...`, and `Σ_t` for a sum over the iterations)")
    add_output_option(p, "-o", "--output", metavar="FILE", help="write to FILE instead of printing")
    p.set_defaults(run=run)


def run(args, out) -> int:
    model = load_model(args)
    for w in model.warnings:
        out.warn(w, model.source)
    values = gather_values(args)
    eqs = equations(model, values or None, of=args.of, wrt=args.wrt, dims=parse_dims(args.dim) or None,
                    partial=True, unroll=args.unroll)
    text = eqs.format(args.format, standalone=args.standalone)
    if args.output:
        atomic_write(args.output, text, args.force)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    if eqs.error is not None:
        out.fail(eqs.error)
        return 1
    if args.output:
        out.line(f"wrote the equations to {args.output}")
    return 0

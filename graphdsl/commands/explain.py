"""graphdsl explain: the worked example of one training step, as text, Markdown, LaTeX or the HTML player."""
from __future__ import annotations

import math
import sys

from ..explain import FORMATS, explain
from ..fileio import atomic_write
from .common import (UsageError, add_mode_option, add_model_argument, add_output_option, add_value_options,
                     gather_values, load_model, parse_dims)

HELP = "write backpropagation step by step: forward, loss, backward, update"


def add_parsers(sub):
    p = sub.add_parser("explain", help=HELP,
                       description=HELP + ". The starting values; each named value's equation, the equation with "
                                          "the numbers and the result; the loss; each gradient as the chain rule, "
                                          "symbolically and with the numbers, last to first; with --lr the update "
                                          "of every param and the loss after it. --format html writes the "
                                          "backward-pass player, one self-contained page.")
    add_model_argument(p)
    p.add_argument("values", nargs="?", metavar="VALUES", help="an .npz or .json file of values (like --load)")
    add_value_options(p)
    add_mode_option(p)
    p.add_argument("--of", metavar="NAME", help="the scalar loss (default: the one output)")
    p.add_argument("--wrt", metavar="A,B", help="the values to differentiate with respect to (default: the params)")
    p.add_argument("--lr", type=float, metavar="F", help="also show one gradient-descent update with this "
                                                         "learning rate, and the loss after it")
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="text (default), markdown, latex or html (the backward-pass player)")
    p.add_argument("--standalone", action="store_true", help="with --format latex: a complete document")
    add_output_option(p, "-o", "--output", metavar="FILE", help="write to FILE instead of printing")
    p.set_defaults(run=run)


def run(args, out) -> int:
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise UsageError(f"--lr must be a positive number, got {args.lr}")
    if args.values:
        args.load = [args.values] + list(args.load)
    model = load_model(args)
    for w in model.warnings:
        out.warn(w, model.source)
    result = explain(model, gather_values(args) or None, of=args.of, wrt=args.wrt, lr=args.lr, seed=args.seed,
                     dims=parse_dims(args.dim) or None, check_finite=not args.allow_nonfinite)
    text = result.format(args.format, standalone=args.standalone)
    if args.output:
        atomic_write(args.output, text, args.force)
        out.line(f"wrote the walkthrough to {args.output}")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return 0

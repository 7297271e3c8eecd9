"""graphdsl eval, grad and gradcheck."""
from __future__ import annotations

import numpy as np

from ..fileio import save_npz
from ..gradcheck import gradcheck
from .common import (add_backend_options, add_mode_option, add_model_argument, add_output_option, add_value_options,
                     gather_values, load_model, model_error, shape_text, summarise)


def add_parsers(sub):
    p = sub.add_parser("eval", help="evaluate a model's outputs", description="evaluate a model's outputs")
    add_model_argument(p)
    add_value_options(p)
    add_mode_option(p)
    add_backend_options(p)
    p.add_argument("--output", action="append", default=None, metavar="NAME", help="a value to print "
                                                                                   "(default: the outputs)")
    p.add_argument("--json", action="store_true", help='print {"outputs": {...}} as JSON')
    p.set_defaults(run=run_eval)

    p = sub.add_parser("grad", help="gradients of a scalar output", description="gradients of a scalar output")
    add_model_argument(p)
    add_value_options(p)
    add_mode_option(p)
    add_grad_options(p)
    add_backend_options(p)
    p.add_argument("--json", action="store_true", help='print {"of": ..., "value": ..., "grads": {...}} as JSON')
    add_output_option(p, "--save", metavar="FILE.npz", help="save the gradients to an .npz file")
    p.add_argument("--profile", action="store_true", help="time each node of the forward and backward pass")
    p.set_defaults(run=run_grad)

    p = sub.add_parser("gradcheck", help="check gradients against central finite differences",
                       description="compare reverse-mode gradients with float64 central differences "
                                   "(step 1e-6) along three seeded random directions per value")
    add_model_argument(p)
    add_value_options(p)
    add_grad_options(p)
    p.add_argument("--tol", type=float, default=1e-5, help="largest relative error accepted (default 1e-5)")
    p.add_argument("--step", type=float, default=1e-6, help="finite-difference step (default 1e-6)")
    p.add_argument("--json", action="store_true", help="print the errors as JSON")
    p.set_defaults(run=run_gradcheck)


def add_grad_options(p):
    p.add_argument("--of", metavar="NAME", help="the scalar to differentiate (default: the one output)")
    p.add_argument("--wrt", metavar="A,B", help="values to differentiate by (default: all params)")


def run_eval(args, out) -> int:
    model = load_model(args)
    values = gather_values(args)
    results = model.eval(values, seed=args.seed, outputs=args.output, check_finite=not args.allow_nonfinite,
                         backend=args.backend, device=args.device)
    if args.json:
        out.json({"outputs": results})
        return 0
    out.table(("output", "shape", "value"),
              [(name, shape_text(value), summarise(value)) for name, value in results.items()])
    return 0


def run_grad(args, out) -> int:
    model = load_model(args)
    values = gather_values(args)
    if args.profile:
        from .profile import print_profile

        return print_profile(model, values, args, out)
    value, grads = model.grad(values, of=args.of, wrt=args.wrt, seed=args.seed,
                              check_finite=not args.allow_nonfinite, backend=args.backend, device=args.device)
    of = args.of or _of_name(model)
    if args.save:
        save_npz(args.save, grads, args.force)
    if args.json:
        out.json({"of": of, "value": value, "grads": grads})
        return 0
    out.line(f"{of} = {summarise(value)}")
    out.table((f"d{of}/d·", "shape", "value", "norm"),
              [(name, shape_text(g), summarise(g), f"{np.linalg.norm(np.ravel(g)):.6g}") for name, g in grads.items()])
    if args.save:
        out.line(f"saved {len(grads)} gradients to {args.save}")
    return 0


def _of_name(model):
    return model.built.graph.nodes[model.outputs[0]].get("name") or model.outputs[0]


def run_gradcheck(args, out) -> int:
    model = load_model(args)
    values = gather_values(args)
    report = gradcheck(model, values, of=args.of, wrt=args.wrt, seed=args.seed, step=args.step)
    worst = max(report.values(), default=0.0)
    if args.json:
        out.json({"max_rel_error": report, "tol": args.tol, "ok": worst <= args.tol})
    else:
        out.table(("value", "max relative error", ""),
                  [(name, f"{err:.3e}", "ok" if err <= args.tol else "FAIL") for name, err in report.items()])
    if worst > args.tol:
        bad = [n for n, e in report.items() if e > args.tol]
        raise model_error("E307", f"gradient check failed for {', '.join(f'`{b}`' for b in bad)}: relative error "
                                  f"{worst:.3e} > tolerance {args.tol:g}",
                          help=("a kink (relu at 0, max ties) can make finite differences disagree; "
                                "try another --seed",))
    return 0

"""graphdsl check: parse and check a model; print a summary of what it holds."""
from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from ..ops import fmt_shape
from .common import add_model_argument, load_model

NAME = "check"
HELP = "parse a model and check its names and shapes"


def add_parser(sub):
    p = sub.add_parser(NAME, help=HELP, description=HELP)
    add_model_argument(p)
    p.add_argument("--strict", action="store_true", help="treat warnings (implicit inputs, undefined functions) "
                                                         "as errors")
    p.add_argument("--dim", action="append", default=[], metavar="NAME=INT", help="a dim's size")
    return p


def run(args, out) -> int:
    model = load_model(args)
    for w in model.warnings:
        out.warn(w, model.source)
    if args.error_format == "json":
        out.json({"ok": True, "file": args.file, **summary(model),
                  "diagnostics": [w.to_json(model.source) for w in model.warnings]})
        return 0
    print_summary(model, out.console)
    return 0


def summary(model) -> dict:
    g = model.built.graph
    kinds = Counter(d["kind"] for _, d in g.nodes(data=True))
    return {
        "dims": {k: v for k, v in model.built.dims.items()},
        "declarations": {n: {"kind": d.kind, "shape": fmt_shape(g.nodes[n]["shape"]), "implicit": d.implicit}
                         for n, d in model.built.decls.items()},
        "nodes": {"variables": kinds.get("var", 0), "operators": kinds.get("op", 0)},
        "outputs": [g.nodes[o].get("name") or o for o in model.outputs],
        "warnings": len(model.warnings),
    }


def print_summary(model, console: Console) -> None:
    s = summary(model)
    console.print(f"ok: {model.source.name}", style="bold green")
    declared = model.built.declared_dims
    dims = ", ".join(f"{k}={v}" if declared.get(k) is not None else
                     (f"{k} (free, {v} from a default value)" if v is not None else f"{k} (free)")
                     for k, v in s["dims"].items()) or "(none)"
    console.print(f"dims: {dims}")
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("name", "kind", "shape"):
        table.add_column(col)
    for name, d in s["declarations"].items():
        table.add_row(name, d["kind"] + (" (implicit)" if d["implicit"] else ""), d["shape"])
    if s["declarations"]:
        console.print(table)
    console.print(f"nodes: {s['nodes']['variables']} variables, {s['nodes']['operators']} operators")
    console.print(f"outputs: {', '.join(s['outputs']) or '(none)'}")
    if s["warnings"]:
        console.print(f"{s['warnings']} warning{'s' if s['warnings'] != 1 else ''} (see above)")

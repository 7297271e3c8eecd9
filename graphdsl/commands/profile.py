"""graphdsl grad --profile: where a forward-and-backward step spends its time and memory.

Times come from an instrumented twin of the compiled program: each node timed
on its own, the best of several runs (so a busy machine's pauses drop out), which
makes the total a little above or below an unprofiled run's. Memory is what
the program keeps alive for the backward pass (forward results it still has to
read), and the peak measured by tracemalloc over one step.
"""
from __future__ import annotations

import time

import numpy as np
from rich.table import Table

from ..autodiff import gradients
from .common import summarise

TOP = 30  # rows of the time table; the rest are summed up in one line
TOP_HELD = 15


def profile_model(model, values: dict, of=None, wrt=None, seed: int = 0, check_finite: bool = True,
                  budget: float = 0.5) -> dict:
    """The profile of one `grad` step as plain data (also what --json prints)."""
    value, _ = model.grad(values, of=of, wrt=wrt, seed=seed, check_finite=check_finite)
    compiled, given = model.compile(values)
    target, wrt_ids = model.grad_targets(compiled, of, wrt)
    table = gradients(compiled.built.gb, target, wrt_ids)
    plan = model._plan(compiled, (target,) + tuple(table[w] for w in wrt_ids))
    leaves = model.leaf_values(compiled, given, seed)
    once = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        plan.run(leaves, check_finite=False)
        once = min(once, time.perf_counter() - start)
    repeats = max(3, min(50, int(budget / max(once, 1e-6))))
    rows = plan.profile(leaves, repeats=repeats)
    memory = plan.memory(leaves)
    g = plan.graph
    total = sum(t for _, t, _ in rows) or 1e-12
    nodes = []
    for op_id, seconds, nbytes in rows:
        node = g.nodes[op_id]
        out = g.nodes[node["out"]]
        span = node.get("span")
        nodes.append({
            "node": op_id, "op": node["op"], "value": out.get("name") or out.get("text") or node["out"],
            "phase": node.get("phase", "forward"), "line": span.line if span is not None else None,
            "ms": seconds * 1e3, "share": seconds / total, "bytes": nbytes,
        })
    held = []
    for vid, nbytes, producer, reader in memory["held"]:
        node = g.nodes.get(vid, {})
        span = g.nodes[producer].get("span") if producer in g else None
        held.append({"value": node.get("name") or node.get("text") or vid, "bytes": nbytes,
                     "shape": [d.size for d in node.get("shape") or ()],
                     "line": span.line if span is not None else None, "made_by": producer,
                     "last_read_by": reader})
    phase_ms = {p: sum(n["ms"] for n in nodes if n["phase"] == p) for p in ("forward", "backward")}
    return {
        "of": g.nodes[target].get("name") or target, "value": float(np.asarray(value)),
        "repeats": repeats, "step_ms": once * 1e3, "profiled_ms": total * 1e3, "phase_ms": phase_ms,
        "graph_ops": len(plan.steps), "ops_run": len(plan.program.instrs), "nodes": nodes, "held": held,
        "held_bytes": memory["held_bytes"], "static_peak_bytes": memory["static_peak_bytes"],
        "peak_bytes": memory.get("peak_bytes"), "scalar_fast_path": plan.program.scalar,
    }


def _bytes(n) -> str:
    if n is None:
        return "n/a"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


_PASS = {"forward": "fwd", "backward": "bwd"}


def _time(ms) -> str:
    return f"{ms:.3f} ms" if ms >= 1.0 else f"{ms * 1e3:.2f} µs"


def _short(text, width=22) -> str:
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _line(source, line) -> str:
    if not line:
        return ""
    return _short(f"{line}: {source.line_text(line).strip()}", 40)


def print_profile(model, values, args, out) -> int:
    report = profile_model(model, values, of=args.of, wrt=args.wrt, seed=args.seed,
                           check_finite=not args.allow_nonfinite)
    if getattr(args, "json", False):
        out.json(report)
        return 0
    console = out.console
    source = model.source
    console.print(f"{report['of']} = {summarise(report['value'])}")
    unit, scale = ("ms", 1.0) if report["profiled_ms"] >= 1.0 else ("µs", 1e3)
    folded = report["graph_ops"] - report["ops_run"]
    console.print(f"one step: {_time(report['step_ms'])} unprofiled; {report['ops_run']} operations run for the "
                  f"graph's {report['graph_ops']} operator nodes"
                  + (f" ({folded} folded away or fused)" if folded > 0 else "")
                  + f"; best of {report['repeats']} runs per node: forward {_time(report['phase_ms']['forward'])}, "
                  f"backward {_time(report['phase_ms']['backward'])}"
                  + ("; scalar fast path (Python floats)" if report["scalar_fast_path"] else ""))
    table = Table(title="time per node", box=None, header_style="bold", pad_edge=False, title_justify="left")
    for col, justify, width in (("node", "left", 12), ("value", "left", 12), ("pass", "left", 4),
                                (unit, "right", 8), ("share", "right", 6), ("result", "right", 9),
                                ("source line", "left", 12)):
        table.add_column(col, justify=justify, no_wrap=True, overflow="ellipsis", min_width=width)
    ranked = sorted(report["nodes"], key=lambda n: -n["ms"])
    for n in ranked[:TOP]:
        table.add_row(n["node"], _short(n["value"]), _PASS[n["phase"]], f"{n['ms'] * scale:.3f}",
                      f"{100 * n['share']:.1f}%", _bytes(n["bytes"]), _line(source, n["line"]))
    if len(ranked) > TOP:
        rest = ranked[TOP:]
        table.add_row(f"({len(rest)} more)", "", "", f"{sum(n['ms'] for n in rest) * scale:.3f}",
                      f"{100 * sum(n['share'] for n in rest):.1f}%", "", "")
    console.print(table)
    held = sorted(report["held"], key=lambda h: -h["bytes"])
    mem = Table(title="memory held for the backward pass", box=None, header_style="bold", pad_edge=False,
                title_justify="left")
    for col, justify, width in (("value", "left", 12), ("shape", "left", 8), ("bytes", "right", 9),
                                ("last read by", "left", 12), ("source line", "left", 12)):
        mem.add_column(col, justify=justify, no_wrap=True, overflow="ellipsis", min_width=width)
    for h in held[:TOP_HELD]:
        mem.add_row(_short(h["value"]), "[" + ", ".join(str(s) for s in h["shape"]) + "]", _bytes(h["bytes"]),
                    h["last_read_by"], _line(source, h["line"]))
    if len(held) > TOP_HELD:
        mem.add_row(f"({len(held) - TOP_HELD} more)", "", _bytes(sum(h["bytes"] for h in held[TOP_HELD:])), "", "")
    if held:
        console.print(mem)
    console.print(f"held for the backward pass: {_bytes(report['held_bytes'])} in {len(held)} forward values; "
                  f"peak of live results along the schedule: {_bytes(report['static_peak_bytes'])}; "
                  f"peak measured over one step (tracemalloc, inputs excluded): {_bytes(report['peak_bytes'])}")
    return 0

"""The memory budget of a run: estimated from the plan before anything large is allocated.

--max-elements bounds one value; this bounds the process. A plan knows every
buffer and when it dies, so the peak of its live bytes is known before it runs:
the leaves (given, loaded or initialised values), plus the largest total of
results alive at once along the compiled schedule, plus one more value of the
largest size for the temporaries an operator makes inside (softmax, sqnorm).
Above the budget the run is refused with E310, naming the largest buffers.

The budget is --max-memory (Python: max_memory=) when given; otherwise the
smaller of the address-space limit (`ulimit -v`, RLIMIT_AS) less what the
process already maps and a margin, and the memory the kernel says is available.
"""
from __future__ import annotations

import math
import re

from .diagnostics import Diagnostic, GraphDSLError
from .ops import concrete, fmt_shape

MARGIN = 256 << 20  # for Python, NumPy's own temporaries and the results' conversions
SMALL = 64 << 20  # needs below this are not worth reading /proc for (only an explicit budget is checked)

_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([KMGT]?)(?:I?B)?\s*", re.I)


def parse_size(text: str) -> int:
    """Bytes from "2G", "500M", "1.5GiB", "4096" (binary units); ValueError when it is not a size."""
    m = _SIZE.fullmatch(str(text))
    if not m:
        raise ValueError(f"`{text}` is not a size: write a number of bytes or one with K, M, G or T, e.g. 2G")
    return int(float(m[1]) * _UNITS[m[2].upper()])


def fmt_bytes(n: float) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


def default_budget() -> tuple[int | None, str]:
    """(bytes, where the figure comes from) for a run of this process; None when nothing limits it."""
    found = []
    limit = _address_space_limit()
    if limit is not None:
        mapped = _proc_kib("/proc/self/status", "VmSize:")
        used = (mapped or 0) + MARGIN
        found.append((limit - used, f"the address-space limit (ulimit -v) of {fmt_bytes(limit)} less "
                                    f"{fmt_bytes(used)} that graphdsl itself maps or keeps in reserve"))
    available = _proc_kib("/proc/meminfo", "MemAvailable:")
    if available is not None:
        found.append((available, f"the memory available on this machine ({fmt_bytes(available)})"))
    if not found:
        return None, "no limit known"
    budget, why = min(found)
    return max(0, budget), why


def _address_space_limit() -> int | None:
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else soft


def _proc_kib(path: str, key: str) -> int | None:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


# ---- estimates ----------------------------------------------------------------------------------

def _nbytes(data) -> int:
    sizes = concrete(data.get("shape"))
    return 8 * math.prod(sizes) if sizes is not None else 8


def value_bytes(graph, node: str) -> int:
    """Bytes of one value of the graph as float64 (8 when its shape is not known)."""
    return _nbytes(graph.nodes[node])


def plan_estimate(plan, keep_all: bool = False) -> tuple[int, list]:
    """(estimated peak bytes, (bytes, node id) of every leaf and result) of running `plan`.

    The second is a generator, read only by check's error message: most plans fit.
    """
    slot_bytes = plan.slot_bytes  # computed with the plan's size checks, one entry per slot
    buffers = ((slot_bytes[s], n) for n, s in plan.slot.items())
    if keep_all:  # run_all keeps every value
        return sum(slot_bytes), buffers
    leaves = {s for _, s in plan.leaves}
    leaf_bytes = sum(slot_bytes[s] for s in leaves)
    peak = _schedule_peak(plan, slot_bytes)
    largest = max((b for s, b in enumerate(slot_bytes) if s not in leaves), default=0)
    return leaf_bytes + peak + largest, buffers


def _schedule_peak(plan, slot_bytes) -> int:
    """The most bytes of results alive at once over the plan's schedule (leaves are counted apart).

    Read off the reference schedule, not the compiled program: generating that program
    is what a command that runs a plan once avoids, and the program only folds or drops
    steps, so this bound is never below its peak.
    """
    live = peak = 0
    for (_, _, out), freed in zip(plan.steps, plan.frees):
        live += slot_bytes[out]
        if live > peak:
            peak = live
        for s in freed:
            live -= slot_bytes[s]
    return peak


def leaves_estimate(built, given: dict) -> tuple[int, list]:
    """(bytes, [(bytes, name)]) of the values a run starts from: given ones and those to initialise."""
    buffers = [(int(given[n].nbytes) if n in given else _nbytes(built.graph.nodes[n]), n) for n in built.decls]
    return sum(b for b, _ in buffers), buffers


def check(needed: int, buffers, max_memory: int | None, graph, source, what: str) -> None:
    """Refuse (E310) a run estimated to need more than the budget, naming its largest values."""
    if max_memory is None and needed < SMALL:
        return

    def largest():
        shown = ", ".join(f"`{_label(graph, n)}` {fmt_shape(graph.nodes[n].get('shape'))} {fmt_bytes(b)}"
                          for b, n in sorted(buffers, key=lambda bn: -bn[0])[:3])
        return f"largest values: {shown}"

    _refuse_above(needed, max_memory, source, what, largest, "use smaller dims or data")


# Bytes of graph, plan and generated code per operation of the model, measured on chains of
# 20,000 and 33,000 statements (peak RSS less the interpreter's, over the operations):
# check builds one graph, eval a second with every shape concrete and a plan, grad adds reverse mode.
GRAPH_BYTES_PER_OP = {"check": 4 << 10, "eval": 12 << 10, "grad": 28 << 10}


def check_graph(ops: int, stage: str, max_memory: int | None, source) -> None:
    """Refuse (E310) a model whose graphs alone would not fit, before building them."""
    needed = ops * GRAPH_BYTES_PER_OP[stage]
    if max_memory is None and needed < SMALL:
        return
    _refuse_above(needed, max_memory, source, f"the graph of {ops:,} operations for `{stage}`",
                  lambda: f"about {fmt_bytes(GRAPH_BYTES_PER_OP[stage])} per operation for `{stage}` "
                          "(the graphs, the plan and its generated code)",
                  "split the model, or compute shared values once")


def _refuse_above(needed, max_memory, source, what, detail, fix):
    budget, why = (max_memory, "--max-memory (Python: max_memory=)") if max_memory is not None \
        else default_budget()
    if budget is None or needed <= budget:
        return
    raise GraphDSLError(Diagnostic(
        "E310", f"{what} needs about {fmt_bytes(needed)}, more than the memory budget of {fmt_bytes(budget)}",
        notes=(detail(), f"the budget is {why}"),
        help=(f"{fix}; or raise the budget with --max-memory SIZE, e.g. --max-memory "
              f"{math.ceil(needed / (1 << 30)) + 1}G (Python: max_memory=), if the machine has the memory",)),
        source)


def _label(graph, n) -> str:
    data = graph.nodes[n]
    return data.get("name") or data.get("text") or n

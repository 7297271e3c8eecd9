"""Loops drawn rolled (one iteration as a block `×N`) or unrolled (every iteration, each in a box `t = 3`).

The builder unrolls a loop (loops.py): every node made inside one carries `loop`,
its frames `(loop_key, var, value)`, outermost first. Rolled, the picture keeps
one iteration of each loop, the last one with every node the others have
(iterations.fullest_iterations: the last in the forward view, often the one before
it in the backward view; its values are the ones drawn, and the block's title says
which), and every node of another iteration is drawn as its twin in the kept one
(iterations.body_places: same body statement, kind and operator, same order within
its iteration); a node without a twin is drawn as it is. So

- a value entering from outside reaches the body once (`X`, `W`); one that enters
  only some iterations (`h[0]`, read at t = 1) is labelled with them;
- the state carried from one iteration to the next (`h[t-1]` read by `h[t]`) is an
  edge from the block's own `h[t]` back into it, dashed and labelled `h[t-1]`;
- what leaves the loop leaves from the kept iteration (`h[T]`).

A block is a DOT cluster whose path label is `loop:<key>`; nested loops give nested
blocks. Unrolled, each iteration is a cluster `iter:<key>=<values>` titled `t = 3`.
"""
from __future__ import annotations

import re
from collections import defaultdict

from ..iterations import body_places, fullest_iterations, twins_in
from .layout import edge_maps, replace_nodes, sum_tree

LOOP = "loop:"  # cluster label of a rolled loop
ITER = "iter:"  # cluster label of one iteration of an unrolled loop
_ELEMENT = re.compile(r"^(?P<seq>[^\[\]]+)\[(?P<idx>-?\d+(?:,-?\d+)*)\]$")


def is_loop_cluster(label: str) -> bool:
    return label.startswith(LOOP) or label.startswith(ITER)


def has_loops(g) -> bool:
    return bool(g.graph.get("loops"))


def roll_loops(g, sc, unroll: bool = False, evaluated: bool = False) -> None:
    """Rewrite the scene's loop nodes: rolled (the default) or each iteration in a cluster of its own."""
    loops = g.graph.get("loops") or {}
    frames = {n: g.nodes[n].get("loop") for n in sc.nodes if n in g and g.nodes[n].get("loop")}
    if not frames:
        return
    if unroll:
        _group_iterations(g, sc, loops, frames)
        return
    sums = _contract_loop_sums(g, sc, frames)
    kept = fullest_iterations({n: fr for n, fr in frames.items() if n in sc.kind})
    places = body_places(g, [n for n in sc.nodes if n in frames], extra=sc.kind.get)
    twin = twins_in(places, {n: fr for n, fr in frames.items() if n in places}, kept)
    _relabel_edges(g, sc, frames, twin, loops, sums)
    for n, fr in frames.items():
        if n in twin:
            continue
        sc.cluster[n] = _path(sc.cluster.get(n, ()), fr, loops, lambda key, i: LOOP + key)
        sc.loop_frames[n] = fr
        name = g.nodes[n].get("name")
        if name:
            sc.loop_names[n] = relative_text(name, fr)
    for key, info in loops.items():
        sc.loop_titles[LOOP + key] = _rolled_title(info, kept.get(key), evaluated)
    sc.twins = twin
    sc.nodes = [n for n in sc.nodes if n not in twin]
    for n in twin:
        sc.kind.pop(n, None)
        sc.cluster.pop(n, None)
    sc.rolled = {key: kept[key] for key in kept}


def parts_into_blocks(g, sc) -> None:
    """With the body's def call drawn as a block, its term of a sum over the iterations (`dJ/dW (part)`,
    read only by the Σ edge) is hidden in the block, and the Σ edge leaves the block itself."""
    if not sc.rolled or not sc.call_nodes:
        return
    preds, succs = edge_maps(sc)
    gone, added = set(), []
    for (v, a, style), attrs in list(sc.edge_attrs.items()):
        if not attrs["label"].startswith("Σ") or len(preds[v]) != 1 or succs[v] != [a]:
            continue
        block = preds[v][0]
        if sc.kind.get(block) != "call" or v in sc.adjoint_names:
            continue
        gone.add(v)
        sc.members.setdefault(block, []).append(v)
        added.append((block, a, style))
        sc.edge_attrs[(block, a, style)] = sc.edge_attrs.pop((v, a, style))
    if gone:
        replace_nodes(sc, gone, added)


ENTERING = 4  # values entering a block that it is drawn below (more ties only slow the layout)


def after_what_enters(g, sc, pull: bool = True) -> None:
    """A block is drawn below the computed values entering it (the backward pass's dJ/dh[T]): invisible
    edges from them to the block's first nodes, which would otherwise float to the top beside them.
    Called once every node has its cluster (ghosts are placed last)."""
    if not sc.rolled:
        return
    inside = {n for n in sc.nodes if any(c.startswith(LOOP) for c in sc.cluster.get(n, ()))}
    fed = defaultdict(list)
    for u, v, _ in sc.edges:
        if v in inside:
            fed[v].append(u)
    entering = [u for u, v, _ in sc.edges if v in inside and u not in inside and _computed(g, sc, u)]
    # a forward value read in the block sits by its reader, not in one wide row at the block's top
    if pull:
        sc.pulled = {(u, v) for u, v, style in sc.edges if style == "ghost" and v in inside}
    firsts = [n for n in sc.nodes if n in inside and all(not _computed(g, sc, u) for u in fed[n])]
    for u in list(dict.fromkeys(entering))[:ENTERING]:
        sc.order_edges.extend((u, n) for n in firsts)


def _computed(g, sc, n) -> bool:
    """A value the program computes (not a leaf, a forward value read by the backward pass, a reference)."""
    kind = sc.kind.get(n)
    if kind not in ("var", "op"):
        return False
    return kind == "op" or g.nodes[n].get("role") not in ("input", "param", "const")


def _contract_loop_sums(g, sc, frames) -> dict:
    """A gradient summed over a loop's iterations (dJ/dW = Σ_t ...) is drawn as one edge `Σ t` from the
    body's term into it, instead of a ladder of `+` and partial sums beside the block.

    Returns {(term, gradient): loop var} for the edges that stand for the sums."""
    preds, succs = edge_maps(sc)
    gone, added, out = set(), [], {}
    for a in list(sc.nodes):
        found = sum_tree(g, sc, preds, succs, a, allowed=lambda n: n not in frames)
        if found is None:
            continue
        tree, leaves = found
        keys = {frames[v][0][:2] if v in frames else None for v in leaves}
        if len(leaves) < 2 or len(keys) != 1 or None in keys:
            continue
        gone |= tree
        added += [(v, a, "backward") for v in dict.fromkeys(leaves)]
        out.update({(v, a): next(iter(keys))[1] for v in leaves})
        sc.sums[a] = len(leaves)
    if gone:
        replace_nodes(sc, gone, added)
    return out


def _relabel_edges(g, sc, frames, twin, loops, sums) -> None:
    """Edges onto the kept iteration, merged; labelled where they do not hold in every iteration."""
    seen: dict = {}  # merged edge -> iterations it holds in (None: every one) or its carried-state label
    carried: dict = {}
    for u, v, style in sc.edges:
        fu, fv = frames.get(u, ()), frames.get(v, ())
        edge = (twin.get(u, u), twin.get(v, v), style)
        if _shared(fu, fv) and _values(fu, fv) != _values(fv, fu):
            carried[edge] = _carried_text(g.nodes[u].get("name"), fu, fv)
        if (u, v) in sums:
            sc.edge_attrs[edge] = {"label": f"Σ {sums[u, v]}"}
        which = fv or fu
        if which:
            seen.setdefault(edge, set()).add(which[-1][2])
        else:
            seen.setdefault(edge, None)
    edges = []
    for edge, values in seen.items():
        edges.append(edge)
        if edge in sc.edge_attrs:
            continue
        if edge in carried:
            sc.edge_attrs[edge] = {"label": carried[edge], "carried": True}
            continue
        frame = _frame_of(edge, frames)
        if values and frame is not None:
            text = _iterations_text(frame, values, loops)
            if text:
                sc.edge_attrs[edge] = {"label": text}
    sc.edges = edges


def _frame_of(edge, frames):
    a, b, _ = edge
    fr = frames.get(b) or frames.get(a)
    return fr[-1] if fr else None


def _shared(fu, fv) -> bool:
    return bool(fu) and bool(fv) and fu[0][0] == fv[0][0]


def _values(fa, fb) -> tuple:
    keys = {k for k, _, _ in fb}
    return tuple(v for k, _, v in fa if k in keys)


def _iterations_text(frame, values, loops) -> str | None:
    """`t=1`, `t=1..4`, or None when the edge holds in every iteration of the loop."""
    key, var, _ = frame
    info = loops.get(key, {})
    every = set(range(info.get("first", 0), (info.get("last") or 0) + 1))
    values = sorted(values)
    if set(values) >= every:
        return None
    if len(values) == 1:
        return f"{var}={values[0]}"
    if values == list(range(values[0], values[-1] + 1)):
        return f"{var}={values[0]}..{values[-1]}"
    return f"{var}=" + ",".join(map(str, values[:4])) + (",…" if len(values) > 4 else "")


def _carried_text(name, fu, fv) -> str:
    """The carried value as the body reads it: `h[t-1]`, or `t-1` for a value without a name."""
    text = relative_name(name, fu, fv) if name else None
    if text:
        return text
    for (_, var, a), (_, _, b) in zip(fu, fv):
        if a != b:
            return f"{var}{a - b:+d}"
    return ""


_ELEMENTS = re.compile(r"(?<![\w\]])(?P<seq>[^\W\d]\w*)\[(?P<idx>-?\d+(?:, ?-?\d+)*)\]")


def relative_text(text: str, fr) -> str:
    """Every element named in text, in terms of the loop variables: `dJ/dh[11]` at t = 12 -> `dJ/dh[t-1]`."""
    def one(m):
        name = f"{m.group('seq')}[{m.group('idx').replace(' ', '')}]"
        return relative_name(name, fr, fr) or m.group(0)
    return _ELEMENTS.sub(one, text)


def relative_name(name: str, fu, fv) -> str | None:
    """`h[11]` read in the iteration t = 12 -> `h[t-1]`; None when the name is not an element.

    Each loop variable, innermost first, takes the last index within one of its value (`h[0,3]` at
    t = 3 is `h[0,t]`; `h[1,3]` at l = 2, t = 3 is `h[l-1,t]`); other indices stay numbers."""
    m = _ELEMENT.match(name)
    if not m:
        return None
    indices = [int(x) for x in m.group("idx").split(",")]
    parts: list = [str(i) for i in indices]
    free = list(range(len(indices)))
    for _, var, value in reversed(list(fv)):
        near = [p for p in free if abs(indices[p] - value) <= 1]
        if not near:
            continue
        p = near[-1]
        free.remove(p)
        offset = indices[p] - value
        parts[p] = var if offset == 0 else f"{var}{offset:+d}"
    return f"{m.group('seq')}[{','.join(parts)}]"


def _path(calls, fr, loops, label_of) -> tuple:
    """The cluster path of a loop node: its loops interleaved with its def calls, outermost first."""
    at = defaultdict(list)  # number of enclosing calls -> loop labels opened there
    for i, (key, _, _) in enumerate(fr):
        at[len(loops.get(key, {}).get("call") or ())].append(label_of(key, i))
    path = []
    for depth in range(len(calls) + 1):
        path.extend(at.get(depth, ()))
        if depth < len(calls):
            path.append(calls[depth])
    return tuple(path)


def _rolled_title(info, kept, evaluated) -> str:
    first, last = info.get("first"), info.get("last")
    count = (last - first + 1) if last is not None and first is not None else "?"
    title = f"for {info['var']} in {first}..{last}  ×{count}"
    if evaluated and kept is not None:
        title += f"  · values at {info['var']} = {kept}"
    return title


def _group_iterations(g, sc, loops, frames) -> None:
    """Unrolled: each iteration's nodes in a cluster `t = 3` (inside the clusters of outer iterations)."""
    for n, fr in frames.items():
        def label_of(key, i, fr=fr):
            return ITER + key + "=" + ",".join(str(v) for _, _, v in fr[: i + 1])
        sc.cluster[n] = _path(sc.cluster.get(n, ()), fr, loops, label_of)
        for i, (key, var, value) in enumerate(fr):
            sc.loop_titles[label_of(key, i)] = f"{var} = {value}"

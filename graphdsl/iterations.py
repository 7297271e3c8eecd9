"""The same body node in every iteration of a loop: the question pictures and equations both ask.

The builder unrolls a loop (loops.py): each node made inside one carries `loop`,
its frames `(loop_key, var, value)`, outermost first. A body is lowered the same
way in every iteration, so a node's place in its body is its statement (span),
kind, operator, role and phase, and how many such nodes its iteration made before
it. Two nodes of different iterations with the same place are the same body node.
"""
from __future__ import annotations

from collections import defaultdict


def frames_of(g, n) -> tuple:
    """The loop frames of node n, outermost first (empty outside every loop)."""
    return g.nodes[n].get("loop") or () if n in g else ()


def values_of(frames) -> tuple:
    return tuple(v for _, _, v in frames)


def keys_of(frames) -> tuple:
    return tuple(k for k, _, _ in frames)


def body_places(g, nodes, extra=None) -> dict:
    """{node: its place in the loop body} for the loop nodes among `nodes` (taken in graph order).

    extra(n), when given, is part of the place (the picture tells a forward value drawn for the backward
    pass from the value itself)."""
    order: dict = defaultdict(int)
    places = {}
    for n in nodes:
        fr = frames_of(g, n)
        if not fr:
            continue
        data = g.nodes[n]
        span = data.get("span")
        sig = (keys_of(fr), data.get("kind"), data.get("op"), data.get("role"), data.get("phase"),
               (span.start, span.end) if span is not None else None, extra(n) if extra else None)
        where = (values_of(fr), sig)
        places[n] = (sig, order[where])
        order[where] += 1
    return places


def fullest_iterations(frames: dict) -> dict:
    """loop key -> the iteration to show for every other: the one with the most nodes, the last of those.

    The last iteration of a recurrence often lacks a node the others have (its state is read by no next
    iteration, so the backward pass sums nothing into it); the fullest one has a twin for every other's
    nodes. Outer loops are chosen first; an inner loop's iteration within the outer one chosen."""
    counts: dict = defaultdict(int)
    for fr in frames.values():
        counts[(keys_of(fr), values_of(fr))] += 1
    kept: dict = {}
    for keys, values in sorted(counts, key=lambda kv: len(kv[0])):
        if any(kept.get(k, v) != v for k, v in zip(keys, values)) or all(k in kept for k in keys):
            continue
        same = [vals for ks, vals in counts if ks == keys and all(kept.get(k, v) == v for k, v in zip(ks, vals))]
        best = max(same, key=lambda vals: (counts[(keys, vals)], vals))
        kept.update(zip(keys, best))
    return kept


def twins_in(places: dict, frames: dict, kept: dict) -> dict:
    """{node of another iteration: the node at its place in the kept iteration} (kept: loop key -> value)."""
    def is_kept(fr):
        return all(v == kept.get(k) for k, _, v in fr)

    kept_nodes = {places[n]: n for n, fr in frames.items() if is_kept(fr)}
    out = {}
    for n, fr in frames.items():
        if not is_kept(fr) and places[n] in kept_nodes:
            out[n] = kept_nodes[places[n]]
    return out

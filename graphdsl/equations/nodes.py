"""Small queries on the graph that the equation builders share."""
from __future__ import annotations

from collections import deque

from ..digraph import ancestors, descendants


def inputs(g, op) -> list:
    """The op's arguments in position order (edges are keyed by position)."""
    return [u for u, _, _ in sorted(g.in_edges(op, keys=True), key=lambda e: e[2])]


def is_scalar(g, n) -> bool:
    shape = g.nodes[n]["shape"]
    return shape is not None and len(shape) == 0


def rank(g, n):
    shape = g.nodes[n]["shape"]
    return None if shape is None else len(shape)


def upstream_of(g, nodes) -> set:
    """The nodes and every node they depend on."""
    return _closure(g, nodes, ancestors)


def downstream_of(g, nodes) -> set:
    """The nodes and every node that depends on them."""
    return _closure(g, nodes, descendants)


def _closure(g, nodes, reach) -> set:
    out = set(nodes)
    for n in nodes:
        out |= reach(g, n)
    return out


def topological(g, nodes) -> list:
    """The nodes in a topological order of g (Kahn's algorithm over the induced subgraph)."""
    indegree = {n: sum(1 for u in g.predecessors(n) if u in nodes) for n in nodes}
    queue = deque(n for n, k in indegree.items() if k == 0)
    order = []
    while queue:
        n = queue.popleft()
        order.append(n)
        for m in g.successors(n):
            if m in indegree:
                indegree[m] -= 1
                if indegree[m] == 0:
                    queue.append(m)
    return order


def through_anonymous(g, v, upstream):
    """(the named values v reaches through anonymous ones, the forward ops on the way),
    breadth first: the values are those whose equations v enters directly."""
    found, ops, seen, queue = [], [], {v}, deque([v])
    while queue:
        x = queue.popleft()
        for op in g.successors(x):
            if op not in upstream or g.nodes[op].get("phase") != "forward" or op in seen:
                continue
            seen.add(op)
            ops.append(op)
            out = g.nodes[op]["out"]
            if out in seen:
                continue
            seen.add(out)
            if g.nodes[out].get("anonymous"):
                queue.append(out)
            else:
                found.append(out)
    return found, ops

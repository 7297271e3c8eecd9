"""Layout choices made from the graph's shape: orientation, and auxiliary nodes drawn as references.

A chain of operations reads top to bottom, so the picture grows in height (which
a page scrolls) rather than in width (which a notebook cell scales down, text
and all). A value read by many operations (a weight shared by every time step,
a dim, a constant such as `lam`) would pull edges across the whole picture and
widen every rank it crosses; as TensorBoard does with its auxiliary nodes, it is
drawn in full once, at its first use, and as a small reference at each other use.
"""
from __future__ import annotations

from collections import defaultdict

AUX_FANOUT = 3  # a variable read by this many operations is drawn as references after the first
SMALL_FANOUT = 2  # ...or by this many, for dims, literals and scalar constants


def choose_rankdir(sc) -> str:
    """TB unless the graph is much wider (parallel branches) than it is deep."""
    depth, breadth = _depth_and_breadth(sc)
    return "LR" if breadth > 3 * depth else "TB"


def _depth_and_breadth(sc) -> tuple[int, int]:
    """Longest path (in nodes) and the largest number of nodes at one depth, over the drawn edges."""
    preds = defaultdict(list)
    for u, v, style in sc.edges:
        if style != "gradient":
            preds[v].append(u)
    level: dict = {}
    for n in sc.nodes:  # drawn nodes come in a topological order (the builder's insertion order)
        level[n] = 1 + max((level.get(u, 0) for u in preds.get(n, ())), default=0)
    if not level:
        return 1, 1
    counts = defaultdict(int)
    for d in level.values():
        counts[d] += 1
    return max(level.values()), max(counts.values())


def is_auxiliary(g, n, sc, uses: int) -> bool:
    """Drawn as references: shared weights and small shared constants (dims, literals, lam)."""
    if sc.kind.get(n) not in ("var", "ghost") or n == sc.focus:
        return False
    data = g.nodes[n]
    if data.get("role") not in ("param", "const", "input") and not data.get("dim") and sc.kind[n] != "ghost":
        return False
    small = data.get("dim") or (data.get("role") == "const" and data.get("shape") == ())
    return uses >= (SMALL_FANOUT if small else AUX_FANOUT)


def split_auxiliary(g, sc) -> None:
    """Keep each auxiliary variable's first use; every other use reads a reference node `ref:n:k`."""
    uses = defaultdict(list)
    for i, (u, v, style) in enumerate(sc.edges):
        if style != "gradient":
            uses[u].append(i)
    aux = {n for n, idx in uses.items() if is_auxiliary(g, n, sc, len(idx))}
    if not aux:
        return
    before = defaultdict(list)  # consumer -> reference nodes to put just before it
    edges = list(sc.edges)
    for n in aux:
        for k, i in enumerate(uses[n][1:], start=1):
            u, v, style = edges[i]
            ref = f"ref:{n}:{k}"
            sc.kind[ref] = "ref"
            sc.refs[ref] = n
            sc.cluster[ref] = sc.cluster.get(v, ())
            before[v].append(ref)
            edges[i] = (ref, v, style)
    sc.edges = edges
    order = []
    for n in sc.nodes:
        order.extend(before.get(n, ()))
        order.append(n)
    sc.nodes = order


def inline_literals(g, sc) -> None:
    """A number written in the source (`2`, `0.5`) is drawn inside the operator that reads it: `** 2`."""
    from .labels import is_literal, literal_label

    readers = defaultdict(list)
    for u, v, style in sc.edges:
        readers[u].append(v)
    written = {v for _, v, _ in sc.edges}
    gone = set()
    for n in sc.nodes:
        if sc.kind.get(n) not in ("var", "ghost") or n in written or n in sc.adjoint_names or n == sc.focus:
            continue
        if not is_literal(g.nodes[n]) or not readers.get(n) or any(sc.kind.get(v) != "op" for v in readers[n]):
            continue
        text = literal_label(g.nodes[n], 4)
        for v in readers[n]:
            for u, _, pos in g.in_edges(v, keys=True):
                if u == n:
                    sc.inlined.setdefault(v, {})[pos] = text
        gone.add(n)
    if gone:
        sc.nodes = [n for n in sc.nodes if n not in gone]
        sc.edges = [(u, v, s) for u, v, s in sc.edges if u not in gone]
        for n in gone:
            sc.kind.pop(n, None)
            sc.cluster.pop(n, None)


def edge_maps(sc):
    """(predecessors, successors) of the drawn nodes, over every drawn edge."""
    preds, succs = defaultdict(list), defaultdict(list)
    for u, v, _ in sc.edges:
        preds[v].append(u)
        succs[u].append(v)
    return preds, succs


def sum_tree(g, sc, preds, succs, a, allowed=lambda n: True):
    """(nodes, summands) of the tree of `+` and partial sums that makes the adjoint a, or None when a is
    not made by `+`. Only nodes for which `allowed` holds belong to the tree."""
    def is_add(n):
        return sc.kind.get(n) == "op" and g.nodes[n].get("op") == "add" and allowed(n)

    def partial(v):  # a value made by `+` and read only by the next `+`
        return sc.kind.get(v) == "var" and v not in sc.adjoint_names and allowed(v) and len(succs[v]) == 1 and \
            len(preds[v]) == 1 and is_add(preds[v][0])

    if a not in sc.adjoint_names or not allowed(a) or len(preds[a]) != 1 or not is_add(preds[a][0]):
        return None
    leaves, stack, tree = [], [preds[a][0]], set()
    while stack:
        op = stack.pop()
        tree.add(op)
        for v in preds[op]:
            if partial(v):
                tree.add(v)
                stack.append(preds[v][0])
            else:
                leaves.append(v)
    return tree, leaves


def replace_nodes(sc, gone, new_edges) -> None:
    """Take the nodes `gone` (and their edges) out of the scene and add new_edges."""
    sc.nodes = [n for n in sc.nodes if n not in gone]
    sc.edges = [(u, v, s) for u, v, s in sc.edges if u not in gone and v not in gone] + new_edges
    for n in gone:
        sc.kind.pop(n, None)
        sc.cluster.pop(n, None)


def contract_gradient_sums(g, sc) -> None:
    """With blocks drawn, a gradient summed over several calls (dJ/dW_hh over time steps) is drawn as
    edges from each block straight into it, instead of a ladder of `+` and partial sums beside them."""
    preds, succs = edge_maps(sc)
    gone, new_edges = set(), []
    for a in list(sc.nodes):
        found = sum_tree(g, sc, preds, succs, a)
        if found is None:
            continue
        tree, leaves = found
        sources = []
        for v in leaves:
            made_by = preds[v][0] if len(preds[v]) == 1 else None
            if sc.kind.get(made_by) == "call" and len(succs[v]) == 1 and v not in sc.adjoint_names:
                tree.add(v)
                sources.append(made_by)
            else:
                sources.append(v)
        if len(leaves) < 3 or not any(sc.kind.get(s) == "call" for s in sources):
            continue
        gone |= tree
        new_edges += [(s, a, "backward") for s in dict.fromkeys(sources)]
        sc.sums[a] = len(leaves)
    if gone:
        replace_nodes(sc, gone, new_edges)

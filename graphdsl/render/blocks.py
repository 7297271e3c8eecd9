"""def calls drawn as blocks: collapsing, params drawn inside the block that uses them, folding chains.

A collapsed call becomes one node `call:f#k`; what it computes is hidden (listed in
`members` for the hover panel and for --focus). The values it hands out stay drawn,
with their values and gradients. A param read only inside one block is drawn
inside it, as a line of the block. A chain of calls of one def, each reading the
previous one's only result (an unrolled recurrence, a stack of identical layers),
folds into one block `f ×N`.
"""
from __future__ import annotations

from ..diagnostics import Diagnostic, GraphDSLError, suggest
from .labels import is_literal

ALL = "all"


def _check_names(names, defs) -> None:
    for name in names:
        if name == ALL or name in defs:
            continue
        near = suggest(name, defs)
        raise GraphDSLError(Diagnostic(
            "E101", f"--collapse/--expand `{name}`: no def of that name is called in the model",
            help=(f"did you mean `{near}`?",) if near else
            (f"defs called: {', '.join(defs)}" if defs else "the model calls no def",)))


def called_defs(g) -> list[str]:
    return sorted({c["def"] for c in g.graph.get("calls", {}).values()})


def collapse_calls(g, sc, names, ann, expand=(), fold: bool = False) -> None:
    """Draw every call of the defs in names (or of every def, for "all") as a block, but those in expand."""
    calls = g.graph.get("calls", {})
    defs = called_defs(g)
    _check_names(names, defs)
    _check_names(expand, defs)
    wanted = set(defs) if ALL in names else set(names)
    wanted -= set(defs) if ALL in expand else set(expand)
    inside = _inside(sc, calls, wanted)
    if not inside:
        return
    hidden = _hidden(g, sc, inside, ann)
    _replace(sc, hidden, inside)
    _absorb_params(g, sc)
    if fold:
        fold_chains(g, sc, calls)
        _absorb_params(g, sc)  # a weight shared by every folded call is now read by one block


def _inside(sc, calls, wanted) -> dict:
    """node -> the (outermost) collapsed call path it sits in."""
    inside = {}
    for n in sc.nodes:
        path = sc.cluster[n]
        for i, label in enumerate(path):
            if calls.get(label, {}).get("def") in wanted:
                inside[n] = path[: i + 1]
                break
    return inside


def _hidden(g, sc, inside, ann) -> dict:
    """node -> the block that hides it; a value read outside its call stays drawn."""
    succ: dict = {}
    for u, v, _ in sc.edges:
        succ.setdefault(u, []).append(v)
    hidden = {}
    for n, path in inside.items():
        data = g.nodes[n]
        keep = sc.kind[n] not in ("op",) and (data.get("role") == "output" or n == ann.of or
                                              any(inside.get(v) != path for v in succ.get(n, ())))
        if keep:
            sc.cluster[n] = path[:-1]
        else:
            hidden[n] = "call:" + path[-1]
    return hidden


def _replace(sc, hidden, inside) -> None:
    """Swap hidden nodes for their block, merging the edges that now run between the same two nodes."""
    order: list = []
    for n in sc.nodes:
        rep = hidden.get(n)
        if rep is None:
            order.append(n)
        elif rep not in sc.kind:
            sc.kind[rep] = "call"
            sc.call_nodes[rep] = rep[len("call:"):]
            sc.cluster[rep] = inside[n][:-1]
            order.append(rep)
        if rep is not None:
            sc.members.setdefault(rep, []).append(n)
    sc.nodes = order
    sc.edges = _merged(sc.edges, hidden)
    _rename_edge_attrs(sc, hidden)
    for n in hidden:
        sc.kind.pop(n, None)
        sc.cluster.pop(n, None)


def _merged(edges, rename) -> list:
    out, seen = [], set()
    for u, v, style in edges:
        a, b = rename.get(u, u), rename.get(v, v)
        if a == b or (a, b, style) in seen:
            continue
        seen.add((a, b, style))
        out.append((a, b, style))
    return out


def _rename_edge_attrs(sc, rename) -> None:
    """A loop's edge labels (rolled.py) follow their edges onto the blocks that now end them."""
    if sc.edge_attrs:
        moved = {(rename.get(u, u), rename.get(v, v), s): a for (u, v, s), a in sc.edge_attrs.items()}
        sc.edge_attrs = {k: a for k, a in moved.items() if k[0] != k[1]}


def _absorb_params(g, sc) -> None:
    """A param (or a forward value read by the backward pass) whose every reader is one block joins it."""
    readers: dict = {}
    writers = {v for _, v, _ in sc.edges}
    for u, v, style in sc.edges:
        if style != "gradient":
            readers.setdefault(u, set()).add(v)
    absorbed = {}
    for n, rs in readers.items():
        if sc.kind.get(n) not in ("var", "ghost") or n not in g:  # a block reading a block: not a value
            continue
        if len(rs) != 1 or n in writers or n == sc.focus or n in sc.adjoint_names or is_literal(g.nodes[n]):
            continue
        block = next(iter(rs))
        if sc.kind.get(block) == "call" and sc.kind.get(n) in ("var", "ghost") and \
                g.nodes[n].get("role") in ("param", "const") and not g.nodes[n].get("dim"):
            absorbed[n] = block
    if not absorbed:
        return
    for n, block in absorbed.items():
        sc.absorbed.setdefault(block, []).append(n)
        sc.members.setdefault(block, []).append(n)
        sc.kind.pop(n)
        sc.cluster.pop(n, None)
    sc.nodes = [n for n in sc.nodes if n not in absorbed]
    sc.edges = [(u, v, s) for u, v, s in sc.edges if u not in absorbed and v not in absorbed]


def fold_chains(g, sc, calls, shortest: int = 3) -> None:
    """Blocks of one def in a chain (block → its one value → next block) become one block `f ×N`."""
    succ: dict = {}
    pred: dict = {}
    for u, v, style in sc.edges:
        if style == "gradient":
            continue
        succ.setdefault(u, []).append(v)
        pred.setdefault(v, []).append(u)
    def_of = {n: calls.get(label, {}).get("def") for n, label in sc.call_nodes.items()}

    def next_block(block):
        outs = succ.get(block, [])
        if len(outs) != 1 or sc.kind.get(outs[0]) == "call":
            return None, None
        value = outs[0]
        nxt = succ.get(value, [])
        if len(nxt) == 1 and sc.kind.get(nxt[0]) == "call" and def_of.get(nxt[0]) == def_of[block] \
                and g.nodes[value].get("role") not in ("output",) and value != sc.focus:
            return value, nxt[0]
        return None, None

    followers = {next_block(b)[1] for b in sc.call_nodes} - {None}
    starts = [b for b in sc.call_nodes if b not in followers]
    rename: dict = {}
    for start in starts:
        chain, between = [start], []
        value, nxt = next_block(start)
        while nxt is not None and nxt not in chain:
            chain.append(nxt)
            between.append(value)
            value, nxt = next_block(nxt)
        if len(chain) < shortest:
            continue
        head = chain[0]
        sc.folded[head] = [sc.call_nodes[b] for b in chain]
        for b in chain[1:]:
            rename[b] = head
            sc.members[head].extend(sc.members.pop(b, []))
            sc.absorbed.setdefault(head, []).extend(sc.absorbed.pop(b, []))
        for v in between:
            rename[v] = head
            sc.members[head].append(v)
    if not rename:
        return
    sc.nodes = [n for n in sc.nodes if n not in rename]
    sc.edges = _merged(sc.edges, rename)
    _rename_edge_attrs(sc, rename)
    for n in rename:
        sc.kind.pop(n, None)
        sc.cluster.pop(n, None)
        sc.call_nodes.pop(n, None)

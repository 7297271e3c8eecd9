"""A small multi-digraph with the part of networkx.MultiDiGraph's interface graphdsl uses.

graphdsl builds, differentiates and compiles its graphs on this class: importing
networkx costs about 0.15 s, as much as NumPy, which every command would pay
before doing anything. The storage is networkx's own layout (`_node`, `_succ`,
`_pred`: node -> neighbour -> key -> edge data, one key dict shared by both
directions), so code written against networkx's graph reads it unchanged, and
`to_networkx` gives the real networkx object that users see as `Model.graph`.

graphdsl's edges carry no data, and almost every edge is the only one between its two
nodes, at argument position 0 or 1. Such edges share one key dict, `AT[k]` = {k: NO_DATA}:
a graph of 100,000 operations would otherwise hold half a million dicts that all say
the same. Key dicts are never written in place: a writer gives the edge a new key dict
(`add_edge`), so `copy` and `subgraph` may share them; `to_networkx` makes its own, as
networkx writes them in place.
"""
from __future__ import annotations


NO_DATA: dict = {}  # the data of every edge graphdsl makes (shared: never written in place)
AT = ({0: NO_DATA}, {1: NO_DATA})  # the key dict of an edge at argument position 0 or 1, shared


class NodeView(dict):
    """`g.nodes`: node -> attribute dict, and `g.nodes(data=True)` as networkx's view.

    It is the node dict itself (a dict subclass), so `g.nodes[n]` costs one
    dictionary look-up: the builders read it for every node they touch.
    """

    __slots__ = ()

    def __call__(self, data=False, default=None):
        return self.data(data, default) if data is not False else self

    def data(self, data=True, default=None):
        if data is True:
            return list(self.items())
        return [(n, d.get(data, default)) for n, d in self.items()]


class MultiDiGraph:
    """Nodes with attribute dicts, and edges keyed (by argument position) between them."""

    def __init__(self):
        self._node = self.nodes = NodeView()
        self._succ: dict = {}
        self._pred: dict = {}
        self.graph: dict = {}

    # ---- reading -------------------------------------------------------------------
    def __contains__(self, n) -> bool:
        return n in self._node

    def __iter__(self):
        return iter(self._node)

    def __len__(self) -> int:
        return len(self._node)

    def number_of_nodes(self) -> int:
        return len(self._node)

    def number_of_edges(self) -> int:
        return sum(len(keys) for nbrs in self._succ.values() for keys in nbrs.values())

    def has_node(self, n) -> bool:
        return n in self._node

    def is_directed(self) -> bool:
        return True

    def is_multigraph(self) -> bool:
        return True

    def __getitem__(self, n) -> dict:
        """g[u][v] is {key: edge data} for the edges u -> v, as networkx's adjacency."""
        return self._succ[n]

    def predecessors(self, n):
        return iter(self._pred[n])

    def successors(self, n):
        return iter(self._succ[n])

    def in_degree(self, n) -> int:
        return sum(len(keys) for keys in self._pred[n].values())

    def out_degree(self, n) -> int:
        return sum(len(keys) for keys in self._succ[n].values())

    def in_edges(self, n, keys: bool = False, data: bool = False) -> list:
        return [_edge(u, n, k, d, keys, data) for u, kd in self._pred[n].items() for k, d in kd.items()]

    def out_edges(self, n, keys: bool = False, data: bool = False) -> list:
        return [_edge(n, v, k, d, keys, data) for v, kd in self._succ[n].items() for k, d in kd.items()]

    def edges(self, keys: bool = False, data: bool = False) -> list:
        return [_edge(u, v, k, d, keys, data)
                for u, nbrs in self._succ.items() for v, kd in nbrs.items() for k, d in kd.items()]

    # ---- writing -------------------------------------------------------------------
    def add_node(self, n, **attrs) -> None:
        if n in self._node:
            self._node[n].update(attrs)
            return
        self._succ[n], self._pred[n], self._node[n] = {}, {}, attrs

    def add_edge(self, u, v, key=None, **attrs):
        for n in (u, v):
            if n not in self._node:
                self.add_node(n)
        kd = dict(self._succ[u].get(v) or {})  # a new key dict: the edge's may be shared (AT)
        if key is None:
            key = len(kd)
        kd[key] = {**kd.get(key, NO_DATA), **attrs} if attrs else kd.get(key, NO_DATA)
        self._succ[u][v] = self._pred[v][u] = kd
        return key

    def remove_node(self, n) -> None:
        for v in self._succ.pop(n):
            del self._pred[v][n]
        for u in self._pred.pop(n):
            del self._succ[u][n]
        del self._node[n]

    # ---- copies --------------------------------------------------------------------
    def subgraph(self, nodes) -> "MultiDiGraph":
        """A copy of the graph on `nodes` (sharing the attribute dicts, as networkx's view does)."""
        keep = set(nodes)
        sub = MultiDiGraph()
        sub.graph = self.graph
        for n, attrs in self._node.items():
            if n in keep:
                sub._node[n], sub._succ[n], sub._pred[n] = attrs, {}, {}
        for u in sub._node:
            for v, kd in self._succ[u].items():
                if v in keep:
                    sub._succ[u][v] = sub._pred[v][u] = kd
        return sub

    def copy(self) -> "MultiDiGraph":
        """An independent graph to go on building from this one: attribute dicts (their values
        shared) and adjacency dicts of its own, in this graph's orders. The key dicts are shared:
        no writer of this class changes one in place (see the module's docstring)."""
        new = MultiDiGraph()
        new.graph = dict(self.graph)
        node = new._node
        for n, attrs in self._node.items():
            node[n] = attrs.copy()
        new._succ = {n: nbrs.copy() for n, nbrs in self._succ.items()}
        new._pred = {n: nbrs.copy() for n, nbrs in self._pred.items()}
        return new

    def to_networkx(self):
        """The graph as a networkx.MultiDiGraph: the same node attribute dicts, node and adjacency dicts of its own.

        A snapshot of the structure: its edges can be written like any networkx graph's
        without touching this graph's shared key dicts (see the module's docstring), and
        nodes added here later (reverse mode's, for `equations`) do not half-appear there.
        """
        import networkx as nx  # only here: see the module's docstring
        g = nx.MultiDiGraph()
        g.graph, g._node = self.graph, dict(self._node)
        g._adj, g._pred = self._own_adjacency()
        g._succ = g._adj
        return g

    def _own_adjacency(self) -> tuple[dict, dict]:
        """Successor and predecessor dicts in this graph's orders, with new key and edge data dicts."""
        succ = {u: {v: {k: dict(d) for k, d in kd.items()} for v, kd in nbrs.items()}
                for u, nbrs in self._succ.items()}
        pred = {v: {u: succ[u][v] for u in nbrs} for v, nbrs in self._pred.items()}
        return succ, pred


def _edge(u, v, k, d, keys, data):
    if keys:
        return (u, v, k, d) if data else (u, v, k)
    return (u, v, d) if data else (u, v)


def upstream(g, seeds) -> set:
    """The seeds and every node with a path to one of them (of this graph or a networkx one)."""
    return _closure(g._pred, seeds)


def ancestors(g: MultiDiGraph, n) -> set:
    """Every node with a path to `n` (not `n` itself), as networkx.ancestors; a loop, not recursion."""
    seen = _closure(g._pred, (n,))
    seen.discard(n)
    return seen


def descendants(g: MultiDiGraph, n) -> set:
    """Every node reachable from `n` (not `n` itself), as networkx.descendants."""
    seen = _closure(g._succ, (n,))
    seen.discard(n)
    return seen


def _closure(adjacency: dict, seeds) -> set:
    """The seeds and every node reached from them through `adjacency` (graphs here have no cycles)."""
    seen = set(seeds)
    stack = list(seen)
    while stack:
        for m in adjacency[stack.pop()]:
            if m not in seen:
                seen.add(m)
                stack.append(m)
    return seen

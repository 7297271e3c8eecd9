"""Which graph nodes equations refer to by name, and those names in text and LaTeX."""
from __future__ import annotations

from .expr import Sym
from .nodes import is_scalar
from .texnames import tex_escape, tex_name


def adjoint_sym(of, of_tex, v, v_tex, scalar) -> Sym:
    """d(of)/dv, written dJ/dW1 in text and as a \\frac of partials in LaTeX."""
    return Sym(f"d{of}/d{v}", r"\frac{\partial " + of_tex + r"}{\partial " + v_tex + "}", scalar, adjoint=True)


class NodeNames:
    """Names for the nodes of one graph: the model's own, adjoints' and auxiliaries' (t1, t2, ...)."""

    def __init__(self, g):
        self.g = g
        self.adjoint_names: dict = {}  # backward node -> Sym, for the `of` being printed
        self.aux: dict = {}  # node -> Sym for auxiliaries
        counts: dict = {}
        for n, d in g.nodes(data=True):
            if d["kind"] == "var" and not d.get("anonymous") and d.get("phase") == "forward":
                counts[d.get("name") or n] = counts.get(d.get("name") or n, 0) + 1
        self.dupes = {k for k, v in counts.items() if v > 1}  # def locals, one per call
        self.used = set(counts)

    def on_scratch(self, scratch_g) -> "NodeNames":
        """Names for a scratch copy of part of the graph: the same names, and auxiliary
        names taken there are taken here too (the used set is shared)."""
        names = NodeNames(scratch_g)
        names.dupes, names.used = self.dupes, self.used
        return names

    def _needs_call(self, n) -> bool:
        """A def local seen in several calls is told apart by its call (f#2.t)."""
        d = self.g.nodes[n]
        return (d.get("name") or n) in self.dupes and bool(d.get("call"))

    def display(self, n) -> str:
        return n if self._needs_call(n) else self.g.nodes[n].get("name") or n

    def tex(self, n) -> str:
        d = self.g.nodes[n]
        name = tex_name(d.get("name") or n)
        return name + "^{(" + tex_escape(d["call"][-1]) + ")}" if self._needs_call(n) else name

    def is_named(self, n) -> bool:
        d = self.g.nodes[n]
        if d["kind"] != "var":
            return False
        if n in self.adjoint_names or n in self.aux:
            return True
        if d.get("phase") == "backward" and self.g.in_degree(n):
            return self._adjoint_of_named(n) is not None
        return not d.get("anonymous")

    def _adjoint_of_named(self, n):
        """(of, v) when n is d(of)/dv for named forward values of and v; else None (n is inlined)."""
        pair = self.g.nodes[n].get("adjoint_of")
        if not pair or any(p not in self.g or self.g.nodes[p].get("anonymous") or
                           self.g.nodes[p].get("phase") != "forward" for p in pair):
            return None
        return pair

    def adjoint(self, of, v, scalar) -> Sym:
        return adjoint_sym(self.display(of), self.tex(of), self.display(v), self.tex(v), scalar)

    def sym(self, n) -> Sym:
        if n in self.adjoint_names:
            return self.adjoint_names[n]
        if n in self.aux:
            return self.aux[n]
        if self.g.nodes[n].get("phase") == "backward" and self.g.in_degree(n):
            of, v = self._adjoint_of_named(n)
            return self.adjoint(of, v, is_scalar(self.g, n))
        return Sym(self.display(n), self.tex(n), is_scalar(self.g, n))

    def new_aux(self, n, scalar) -> Sym:
        k = len(self.aux) + 1
        while f"t{k}" in self.used:
            k += 1
        name = f"t{k}"
        self.used.add(name)
        self.aux[n] = Sym(name, f"t_{{{k}}}", scalar)
        return self.aux[n]

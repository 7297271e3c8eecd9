"""Equations of a loop printed once, in terms of its variable, as a textbook writes them.

The graph is unrolled, so the equations are too: `h[1] = tanh(W h[0] + ...)`,
`h[2] = ...`, and in the backward pass one `dJ/dh[t-1]` per iteration and a sum
over every iteration for a shared weight. Rolled, the equations of one body
statement are printed once, for the last iteration, with each whole number that
moves with the loop variable written in terms of it:

    for t = 1..4:
        h[t] = tanh(W h[t-1] + U X[:, t-1:t] + c)
    dJ/dW = Σ_t t1 h[t-1]ᵀ

The form is checked, not assumed: it is instantiated for every iteration and
compared with that iteration's own equation, text for text; an iteration whose
equation differs (the first one often reads a constant) is printed as it is, and
an equation that holds in part of its loop's range says so (`t = 2..4`).
Auxiliaries (t1, t2, ...) of different iterations are compared as the same name.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from ..iterations import body_places, frames_of, keys_of, values_of
from .expr import PROD_PREC, Sum, is_negative
from .printer import render_lines

_TOKEN = re.compile(r"#\d+|\d+|[^\W\d]\w*|\s+|.", re.S)  # `#8`: a def call's number (lstm#8.a), not a value
_WHOLE = re.compile(r"[0-9]+")
_CALL = object()  # in a form: the number of a def call made once per iteration (lstm#8), dropped: lstm.a
SUM_TERMS = 3  # terms a sum needs before it is written Σ_t (two read better as they are)


@dataclass
class Row:
    """One printed line: an equation (left = right), or a loop's header (left None, right its variable,
    note its values: `1..4`, `4, 3, …, 1`)."""

    left: str | None
    right: str
    depth: int = 0  # loops it sits in
    note: str = ""  # the part of the loop's range it holds in, when not all of it


class Roller:
    """Rolls the equations of one graph (`backward`: they run last to first)."""

    def __init__(self, g, names, target, backward: bool):
        self.g, self.names, self.backward = g, names, backward
        self.adjoints = (g.graph.get("adjoints") or {}).get(target, {})
        self.sym_node = {s.name: n for n, s in {**names.aux, **names.adjoint_names}.items()}
        self.aux_names = {s.name for s in names.aux.values()}
        for n, d in g.nodes(data=True):
            if d.get("loop") and d["kind"] == "var" and d.get("name") and d.get("phase") == "forward":
                self.sym_node.setdefault(names.display(n), n)

    # ---- the entry point ------------------------------------------------------------------------------
    def rows(self, eqs, printer) -> list:
        base = render_lines(eqs, printer)
        nodes = [self._node_of(eq) for _, _, eq in base]
        looped = {n for n in nodes if n is not None and frames_of(self.g, n)} | \
            {n for n in self.names.aux if frames_of(self.g, n)}
        places = body_places(self.g, [n for n in self.g.nodes if n in looped])
        aux_text = self._aux_renames(places, printer)
        slots: dict = {}
        for i, n in enumerate(nodes):
            if n in places and base[i][2].kind != "local":
                slots.setdefault(places[n], []).append(i)
        texts = [aux_text(f"{left} = {right}") for left, right, _ in base]
        kept_rows, skipped, notes = {}, set(), {}
        for members in slots.values():
            fr = {i: frames_of(self.g, nodes[i]) for i in members}
            shape = _Form.find([(texts[i], values_of(fr[i])) for i in members])
            if shape is None:
                continue
            head = max(members, key=lambda i: values_of(fr[i]))
            matched = [i for i in members if shape.fits(texts[i], values_of(fr[i]))]
            if len(matched) < 2:  # one iteration: nothing to roll
                continue
            first = min(matched)
            kept_rows[first] = (head, fr[head], shape, [values_of(fr[i]) for i in matched])
            skipped.update(i for i in matched if i != first)
        split = self._split_sums(base, nodes, skipped, printer, aux_text)
        return self._emit(base, printer, kept_rows, skipped, aux_text, split)

    def _node_of(self, eq):
        """The node an equation defines (an adjoint for a backward equation), or None."""
        if eq.kind == "backward":
            return self.adjoints.get(eq.node)
        return eq.node if eq.kind in ("forward", "aux") and eq.node in self.g else None

    def _aux_renames(self, places, printer) -> "_Renames":
        """Rendered auxiliary name -> its name in the kept (last) iteration: t2 -> t1."""
        by_place: dict = {}
        for n in self.names.aux:
            if n in places:
                by_place.setdefault(places[n], []).append(n)
        out = {}
        for same in by_place.values():
            head = max(same, key=lambda n: values_of(frames_of(self.g, n)))
            for n in same:
                out[printer.render(self.names.aux[n])] = printer.render(self.names.aux[head])
        return _Renames(out)

    # ---- writing the rows ---------------------------------------------------------------------------
    def _emit(self, base, printer, kept_rows, skipped, aux_text, split) -> list:
        out: list = []
        stack: list = []  # the loops open at this row: (key, the values its header names)
        for i, (left, right, eq) in enumerate(base):
            if i in skipped:
                continue
            if i not in kept_rows:
                out.append(Row(left, self._sums(eq, right, printer, aux_text, split.get(i))))
                stack = []
                continue
            head, fr, shape, values = kept_rows[i]
            mine = _ranges(values)
            depth = 0
            while depth < min(len(stack), len(fr)) and stack[depth][0] == fr[depth][0]:
                depth += 1
            del stack[depth:]
            for k in range(depth, len(fr)):  # a header for each loop opened here
                out.append(Row(None, fr[k][1], k, _span(mine[k], self.backward)))
                stack.append((fr[k][0], mine[k]))
            lhs, _, rhs = shape.text(fr, printer.latex).partition(" = ")
            note = ", ".join(f"{var} = {_span(r, self.backward)}"
                             for (_, var, _), r, (_, shown) in zip(fr, mine, stack) if r != shown)
            out.append(Row(lhs, rhs, len(fr), note))
        return out

    def _sums(self, eq, right, printer, aux_text, terms=None) -> str:
        """dJ/dW = t1 h[3]ᵀ + t2 h[2]ᵀ + ... -> Σ_t t1 h[t-1]ᵀ, when every term follows one form.
        terms: the summands when they are not the equation's own (a long sum split into auxiliaries)."""
        rolled, rest = self._roll_terms(terms if terms is not None else _summands(eq), printer, aux_text)
        if not rolled:
            return right
        parts = [printer.render(t, PROD_PREC) for t, _ in rest] + rolled
        earlier = [printer.render(r) for r in eq.rhs[:-1]]
        return " = ".join(earlier + [(" + ").join(parts)])

    def _roll_terms(self, summands, printer, aux_text):
        """([Σ text], [(term, frames)] not rolled) for these summands (none when one is negative)."""
        if not summands or any(is_negative(t) for t in summands):
            return [], []
        groups: dict = {}
        rest = []
        for term in summands:
            fr = self._term_frames(term)
            (groups.setdefault(keys_of(fr), []) if fr else rest).append((term, fr))
        rolled = []
        for keys, terms in groups.items():
            items = [(aux_text(printer.render(t, PROD_PREC)), values_of(fr)) for t, fr in terms]
            shape = _Form.find(items)
            if len(terms) < SUM_TERMS or shape is None or not all(shape.fits(text, v) for text, v in items) \
                    or not _contiguous([v for _, v in items]):
                rest.extend(terms)
                continue
            head = max(terms, key=lambda tf: values_of(tf[1]))[1]
            ranges = _ranges([v for _, v in items])
            whole = all(r == self._loop_range(key) for r, key in zip(ranges, keys))
            over = None if whole else ", ".join(f"{var}={_span(r, False)}" for (_, var, _), r in zip(head, ranges))
            rolled.append(_sigma(head, shape.text(head, printer.latex), printer.latex, over))
        return rolled, rest

    def _split_sums(self, base, nodes, skipped, printer, aux_text) -> dict:
        """A long sum over the iterations that the equations split into auxiliaries (t28 = ... ;
        t57 = t28 + ... ; dJ/db = t990 + ...) rolls as one Σ: {row: its summands}, the auxiliaries'
        rows added to skipped. Only auxiliaries outside loops, used once, whose sum then rolls whole."""
        chunk = {eq.lhs.name: i for i, (_, _, eq) in enumerate(base)
                 if eq.kind == "aux" and not frames_of(self.g, nodes[i]) and _summands(eq)}
        uses: dict = defaultdict(int)
        for _, _, eq in base:
            for form in eq.rhs:
                for r in form.refs():
                    uses[r.name] += 1
        out = {}
        for i in range(len(base) - 1, -1, -1):
            eq = base[i][2]
            if i in skipped or not _summands(eq) or not any(r.name in chunk for r in eq.rhs[-1].refs()):
                continue
            terms, inlined, stack = [], [], list(_summands(eq))
            while stack:
                t = stack.pop()
                row = chunk.get(getattr(t, "name", None))
                if row is not None and uses[t.name] == 1 and row not in skipped:
                    inlined.append(row)
                    stack.extend(_summands(base[row][2]))
                else:
                    terms.append(t)
            rolled, rest = self._roll_terms(terms, printer, aux_text)
            if inlined and rolled and not any(fr for _, fr in rest):
                out[i] = terms
                skipped.update(inlined)
        return out

    def _loop_range(self, key) -> list:
        info = (self.g.graph.get("loops") or {}).get(key, {})
        return list(range(info.get("first", 0), (info.get("last") or 0) + 1))

    def _term_frames(self, term) -> tuple:
        """The iteration a summand belongs to: that of its first auxiliary or adjoint, else of its first value."""
        refs = term.refs()
        for want_adjoint in (True, False):
            for r in refs:
                n = self.sym_node.get(r.name)
                if n is not None and (r.adjoint or r.name in self.aux_names) == want_adjoint and frames_of(self.g, n):
                    return frames_of(self.g, n)
        return ()


class _Form:
    """The tokens of the kept iteration's text, each whole number that moves with a loop variable replaced
    by (variable position, offset)."""

    def __init__(self, tokens, head_values):
        self.tokens, self.head_values = tokens, head_values

    @classmethod
    def find(cls, items):
        """items: (text, values) of one equation in several iterations; None when no form can be read."""
        if not items:
            return None
        head_text, head = max(items, key=lambda tv: tv[1])
        tokens = list(_tokens(head_text))
        for k in range(len(head)):
            other = _neighbour(items, head, k)
            if other is None:
                continue
            theirs = _tokens(other[0])
            if len(theirs) != len(tokens):
                return None
            step = other[1][k] - head[k]
            for p, (mine, their) in enumerate(zip(tokens, theirs)):
                if isinstance(mine, tuple) or mine is _CALL or mine == their:
                    continue
                if mine.startswith("#") and their.startswith("#"):  # a def called once per iteration
                    tokens[p] = _CALL
                    continue
                if _WHOLE.fullmatch(mine) and _WHOLE.fullmatch(their) and int(their) - int(mine) == step:
                    tokens[p] = (k, int(mine) - head[k])
        return cls(tokens, head)

    def fits(self, text, values) -> bool:
        theirs = _tokens(text)
        return len(theirs) == len(self.tokens) and all(
            their == str(values[t[0]] + t[1]) if isinstance(t, tuple) else
            their.startswith("#") if t is _CALL else t == their
            for t, their in zip(self.tokens, theirs))

    def text(self, fr, latex: bool) -> str:
        """The form in terms of the loop variables; a def call's number is dropped (`lstm.a`, one call per
        iteration: the loop variable tells them apart)."""
        names = [var for _, var, _ in fr]
        out = []
        for t in self.tokens:
            if isinstance(t, tuple):
                out.append(_offset(names[t[0]], t[1]))
            elif t is _CALL:
                if out and out[-1] == "\\":  # LaTeX's escaped \#
                    out.pop()
            else:
                out.append(t)
        return "".join(out)


def _neighbour(items, head, k):
    """The item of the iteration nearest the head's that differs from it in position k only."""
    best = None
    for text, values in items:
        if values[k] != head[k] and all(v == h for j, (v, h) in enumerate(zip(values, head)) if j != k):
            if best is None or abs(values[k] - head[k]) < abs(best[1][k] - head[k]):
                best = (text, values)
    return best


def _tokens(text) -> list:
    return _TOKEN.findall(text)


class _Renames:
    """Auxiliaries of every iteration under the kept iteration's names: t2 -> t1 (one pattern, made once)."""

    def __init__(self, renames: dict):
        self.renames = renames
        keys = sorted(renames, key=len, reverse=True)
        self.pattern = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, keys)) + r")(?!\w)") if keys else None

    def __call__(self, text: str) -> str:
        return self.pattern.sub(lambda m: self.renames[m.group(0)], text) if self.pattern else text


def _offset(var, c) -> str:
    return var if c == 0 else f"{var}{c:+d}"


def _ranges(values) -> list:
    """Per loop variable, the sorted values it takes among these iterations."""
    return [sorted({v[k] for v in values}) for k in range(len(values[0]))] if values else []


def _summands(eq) -> list:
    """The terms of an equation's last form when it is a sum, else []."""
    rhs = eq.rhs[-1] if eq.rhs else None
    return list(rhs.terms) if isinstance(rhs, Sum) else []


def _contiguous(values) -> bool:
    """Each loop variable takes a run of whole numbers without gaps (a Σ over them reads true)."""
    return all(r == list(range(r[0], r[-1] + 1)) for r in _ranges(values))


def _span(values, backward: bool) -> str:
    lo, hi = values[0], values[-1]
    whole = values == list(range(lo, hi + 1))
    if len(values) == 1:
        return str(lo)
    if not whole:
        shown = values[::-1] if backward else values
        return ", ".join(map(str, shown[:4])) + (", …" if len(shown) > 4 else "")
    if backward:
        return f"{hi}, {hi - 1}, …, {lo}" if hi - lo > 2 else ", ".join(map(str, range(hi, lo - 1, -1)))
    return f"{lo}..{hi}"


def _sigma(fr, body: str, latex: bool, over: str | None) -> str:
    """Σ_t body (Σ_{l,t} for nested loops; Σ_{t=2..4} over part of the range)."""
    names = ",".join(var for _, var, _ in fr)
    sub = over or names
    grouped = " + " in body or " - " in body
    if latex:
        body = rf"\left({body}\right)" if grouped else body
        return rf"\sum_{{{sub}}} {body}"
    body = f"({body})" if grouped else body
    return f"Σ_{sub} {body}" if len(sub) == 1 else f"Σ_{{{sub}}} {body}"


def rolled_rows(eqs, printer, roller: Roller | None) -> list:
    """The rows to print: rolled when a Roller is given, else one row per equation."""
    if roller is None:
        return [Row(left, right) for left, right, _ in render_lines(eqs, printer)]
    return roller.rows(eqs, printer)

"""What the pictures call things: operators in the textbook's words, backward values by what they hold.

Reverse mode adds engine operators (`unreduce`, `sum_to`, `index_grad`, ...) and
anonymous values (`%45`). A student reads "sum over b", "scatter into [0]",
`W2ᵀ`, `dJ/do @ hᵀ`: the names here are built from the graph around each node,
never a generated number.
"""
from __future__ import annotations

from . import labels as L

# engine operators and what a textbook calls them
WORDS = {"unreduce": "broadcast", "sum_to": "sum", "index_grad": "scatter", "index": "index",
         "extreme_mask": "is extreme", "max_mask": "is max", "min_mask": "is min", "eye": "identity matrix",
         "zeros_like": "zeros", "count": "count", "identity": "="}
EXPR_LIMIT = 36  # characters of a backward value's expression on a node
_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "matmul": "@"}
_POSTFIX = {"transpose": "ᵀ"}


def key_text(key) -> str:
    """An index key as the language writes it: `[0]`, `[:, 1:3]`."""
    parts = []
    for k in key if isinstance(key, tuple) else (key,):
        if isinstance(k, slice):
            text = ("" if k.start is None else str(k.start)) + ":" + ("" if k.stop is None else str(k.stop))
            parts.append(text + (f":{k.step}" if k.step not in (None, 1) else ""))
        elif k is None:
            parts.append("None")
        else:
            parts.append(str(k))
    return "[" + ", ".join(parts) + "]"


def _inputs(g, n):
    return [u for u, _, _ in sorted(g.in_edges(n, keys=True), key=lambda e: e[2])]


def _output(g, n):
    outs = list(g.successors(n))
    return outs[0] if outs else None


def _summed_dims(g, n) -> str:
    """The dims a sum_to removes: in its input's shape but not (or as 1) in its output's."""
    ins = _inputs(g, n)
    out = _output(g, n)
    if not ins or out is None:
        return ""
    src, dst = g.nodes[ins[0]].get("shape"), g.nodes[out].get("shape")
    if src is None or dst is None:
        return ""
    lead = len(src) - len(dst)
    gone = list(src[:lead]) + [d for d, e in zip(src[lead:], dst) if e.size == 1 and d.size != 1]
    return ", ".join(d.name or str(d.size) for d in gone)


def op_text(g, n) -> tuple[str, str]:
    """(circle text, detail under it) for an operator node."""
    data = g.nodes[n]
    name = data.get("op")
    attrs = data.get("attrs") or {}
    if name == "sum_to":
        dims = _summed_dims(g, n)
        return "sum", (f"over {dims}" if dims else "")
    if name == "unreduce":
        return ("broadcast ÷ n" if attrs.get("mean") else "broadcast"), _axis_words(attrs)
    if name == "index":
        return key_text(attrs.get("key", ())), ""
    if name == "index_grad":
        return "scatter", "into " + key_text(attrs.get("key", ()))
    if name in WORDS:
        return WORDS[name], L.op_detail(data)
    return L.op_symbol(data), L.op_detail(data)


def with_literals(symbol: str, literals: dict | None, arity: int) -> str:
    """An operator's symbol with the numbers it reads written in: `** 2`, `0.5 ×`, `clip(·, 0, 1)`."""
    if not literals:
        return symbol
    if arity == 2 and len(literals) == 1 and not symbol.isidentifier():  # an infix operator: `** 2`, `0.5 ×`
        pos, text = next(iter(literals.items()))
        return f"{text} {symbol}" if pos == 0 else f"{symbol} {text}"
    args = [literals.get(i, "·") for i in range(arity)]
    return f"{symbol}({', '.join(args)})"


def _axis_words(attrs) -> str:
    axis = attrs.get("axis")
    return "" if axis is None else f"over axis={L.source_text(axis)}"


class BackwardNames:
    """Titles for the backward view's values: dJ/dv for adjoints, else the expression they hold."""

    def __init__(self, g, sc, ann):
        self.g, self.sc, self.ann = g, sc, ann
        self.memo: dict = {}
        self.infix: set = set()  # values whose title is an infix expression (parenthesised as operands)

    def title(self, n) -> str:
        if n not in self.memo:
            self.memo[n] = self._title(n)
        return self.memo[n]

    def _title(self, n) -> str:
        g, data = self.g, self.g.nodes[n]
        primals = self.sc.adjoint_names.get(n)
        if primals:
            return L.grad_name(self.ann.of_name or "J", primals[0], g.nodes[primals[0]])
        if data.get("phase", "forward") == "forward" or data.get("name") and not data.get("anonymous"):
            return L.literal_label(data, 4) if L.is_literal(data) else L.var_title(n, data)
        if L.is_literal(data):
            return L.literal_label(data, 4)
        op = next(iter(g.predecessors(n)), None)
        text = self._expression(op) if op is not None else ""
        if text and len(text) <= EXPR_LIMIT:
            if g.nodes[op].get("op") in _INFIX or text.startswith("-"):
                self.infix.add(n)
            return text
        return self._part_of(n) or self._short(op)

    def _part_of(self, n, depth: int = 0):
        """`dJ/dW2 (part)` for a value that is only added into a gradient (one path's contribution)."""
        succ = list(self.g.successors(n))
        if len(succ) != 1 or self.g.nodes[succ[0]].get("op") != "add" or depth > 50:
            return None
        out = _output(self.g, succ[0])
        if out is None:
            return None
        primals = self.sc.adjoint_names.get(out)
        if primals:
            return L.grad_name(self.ann.of_name or "J", primals[0], self.g.nodes[primals[0]]) + " (part)"
        return self._part_of(out, depth + 1)

    def _operand(self, n) -> str:
        """A value inside a larger expression: parenthesised when it is itself infix."""
        text = self.title(n)
        return f"({text})" if n in self.infix else text

    def _expression(self, op) -> str:
        data = self.g.nodes[op]
        name = data.get("op")
        args = [self._operand(u) for u in _inputs(self.g, op)]
        if name in _INFIX and len(args) == 2:
            return f"{args[0]} {_INFIX[name]} {args[1]}"
        if name in _POSTFIX and len(args) == 1:
            return args[0] + _POSTFIX[name]
        if name == "neg" and args:
            return "-" + args[0]
        word, detail = op_text(self.g, op)
        inner = L.unwrapped(args[0]) if len(args) == 1 else ", ".join(args)
        return f"{word}({inner})" + (f" {detail}" if detail else "")

    def _short(self, op) -> str:
        """When the expression is too long: what made it, e.g. `@ of dJ/do, …`."""
        if op is None:
            return "value"
        word, _ = op_text(self.g, op)
        first = [self.title(u) for u in _inputs(self.g, op)][:1]
        text = f"{word}({L.one_line(first[0], 14)})" if first else word
        return L.one_line(text, EXPR_LIMIT)

"""What the HTML viewer shows on hover: a variable's full value and gradient, an operator's inputs,
output and local derivative, a block's contents. Plain text only (the page escapes it)."""
from __future__ import annotations

from . import labels as L
from .words import op_text

# an operator's local derivatives, as a textbook writes them: y = op(a, b), g = dJ/dy
LOCAL = {
    "add": ("∂y/∂a = 1", "∂y/∂b = 1"), "sub": ("∂y/∂a = 1", "∂y/∂b = −1"),
    "mul": ("∂y/∂a = b", "∂y/∂b = a"), "div": ("∂y/∂a = 1/b", "∂y/∂b = −a/b²"),
    "pow": ("∂y/∂a = b·a^(b−1)", "∂y/∂b = y·log a"), "neg": ("∂y/∂a = −1",),
    "matmul": ("dJ/da = g @ bᵀ", "dJ/db = aᵀ @ g"), "transpose": ("dJ/da = gᵀ",),
    "exp": ("∂y/∂a = exp(a) = y",), "log": ("∂y/∂a = 1/a",), "sqrt": ("∂y/∂a = 1/(2y)",),
    "square": ("∂y/∂a = 2a",), "reciprocal": ("∂y/∂a = −1/a²",), "abs": ("∂y/∂a = sign(a)",),
    "sin": ("∂y/∂a = cos(a)",), "cos": ("∂y/∂a = −sin(a)",),
    "tanh": ("∂y/∂a = 1 − y²",), "sigmoid": ("∂y/∂a = y(1 − y)",),
    "relu": ("∂y/∂a = 1 where a > 0, else 0",), "softplus": ("∂y/∂a = sigmoid(a)",),
    "sum": ("dJ/da = g broadcast back to a's shape",), "mean": ("dJ/da = g / n, broadcast back",),
    "sqnorm": ("∂y/∂a = 2a",), "norm": ("∂y/∂a = a / y",),
    "mse": ("∂y/∂a = 2(a − b)/n", "∂y/∂b = −2(a − b)/n"),
    "softmax": ("dJ/da = y ⊙ (g − sum(g ⊙ y))",), "log_softmax": ("dJ/da = g − softmax(a) sum(g)",),
    "sum_to": ("dJ/da = g broadcast back",), "unreduce": ("dJ/da = sum of g over the broadcast axes",),
    "index": ("dJ/da = g scattered into zeros",), "index_grad": ("dJ/da = g at the index",),
}


def _inputs(g, n):
    return [u for u, _, _ in sorted(g.in_edges(n, keys=True), key=lambda e: e[2])]


def _name(g, sc, n) -> str:
    if n in sc.backward:
        return sc.names.title(n)
    data = g.nodes[n]
    return L.literal_label(data, 6) if L.is_literal(data) else L.var_title(n, data)


def _op_entry(g, sc, n, item) -> dict:
    data = g.nodes[n]
    word, detail = op_text(g, n)
    ins = [f"{_name(g, sc, u)} {L.shape_text(g.nodes[u])}" for u in _inputs(g, n)]
    outs = [f"{_name(g, sc, v)} {L.shape_text(g.nodes[v])}" for v in g.successors(n)]
    local = LOCAL.get(data.get("op"))
    return {"title": word + (f" ({detail})" if detail else ""), "kind": "operator", "id": n,
            "op": item.get("op") and (item["op"] + (f" ({item['attrs']})" if item.get("attrs") else "")),
            "inputs": "\n".join(ins) or None, "output": "\n".join(outs) or None,
            "local": "\n".join(local) if local else None}


def hover_data(g, ann, sc, items) -> dict:
    """DOT node name -> the hover panel's fields, from scene_data's items (short values)."""
    out, refs = {}, {}
    for item in items:
        n = item["id"]
        if item["kind"] == "ref":
            refs[n] = item["ref"]
            continue
        if item["kind"] == "call":
            out[n] = {"title": item["title"], "kind": "def call (collapsed)", "id": n,
                      "call": " · ".join(item["folds"]),
                      "text": "reads params: " + ", ".join(item["params"]) if item["params"] else None}
        elif g.nodes[n]["kind"] == "op":
            out[n] = _op_entry(g, sc, n, item)
        else:
            out[n] = _var_entry(g, ann, sc, n, item)
        out[n]["clusters"] = list(sc.cluster.get(n, ()))  # the viewer folds a cluster's members
        out[n] = {k: v for k, v in out[n].items() if v is not None}
    for ref, n in refs.items():  # a reference shows what it stands for
        out[ref] = {**out.get(n, {"title": n}), "kind": "reference (drawn in full at its first use)"}
    return out


def _var_entry(g, ann, sc, n, item) -> dict:
    data = g.nodes[n]
    of = ann.of_name or "J"
    entry = {"title": _name(g, sc, n), "kind": "variable", "id": n, "role": data.get("role"),
             "name": data.get("name"), "text": data.get("text"), "shape": item.get("shape_text"),
             "call": " › ".join(ann.call_text.get(c, c) + f" [{c}]" for c in item.get("call", [])) or None}
    if "line" in item:
        entry["where"] = f"{ann.source_name}:{item['line']}:{item['col']}"
    if item.get("adjoint_of"):
        entry["adjoint"] = ", ".join(L.grad_name(of, p, g.nodes[p]) for p in item["adjoint_of"])
    if "value" in item:
        entry["value"] = item["value"]
    if "grad" in item:
        entry["grad"] = item["grad"] if item["grad"] is not None else "— (not computed)"
        entry["grad_name"] = L.grad_name(of, n, data)
    return entry

"""What the HTML viewer shows on hover: a variable's full value and gradient, an operator's inputs,
output and local derivative, a block's contents. Plain text only (the page escapes it)."""
from __future__ import annotations

from . import labels as L
from ..ops import REGISTRY
from .words import op_text


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
    op = REGISTRY.get(data.get("op"))
    local = op.local if op is not None else ()  # as a textbook writes them (the op table's `local`)
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

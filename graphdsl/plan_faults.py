"""Saying where a plan goes wrong: the node and its line, for the errors planning and running find.

Planning refuses a value too large (E303) and a call of an undefined function (E305).
A run that NumPy refused (E305) or that produced NaN or Inf (E302) is repeated on the
plan's reference schedule (`Plan._step_through`), one step at a time, to name the first
node at fault; the compiled program keeps no such bookkeeping, so a run that goes well
pays nothing for it.
"""
from __future__ import annotations

import numpy as np

from .diagnostics import Diagnostic, GraphDSLError
from .graph import describe
from .ops import fmt_shape


def too_large(plan, n, data, count, max_elements):
    raise GraphDSLError(Diagnostic(
        "E303", f"{describe(plan.graph, n, plan.source)} would hold {count:,} elements "
                f"{fmt_shape(data['shape'])}, more than the limit of {max_elements:,}", data.get("span"),
        help=("use smaller dims, or raise the limit with --max-elements",)), plan.source)


def undefined_function(plan, op_id, data):
    func = data["attrs"]["func"]
    n_args = sum(len(keys) for keys in plan.graph._pred[op_id].values())  # as many parameters as the call has
    params = ", ".join("abcdefgh"[:max(1, min(n_args, 8))])
    raise GraphDSLError(Diagnostic(
        "E305", f"cannot evaluate `{func}`: it is not defined", data["span"],
        help=(f"define it before evaluating, e.g. `def {func}({params}) = ...`",)), plan.source)


def failure(plan, leaf_values, err) -> GraphDSLError:
    """Re-run step by step to find the node NumPy refused, and say where it comes from."""
    failed = []

    def note(k, value):
        failed[:] = [k]

    text = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
    try:
        plan._step_through(plan._fill(leaf_values), free=True, until=note)
    except GraphDSLError:  # ours: a ValueError too, so let it through
        raise
    except (ValueError, ArithmeticError) as step_err:
        text = str(step_err).splitlines()[0][:200] or text
        k = failed[0] + 1 if failed else 0
        op_id = plan.step_ops[k]
        node, out = plan.graph.nodes[op_id], plan.graph.nodes[plan.graph.nodes[op_id]["out"]]
        what = describe(plan.graph, node["out"], plan.source)
        return GraphDSLError(Diagnostic(
            "E305", f"cannot evaluate {what} ({node['op']}): {text}", node.get("span") or out.get("span"),
            help=("check the sizes and values of the data (an empty axis has no max, min or softmax)",)),
            plan.source)
    return GraphDSLError(Diagnostic("E305", f"cannot evaluate the model: {text}"), plan.source)


def locate_nonfinite(plan, leaf_values):
    """Re-run slowly to find the first node whose value is NaN or Inf, and say where it comes from."""
    slots = plan._fill(leaf_values)
    for name, s in plan.leaves:
        if not np.all(np.isfinite(slots[s])):
            _nonfinite_error(plan, name, slots[s], "is given a value that")

    def check(k, value):
        if not np.all(np.isfinite(value)):
            _nonfinite_error(plan, plan.graph.nodes[plan.step_ops[k]]["out"], value, "")

    plan._step_through(slots, free=True, until=check)


def _nonfinite_error(plan, vid, value, how):
    data = plan.graph.nodes[vid]
    kind = "NaN" if np.any(np.isnan(value)) else "Inf"
    raise GraphDSLError(Diagnostic(
        "E302", f"{describe(plan.graph, vid, plan.source)} {how or 'is the first value that'} contains {kind}",
        data.get("span"),
        notes=(f"{int(np.sum(~np.isfinite(value)))} of {np.size(value)} elements are not finite",),
        help=("check the inputs and the scale of the weights, or pass --allow-nonfinite to go on",)),
        plan.source)

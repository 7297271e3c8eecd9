"""`equations(model)`: choose the graph, `of` and `wrt`, and derive the forward and backward equations."""
from __future__ import annotations

from types import SimpleNamespace

from ..diagnostics import Diagnostic, GraphDSLError
from .backward import backward_equations
from .equation import Equations
from .forward import forward_equations
from .names import NodeNames


def equations(model, values=None, of=None, wrt=None, dims=None, partial=False, unroll=False) -> Equations:
    """The equations of `model`: forward, then backward for d(of)/d(wrt).

    With values (or when every dim is fixed) the concrete graph is used;
    otherwise the symbolic one, with free dims left as names. With partial=True
    an error while deriving the backward equations is kept in `.error` instead
    of raised, so the forward equations can still be shown.
    """
    built = _graph_for(model, values, dims)
    # grad_targets takes a compiled model; it reads only .built
    target, wrt = model.grad_targets(SimpleNamespace(built=built), of, wrt)
    names = NodeNames(built.graph)
    result = Equations(model.source.name, names.display(target), names=names, target=target, unroll=unroll)
    result.forward = forward_equations(built.graph, names, built, target, model.program)
    try:
        result.backward = backward_equations(built.gb, names, target, wrt)
    except GraphDSLError as err:
        err = err.with_source(model.source) if hasattr(err, "with_source") else err
        if not partial:
            raise err
        result.error = err
    return result


def _graph_for(model, values, dims):
    """The concrete build when it can be made, else the symbolic one."""
    if values or dims:
        compiled, _ = model.compile(values, dims)
        return compiled.built
    try:
        return model.compile({}, None)[0].built
    except GraphDSLError as err:
        if all(d.code == "E304" for d in err.errors):  # free dims or inputs without data: symbolic
            _check_unrolled(model)
            return model.built
        raise


def _check_unrolled(model) -> None:
    """A loop over a free dim is built once for `check` only: its equations would be those of a stand-in."""
    for info in (model.built.graph.graph.get("loops") or {}).values():
        if info.get("last") is None:
            err = GraphDSLError(Diagnostic(
                "E304", f"the loop over `{info['var']}` cannot be unrolled: its range ends at a free dim",
                info.get("span"), help=("give the model's data (--load FILE or --set NAME=...), which fixes "
                                        "the dim's size; the equations are then those of every iteration",)))
            raise err.with_source(model.source) if hasattr(err, "with_source") else err

"""Declarations and outputs, for build.py: dims, inputs, params and consts with their shapes and
initial values, and the `output` statements.

`DeclarationLowering` is a part of build._Builder (it reads the builder's graph, dims and reporter).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import ast as A
from .consteval import LITERALS, NotConstant, const_eval, whole
from .diagnostics import suggest
from .ops import fmt_shape
from .ops.base import Dim

INITIALISERS = {"randn": ("mean", "std"), "uniform": ("low", "high"), "zeros": (), "ones": (),
                "full": ("v",), "glorot": (), "he": ()}


@dataclass
class Decl:
    kind: str  # input | param | const
    name: str
    shape: tuple | None  # declared shape (Dims), None if not declared
    init: object  # the initialiser expression, or None
    span: object
    value: object = None  # constant value when the initialiser is one
    implicit: bool = False



class DeclarationLowering:
    """The declaration and output methods of build._Builder."""

    def _dim(self, item: A.DimItem):
        size = None
        if item.size is not None:
            size = self._const_int(item.size, "a dim size")
        if item.name in self.dim_overrides:
            size = int(self.dim_overrides[item.name])
        if size is not None and size < 0:
            self.rep.error("E204", f"dim `{item.name}` has negative size {size}", item.span)
        if item.name not in self.dims:
            self.dims[item.name] = self.declared_dims[item.name] = size
            if item.size is None and self.free_counts:
                self.gb.free_dims.add(item.name)
            self.dim_spans[item.name] = item.span

    def _const_int(self, expr, what):
        return self.whole_constant(expr, "E107", f"{what} must be a constant", f"{what} must be a whole number")

    def whole_constant(self, expr, code: str, not_constant: str, not_whole: str) -> int | None:
        """expr's value as an int; None after reporting (`code`) that it is not a constant or not whole."""
        try:
            value = const_eval(expr, self.const_lookup)
        except NotConstant as err:
            self.rep.error(code, f"{not_constant}: {err.message}", err.span or expr.span)
            return None
        number = whole(value)
        if number is None:
            self.rep.error(code, f"{not_whole}, not {value}", expr.span)
        return number

    def const_lookup(self, name: A.Name):
        if name.id in self.static_vars:  # a loop variable: a static integer
            return float(self.static_vars[name.id])
        if name.id in self.dims:
            if self.dims[name.id] is None:
                raise NotConstant(f"dim `{name.id}` is free: its size is known only at run time", name.span)
            return float(self.dims[name.id])
        decl = self.decls.get(name.id)
        if decl is not None and decl.kind == "const" and decl.value is not None:
            return decl.value
        if decl is None and name.id in LITERALS:
            return LITERALS[name.id]
        raise NotConstant(f"`{name.id}` is not a constant known before the run", name.span)

    def _decl(self, kind, item: A.DeclItem):
        shape = self._declared_shape(item.shape) if item.shape is not None else None
        value = self._init_value(item, kind)
        if value is not None and item.name not in self.input_shapes:  # a given value replaces the literal
            shape = self._unify_literal(item, shape, np.shape(value))
        if item.name in self.input_shapes:
            shape = self._with_sizes(shape, self.input_shapes[item.name])
        decl = Decl(kind, item.name, shape, item.init, item.span, value)
        if item.name in self.decls or item.name in self.dims:
            return
        self.decls[item.name] = decl
        attrs = {"value": np.asarray(value, float)} if kind == "const" and value is not None else {}
        self.gb.add_var(item.name, kind, shape, name=item.name, span=item.name_span, anonymous=False, **attrs)

    def _declared_shape(self, dims) -> tuple:
        out = []
        for d in dims:
            if d.name is None:
                out.append(Dim(None, d.size))
            elif d.name in self.dims:
                out.append(Dim(d.name, self.dims[d.name]))
            else:
                near = suggest(d.name, self.dims)
                self.rep.error("E101", f"undefined dim `{d.name}`", d.span,
                               help=(f"did you mean `{near}`?",) if near else
                               (f"declare it: `dim {d.name}` (free) or `dim {d.name} = 4`",))
                out.append(Dim(d.name, None))
        return tuple(out)

    def _init_value(self, item, kind):
        """The initialiser's value when it is a constant (literals, dims, consts); None for randn() & co."""
        init = item.init
        if init is None:
            return None
        if isinstance(init, A.Call) and init.func in INITIALISERS:
            if item.shape is None and init.func not in ("full",):
                self.rep.error("E107", f"`{init.func}()` needs a declared shape for `{item.name}`", init.span,
                               help=(f"declare it, e.g. `{kind} {item.name} : [n, m] = {init.func}()`",))
            keywords = INITIALISERS[init.func]
            if init.args and len(keywords) > 1:  # randn(0.1): NumPy's mean or PyTorch's std? say which
                names = ", ".join(f"`{k}=`" for k in keywords)
                self.rep.error("E103", f"`{init.func}` takes keyword arguments only ({names})", init.args[0].span,
                               help=("name them, e.g. `randn(std=0.1)` or `uniform(low=-0.1, high=0.1)`",))
            return None
        try:
            return np.asarray(const_eval(init, self.const_lookup), dtype=np.float64)
        except NotConstant as err:
            self.rep.error("E107", f"the initialiser of `{item.name}` must be a constant: {err.message}",
                           err.span or init.span,
                           help=("initialisers are literals, numbers, dims, earlier consts, arithmetic, "
                                 "or randn/uniform/zeros/ones/full/glorot/he",))
            return None

    def _unify_literal(self, item, shape, sizes):
        """A declared shape must agree with its literal; free dims bind to the literal's sizes."""
        if shape is None:
            return tuple(Dim(None, s) for s in sizes)
        if len(shape) != len(sizes) or any(d.size is not None and d.size != s for d, s in zip(shape, sizes)):
            got = "[" + ", ".join(map(str, sizes)) + "]"
            self.rep.error("E203", f"`{item.name}` is declared {fmt_shape(shape)} but its value has shape {got}",
                           item.init.span, notes=(f"declared at line {item.span.line}",),
                           help=("make the declared shape and the value agree",))
            return shape
        for d, s in zip(shape, sizes):
            if d.name is not None and self.dims.get(d.name) is None:
                self.dims[d.name] = s
        return tuple(Dim(d.name, s) for d, s in zip(shape, sizes))

    def _with_sizes(self, shape, sizes):
        if shape is None or len(shape) != len(sizes):
            return tuple(Dim(None, int(s)) for s in sizes)
        return tuple(Dim(d.name, int(s)) for d, s in zip(shape, sizes))

    # ---- outputs -------------------------------------------------------------------
    def _output(self, name):
        if isinstance(name, A.Index):  # `output h[T]`: a sequence element
            if name.value.id not in self.top_seq_names:
                self.rep.error("E106", f"`{name.value.id}` is not a sequence: an output names a value or an "
                                       "element `h[T]`", name.span)
                return
            vid = self.body.read(name, self.sequences)
            if vid not in self.outputs and not self.gb.g._node[vid].get("error"):
                self.outputs.append(vid)
            return
        if name.id in self.top_seq_names:
            self.rep.error("E106", f"`{name.id}` is a sequence: an output names one element, e.g. "
                                   f"`output {name.id}[T]`", name.span)
            return
        vid = self.assigned.get(name.id) or (name.id if name.id in self.decls else None)
        if vid is None:
            near = suggest(name.id, list(self.assigned) + list(self.decls))
            self.rep.error("E106", f"output `{name.id}` is not defined", name.span,
                           help=(f"did you mean `{near}`?",) if near else ())
        elif vid not in self.outputs:
            self.outputs.append(vid)

    def _finish_outputs(self):
        if not self.outputs:
            self.outputs = [v for v in self.assigned.values() if self.gb.g.out_degree(v) == 0]
            self.outputs += [v for seq in self.sequences.values() for v in seq.elements.values()
                             if self.gb.g.out_degree(v) == 0]
        for v in self.outputs:
            node = self.gb.g.nodes[v]
            if node["role"] == "intermediate":
                node["role"] = "output"

"""Calls in expressions, for build.py: builtins (with their static arguments and keywords), defs
inlined (arguments bound to parameters, shapes checked, several return values), `grad`, dropout
masks, and the errors of each (E103-E105, E113, W002 for an undefined function).

`CallLowering` is a part of build._Builder (it reads the builder's graph, scope and reporter).
"""
from __future__ import annotations

import numpy as np

from . import ast as A
from .consteval import NotConstant, const_eval, whole
from .declarations import INITIALISERS
from .diagnostics import suggest
from .loops import Frame, sequence_names
from .ops import ALIASES, BUILTINS, REGISTRY
from .ops.base import LIST_KEYS, Dim, same_dim

MAX_INLINE_DEPTH = 64


class CallLowering:
    """The call-lowering methods of build._Builder."""

    def _split_call(self, node: A.Call):
        """_call_inputs, worked out once per call site (def bodies are lowered once per call)."""
        split = self._splits.get(id(node))
        if split is None:
            split = self._splits[id(node)] = (node, self._call_inputs(node))
        return split[1]

    def _call_inputs(self, node: A.Call):
        """(expressions lowered as graph inputs, static keyword expressions, error or None)."""
        name = ALIASES.get(node.func, node.func)
        if name in self.defs:
            return _def_arguments(self.defs[name], node)
        if name == "grad" or name not in REGISTRY or REGISTRY[name].internal:
            return tuple(node.args), {}, None
        op = REGISTRY[name]
        args = list(node.args)
        subscripts = None
        if "spec" in op.kwargs and args and isinstance(args[0], A.Str):  # einsum("ij,jk->ik", ...)
            subscripts, args = args[0], args[1:]
        inputs = args[: op.nargs[1]] if not op.variadic else []
        if op.variadic and args:
            first = args[0]
            inputs = list(first.elements) if isinstance(first, A.ArrayLit) else [first]
        rest = args[len(inputs):] if not op.variadic else args[1:]
        static_names = [k for k in op.kwargs if k != "like"]
        static = dict(zip(static_names, rest))
        if subscripts is not None:
            static["spec"] = subscripts
        error = None
        if len(rest) > len(static_names):
            most = op.nargs[1] + len(static_names)
            error = f"`{node.func}` takes at most {most} argument{'s' if most != 1 else ''} but {len(args)} " \
                    f"were given"
        extra = {}
        for kw in node.kwargs:
            if kw.name in op.kw_inputs:
                extra[op.kw_inputs.index(kw.name) + op.nargs[0] - len(op.kw_inputs)] = kw.value
            elif kw.name in static_names and kw.name not in static:
                static[kw.name] = kw.value
            else:
                error = error or self._bad_keyword(node, kw, static_names + list(op.kw_inputs))
        for pos in sorted(extra):
            inputs.insert(pos, extra[pos]) if pos <= len(inputs) else inputs.append(extra[pos])
        return tuple(inputs), static, error

    def _bad_keyword(self, node, kw, allowed):
        if kw.name in allowed:
            return f"`{kw.name}` is given twice to `{node.func}`"
        near = suggest(kw.name, allowed)
        hint = f"; did you mean `{near}=`?" if near else \
            f"; it takes {', '.join(f'`{a}=`' for a in allowed)}" if allowed else "; it takes none"
        return f"`{node.func}` has no keyword argument `{kw.name}`{hint}"

    def _call(self, node: A.Call, kids, scope):
        name = ALIASES.get(node.func, node.func)
        if name in self.defs:
            return self._inline(self.defs[name], node, kids)
        if name == "grad":
            return self._grad(node, kids)
        if name in REGISTRY and not REGISTRY[name].internal:
            return self._builtin(node, name, kids)
        return self._unknown_function(node, kids)

    def _builtin(self, node, name, kids):
        op = REGISTRY[name]
        _, static_exprs, error = self._split_call(node)
        lo, hi = op.nargs
        if error is None and not lo <= len(kids) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            error = f"`{node.func}` takes {want} argument{'s' if want != '1' else ''} but {len(kids)} " \
                    f"{'were' if len(kids) != 1 else 'was'} given"
        if error:
            self.rep.error("E103", error, node.span, help=(f"see `{node.func}` in docs/language.md",))
            return self._placeholder()
        attrs = dict(op.kwargs)
        attrs.pop("like", None)
        for key, expr in static_exprs.items():
            value = self._static(expr, key, node)
            if value is _BAD:
                return self._placeholder()
            attrs[key] = _as_default_type(value, op.kwargs.get(key))
        if name == "dropout":
            return self.gb.emit(name, [kids[0], self._dropout_mask(kids[0], attrs["p"])], attrs)
        return self.gb.emit(name, list(kids), attrs)

    def _dropout_mask(self, x, p):
        """The mask of one dropout call: a leaf value the run fills in (values.dropout_masks)."""
        masks = self.gb.g.graph.setdefault("dropout_masks", [])
        vid = f"dropout_mask{len(masks) + 1}"
        masks.append(vid)
        return self.gb.add_var(vid, "mask", self.gb.shape(x), name=vid, p=float(p), anonymous=False,
                               span=self.gb.span)

    def _static(self, expr, key, node):
        """A static argument (axis=, keepdims=, alpha=, a shape): a constant, shapes may name dims."""
        if isinstance(expr, A.Str) or key == "spec":
            if isinstance(expr, A.Str) and key == "spec":
                return expr.value
            self.rep.error("E103", f"`{node.func}` takes no string: a string is allowed only as einsum's subscripts"
                           if isinstance(expr, A.Str) else f"`{key}=` of `{node.func}` must be a string",
                           expr.span)
            return _BAD
        if key in ("shape", "k", "n"):
            return self._static_shape(expr, key)
        if isinstance(expr, (A.Num, A.Bool)) and (key not in ("axis", "axes") or whole(expr.value) is not None):
            return _static_literal(key, expr.value)  # the common `axis=0`, `keepdims=true`
        try:
            value = const_eval(expr, self.const_lookup)
        except NotConstant as err:
            self.rep.error("E103", f"`{key}=` of `{node.func}` must be a constant: {err.message}",
                           err.span or expr.span)
            return _BAD
        if key in LIST_KEYS and np.ndim(value) != 0:  # a pair of strides, pad widths: the op checks them
            return _nested_tuple(value)
        if key not in ("axis", "axes") and np.ndim(value) != 0:
            self.rep.error("E103", f"`{key}=` of `{node.func}` must be a single number", expr.span)
            return _BAD
        if key == "keepdims":
            return bool(value)
        if key in ("axis", "axes"):
            if value is None:
                return None
            arr = np.asarray(value)
            axes = [whole(a) for a in np.ravel(arr)] if arr.ndim <= 1 else [None]
            if None in axes:
                self.rep.error("E103", f"`{key}=` must be a whole number or a list of them", expr.span)
                return _BAD
            return axes[0] if arr.ndim == 0 else tuple(axes)
        return float(value)

    def _static_shape(self, expr, key):
        items = expr.elements if isinstance(expr, A.ArrayLit) else [expr]
        out = []
        for item in items:
            if isinstance(item, A.Name) and item.id in self.dims:
                out.append(Dim(item.id, self.dims[item.id]))
                continue
            size = self.whole_constant(item, "E103", f"`{key}` must be constant sizes",
                                       f"`{key}` must be whole numbers")
            if size is None:
                return _BAD
            out.append(Dim(None, size))
        return out[0] if key in ("k", "n") and not isinstance(expr, A.ArrayLit) else tuple(out)

    def _unknown_function(self, node, kids):
        if node.func in self.refused_defs or self.rep.full:
            return self._placeholder()
        near = suggest(node.func, list(BUILTINS) + list(self.defs))
        if near is not None and near != node.func:
            self.rep.error("E102", f"unknown function `{node.func}`", node.func_span,
                           help=(f"did you mean `{near}`?",))
            return self._placeholder()
        if node.func in INITIALISERS:
            self.rep.error("E102", f"`{node.func}()` is an initialiser, usable only in a declaration",
                           node.func_span, help=(f"declare a param: `param w : [n] = {node.func}()`",))
            return self._placeholder()
        report = self.rep.error if self.strict else self.rep.warn
        report("W002" if not self.strict else "E102",
               f"`{node.func}` is not defined: drawn as an opaque operator", node.func_span,
               help=(f"define it, e.g. `def {node.func}({', '.join('abcdefgh'[:max(1, min(len(kids), 8))])}) = ...`;"
                     " evaluation needs a definition",))
        return self.gb.emit("opaque", list(kids), {"func": node.func})

    def _inline(self, d: A.Def, node: A.Call, kids):
        """A def call inside an expression: the def must return one value."""
        if d.more:
            self.rep.error("E113", f"`{d.name}` returns {len(d.results)} values; an expression takes one",
                           node.span, notes=(f"`{d.name}` is defined at line {d.span.line}",),
                           help=(f"assign them to {len(d.results)} names: "
                                 f"`{', '.join('abcdefgh'[:len(d.results)])} = {d.name}(...)`",))
            return self._placeholder()
        return self._inline_values(d, node, kids)[0]

    def call_values(self, call, scope, count: int) -> list:
        """`a, b = f(...)`: the `count` values a def call returns (placeholders after an error)."""
        d = self.defs.get(ALIASES.get(call.func, call.func)) if isinstance(call, A.Call) else None
        if d is None or len(d.results) != count:
            what = f"`{d.name}` returns {_plural(len(d.results), 'value')}" if d is not None else \
                "only a def with `return a, b` gives several values"
            self.rep.error("E113", f"{count} names are assigned, but {what}", call.span,
                           notes=(f"`{d.name}` is defined at line {d.span.line}",) if d is not None else (),
                           help=("give as many names as the def returns values",))
            return [self._placeholder() for _ in range(count)]
        kids = [self.lower(arg, scope) for arg in self._split_call(call)[0]]
        self.gb.span = call.span
        return self._inline_values(d, call, kids)

    def _inline_values(self, d: A.Def, node: A.Call, kids) -> list:
        error = self._split_call(node)[2]
        if error:
            self.rep.error("E103", error, node.span, notes=(f"`{d.name}` is defined at line {d.span.line}",))
            return [self._placeholder() for _ in d.results]
        if len(self.gb.call) >= MAX_INLINE_DEPTH:
            self.rep.error("E105", f"defs nested more than {MAX_INLINE_DEPTH} deep", node.span)
            return [self._placeholder() for _ in d.results]
        self.calls[d.name] = self.calls.get(d.name, 0) + 1
        label = f"{d.name}#{self.calls[d.name]}"
        outer = self.gb.call, self.gb.span, self.static_vars, self.seqs, self.seq_names
        self.gb.call = outer[0] + (label,)
        self.gb.g.graph.setdefault("calls", {})[label] = {"def": d.name, "span": node.span}
        errors_before = self.rep.error_count
        scope = self._bind_params(d, kids, label)
        if self.rep.error_count > errors_before:  # arguments that do not fit would only cascade
            self.gb.call, self.gb.span = outer[0], outer[1]
            return [self._placeholder() for _ in d.results]
        # A def body sees its own names: not the caller's loop variables or sequences.
        self.static_vars, self.seqs = {}, {}
        self.seq_names = self._def_seq_names.get(d.name)
        if self.seq_names is None:
            self.seq_names = self._def_seq_names[d.name] = sequence_names(d.body)
        frame = Frame(scope, scope, self.seqs, f"{label}.")
        try:
            for stmt in d.body:
                if not isinstance(stmt, A.Assign):
                    self.body.run(stmt, frame)
                    continue
                vid = self.lower(stmt.value, scope)
                self.gb.span = stmt.span
                if stmt.name in scope:
                    scope[stmt.name] = self._dup_local(stmt)
                    continue
                scope[stmt.name] = self.gb.bind(vid, f"{label}.{stmt.name}", stmt.name, span=stmt.name_span,
                                                rename=vid not in scope.values())
            return [self.lower(result, scope) for result in d.results]
        finally:
            self.gb.call, self.gb.span, self.static_vars, self.seqs, self.seq_names = outer

    def _dup_local(self, stmt):
        self.rep.error("E104", f"`{stmt.name}` is assigned twice in this def", stmt.name_span)
        return self._placeholder()

    def _bind_params(self, d: A.Def, kids, label):
        """Check the arguments against the declared shapes; map each parameter to its node.

        In a def that calls grad, each parameter is a value of its own (an identity
        node), as in Python: `grad(a*a, a)` must differentiate with respect to `a`
        even when the call passes a literal or a dim (which grad never differentiates
        with respect to) or passes one value for two parameters (`f(x, x)`).
        """
        local_dims: dict[str, Dim] = {}
        for p, vid in zip(d.params, kids):
            shape = self.gb.shape(vid)
            if p.shape is None or shape is None:
                continue
            if len(p.shape) != len(shape):
                self._param_mismatch(d, p, vid, f"has {len(shape)} axes, not {len(p.shape)}")
                continue
            for want, got in zip(p.shape, shape):
                if want.size is not None and got.size is not None and want.size != got.size:
                    self._param_mismatch(d, p, vid, f"has size {got.size} where {want.size} is declared")
                elif want.name in self.dims and same_dim(Dim(want.name, self.dims[want.name]), got) is False:
                    self._param_mismatch(d, p, vid, f"has {got} where dim {want.name} is declared")
                elif want.name is not None and want.name not in self.dims:
                    seen = local_dims.setdefault(want.name, got)
                    if same_dim(seen, got) is False:
                        self._param_mismatch(d, p, vid, f"has {got} where {want.name} = {seen} is bound")
        if d.name not in self.differentiating:
            return {p.name: vid for p, vid in zip(d.params, kids)}
        return {p.name: self.gb.bind(vid, f"{label}.{p.name}", p.name, rename=False, span=p.span)
                for p, vid in zip(d.params, kids)}

    def _param_mismatch(self, d, p, vid, what):
        self.rep.error("E202", f"argument `{p.name}` of `{d.name}` {what}: {self.gb.label_shaped(vid)}",
                       self.gb.span,
                       notes=(f"`{d.name}` declares `{p.name}` at line {p.span.line}",))

    def _grad(self, node: A.Call, kids):
        from .autodiff import UnknownShape, gradient_node

        if len(kids) != 2 or node.kwargs or not isinstance(node.args[1], A.Name):
            self.rep.error("E103", "grad takes two arguments: grad(y, x) with x a name", node.span,
                           help=("for example `g = grad(J, W1)`",))
            return self._placeholder()
        wrt = self.gb.g.nodes[kids[1]]
        if wrt.get("dim"):
            self.rep.error("E103", f"cannot differentiate with respect to dim `{node.args[1].id}`: a dim is a "
                                   "size, fixed for the run", node.args[1].span,
                           help=("to differentiate with respect to a number, hold it in a value of its own, "
                                 "e.g. `const k = 3` or `input k : []`",))
            return self._placeholder()
        try:
            return gradient_node(self.gb, kids[0], kids[1])
        except UnknownShape:  # shapes come with the data; until then grad(y, x) has x's shape
            return self.gb.add_var(self.gb.fresh(), "intermediate", self.gb.shape(kids[1]), anonymous=True)


_BAD = object()


def _nested_tuple(value):
    """A static list argument as nested tuples of floats (hashable, like every attribute)."""
    arr = np.asarray(value, dtype=float)
    return float(arr) if arr.ndim == 0 else tuple(_nested_tuple(v) for v in arr)


def _as_default_type(value, default):
    """`padding=1` is the int 1 where the op's default is an int (stride, padding, dilation, groups),
    so pictures and equations print `padding=1`, not `padding=1.0`; other values are as given."""
    if type(default) is not int:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, tuple) and all(isinstance(v, float) and v.is_integer() for v in value):
        return tuple(int(v) for v in value)
    return value


def _static_literal(key, value):
    if key == "keepdims":
        return bool(value)
    if key in ("axis", "axes"):
        return whole(value)
    return float(value)


def _def_arguments(d: A.Def, node: A.Call):
    """A def call's argument expressions in parameter order, bound as Python binds them.

    Returns (expressions, {}, error message or None) like _call_inputs.
    """
    names = [p.name for p in d.params]
    if len(node.args) > len(names) or (not node.kwargs and len(node.args) != len(names)):
        return tuple(node.args), {}, f"`{d.name}` takes {_plural(len(names), 'argument')} but " \
                                     f"{len(node.args)} {'were' if len(node.args) != 1 else 'was'} given"
    bound = dict(zip(names, node.args))
    for kw in node.kwargs:
        if kw.name in bound:
            how = "by keyword" if kw.name not in names[:len(node.args)] else "by position and by keyword"
            return tuple(node.args), {}, f"argument `{kw.name}` of `{d.name}` is given twice ({how})"
        if kw.name not in names:
            near = suggest(kw.name, names)
            hint = f"did you mean `{near}=`?" if near else \
                f"its parameters are {', '.join(f'`{n}`' for n in names)}" if names else "it takes none"
            return tuple(node.args), {}, f"`{d.name}` has no parameter `{kw.name}`; {hint}"
        bound[kw.name] = kw.value
    missing = [n for n in names if n not in bound]
    if missing:
        return tuple(bound.values()), {}, f"`{d.name}` is missing {_plural(len(missing), 'argument')}: " + \
            ", ".join(f"`{n}`" for n in missing)
    return tuple(bound[n] for n in names), {}, None


def _plural(k: int, noun: str) -> str:
    return f"{k} {noun}{'s' if k != 1 else ''}"

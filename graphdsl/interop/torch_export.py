"""`graphdsl export --to torch`: the model's schedule as a readable PyTorch module.

The file imports only torch and the standard library. It defines
`class Model(torch.nn.Module)`: one `nn.Parameter` per param (named as in the
model, the export's initial values), consts and input defaults as buffers, and
`forward(**inputs) -> {output: tensor}`, one assignment per value the model
names, with anonymous intermediate values folded into the expression that uses
them, and the model's source line above as a comment. Calls go to the functions
of torch_ops.TORCH (the one table): torch's own, or torch_ops's helpers, whose
source is copied into the file. Gradients come from torch.autograd, so only the
forward steps are written (`--with-grads` adds nothing here).
"""
from __future__ import annotations

import base64
import dis
import inspect
import types

import numpy as np

from . import require, unsupported
from .schedule import DimRef, ExportProgram

LIBRARY = "torch"
INLINE_ELEMENTS = 16  # arrays up to this size are written as lists; larger ones as base64 float64 bytes

# What every exported file defines after its Model: the check of forward's inputs, and the reader of _DATA.
RUNTIME = '''def _check_inputs(inputs, names, required):
    """Unknown or missing inputs are refused by name (an input with a default may be left out)."""
    unknown = sorted(set(inputs) - set(names))
    missing = [n for n in required if n not in inputs]
    if unknown or missing:
        raise TypeError(f"Model.forward: unknown inputs {unknown}, missing inputs {missing}; "
                        f"the inputs are {list(names)}")


def _array(name, dtype):
    """An array of _DATA: a list of numbers, or the base64 of its float64 bytes (little-endian)."""
    shape, data = _DATA[name]
    if isinstance(data, str):
        flat = torch.frombuffer(bytearray(base64.b64decode(data)), dtype=torch.float64)
    else:
        flat = torch.tensor(data, dtype=torch.float64)
    return flat.reshape(shape).to(dtype)'''

# Python's precedence, for the parentheses of folded expressions
ATOM, POWER, UNARY, PRODUCT, SUM = 5, 4, 3, 2, 1
_PRECEDENCE = {"+": SUM, "-": SUM, "*": PRODUCT, "/": PRODUCT, "@": PRODUCT, "**": POWER}


class _Expr:
    """A Python expression, its precedence, and whether it is a plain number (not a tensor)."""

    def __init__(self, text: str, prec: int = ATOM, number: bool = False):
        self.text, self.prec, self.number = text, prec, number


def export(program: ExportProgram, *, dtype: str = "float64", version: str) -> bytes:
    """The exported module's source, as UTF-8 bytes; E116 (before anything is written) for an op torch lacks."""
    require(LIBRARY, "export --to torch")
    from . import torch_ops  # here: importing this module must not need torch (E311 says which extra)

    for step in program.steps:
        if step.op not in torch_ops.TORCH:
            raise unsupported(step.op, "torch", program.graph._node[step.node].get("span"), program.source)
    return _Writer(program, dtype, version, torch_ops).source().encode("utf-8")


# ---- naming what the table holds ------------------------------------------------------------
def _torch_name(fn) -> str | None:
    """`torch.exp`, `F.gelu`, `torch.special.erf`: the spelling of a function of torch itself."""
    import torch
    import torch.nn.functional as F

    name = getattr(fn, "__name__", None)
    for prefix, space in (("torch.", torch), ("F.", F), ("torch.special.", torch.special)):
        if name and getattr(space, name, None) is fn:
            return prefix + name
        for other, value in vars(space).items():  # F.logsigmoid calls itself log_sigmoid
            if value is fn and not other.startswith("_"):
                return prefix + other
    return None


def _helpers(functions, ops) -> list:
    """The functions of `ops` (torch_ops) that `functions` use, with those they call in turn, in its order."""
    own = {name: obj for name, obj in vars(ops).items()
           if isinstance(obj, types.FunctionType) and obj.__module__ == ops.__name__}
    found, todo = {}, [f.__name__ for f in functions]
    while todo:
        name = todo.pop()
        if name in found or name not in own:
            continue
        found[name] = own[name]
        todo += [n for n in _names_used(own[name].__code__) if n in own]
    return sorted(found.values(), key=lambda f: f.__code__.co_firstlineno)


def _names_used(code) -> list:
    """The global names a function reads (not the attributes it reads: `x.reshape` is not `reshape`)."""
    names = [ins.argval for ins in dis.get_instructions(code) if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME")]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += _names_used(const)
    return names


# ---- the writer --------------------------------------------------------------------------------
class _Writer:
    def __init__(self, program: ExportProgram, dtype: str, version: str, ops):
        self.p, self.dtype, self.version, self.ops = program, dtype, version, ops
        self.lines_of_source = program.source.text.splitlines() if program.source is not None else []
        self.used = {}  # helper functions called, by name
        self.data = {}  # key -> array embedded in the file
        self.free_dims = {name: src for name, src in program.free_dims.items()}
        self.uses = self._count_uses()
        self.ndims = self._ranks()
        self.rename = {}

    # -- the whole file --
    def source(self) -> str:
        init = self._init_lines()
        forward = self._forward_lines()
        helpers = _helpers(self.used.values(), self.ops)
        self._avoid_helper_names(helpers)
        if self.rename:  # a model value named like a helper: write the forward again with the new names
            forward = self._forward_lines()
        parts = [self._header(), "import base64", "import math", "", "import torch",
                 "import torch.nn.functional as F", "", ""]
        if helpers:
            parts += ["# ---- the operations this model uses (copied from graphdsl/interop/torch_ops.py) ----", ""]
            for fn in helpers:
                parts += [inspect.getsource(fn).rstrip(), "", ""]
        parts += ["class Model(torch.nn.Module):", *_indent(self._class_doc(), 1), ""]
        parts += _indent(init, 1) + [""] + _indent(forward, 1) + ["", ""]
        parts += self._data_lines()
        return "\n".join(parts).rstrip() + "\n"

    def _header(self) -> str:
        name = self.p.model_name if self.p.model_name.isprintable() else repr(self.p.model_name)
        return (f"# Exported by graphdsl {self.version} from {name} (graphdsl export --to torch).\n"
                '"""A graphdsl model as a PyTorch module; it imports only torch and the standard library.\n\n'
                "`Model(dims=None, dtype=torch.float64)`; `Model()(**inputs)` returns a dict of the outputs\n"
                f"{', '.join(self.p.outputs)}; gradients come from torch.autograd.\n"
                '"""')

    def _class_doc(self) -> list:
        ins = [lf for lf in self.p.leaves if lf.role == "input"]
        params = [lf.name for lf in self.p.leaves if lf.role == "param"]
        shown = ", ".join(f"{lf.name}: [{', '.join(_dim_text(d) for d in lf.shape)}]"
                          + (" (optional)" if lf.default is not None else "") for lf in ins)
        stem = self.p.model_name.replace("\\", "/").rsplit("/", 1)[-1]
        stem = stem if stem.isprintable() and '"' not in stem else "exported"
        return [f'"""The graphdsl model {stem}.', "",
                f"Inputs: {shown or '(none)'}. Params: {', '.join(params) or '(none)'}.",
                "In training mode (the default of an nn.Module) dropout draws its masks; call .eval() for the",
                'numbers graphdsl gives.', '"""']

    # -- __init__ --
    def _init_lines(self) -> list:
        lines = ["def __init__(self, dims=None, dtype=torch." + self.dtype + "):", "    super().__init__()"]
        fixed = {n: src for n, src in self.free_dims.items() if src is None}
        if fixed:
            sizes = self._free_dim_sizes()
            lines.append(f"    self.dims = {{{', '.join(f'{n!r}: {sizes[n]}' for n in fixed)}, **(dims or {{}})}}"
                         "  # free dims no input carries")
        else:
            lines.append("    self.dims = dict(dims or {})  # free dims are read from the inputs' shapes")
        for lf in self.p.leaves:
            if lf.role == "param":
                lines.append(f"    self.{self._attr(lf)} = torch.nn.Parameter(_array({self._embed(lf.name, lf.value)!r}, "
                             "dtype))" + (f"  # `{lf.name}` is taken by nn.Module" if self._attr(lf) != lf.name else ""))
            elif lf.role == "const" and self._is_buffer(lf):
                lines.append(f"    self.register_buffer({self._attr(lf)!r}, _array({self._embed(lf.var, lf.value)!r}, "
                             "dtype))")
            elif lf.role == "input" and lf.default is not None:
                key = self._embed("default " + lf.name, lf.default)
                lines.append(f"    self.register_buffer({'default_' + lf.var!r}, _array({key!r}, dtype))")
        lines.append('    self.register_buffer("_anchor", torch.zeros((), dtype=dtype), persistent=False)'
                     "  # dtype and device, after .to()")
        return lines

    def _attr(self, leaf) -> str:
        import torch

        name = leaf.name if leaf.role in ("param", "const") and leaf.name.isidentifier() else leaf.var
        taken = set(dir(torch.nn.Module())) | {"dims"}  # `training` is an instance attribute
        return name + "_" if name in taken else name

    def _is_buffer(self, leaf) -> bool:
        """Named consts and arrays are buffers; an anonymous scalar (a literal) is written inline."""
        data = self.p.graph._node[leaf.node]
        return bool(data.get("name")) or np.ndim(leaf.value) > 0

    def _embed(self, key: str, value) -> str:
        self.data[key] = np.asarray(value, dtype=np.float64)
        return key

    def _free_dim_sizes(self) -> dict:
        return {lf.name: int(lf.value) for lf in self.p.leaves if lf.role == "dim" and lf.value is not None} | {
            n: _size_from_leaves(self.p, n) for n in self.free_dims}

    # -- forward --
    def _forward_lines(self) -> list:
        ins = [lf for lf in self.p.leaves if lf.role == "input"]
        declared = [d.get("name") or n for n, d in self.p.graph._node.items()
                    if d.get("kind") == "var" and d.get("role") == "input"]  # those the outputs need not too
        body = ["def forward(self, **inputs):",
                f"    _check_inputs(inputs, {tuple(declared)!r}, "
                f"{tuple(lf.name for lf in ins if lf.default is None)!r})",
                "    dtype, device = self._anchor.dtype, self._anchor.device"]
        self.exprs = {}
        for lf in ins:
            v = self._var(lf.var)
            read = f"torch.as_tensor(inputs[{lf.name!r}], dtype=dtype, device=device)"
            if lf.default is not None:
                read += f" if {lf.name!r} in inputs else self.default_{lf.var}"
            body.append(f"    {v} = {read}")
            self.exprs[lf.var] = _Expr(v)
        for name, src in self.free_dims.items():
            v = self._var(name)
            body.append(f"    {v} = {self._var(src[0])}.shape[{src[1]}]" if src else f"    {v} = self.dims[{name!r}]")
        body += self._leaf_lines()
        body += self._step_lines()
        outs = ", ".join(f"{name!r}: {self._tensor(self.exprs[var])}" for name, var in self.p.outputs.items())
        body.append(f"    return {{{outs}}}")
        return body

    def _leaf_lines(self) -> list:
        lines, params = [], []
        for lf in self.p.leaves:
            if lf.role == "param":
                params.append((self._var(lf.var), f"self.{self._attr(lf)}"))
                self.exprs[lf.var] = _Expr(self._var(lf.var))
            elif lf.role == "const" and self._is_buffer(lf):
                params.append((self._var(lf.var), f"self.{self._attr(lf)}"))
                self.exprs[lf.var] = _Expr(self._var(lf.var))
            elif lf.role == "const":
                self.exprs[lf.var] = _number(float(lf.value))
            elif lf.role == "dim":
                if lf.name in self.free_dims:
                    self.exprs[lf.var] = _Expr(self._var(lf.name), number=True)
                else:
                    self.exprs[lf.var] = _Expr(str(int(lf.value)), number=True)
            elif lf.role == "mask":
                self.used["dropout_mask"] = self.ops.dropout_mask
                shape = self._value(tuple(DimRef(d.name) if isinstance(d, DimRef) else d for d in lf.shape))
                p = self._mask_p(lf.var)
                lines.append(f"    {self._var(lf.var)} = dropout_mask({shape}, {p!r}, self.training, dtype, device)")
                self.exprs[lf.var] = _Expr(self._var(lf.var))
        if params:
            lines.insert(0, f"    {', '.join(v for v, _ in params)} = {', '.join(a for _, a in params)}")
        return lines

    def _mask_p(self, var) -> float:
        for step in self.p.steps:
            if step.op == "dropout" and step.args[1] == var:
                return float(step.kw.get("p", 0.5))
        return 0.5

    def _step_lines(self) -> list:
        lines, shown = [], set()
        outputs = set(self.p.outputs.values())
        pending_lines: list = []
        for step in self.p.steps:
            if step.out not in self.needed:
                continue
            expr = self._call(step)
            if step.line is not None and step.line not in pending_lines:
                pending_lines.append(step.line)
            if self._folds(step, outputs):
                self.exprs[step.out] = expr
                continue
            for line in pending_lines:
                if line not in shown and 0 < line <= len(self.lines_of_source):
                    lines.append(f"    # line {line}: {self.lines_of_source[line - 1].strip()}")
                    shown.add(line)
            pending_lines = []
            v = self._var(step.out)
            lines.append(f"    {v} = {expr.text}")
            self.exprs[step.out] = _Expr(v, number=expr.number)
        return lines

    def _folds(self, step, outputs) -> bool:
        """An anonymous value read once is written inside the expression that reads it."""
        named = self.p.graph._node[self.p.graph._node[step.node]["out"]].get("name")
        return not named and step.out not in outputs and self.uses.get(step.out, 0) == 1

    def _count_uses(self) -> dict:
        """How often each value is read by the steps the outputs need (gradient outputs are torch's job)."""
        self.needed = set(self.p.outputs.values())
        for step in reversed(self.p.steps):
            if step.out in self.needed:
                self.needed.update(step.args)
        uses: dict = {}
        for step in self.p.steps:
            if step.out in self.needed:
                for a in step.args:
                    uses[a] = uses.get(a, 0) + 1
        return uses

    def _call(self, step) -> _Expr:
        args = [self.exprs[a] for a in step.args]
        symbol = self.ops.INFIX.get(step.op)
        if symbol and len(args) == 2 and not step.kw and not (symbol == "@" and all(a.number for a in args)):
            return _infix(symbol, *args)
        if step.op == "transpose" and step.kw.get("axes") is None and self._ndim(step.args[0]) == 2:
            return _Expr(_wrap(args[0], ATOM) + ".T")  # W1.T, as the model writes it
        if step.op == "neg" and len(args) == 1:
            return _Expr("-" + _wrap(args[0], UNARY), UNARY, args[0].number)
        fn = self.ops.TORCH[step.op]
        name = _torch_name(fn)
        if name is None:
            name = fn.__name__
            self.used[name] = fn
        parts = [self._tensor(a) for a in args] + self._kwargs(fn, step)
        if step.op in self.ops.CREATES:
            parts += ["dtype=dtype", "device=device"]
        return _Expr(f"{name}({', '.join(parts)})")

    def _ndim(self, var) -> int | None:
        return self.ndims.get(var)

    def _ranks(self) -> dict:
        """The number of axes of every value (var -> int)."""
        g = self.p.graph._node
        ranks = {lf.var: len(lf.shape) for lf in self.p.leaves}
        for step in self.p.steps:
            shape = g[g[step.node]["out"]].get("shape")
            ranks[step.out] = None if shape is None else len(shape)
        return ranks

    def _kwargs(self, fn, step) -> list:
        try:
            defaults = {k: p.default for k, p in inspect.signature(fn).parameters.items()}
        except (TypeError, ValueError):
            defaults = {}
        return [f"{k}={self._value(v)}" for k, v in step.kw.items()
                if k not in defaults or not _same(defaults[k], v)]

    def _value(self, v) -> str:
        if isinstance(v, DimRef):
            return self._var(v.name)
        if isinstance(v, tuple):
            return "(" + "".join(self._value(x) + ", " for x in v).rstrip(" ") + ")" if len(v) == 1 else \
                "(" + ", ".join(self._value(x) for x in v) + ")"
        if isinstance(v, list):
            return "[" + ", ".join(self._value(x) for x in v) + "]"
        if isinstance(v, float):
            return repr(v) if np.isfinite(v) else f"float({str(v)!r})"
        if isinstance(v, (np.integer, np.floating)):
            return repr(v.item())
        return repr(v)

    def _dim(self, d) -> str:
        return self._var(d.name) if isinstance(d, DimRef) else str(int(d))

    def _tensor(self, e: _Expr) -> str:
        return f"torch.tensor({e.text}, dtype=dtype, device=device)" if e.number else e.text

    def _var(self, name: str) -> str:
        return self.rename.get(name, name)

    def _avoid_helper_names(self, helpers):
        taken = {f.__name__ for f in helpers} | {"dropout_mask", "_check_inputs", "_array", "_DATA", "F", "torch",
                                                "math", "base64"}
        for v in [lf.var for lf in self.p.leaves] + [s.out for s in self.p.steps] + list(self.free_dims):
            if v in taken:
                self.rename[v] = v + "_"

    # -- data --
    def _data_lines(self) -> list:
        lines = RUNTIME.splitlines() + [
            "", "", "# The initial values of the params, the consts, and the inputs' defaults: (shape, data).",
            "_DATA = {"]
        for key, arr in self.data.items():
            flat = arr.reshape(-1)
            if flat.size <= INLINE_ELEMENTS:
                data = "[" + ", ".join(repr(float(v)) for v in flat) + "]"
            else:
                data = repr(base64.b64encode(flat.astype("<f8").tobytes()).decode("ascii"))
            lines.append(f"    {key!r}: ({tuple(int(s) for s in arr.shape)!r}, {data}),")
        return lines + ["}"]


def _number(value: float) -> _Expr:
    text = repr(value) if np.isfinite(value) else f"float({str(value)!r})"
    return _Expr(text, ATOM if value >= 0 and np.isfinite(value) else UNARY, number=True)


def _infix(symbol: str, a: _Expr, b: _Expr) -> _Expr:
    prec = _PRECEDENCE[symbol]
    if symbol == "**":  # right-associative, and binds tighter than a unary minus on its left
        left, right = _wrap(a, POWER + 1), _wrap(b, UNARY)
    else:
        left, right = _wrap(a, prec), _wrap(b, prec + 1)
    return _Expr(f"{left} {symbol} {right}", prec, a.number and b.number)


def _wrap(e: _Expr, needed: int) -> str:
    return e.text if e.prec >= needed else f"({e.text})"


def _same(default, value) -> bool:
    try:
        return bool(default == value) and type(default) is type(value) or (default is None and value is None)
    except Exception:  # an array compared with a default: write it out
        return False


def _dim_text(d) -> str:
    return d.name if isinstance(d, DimRef) else str(d)


def _size_from_leaves(program, name) -> int:
    for lf in program.leaves:
        if lf.role == "dim" and lf.name == name and lf.value is not None:
            return int(lf.value)
    bound = program.graph.graph.get("dims", {}) if hasattr(program.graph, "graph") else {}
    return int(bound.get(name, 0) or 0)


def _indent(lines, level) -> list:
    pad = "    " * level
    return [pad + line if line else line for line in lines]

"""`graphdsl export --to jax`: the model as a Python module that imports only jax and the standard library.

The module defines `init_params(seed)`, the params' initial values: what graphdsl's initialisers
draw with that seed, bit for bit, by a pure-Python copy of NumPy's generator (pyrandom.py's
source, copied in), and the values loaded at export (--load) as they were; `CONSTS`, and
`forward(params, inputs) -> {output name: value}`: pure and jittable, one line per step
of the model's compiled schedule (schedule.export_program), each a call of an entry of
THE JAX table (jax_ops.JAX), whose helpers are copied into the file. Free dims are read
from the inputs' shapes, so they are static under jax.jit. Gradients come from
`jax.grad` of an output: a program exported with its gradients (`--with-grads`) is
written without them (JAX differentiates the forward itself).
"""
from __future__ import annotations

import ast
import base64
import dis
import inspect
import math
import struct
from functools import partial

import numpy as np

from . import unsupported
from .schedule import DimRef, ExportProgram

LIBRARY = "jax"  # what `require` imports before export() is called
TARGET = "JAX"
INLINE_MAX = 16  # anonymous constants of at most this many numbers are written inline
# The names the exported module defines or imports: a model value of one of these names is renamed.
MODULE_NAMES = {"base64", "struct", "math", "jax", "jnp", "lax", "DTYPE", "SEED", "MODEL", "GRAPHDSL_VERSION",
                "CONSTS", "DEFAULTS", "PARAMS", "NpGenerator", "init_params", "forward", "params", "inputs", "float",
                "slice"}


def export(program: ExportProgram, *, dtype: str = "float64", version: str) -> bytes:
    """The module's source text (UTF-8); E116 for an op the table lacks, before anything is written."""
    from .jax_ops import JAX  # needs jax: `require(LIBRARY)` has run
    steps = _needed(program.steps, set(program.outputs.values()))
    for step in steps:
        if step.op not in JAX:
            node = program.graph.nodes[step.node]
            span = node.get("span") or program.graph.nodes[program.graph.nodes[step.node]["out"]].get("span")
            raise unsupported(step.op, TARGET, span, program.source)
    return _Writer(program, steps, JAX, dtype, version).text().encode("utf-8")


# ---- values as source text --------------------------------------------------------------

def encode(value) -> str:
    """float64 values, little-endian, as base64: exact, and readable by the standard library alone."""
    flat = np.ascontiguousarray(value, dtype="<f8").ravel()
    return base64.b64encode(struct.pack(f"<{flat.size}d", *flat.tolist())).decode("ascii")


def literal(value) -> str:
    """A Python expression for a number or a static argument (round-trip exact for floats)."""
    if isinstance(value, (bool, type(None), str)):
        return repr(value)
    if isinstance(value, (int, np.integer)):
        return repr(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return 'float("nan")'
        return repr(value) if math.isfinite(value) else ("math.inf" if value > 0 else "-math.inf")
    if isinstance(value, slice):
        return f"slice({literal(value.start)}, {literal(value.stop)}, {literal(value.step)})"
    if isinstance(value, (tuple, list)):
        items = ", ".join(literal(v) for v in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    if isinstance(value, np.ndarray):
        return literal(value.item()) if value.ndim == 0 else literal([literal_list(v) for v in value])
    raise TypeError(f"no literal for {value!r}")


def literal_list(value):
    return value.tolist() if isinstance(value, np.ndarray) else value


def _chunks(text: str, width: int = 96) -> str:
    """A long string literal as adjacent literals, one per line."""
    parts = [text[i:i + width] for i in range(0, len(text), width)] or [""]
    return "\n        ".join(repr(p) for p in parts)


# ---- the table's helpers, copied -------------------------------------------------------------

def helper_sources(functions) -> list[str]:
    """The source of each jax_ops helper in `functions` and of those they call, in the module's order."""
    from . import jax_ops
    found: dict = {}
    todo = list(functions)
    while todo:
        fn = todo.pop()
        if getattr(fn, "__module__", None) != jax_ops.__name__ or fn.__name__ in found:
            continue
        found[fn.__name__] = fn
        todo.extend(getattr(jax_ops, name) for name in _names_used(fn.__code__) if hasattr(jax_ops, name))
    ordered = sorted(found.values(), key=lambda f: f.__code__.co_firstlineno)
    return [inspect.getsource(f).rstrip() + "\n" for f in ordered]


def _names_used(code) -> set:
    """The global names a function's code reads (not attribute names: `jnp.where` is not `where`)."""
    names = {ins.argval for ins in dis.get_instructions(code) if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _names_used(const)
    return names


def call_name(fn) -> str:
    """How the exported module names a table entry's function."""
    import jax
    import jax.numpy as jnp
    from jax import lax
    from . import jax_ops
    if getattr(fn, "__module__", None) == jax_ops.__name__:
        return fn.__name__
    for prefix, namespace in (("jnp", jnp), ("lax", lax), ("jax.nn", jax.nn)):
        if getattr(namespace, fn.__name__, None) is fn:
            return f"{prefix}.{fn.__name__}"
    raise TypeError(f"the JAX table holds {fn!r}, which an exported module cannot name")


def generator_source() -> str:
    """pyrandom.py with its tables inlined, for the exported file (which imports math itself)."""
    from . import numpy_random_tables, pyrandom
    return "\n\n".join(_statements(inspect.getsource(m)) for m in (numpy_random_tables, pyrandom))


def _statements(source: str) -> str:
    """A module's top-level statements without its docstring and imports, as source text."""
    lines = source.splitlines()
    kept = []
    for k, node in enumerate(ast.parse(source).body):
        if isinstance(node, (ast.Import, ast.ImportFrom)) or (k == 0 and isinstance(node, ast.Expr)):
            continue
        gap = "\n\n" if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else ""
        kept.append(gap + "\n".join(lines[node.lineno - 1:node.end_lineno]))
    return "\n".join(kept).strip() + "\n"


# ---- the module ------------------------------------------------------------------------

class _Writer:
    def __init__(self, program: ExportProgram, steps: list, table: dict, dtype: str, version: str):
        self.program, self.steps, self.table, self.dtype, self.version = program, steps, table, dtype, version
        read = {a for step in self.steps for a in step.args} | set(program.outputs.values())
        self.all_leaves = [lf for lf in program.leaves if lf.var in read or lf.role in ("input", "param")]
        self.leaves = {leaf.var: leaf for leaf in self.all_leaves}
        taken = set(self.leaves) | {s.out for s in self.steps}
        used = {self._entry(s.op)[0] for s in self.steps}
        reserved = MODULE_NAMES | {f.__name__ for f in used if hasattr(f, "__name__")}
        self.rename = {}
        for var in sorted(taken & reserved):
            self.rename[var] = _fresh("v_" + var, taken | reserved)
            taken.add(self.rename[var])
        self.dim_vars = self._dim_vars(taken | reserved)
        self.params = [lf.name for lf in self.all_leaves if lf.role == "param"]
        # what init_params draws: each draw of graphdsl's initialisers, kept if it is a param's value
        self.draws = [(name if not given and name in self.params else None, method, a, b, sizes)
                      for name, method, a, b, sizes, given in program.draws]
        self.drawn = {d[0] for d in self.draws if d[0] is not None}

    # names
    def _entry(self, op):
        fn = self.table[op]
        return (fn.func, fn.args) if isinstance(fn, partial) else (fn, ())

    def name(self, var: str) -> str:
        return self.rename.get(var, var)

    def _dim_vars(self, taken) -> dict:
        """The Python variable that holds each free dim's size in forward()."""
        out = {}
        for dim in self.program.free_dims:
            leaf = next((lf for lf in self.all_leaves if lf.role == "dim" and lf.name == dim), None)
            out[dim] = self.name(leaf.var) if leaf else _fresh(dim, taken)
            taken = taken | {out[dim]}
        return out

    def arg(self, value) -> str:
        if isinstance(value, DimRef):
            return self.dim_vars[value.name]
        if isinstance(value, (tuple, list)) and any(isinstance(v, DimRef) for v in value):
            items = ", ".join(self.arg(v) for v in value)
            return f"({items},)" if len(value) == 1 else f"({items})"
        return literal(value)

    # the text
    def text(self) -> str:
        helpers = helper_sources(self._entry(step.op)[0] for step in self.steps)
        parts = [self._header(), self._values(), "# The JAX table's helpers (graphdsl/interop/jax_ops.py)",
                 "\n\n".join(helpers + [inspect.getsource(_check_inputs)]), self._generator(),
                 self._init_params(), self._forward()]
        return "\n\n".join(p.rstrip() + "\n" for p in parts if p)

    def _header(self) -> str:
        p = self.program
        outs = ", ".join(p.outputs)
        x64 = 'jax.config.update("jax_enable_x64", True)  # float64, as graphdsl computes\n' \
            if self.dtype == "float64" else ""
        return (f'"""{p.model_name}, exported to JAX by graphdsl {self.version} (graphdsl export --to jax).\n\n'
                "It imports only jax and the Python standard library. Use:\n"
                "    params = init_params()          # the params' initial values (SEED below, or init_params(seed))\n"
                f"    out = forward(params, inputs)   # {{name: value}} for {outs}\n"
                "    jax.grad(lambda p: forward(p, inputs)[NAME])(params)   # gradients by JAX\n"
                "forward is pure and jittable (jax.jit(forward)); free dims are read from the inputs' shapes.\n"
                '"""\n'
                "import base64\nimport math\nimport struct\n\nimport jax\n\n" + x64 +
                "import jax.numpy as jnp  # noqa: E402\nimport jax.scipy.special  # noqa: E402,F401\n"
                "from jax import lax  # noqa: E402,F401\n\n"
                f"MODEL = {p.model_name!r}\nGRAPHDSL_VERSION = {self.version!r}\n"
                f"SEED = {p.seed!r}  # the seed of the export: init_params()'s default\n"
                f"DTYPE = jnp.{self.dtype}\n\n\n"
                "def _array(shape, data):\n"
                '    """Numbers stored as float64, little-endian, base64: bit for bit what graphdsl had."""\n'
                "    raw = base64.b64decode(data)\n"
                '    return jnp.asarray(struct.unpack(f"<{len(raw) // 8}d", raw), dtype=DTYPE).reshape(shape)\n')

    def _embed(self, value) -> str:
        return f"_array({literal(tuple(np.shape(value)))}, {_chunks(encode(value))})"

    def _values(self) -> str:
        p = self.program
        params = [lf for lf in self.all_leaves if lf.role == "param" and lf.name not in self.drawn]
        consts = [lf for lf in self.all_leaves if lf.role == "const" and not lf.node.startswith("%")]
        big = [lf for lf in self.all_leaves if lf.role == "const" and lf.node.startswith("%")
               and np.size(lf.value) > INLINE_MAX]
        defaults = [lf for lf in self.all_leaves if lf.role == "input" and lf.default is not None]
        lines = [f"PARAMS = {tuple(self.params)!r}",
                 "",
                 "# The params' initial values that are not drawn: loaded at export, or zeros, ones, full, literals",
                 "_INITIAL = {"]
        lines += [f"    {lf.name!r}: ({literal(tuple(np.shape(lf.value)))}, {_chunks(encode(lf.value))})," for lf in params]
        lines += ["}", "", "# The initialisers' draws, in order: (param, or None if dropped; method, a, b, shape)",
                  "_DRAWS = ("]
        lines += [f"    ({name!r}, {method!r}, {literal(a)}, {literal(b)}, {literal(tuple(sizes))}),"
                  for name, method, a, b, sizes in self.draws]
        lines += [")", "", "# The model's consts, by name", "CONSTS = {"]
        lines += [f"    {lf.name!r}: {self._embed(lf.value)}," for lf in consts]
        lines += ["}"]
        if defaults:
            lines += ["", "# The inputs' declared values: forward uses them when an input is left out", "DEFAULTS = {"]
            lines += [f"    {lf.name!r}: {self._embed(lf.default)}," for lf in defaults]
            lines += ["}"]
        if big:
            lines += ["", "# Constant arrays of the model's expressions", "_LITERALS = {"]
            lines += [f"    {lf.var!r}: {self._embed(lf.value)}," for lf in big]
            lines += ["}"]
        return "\n".join(lines)

    def _generator(self) -> str:
        return ("# NumPy's default_rng in pure Python, as graphdsl draws (graphdsl/interop/pyrandom.py)\n"
                + generator_source())

    def _init_params(self) -> str:
        return ("def init_params(seed=SEED):\n"
                '    """{param name: initial value}: what graphdsl\'s initialisers draw with `seed`, bit for bit\n'
                "    (graphdsl draws from numpy.random.default_rng(seed); NpGenerator draws the same numbers),\n"
                "    and the values loaded at export as they were (a loaded param's draw is made and dropped,\n"
                "    as graphdsl does, so that the draws after it stay put).\n"
                '    """\n'
                "    generator, drawn = NpGenerator(seed), {}\n"
                "    for name, method, a, b, shape in _DRAWS:\n"
                "        values = getattr(generator, method)(a, b, math.prod(shape))\n"
                "        if name is not None:\n"
                "            drawn[name] = jnp.asarray(values, dtype=DTYPE).reshape(shape)\n"
                "    return {name: drawn[name] if name in drawn else _array(*_INITIAL[name]) for name in PARAMS}\n")

    def _forward(self) -> str:
        p = self.program
        ins = [lf for lf in self.all_leaves if lf.role == "input"]
        outs = p.outputs
        required = tuple(lf.name for lf in ins if lf.default is None)
        # every input the model declares may be given, even one the outputs do not read
        known = tuple(dict.fromkeys([lf.name for lf in ins] + [d.get("name") for _, d in p.graph.nodes(data=True)
                                                                if d.get("role") == "input" and d.get("name")]))
        lines = ["def forward(params, inputs):",
                 f'    """{{{", ".join(repr(k) + ": ..." for k in outs)}}} from the params (init_params()) and the '
                 "inputs (arrays by name).",
                 "",
                 f"    Inputs: {', '.join(f'{lf.name} {_shape_text(lf.shape)}' for lf in ins) or 'none'}.",
                 '    """',
                 f"    _check_inputs(inputs, {required!r}, {known!r})"]
        lines += [self._leaf_line(lf) for lf in self.all_leaves if self._leaf_line(lf)]
        lines += self._dim_lines()
        lines += self._step_lines()
        body = ", ".join(f"{k!r}: {self.name(v)}" for k, v in outs.items())
        lines.append(f"    return {{{body}}}")
        return "\n".join(lines) + "\n"

    def _leaf_line(self, lf) -> str | None:
        var = self.name(lf.var)
        if lf.role == "param":
            return f"    {var} = params[{lf.name!r}]"
        if lf.role == "input":
            read = f"inputs[{lf.name!r}]"
            if lf.default is not None:
                read = f"inputs[{lf.name!r}] if {lf.name!r} in inputs else DEFAULTS[{lf.name!r}]"
            return f"    {var} = jnp.asarray({read}, DTYPE)"
        if lf.role == "const" and not lf.node.startswith("%"):
            return f"    {var} = CONSTS[{lf.name!r}]"
        return None  # literals, masks and dims are written where they are used

    def _dim_lines(self) -> list:
        lines = []
        for dim, source in self.program.free_dims.items():
            if source is not None:
                var, axis = source
                lines.append(f"    {self.dim_vars[dim]} = {self.name(var)}.shape[{axis}]  # dim {dim}: read from "
                             f"{var}")
            elif self._size_at_export(dim) is not None:
                lines.append(f"    {self.dim_vars[dim]} = {self._size_at_export(dim)}  # dim {dim}: its size at "
                             "export (no input of the outputs has it)")
        return lines

    def _size_at_export(self, dim: str) -> int | None:
        """The size a free dim had when the program was compiled, from a dim leaf or a step's arguments."""
        for lf in self.all_leaves:
            if lf.role == "dim" and lf.name == dim:
                return int(lf.value)
        for step in self.steps:
            for key, value in step.kw.items():
                pairs = zip(value, step.bound[key]) if isinstance(value, tuple) else [(value, step.bound[key])]
                for symbolic, size in pairs:
                    if symbolic == DimRef(dim):
                        return int(size)
        return None

    def _operand(self, var: str) -> str:
        lf = self.leaves.get(var)
        if lf is None or lf.role in ("param", "input") or (lf.role == "const" and not lf.node.startswith("%")):
            return self.name(var)
        if lf.role == "mask":
            return "1.0"  # dropout's mask: all ones outside training, as graphdsl's eval mode
        if lf.role == "dim" and lf.name in self.dim_vars:
            return self.dim_vars[lf.name]
        if np.size(lf.value) > INLINE_MAX:
            return f"_LITERALS[{lf.var!r}]"
        if np.ndim(lf.value) == 0:
            return literal(lf.value)
        return f"jnp.asarray({literal(lf.value)}, DTYPE)"

    def _step_lines(self) -> list:
        lines, line, phase = [], None, "forward"
        source = self.program.source
        for step in self.steps:
            if step.phase != phase:
                phase = step.phase
                if phase == "backward":
                    lines.append("    # reverse mode, for grad(...) in the model")
                line = None
            if step.line != line and step.line is not None:
                line = step.line
                text = source.line_text(line).strip() if source is not None else ""
                lines.append(f"    # line {line}: {text}")
            lines.append(self._step_line(step))
        return lines

    def _step_line(self, step) -> str:
        fn, bound = self._entry(step.op)
        args = [call_name(b) for b in bound] + [self._operand(a) for a in step.args]
        defaults = _defaults(fn)
        args += [f"{k}={self.arg(v)}" for k, v in step.kw.items() if not (k in defaults and _same(defaults[k], v))]
        line = f"    {self.name(step.out)} = {call_name(fn)}({', '.join(args)})"
        note = step.text if step.text and step.text != step.out else None
        return f"{line}  # {note}" if note else line


def _needed(steps, wanted: set) -> list:
    """The steps the wanted vars depend on, in order (a program's gradient steps are left out)."""
    keep = []
    for step in reversed(steps):
        if step.out in wanted:
            keep.append(step)
            wanted |= set(step.args)
    return keep[::-1]


def _check_inputs(inputs, required, known):
    """Refuse a missing input or an unknown one by name (a misspelt input would be silently ignored)."""
    missing = [k for k in required if k not in inputs]
    unknown = [k for k in inputs if k not in known]
    if missing or unknown:
        raise KeyError(f"inputs: missing {missing}, unknown {unknown}; the model's inputs are {list(known)}")


def _defaults(fn) -> dict:
    try:
        return {k: p.default for k, p in inspect.signature(fn).parameters.items()
                if p.default is not inspect.Parameter.empty}
    except (TypeError, ValueError):  # a library function without a signature: write every argument
        return {}


def _same(default, value) -> bool:
    if isinstance(value, (np.ndarray, DimRef)) or isinstance(default, np.ndarray):
        return False
    return type(default) is type(value) and default == value or (default is None and value is None)


def _fresh(base: str, taken) -> str:
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    return name


def _shape_text(shape) -> str:
    return "[" + ", ".join(d.name if isinstance(d, DimRef) else str(d) for d in shape) + "]"

"""Values: --set/--load parsing, binding dims from data, and initialisers.

Files are read with allow_pickle=False; every value becomes float64. Dims are
bound from the first value that fills them and later values must agree; the
errors name the value, the dim, the axis and both sizes.
"""
from __future__ import annotations

import json
import math
import os
import zipfile

import numpy as np

from . import ast as A
from .build import INITIALISERS, Built
from .consteval import NotConstant, const_eval
from .diagnostics import GraphDSLError, fail as _fail, suggest
from .plan import DEFAULT_MAX_ELEMENTS


# ---- reading values --------------------------------------------------------------

def as_array(value, name: str, where: str | None = None) -> np.ndarray:
    """`value` as float64; `where` (a file name) is named in the error when it is not an array."""
    if type(value) is np.ndarray and value.dtype == np.float64:  # already what it would become
        return value
    entry = f"`{name}` in `{where}`" if where else f"`{name}`"
    try:
        is_complex = np.iscomplexobj(value)  # float64() would drop the imaginary part with only a warning
        arr = None if is_complex else np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as err:
        _fail("E306", f"the value of {entry} is not a rectangular array of numbers: {_ragged(value) or _short(err)}")
    if is_complex:
        _fail("E306", f"the value of {entry} is complex; graphdsl values are real numbers (float64)")
    return arr


def _ragged(value) -> str | None:
    """Which rows of a nested list differ in length (what NumPy calls 'inhomogeneous')."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(r, (list, tuple)) for r in value):
        return None
    lengths = [len(r) for r in value]
    odd = next((i for i, n in enumerate(lengths) if n != lengths[0]), None)
    if odd is None:
        return _ragged(next(iter(value), None))  # the rows agree: look one level down
    return f"row {odd} has {_entries(lengths[odd])} but row 0 has {_entries(lengths[0])}"


def _entries(n: int) -> str:
    return f"{n} entr{'y' if n == 1 else 'ies'}"


def parse_set(text: str, max_elements: int = DEFAULT_MAX_ELEMENTS) -> tuple[str, np.ndarray]:
    """NAME=VALUE, VALUE a JSON number or array, or a path to an .npy file."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        _fail("E306", f"--set expects NAME=VALUE, got `{text}`", help=("for example --set x=[1,2,3]",))
    raw = raw.strip()
    if raw.endswith(".npy"):
        return name, _load_npy(raw, name, max_elements)
    try:
        value = json.loads(raw)
    except RecursionError:
        _fail("E306", f"--set {name}: the value is nested too deeply")
    except json.JSONDecodeError:
        _fail("E306", f"--set {name}: `{raw[:60]}` is neither a JSON number or array nor an .npy path",
              help=("for example --set x=[[1,2],[3,4]] or --set x=0.5",))
    return name, as_array(value, name)


def _load_npy(path, name, max_elements=DEFAULT_MAX_ELEMENTS):
    try:
        with open(path, "rb") as fh:
            _check_header(fh, path, name, max_elements)
        return as_array(np.load(path, allow_pickle=False), name)
    except GraphDSLError:  # ours, already located: a ValueError too, so let it through
        raise
    except (OSError, ValueError, EOFError) as err:
        _fail("E306", f"cannot read `{path}` for `{name}`: {_short(err)}",
              help=("files are read without pickle: save plain numeric arrays",))


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive, or an empty one


def load_file(path: str, max_elements: int = DEFAULT_MAX_ELEMENTS) -> dict[str, np.ndarray]:
    """An .npz archive, or a .json object mapping names to numbers/arrays."""
    if os.path.isdir(path):
        _fail("E306", f"`{path}` is a directory, not a value file")
    if path.endswith(".json"):
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except RecursionError:
            _fail("E306", f"cannot read `{path}`: its arrays are nested too deeply")
        except (OSError, ValueError) as err:
            _fail("E306", f"cannot read `{path}`: {_short(err)}")
        if not isinstance(data, dict):
            _fail("E306", f"`{path}` must hold a JSON object mapping names to arrays")
        return {k: as_array(v, k, path) for k, v in data.items()}
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
    except OSError as err:
        _fail("E306", f"cannot read `{path}`: {err.strerror or err}")
    if head.startswith(_NPY_MAGIC):
        _fail("E306", f"`{path}` is an .npy file: it holds one array, without a name",
              help=(f"give it to one value with --set NAME={path}, or save several with numpy.savez",))
    if not head.startswith(_ZIP_MAGIC):
        _fail("E306", f"`{path}` is neither an .npz archive nor a .json file",
              help=("save arrays with numpy.savez(path, x=..., y=...), or write a .json object "
                    "mapping names to arrays",))
    try:
        with np.load(path, allow_pickle=False) as archive:
            out = {}
            for k in archive.files:
                member = k if k in archive.zip.namelist() else k + ".npy"
                with archive.zip.open(member) as fh:
                    _check_header(fh, path, k, max_elements)
                out[k] = as_array(archive[k], k, path)
            return out
    except GraphDSLError:  # ours, already located: a ValueError too, so let it through
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError, NotImplementedError) as err:
        _fail("E306", f"cannot read `{path}`: {_short(err)}",
              help=("use an .npz of numeric arrays (pickled objects are refused) or a .json file",))


def _check_header(fh, path, name, max_elements):
    """Refuse an array that would be too large before reading it (a small file may claim a huge shape)."""
    if fh.read(6) != _NPY_MAGIC:
        return  # not an .npy member: numpy's own reader says what is wrong
    major = fh.read(2)[:1]
    read = np.lib.format.read_array_header_1_0 if major == b"\x01" else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(fh)
    if dtype.hasobject:
        _fail("E306", f"cannot read `{name}` from `{path}`: it holds Python objects, which are refused "
                      "(they would need pickle)", help=("save plain numeric arrays",))
    if math.prod(shape) > max_elements:
        _fail("E303", f"`{name}` in `{path}` has {math.prod(shape):,} elements {list(shape)}, more than the "
                      f"limit of {max_elements:,}", help=("use smaller data, or raise --max-elements",))


def _short(err) -> str:
    text = str(err)
    return text if len(text) < 200 else text[:200] + "..."


# ---- binding dims --------------------------------------------------------------

def bind_dims(built: Built, given: dict, overrides: dict | None = None) -> dict[str, int]:
    """Every dim's size: declared, overridden, or bound from the values (given ones first)."""
    dims = dict(built.declared_dims)
    dims.update({k: int(v) for k, v in (overrides or {}).items()})
    unknown = [n for n in given if n not in built.decls]
    if unknown:
        n = unknown[0]
        near = suggest(n, built.decls)
        _fail("E304", f"the model has no input, param or const named `{n}`",
              help=(f"did you mean `{near}`?",) if near else
              (f"its names are: {', '.join(built.decls) or '(none)'}",), source=built.source)
    # Where each size came from, for the note of a mismatch (values add theirs below).
    bound_by = {k: f"its declaration (line {built.dim_span(k).line})" if built.dim_span(k) else "its declaration"
                for k, v in dims.items() if v is not None}
    bound_by.update({k: f"the size given for it ({k}={v}: --dim, or dims= in Python)"
                     for k, v in (overrides or {}).items()})
    for name, decl in built.decls.items():
        if name in given and decl.shape is not None:
            _bind_value(built, decl, given[name], dims, bound_by)
    for name, decl in built.decls.items():  # then literal defaults of what was not given
        if name not in given and decl.shape is not None and decl.value is not None:
            _bind_value(built, decl, np.asarray(decl.value), dims, bound_by)
    _require_inputs(built, given)
    free = [k for k, v in dims.items() if v is None]
    if free:
        _fail("E304", f"dim `{free[0]}` is free and no value fills it", built.dim_span(free[0]),
              help=(f"give data that has this dim, or its size with --dim {free[0]}=N",), source=built.source)
    return dims


def _require_inputs(built, given):
    missing = [n for n, d in built.decls.items()
               if d.kind == "input" and n not in given and d.value is None and d.init is None]
    if missing:
        decl = built.decls[missing[0]]
        more = f" (and {len(missing) - 1} more: {', '.join(missing[1:])})" if len(missing) > 1 else ""
        _fail("E304", f"no value for input `{decl.name}`{more}", decl.span,
              help=(f"give it with --set {decl.name}=[...] or --load data.npz (Python: m.eval({{'{decl.name}': ...}}))",),
              source=built.source)


def _bind_value(built, decl, value, dims, bound_by):
    shape = decl.shape
    if value.ndim != len(shape):
        _fail("E301", f"`{decl.name}` is declared with {len(shape)} axes {_fmt(shape)} but its value has "
                      f"{value.ndim}: shape {list(value.shape)}", decl.span, source=built.source)
    for axis, (d, size) in enumerate(zip(shape, value.shape)):
        if d.name is None:
            if d.size is not None and d.size != size:
                _fail("E301", f"axis {axis} of `{decl.name}` must have size {d.size}, not {size}", decl.span,
                      notes=(_shapes(decl, value, dims),), help=_transposed(decl, value, dims),
                      source=built.source)
            continue
        have = dims.get(d.name)
        if have is None:
            dims[d.name] = size
            bound_by[d.name] = f"`{decl.name}` axis {axis}"
        elif have != size:
            origin = bound_by.get(d.name, "its declaration")
            _fail("E301", f"`{decl.name}` has size {size} in axis {axis}, where dim `{d.name}` is {have}",
                  decl.span, notes=(_shapes(decl, value, dims), f"`{d.name}` = {have} comes from {origin}"),
                  help=_transposed(decl, value, dims)
                  or (f"give `{decl.name}` a value of shape {_fmt(shape, dims)}",), source=built.source)


def _shapes(decl, value, dims) -> str:
    return f"`{decl.name}` is declared {_fmt(decl.shape, dims)}; its value has shape {list(value.shape)}"


def _transposed(decl, value, dims) -> tuple[str, ...]:
    """The hint for a matrix given the other way round (examples as rows, not columns)."""
    if value.ndim != 2 or value.shape[0] == value.shape[1]:
        return ()
    fits = all(want is None or want == got for want, got in
               zip((dims.get(d.name, d.size) if d.name else d.size for d in decl.shape), value.shape[::-1]))
    if not fits:
        return ()
    return (f"the data is transposed: did you mean `{decl.name}.T`? Give a {value.shape[1]} x {value.shape[0]} "
            f"array (in NumPy, `{decl.name}.T`; in PyTorch, `{decl.name}.t()`)",)


def _fmt(shape, dims=None) -> str:
    dims = dims or {}
    return "[" + ", ".join(f"{d.name}={dims.get(d.name, d.size) if dims.get(d.name, d.size) is not None else '?'}"
                           if d.name else str(d.size if d.size is not None else "_") for d in shape) + "]"


# ---- initial values -------------------------------------------------------------

def initial_values(built: Built, given: dict, seed: int = 0, max_elements=DEFAULT_MAX_ELEMENTS) -> dict:
    """A value for every declaration: given, or its initialiser, drawn from one seeded generator."""
    rng = None
    # A random initialiser draws even when its value is given, so that later draws stay put;
    # such draws are deferred until a later initialiser needs the generator, and skipped if none does.
    deferred = []
    out = {}
    for name, decl in built.decls.items():
        if decl.init is not None and _is_random(decl.init):
            if name in given:
                out[name] = given[name]
                deferred.append(decl)
                continue
            rng = rng or np.random.default_rng(seed)
            for skipped in deferred:
                _initialise(built, skipped, rng, max_elements)
            deferred.clear()
            out[name] = _initialise(built, decl, rng, max_elements)
        elif name in given:
            out[name] = given[name]
        elif decl.value is not None:
            out[name] = np.asarray(decl.value, dtype=np.float64)
        elif decl.init is not None:
            rng = rng or np.random.default_rng(seed)
            out[name] = _initialise(built, decl, rng, max_elements)
    return out


def _is_random(init) -> bool:
    return isinstance(init, A.Call) and init.func in INITIALISERS


def _initialise(built, decl, rng, max_elements):
    sizes = tuple(built.graph.nodes[decl.name]["shape"] and
                  [d.size for d in built.graph.nodes[decl.name]["shape"]] or ())
    if any(s is None for s in sizes):
        free = [d.name for d in built.graph.nodes[decl.name]["shape"] if d.size is None]
        _fail("E304", f"cannot initialise `{decl.name}`: dim `{free[0]}` is not bound", decl.span,
              help=(f"give --dim {free[0]}=N, or a value that fills it",), source=built.source)
    if math.prod(sizes) > max_elements:
        _fail("E303", f"`{decl.name}` would hold {math.prod(sizes):,} elements, more than the limit of "
                      f"{max_elements:,}", decl.span, help=("use smaller dims, or raise --max-elements",),
              source=built.source)
    init = decl.init
    kwargs = _init_kwargs(built, init)
    try:
        return _draw(init.func, sizes, kwargs, rng, built, init)
    except GraphDSLError:  # ours, already located: a ValueError too, so let it through
        raise
    except (ValueError, OverflowError) as err:  # numpy: std < 0, a uniform range too wide
        _fail("E107", f"cannot draw `{decl.name}` = {init.func}(...): {_short(err)}", init.span,
              help=("std must be >= 0, and low and high finite numbers",), source=built.source)


def _init_kwargs(built, init: A.Call) -> dict:
    names = INITIALISERS[init.func]
    kwargs = dict(zip(names, init.args))
    for kw in init.kwargs:
        if kw.name not in names:
            _fail("E103", f"`{init.func}` has no argument `{kw.name}`", kw.span,
                  help=(f"it takes {', '.join(names) or 'no arguments'}",), source=built.source)
        kwargs[kw.name] = kw.value
    if len(init.args) > len(names):
        _fail("E103", f"`{init.func}` takes at most {len(names)} arguments", init.span, source=built.source)

    def lookup(name: A.Name):
        if name.id in built.dims and built.dims[name.id] is not None:
            return float(built.dims[name.id])
        decl = built.decls.get(name.id)
        if decl is not None and decl.kind == "const" and decl.value is not None:
            return decl.value
        raise NotConstant(f"`{name.id}` is not a constant", name.span)

    try:
        return {k: float(const_eval(v, lookup)) for k, v in kwargs.items()}
    except (NotConstant, TypeError) as err:
        _fail("E107", f"arguments of `{init.func}` must be constants", getattr(err, "span", None) or init.span,
              source=built.source)


def _draw(func, sizes, kw, rng, built, init):
    fan_in = sizes[-1] if sizes else 1
    fan_out = sizes[0] if len(sizes) >= 2 else fan_in
    if func == "randn":
        return rng.normal(kw.get("mean", 0.0), kw.get("std", 1.0), sizes)
    if func == "uniform":
        return rng.uniform(kw.get("low", -1.0), kw.get("high", 1.0), sizes)
    if func == "zeros":
        return np.zeros(sizes)
    if func == "ones":
        return np.ones(sizes)
    if func == "full":
        if "v" not in kw:
            _fail("E103", "full needs a value: full(v)", init.span, source=built.source)
        return np.full(sizes, kw["v"])
    if func == "glorot":
        return rng.normal(0.0, math.sqrt(2.0 / max(1, fan_in + fan_out)), sizes)
    return rng.normal(0.0, math.sqrt(2.0 / max(1, fan_in)), sizes)  # he

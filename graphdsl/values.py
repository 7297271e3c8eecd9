"""Values: binding dims from data, and initialisers.

Dims are bound from the first value that fills them and later values must
agree; the errors name the value, the dim, the axis and both sizes. Reading
values (--set, --load) is valuefiles.py's job.
"""
from __future__ import annotations

import math

import numpy as np

from . import ast as A
from .build import Built
from .declarations import INITIALISERS
from .consteval import NotConstant, const_eval
from .diagnostics import GraphDSLError, fail as _fail, suggest
from .loops import loops_waiting
from .plan import DEFAULT_MAX_ELEMENTS
from .valuefiles import load_file, parse_set, short as _short  # noqa: F401  (load_file, parse_set: read here by tests)


# ---- binding dims --------------------------------------------------------------

def check_dim_names(built: Built, overrides: dict) -> None:
    """E304 for a dim size given (--dim) for a name that is not a dim of the model: it would be ignored."""
    for name in overrides:
        if name in built.declared_dims:
            continue
        decl = built.decls.get(name)
        if decl is not None:
            _fail("E304", f"cannot set the size of `{name}`: it is {'an' if decl.kind == 'input' else 'a'} "
                          f"{decl.kind}, not a dim", decl.span,
                  help=(f"give its value with --set {name}=[...]",), source=built.source)
        near = suggest(name, built.declared_dims)
        _fail("E304", f"cannot set the size of dim `{name}`: the model has no dim of that name",
              help=(f"did you mean `{near}`?",) if near else
              (f"its dims are: {', '.join(built.declared_dims) or '(none)'}",), source=built.source)


def bind_dims(built: Built, given: dict, overrides: dict | None = None) -> dict[str, int]:
    """Every dim's size: declared, overridden, or bound from the values (given ones first)."""
    check_dim_names(built, overrides or {})
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
              notes=tuple(loops_waiting(built.graph, free[0])),
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

DRAWS_NOTHING = ("zeros", "ones", "full")  # the initialisers that leave the generator as it was

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


def given_or_fixed(built: Built) -> tuple[frozenset, list]:
    """What `initial_values` needs to know to skip its walk when nothing is drawn.

    (the declarations that would draw from the generator unless given, [(name, its
    constant value or None)] in declaration order). `Model.grad` keeps this per
    compiled graph: a training step gives every value that would be drawn.
    """
    drawn, entries = set(), []
    for name, decl in built.decls.items():
        if decl.init is not None and (_is_random(decl.init) or decl.value is None):
            drawn.add(name)
        constant = decl.value is not None and not (decl.init is not None and _is_random(decl.init))
        entries.append((name, np.asarray(decl.value, dtype=np.float64) if constant else None))
    return frozenset(drawn), entries


def known_values(fixed: tuple, given: dict) -> dict | None:
    """initial_values(built, given) when every value it would draw is given (`fixed` from given_or_fixed), else None."""
    drawn, entries = fixed
    for name in drawn:
        if name not in given:
            return None
    out = {}
    for name, constant in entries:
        value = given.get(name, constant)
        if value is not None:
            out[name] = value
    return out


def _is_random(init) -> bool:
    return isinstance(init, A.Call) and init.func in INITIALISERS


def random_draws(built: Built, given: dict, max_elements=DEFAULT_MAX_ELEMENTS) -> list:
    """What `initial_values` draws from the generator, in order, for an exporter that redraws it:
    [(name, "normal" | "uniform", a, b, sizes, given)], a and b NumPy's arguments (loc and scale,
    or low and high). A given value is drawn too (and dropped) when a later draw follows it, as there."""
    out, deferred = [], []
    for name, decl in built.decls.items():
        if decl.init is None or not _is_random(decl.init) or decl.init.func in DRAWS_NOTHING:
            continue
        deferred.append(decl)
        if name in given:
            continue
        for pending in deferred:
            sizes = _sizes(built, pending, max_elements)
            method, low_or_loc, high_or_scale = draw_spec(pending.init.func, sizes, _init_kwargs(built, pending.init))
            out.append((pending.name, method, low_or_loc, high_or_scale, sizes, pending.name in given))
        deferred.clear()
    return out


def _sizes(built, decl, max_elements) -> tuple:
    """The declaration's concrete shape; E304 for a dim not bound, E303 for too many elements."""
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
    return sizes


def _initialise(built, decl, rng, max_elements):
    sizes = _sizes(built, decl, max_elements)
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
    if func == "zeros":
        return np.zeros(sizes)
    if func == "ones":
        return np.ones(sizes)
    if func == "full":
        if "v" not in kw:
            _fail("E103", "full needs a value: full(v)", init.span, source=built.source)
        return np.full(sizes, kw["v"])
    method, a, b = draw_spec(func, sizes, kw)
    return getattr(rng, method)(a, b, sizes)


def draw_spec(func: str, sizes: tuple, kw: dict) -> tuple | None:
    """An initialiser as the generator call that draws it: ("normal", loc, scale), ("uniform", low, high),
    or None for one that draws nothing (zeros, ones, full)."""
    if func in DRAWS_NOTHING:
        return None
    fan_in = sizes[-1] if sizes else 1
    fan_out = sizes[0] if len(sizes) >= 2 else fan_in
    if func == "randn":
        return "normal", kw.get("mean", 0.0), kw.get("std", 1.0)
    if func == "uniform":
        return "uniform", kw.get("low", -1.0), kw.get("high", 1.0)
    if func == "glorot":
        return "normal", 0.0, math.sqrt(2.0 / max(1, fan_in + fan_out))
    return "normal", 0.0, math.sqrt(2.0 / max(1, fan_in))  # he


# ---- dropout masks ------------------------------------------------------------------

MODES = ("eval", "train")


def dropout_masks(built: Built, seed: int = 0, mode: str = "eval", step: int = 0) -> dict:
    """The mask of each dropout call: ones in eval mode; in train mode each element is kept
    with probability 1 - p and scaled by 1/(1 - p), drawn from a generator seeded by
    (seed, step, call), so a run is reproducible and each training step draws afresh."""
    g = built.graph
    out = {}
    for k, vid in enumerate(g.graph.get("dropout_masks", ())):
        node = g.nodes[vid]
        sizes = None if node["shape"] is None else tuple(d.size for d in node["shape"])
        if sizes is None or None in sizes:
            _fail("E304", f"the size of the mask of this dropout (`{vid}`) is not known", node.get("span"),
                  help=("give the input data, or the dims' sizes with --dim",), source=built.source)
        p = node["p"]
        if mode != "train" or p == 0.0:
            out[vid] = np.ones(sizes)
        elif p == 1.0:
            out[vid] = np.zeros(sizes)
        else:
            rng = np.random.default_rng([seed, step, k])
            out[vid] = (rng.random(sizes) >= p) / (1.0 - p)
    return out

"""einsum with NumPy's explicit-output subscripts: `einsum("ij,jk->ik", a, b)`.

The gradient for operand k is again an einsum: the output's subscripts and the
other operands' give operand k's. A letter that only operand k has (summed
away, as j in "ij->i") comes back by expand_dims and broadcast_to.
"""
from __future__ import annotations

import numpy as np

from ..arrays import c_ordered
from .base import Dim, OpDef, ShapeError, merge_dim, register, same_dim


def parse_spec(spec, count: int | None = None):
    """(input terms, output term) of an explicit-output spec; a ShapeError says what is wrong."""
    if not isinstance(spec, str):
        raise ShapeError("E103", 'einsum needs its subscripts as a string first: einsum("ij,jk->ik", a, b)')
    text = spec.replace(" ", "")
    if text.count("->") != 1:
        raise ShapeError("E103", f'einsum needs the explicit output form "inputs->output", not "{spec}"',
                         help=('e.g. einsum("ij,jk->ik", a, b); write "ij->" for a full sum',))
    left, out = text.split("->")
    terms = left.split(",")
    for term in terms + [out]:
        if not all(ch.isascii() and ch.isalpha() for ch in term):
            raise ShapeError("E103", f'einsum subscripts are letters a-z and A-Z, not "{term}" in "{spec}"')
        if len(set(term)) != len(term):
            raise ShapeError("E103", f'einsum: a letter repeats within "{term}" of "{spec}"',
                             help=("take a diagonal or trace with trace(...) or a mask instead",))
    missing = sorted(set(out) - set("".join(terms)))
    if missing:
        raise ShapeError("E103", f'einsum: output letter {missing[0]!r} of "{spec}" is in no input')
    if count is not None and count != len(terms):
        raise ShapeError("E103", f'einsum: "{spec}" has {len(terms)} input terms but {count} arrays are given')
    return terms, out


def _einsum_shape(shapes, attrs):
    terms, out = parse_spec(attrs.get("spec"), len(shapes))
    dims: dict[str, Dim] = {}
    for k, (term, s) in enumerate(zip(terms, shapes)):
        if s is None:
            continue
        if len(s) != len(term):
            raise ShapeError("E204", f'einsum: term "{term}" has {len(term)} letters but {{{k}}} has rank {len(s)}')
        for letter, d in zip(term, s):
            if letter in dims and same_dim(dims[letter], d) is False:
                raise ShapeError("E202", f"einsum: letter '{letter}' stands for {dims[letter]} and for {d} "
                                         f"(in {{{k}}})")
            dims[letter] = merge_dim(dims[letter], d) if letter in dims else d
    if any(s is None for s in shapes) and any(letter not in dims for letter in out):
        return None
    return tuple(dims[letter] for letter in out)


def _einsum(*xs, spec=None):
    # "ijk->kij" is a view in another order; the compiled program takes results to be row-ordered
    return c_ordered(np.asarray(np.einsum(spec, *xs, optimize=len(xs) > 2)))


def _einsum_vjp(b, n):
    terms, out = parse_spec(n.attrs["spec"])
    grads = []
    for k, term in enumerate(terms):
        if not n.needs(k):
            grads.append(None)
            continue
        others = [t for i, t in enumerate(terms) if i != k]
        present = set(out).union(*others) if others else set(out)
        kept = "".join(ch for ch in term if ch in present)
        spec = ",".join([out] + others) + "->" + kept
        g = b.op("einsum", n.g, *[a for i, a in enumerate(n.args) if i != k], spec=spec)
        for axis, ch in enumerate(term):  # letters summed inside operand k alone come back by broadcasting
            if ch not in present:
                g = b.op("expand_dims", g, axis=axis)
        grads.append(g if kept == term else b.op("broadcast_to", g, like=n.args[k]))
    return grads


register(OpDef("einsum", _einsum, _einsum_shape, _einsum_vjp, (1, 10_000), {"spec": None},
               latex=r"\mathrm{{einsum}}({0}, \dots)", doc='NumPy einsum, explicit output: einsum("ij,jk->ik", a, b)'))

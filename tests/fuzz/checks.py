"""A generated program checked, evaluated, and its compiled program against the reference schedule."""
from __future__ import annotations

import json
import re

import numpy as np

import graphdsl
from graphdsl import GraphDSLError
from bits import same_bits
from fuzz.program import Program
from fuzz.stats import CALLED, OPS_SEEN, STATS


def _reject(name):
    raise ValueError(f"not RFC 8259 JSON: {name}")


def strict_json(text: str):
    """json.loads that refuses NaN/Infinity tokens, which RFC 8259 does not allow."""
    return json.loads(text, parse_constant=_reject)


def load(prog: Program) -> graphdsl.Model | None:
    """A generated program is valid: it must check without error.

    The one exception: with axes of size 0, a max/min over an empty axis or a
    reshape with -1 is rightly refused (E204).
    """
    STATS["programs"] += 1
    try:
        model = graphdsl.parse(prog.text, "gen.gdsl")
    except GraphDSLError as err:
        codes = {d.code for d in err.errors}
        if prog.features["zero_size"] and codes <= {"E204"}:
            STATS["check_E204_empty"] += 1
            return None
        raise AssertionError(f"a valid generated program was refused:\n{err.format()}") from None
    STATS["checked"] += 1
    STATS["nodes"] += model.graph.number_of_nodes()
    OPS_SEEN.update(d["op"] for _, d in model.graph.nodes(data=True) if d["kind"] == "op")
    CALLED.update(re.findall(r"([A-Za-z_]\w*)\(", prog.text))
    return model


def evaluate(model, prog, **kw):
    """eval: a result or a GraphDSLError, never another exception."""
    try:
        out = model.eval(prog.values, **kw)
    except GraphDSLError as err:
        assert err.diagnostics and err.errors
        err.format()
        json.loads(err.to_json(), parse_constant=_reject)
        STATS["eval_" + err.errors[0].code] += 1
        return None
    STATS["eval_ok"] += 1
    for v in out.values():
        assert np.asarray(v).dtype == np.float64
    return out

def compiled_matches_reference(model, prog):
    """The compiled grad program against the reference schedule: bit-for-bit (NaNs match NaNs)."""
    try:
        model.grad(prog.values, of=prog.target, wrt=prog.wrt, check_finite=False)
    except GraphDSLError:
        return
    compiled, given = model.compile(prog.values)
    grad_plan, _ = compiled.grad_plans[(prog.target, tuple(prog.wrt))]
    target, _ = model.grad_targets(compiled, prog.target, prog.wrt)
    leaves = model.leaf_values(compiled, given)
    for plan in (model._plan(compiled, (target,)), grad_plan):
        with np.errstate(all="ignore"):
            got, want = plan.run(leaves, check_finite=False), plan.run_reference(leaves)
        STATS["compiled_vs_reference"] += 1
        for k, (a, b) in enumerate(zip(got, want)):
            assert same_bits(a, b), (f"compiled program and reference schedule differ in result {k}: "
                                     f"max |diff| {np.nanmax(np.abs(np.asarray(a) - np.asarray(b)))}")

def leaf_values(model, prog):
    """Every input and param value the program runs with (given data and drawn initialisers).

    Not the dropout masks: they are not values one gives (each run draws them again, the same).
    """
    compiled, given = model.compile(prog.values)
    leaves = model.leaf_values(compiled, given, 0)
    return {k: np.asarray(v, dtype=np.float64) for k, v in leaves.items() if k in compiled.built.decls}


def differential(model, prog):
    """Every program that evaluates: compiled against reference, and against PyTorch where installed."""
    from fuzz.oracle_torch import torch, torch_agrees  # PyTorch is optional
    compiled_matches_reference(model, prog)
    if torch is not None:
        torch_agrees(model, prog)


def unrolled_matches(model, prog):
    """A loop program against the same program unrolled by hand: every output, the value of L and its
    gradients, bit for bit, from the reference schedule (first call) and the compiled program (second)."""
    by_hand = graphdsl.parse(prog.unrolled, "unrolled.gdsl")
    for _ in range(2):
        try:
            outs = model.eval(prog.values, check_finite=False)
            value, grads = model.grad(prog.values, of=prog.target, wrt=prog.wrt, check_finite=False)
        except GraphDSLError as err:  # the unrolled text must refuse the same way
            try:
                by_hand.grad(prog.values, of=prog.target, wrt=prog.wrt, check_finite=False)
            except GraphDSLError as err2:
                assert err2.errors[0].code == err.errors[0].code, (err.format(), err2.format())
                return
            raise AssertionError(f"the loop refused what its unrolled text runs:\n{err.format()}") from None
        hand_outs = by_hand.eval(prog.values, check_finite=False)
        hand_value, hand_grads = by_hand.grad(prog.values, of=prog.target, wrt=prog.wrt, check_finite=False)
        assert sorted(outs) == sorted(hand_outs), (sorted(outs), sorted(hand_outs))
        for k in outs:
            assert same_bits(outs[k], hand_outs[k]), f"output {k} differs from the unrolled text's"
        assert same_bits(value, hand_value), "L differs from the unrolled text's"
        for w in prog.wrt:
            assert same_bits(grads[w], hand_grads[w]), f"dL/d{w} differs from the unrolled text's"
        STATS["unrolled_compared"] += 1

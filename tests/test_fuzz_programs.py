"""Property tests over generated *valid* programs, and mutation fuzzing through the CLI.

The generator builds well-typed programs by construction: it is asked for an
expression of a given shape and picks a form that yields it (an elementwise
function of the same shape, a matmul with a matching inner dim, 1-D and batched,
a reduction over an inserted axis, positive, negative or a list of axes, with or
without keepdims, a softmax, `.T` of any rank, a slice with a step of either
sign, a def that may call a def, `grad` nested to the third order, onehot of
whole-number labels, convolutions and pools of fitting windows, take, einsum,
...), declaring inputs, params and consts of the shapes it needs on the way,
with every binary op broadcasting. Some programs get extreme values
(magnitudes from 1e-8 to 1e6, exact zeros) and some values in column order.
`test_every_builtin_has_a_generator` fails when a builtin has no form.
Then:

* `check` accepts every generated program (it is valid by construction), and
  never raises anything but GraphDSLError;
* evaluation succeeds or raises GraphDSLError (never another exception);
* the compiled program (codegen) gives bit-for-bit the reference schedule's
  numbers, for the forward plan and the gradient plan of every program;
* PyTorch autograd (float64), replaying the same graph op by op through the
  table TORCH, agrees with graphdsl's value and gradients to 1e-9 relative
  (below 1e-4 in magnitude, 1e-13 absolute): every program, kinks included;
* for smooth programs, `Model.grad` agrees with fourth-order central
  differences (two steps, whose difference bounds the FD error); kinked ops
  (relu, abs, max, clip, maximum, where, comparisons) get their own gradient
  property that first evaluates every kinked op's arguments and skips the
  example when one lies within 1e-3 of its kink;
* every command (check, eval, grad, gradcheck, equations, render, train) on
  generated programs and their data, and `check`/`eval` on mutations of
  generated programs and of the examples (delete, insert, replace, swap and
  duplicate tokens or characters; random bytes; invalid UTF-8), give only clean
  results through the CLI: exit 0 or 1, never 3, never a traceback, and JSON
  (`--json`, `--error-format json`) that is strict RFC 8259;
* loop programs (tests/fuzz/loops.py: sequences, nested loops, loops in defs,
  defs returning two values) go through the same comparisons, and give
  bit-for-bit the values and gradients of the same program unrolled by hand
  (both texts come from one representation); hostile loop programs (a range
  backwards, a bound not static, an element defined twice, an arity mismatch)
  give a located error through the CLI;
* no example runs longer than HANG_SECONDS.

The generator, the oracles and the CLI driver are the package tests/fuzz/
(its __init__ lists the modules); this file keeps the properties, the test
entry points and the campaign.

A bug found here gets a regression test in tests/test_robust_fuzz_found.py;
one in code owned elsewhere, a label in KNOWN_BUGS, so that a campaign counts
it and goes on; the label goes when the bug is fixed.

CI runs a few hundred examples. The dedicated run generates at least 10,000
programs, records every failure instead of stopping at the first, and writes
its figures (docs/fuzzing.md) as JSON; it can run in two processes:

    GRAPHDSL_FUZZ_PROGRAMS=10000 GRAPHDSL_FUZZ_SUMMARY=s.json pytest -q -m slow tests/test_fuzz_programs.py -s
    (GRAPHDSL_FUZZ_PART=programs, =gradients, =cli, each with its own summary; merge_summaries() adds them up)
"""
from __future__ import annotations

import inspect
import json
import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphdsl.ops import BUILTINS, REGISTRY
from fuzz import core, forms_arith, forms_grad, forms_shape, forms_v2
from fuzz.checks import differential, evaluate, load, unrolled_matches
from fuzz.checks import strict_json
from fuzz.cli import COMMANDS, byte_mutants, cli_on, token_mutants
from fuzz.gen import Gen, programs  # noqa: F401 - Gen and programs are imported from here (test_export_onnx)
from fuzz.guard import guarded
from fuzz.loops import HOSTILE_CODES, LOOP_FEATURES, loop_mutants, loop_programs
from fuzz.oracle_fd import grad_agrees
from fuzz.oracle_torch import NOT_IN_TORCH, TORCH, torch
from fuzz.stats import CALLED, CAMPAIGN, NONFINITE_IN_TORCH, OPS_SEEN, RECORD, STATS, TORCH_OPS_SEEN
from fuzz.tables import (GRAD_BODIES, GRAD_BODIES_KINKED, GRAD_INNER, GRAD_INNER_KINKED, KINKED_BINARY, KINKED_REDUCE,
                         KINKED_UNARY, SMOOTH_BINARY, SMOOTH_REDUCE, SMOOTH_UNARY, UNSAFE_BINARY, UNSAFE_UNARY)

DEDICATED = int(os.environ.get("GRAPHDSL_FUZZ_PROGRAMS", "10000"))


# ---- properties -------------------------------------------------------------------------------------

def prop_check_and_eval(prog):
    model = load(prog)
    if model is not None and evaluate(model, prog) is not None:
        differential(model, prog)


def prop_smooth_gradients(prog):
    model = load(prog)
    differential(model, prog)
    grad_agrees(model, prog)


def prop_kinked_gradients(prog):
    model = load(prog)
    differential(model, prog)
    grad_agrees(model, prog, kink_guard=True)


def prop_loop_program(prog):
    """A loop program: the oracles of every program, and its unrolled text bit for bit."""
    STATS.update("loop_form:" + k for k in LOOP_FEATURES if prog.features[k])
    STATS["loop_programs"] += 1
    model = load(prog)
    if evaluate(model, prog) is not None:
        differential(model, prog)
        unrolled_matches(model, prog)
    return model


def prop_loop_gradients(prog):
    """A smooth loop program: the above, and its gradients against finite differences."""
    grad_agrees(prop_loop_program(prog), prog)
    STATS["loop_fd_checked"] += 1  # not reached when grad_agrees skips the example


def prop_cli_loop_mutant(folder, mutant, command):
    """A hostile loop program: exit 1 with a located diagnostic (never 0, never 3)."""
    what, text, values = mutant
    code, err = cli_on(folder, text, values, command, True)
    assert code == 1, f"{what}: exit {code}\n{text}"
    first = [d for d in strict_json(err)["diagnostics"] if d["severity"] == "error"][0]
    assert first["line"] >= 1 and first["code"] == HOSTILE_CODES[what], (what, first)
    STATS["loop_mutant_" + first["code"]] += 1
    STATS["loop_mutants"] += 1
    STATS["mutants"] += 1


def prop_cli_generated(folder, prog, command, json_errors):
    cli_on(folder, prog.text, prog.values, command, json_errors)
    STATS["programs"] += 1
    STATS["cli_programs"] += 1


def prop_cli_mutant(folder, text, command, json_errors):
    cli_on(folder, text, None, command, json_errors)
    STATS["mutants"] += 1


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


# The default run (CI) draws the same programs every time, so that a red CI is reproducible and
# never depends on luck; a campaign (GRAPHDSL_FUZZ_PROGRAMS set) draws new ones on every run.
EXPLORE = "GRAPHDSL_FUZZ_PROGRAMS" in os.environ


def _settings(n):
    return settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck),
                    derandomize=not EXPLORE, database=None if not EXPLORE else settings.default.database)


# Each property is made for a number of examples: a few hundred in all for CI
# (about 30 s here), many more for the dedicated campaign.

def property_test(mode, prop, n, strategy=programs):
    """A hypothesis test of `prop` over n programs of the given mode drawn by `strategy`."""
    @_settings(n)
    @given(prog=strategy(mode))
    def test(prog):
        guarded(prop, prog)
    return test


def loop_test(mode, prop, n):
    """A hypothesis test of `prop` over n generated loop programs of the given mode."""
    return property_test(mode, prop, n, loop_programs)


def cli_loop_mutants_test(n):
    @_settings(n)
    @given(mutant=loop_mutants(), command=st.sampled_from([["check"], ["eval", "--json"]]))
    def test(folder, mutant, command):
        guarded(prop_cli_loop_mutant, folder, mutant, command)
    return test


def check_and_eval_test(n):
    return property_test("any", prop_check_and_eval, n)


def smooth_gradients_test(n):
    return property_test("smooth", prop_smooth_gradients, n)


def kinked_gradients_test(n):
    return property_test("kinked", prop_kinked_gradients, n)


def cli_generated_test(n):
    @_settings(n)
    @given(prog=st.one_of(programs("any"), loop_programs("any")), command=st.sampled_from(COMMANDS),
           json_errors=st.booleans())
    def test(folder, prog, command, json_errors):
        guarded(prop_cli_generated, folder, prog, command, json_errors)
    return test


def cli_token_mutants_test(n):
    @_settings(n)
    @given(text=token_mutants(), command=st.sampled_from(COMMANDS[:4]), json_errors=st.booleans())
    def test(folder, text, command, json_errors):
        guarded(prop_cli_mutant, folder, text, command, json_errors)
    return test


def cli_bytes_test(n):
    @_settings(n)
    @given(data=byte_mutants(), json_errors=st.booleans())
    def test(folder, data, json_errors):
        guarded(prop_cli_mutant, folder, data, ["check"], json_errors)
    return test


test_generated_programs_check_and_evaluate = check_and_eval_test(150)
test_gradients_of_smooth_programs_match_finite_differences = smooth_gradients_test(80)
test_gradients_away_from_kinks_match_finite_differences = kinked_gradients_test(40)
test_cli_on_generated_programs = cli_generated_test(25)
test_cli_on_token_mutants = cli_token_mutants_test(80)
test_cli_on_invalid_utf8_and_random_bytes = cli_bytes_test(50)
test_loop_programs_match_torch_compiled_and_their_unrolled_text = loop_test("any", prop_loop_program, 40)
test_gradients_of_smooth_loop_programs_match_finite_differences = loop_test("smooth", prop_loop_gradients, 20)
test_cli_on_hostile_loop_programs = cli_loop_mutants_test(20)


def test_every_loop_form_is_generated():
    """The loop generator writes each of its forms (a loop, a nested loop, a def returning two values,
    ...) within 60 programs; a form that stops being written fails here."""
    seen = set()

    @settings(max_examples=60, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(prog=loop_programs("any"))
    def draw_programs(prog):
        seen.update(k for k in LOOP_FEATURES if prog.features[k])
    draw_programs()
    assert sorted(set(LOOP_FEATURES) - seen) == []


# ---- coverage: no builtin without a generator, no operator without a PyTorch translation ------------------

PUBLIC_OPS = sorted(name for name, op in REGISTRY.items() if not op.internal)


def test_every_operator_has_a_torch_translation():
    assert sorted(set(REGISTRY) - set(TORCH) - NOT_IN_TORCH) == [], "operators missing from TORCH"
    assert sorted(set(TORCH) - set(REGISTRY)) == [], "TORCH names operators the table does not have"


def generator_text() -> str:
    """The source of every form the generator can write: Gen's methods and the tables they draw from."""
    tables = [SMOOTH_UNARY, KINKED_UNARY, UNSAFE_UNARY, SMOOTH_BINARY, KINKED_BINARY, UNSAFE_BINARY,
              GRAD_INNER, GRAD_INNER_KINKED, GRAD_BODIES, GRAD_BODIES_KINKED,
              [f"{op}(" for op in SMOOTH_REDUCE + KINKED_REDUCE]]
    forms = "".join(inspect.getsource(m) for m in (core, forms_arith, forms_shape, forms_v2, forms_grad))
    return forms + "\n".join(str(t) for t in tables)


def test_every_builtin_has_a_generator():
    """A builtin added to the language without a form in Gen that writes it fails here."""
    text = generator_text()  # a call written out, or a name picked from a list and formatted as a call
    written = set(re.findall(r"([A-Za-z_]\w*)\(", text)) | set(re.findall(r'"([A-Za-z_]\w*)"', text))
    assert sorted(set(BUILTINS) - written) == [], "builtins the generator never writes: add a form to Gen"
    symbols = {op.symbol for op in REGISTRY.values() if op.symbol}
    assert sorted(sym for sym in symbols if sym not in text) == [], "operators the generator never writes"


def coverage_gaps() -> list[str]:
    """After a campaign: builtins never called, public operators never built, operators never replayed."""
    gaps = [f"loop form {f} never generated" for f in LOOP_FEATURES if STATS["loop_programs"] and
            not STATS["loop_form:" + f]]
    gaps += [f"builtin {b} never called" for b in sorted(set(BUILTINS) - CALLED)]
    gaps += [f"operator {op} never built" for op in sorted(set(PUBLIC_OPS) - OPS_SEEN)]
    if torch is not None:
        gaps += [f"operator {op} never replayed in PyTorch" for op in sorted(set(PUBLIC_OPS) - TORCH_OPS_SEEN)]
    return gaps


# ---- the dedicated campaign (not in CI) ----------------------------------------------------------------

@pytest.mark.slow
def test_dedicated_campaign(folder):
    """At least GRAPHDSL_FUZZ_PROGRAMS (default 10,000) generated programs, plus mutants; prints the counts."""
    n = DEDICATED
    STATS.clear()
    CAMPAIGN.update(collect=True, failures=[])
    t0 = time.perf_counter()
    failures = []
    # GRAPHDSL_FUZZ_PART=programs|gradients|cli runs a third of it, so processes can share the work
    part = os.environ.get("GRAPHDSL_FUZZ_PART", "all")
    parts = [("programs", "generated programs: check and eval", check_and_eval_test(n * 6 // 10), ()),
             ("programs", "loop programs", loop_test("any", prop_loop_program, max(1, n // 10)), ()),
             ("gradients", "smooth gradients", smooth_gradients_test(n * 25 // 100), ()),
             ("gradients", "smooth loop programs", loop_test("smooth", prop_loop_gradients, max(1, n // 20)), ()),
             ("gradients", "gradients away from kinks", kinked_gradients_test(n * 15 // 100), ()),
             ("cli", "CLI on generated programs", cli_generated_test(max(1, n // 10)), (folder,)),
             ("cli", "CLI on token mutants", cli_token_mutants_test(max(1, n * 3 // 10)), (folder,)),
             ("cli", "CLI on random bytes", cli_bytes_test(max(1, n // 10)), (folder,)),
             ("cli", "CLI on hostile loop programs", cli_loop_mutants_test(max(1, n // 20)), (folder,))]
    for _, name, test, args in [p for p in parts if part in ("all", p[0])]:
        try:  # each property runs to the end (or to its shrunk failure); the others still run
            test(*args)
        except BaseException as err:  # noqa: B902 - hypothesis raises ExceptionGroups for several failures
            if isinstance(err, KeyboardInterrupt):
                raise
            failures.append(f"{name}: {type(err).__name__}: {err}")
    CAMPAIGN["collect"] = False
    seconds = time.perf_counter() - t0
    report = "\n  ".join(f"{k}: {v}" for k, v in sorted(STATS.items()))
    print(f"\ndedicated fuzz campaign ({seconds:.0f} s):\n  {report}\n  worst: {RECORD}")
    failures += CAMPAIGN["failures"]
    gaps = coverage_gaps()
    write_campaign_summary(seconds, gaps, failures)
    for f in failures:
        print("\nFAILURE", f)
    assert not failures, f"{len(failures)} examples failed (see the output)"
    if part == "all":  # a half covers what it covers; merge_summaries() checks the whole
        assert not gaps, gaps
        assert STATS["programs"] >= n, STATS


def merge_summaries(paths) -> dict:
    """The figures of a campaign run in parts (GRAPHDSL_FUZZ_PART), added up; its coverage gaps."""
    parts = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    total = {k: sum(s[k] for s in parts) for k in ("programs", "generated_programs", "mutants", "fd_comparisons",
                                                  "fd_skipped_near_kink", "torch_comparisons", "internal_errors",
                                                  "compiled_vs_reference", "hangs", "failures")}
    total.update({k: max(s[k] for s in parts) for k in ("worst_torch_rel", "worst_fd_rel", "worst_fd_of_tolerance",
                                                        "seconds")})
    total.update({k: sum(s[k] for s in parts) for k in ("torch_ill_conditioned", "torch_nonfinite")})
    called, built, replayed = (set().union(*(s[k] for s in parts)) for k in ("called", "ops_seen", "torch_ops_seen"))
    total.update(builtins_called=len(set(BUILTINS) & called), builtins=len(BUILTINS),
                 operators_built=len(set(PUBLIC_OPS) & built), public_operators=len(PUBLIC_OPS),
                 operators_replayed_in_torch=len(replayed), operators=len(REGISTRY),
                 gaps=[f"builtin {b} never called" for b in sorted(set(BUILTINS) - called)]
                 + [f"operator {op} never built" for op in sorted(set(PUBLIC_OPS) - built)]
                 + [f"operator {op} never replayed" for op in sorted(set(PUBLIC_OPS) - replayed)])
    return total


def write_campaign_summary(seconds, gaps, failures):
    """The campaign's figures as JSON, for docs/fuzzing.md (GRAPHDSL_FUZZ_SUMMARY names the file)."""
    path = os.environ.get("GRAPHDSL_FUZZ_SUMMARY")
    if not path:
        return
    summary = {"programs": STATS["programs"], "generated_programs": STATS["checked"] + STATS["cli_programs"],
               "mutants": STATS["mutants"], "builtins_called": len(set(BUILTINS) & CALLED),
               "builtins": len(BUILTINS), "operators_built": len(set(PUBLIC_OPS) & OPS_SEEN),
               "public_operators": len(PUBLIC_OPS), "operators_replayed_in_torch": len(TORCH_OPS_SEEN),
               "fd_comparisons": STATS["fd_checked"], "fd_skipped_near_kink": STATS["fd_skipped_near_kink"],
               "torch_comparisons": STATS["torch_compared"], "compiled_vs_reference": STATS["compiled_vs_reference"],
               "worst_torch_rel": RECORD.get("torch_worst_rel", 0.0), "worst_fd_rel": RECORD.get("fd_worst_rel", 0.0),
               "worst_fd_of_tolerance": RECORD.get("fd_worst_of_tolerance", 0.0),
               "torch_ill_conditioned": STATS["torch_ill_conditioned"], "torch_nonfinite": STATS["torch_nonfinite"],
               "internal_errors": STATS["cli_exit_3"] + STATS["failures"], "hangs": STATS["hangs"],
               "failures": len(failures), "gaps": gaps, "seconds": round(seconds), "stats": dict(STATS),
               "torch_nonfinite_programs": NONFINITE_IN_TORCH[:20], "called": sorted(CALLED), "ops_seen": sorted(OPS_SEEN), "torch_ops_seen": sorted(TORCH_OPS_SEEN)}
    Path(path).write_text(json.dumps(summary, indent=1, sort_keys=True), encoding="utf-8")


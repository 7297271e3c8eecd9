"""What keeps commands quick and compiles linear: lazy imports, the shipped parser tables, the light graph,
the first call answered from the reference schedule, and the program's rewrites (exact, against
the reference schedule and hand-written NumPy). No test here looks at a clock."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import graphdsl
from graphdsl.digraph import MultiDiGraph, ancestors, descendants

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from rnn_unrolled import WRT, numpy_rnn_step, rnn_source, rnn_values  # noqa: E402

HEAVY = ("scipy", "networkx", "wasmtime", "matplotlib", "rich", "graphdsl.render", "graphdsl.equations",
         "graphdsl.train", "graphdsl.codegen", "PIL")


def _python(code: str, env_extra=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120)


def _loaded_after(code: str) -> set:
    probe = code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = _python(probe)
    assert out.returncode == 0, out.stderr
    names = set(out.stdout.split())
    return {h for h in HEAVY if h in names}


# ---- start-up ------------------------------------------------------------------------------

def test_importing_the_cli_loads_nothing_heavy():
    assert _loaded_after("import graphdsl.cli") == set()


def test_check_and_grad_load_nothing_heavy():
    code = ("from graphdsl.cli import main\nimport contextlib, io\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert main(['grad', 'examples/d2l_mlp.gdsl', '--load', 'examples/d2l_mlp.json']) == 0\n"
            "    assert main(['check', 'examples/d2l_mlp.gdsl']) == 0\n")
    assert _loaded_after(code) == set()  # plain tables (no rich), no code generation for one call


def test_gelu_imports_scipy_only_when_it_runs_and_matches_erf():
    from math import erf, sqrt
    m = graphdsl.parse("input x : [5]\ny = sum(gelu(x))\noutput y")
    x = np.array([-3.0, -0.5, 0.0, 0.7, 4.0])
    y = m.eval({"x": x})["y"]
    want = sum(v * 0.5 * (1.0 + erf(v / sqrt(2.0))) for v in x)
    assert abs(float(y) - want) < 1e-12


def test_model_graph_is_networkx_on_demand_and_shares_the_attribute_dicts():
    m = graphdsl.parse("input x : [3]\ny = sum(tanh(x))\noutput y")
    g = m.graph
    assert isinstance(g, nx.MultiDiGraph) and m.graph is g
    assert g.nodes["y"] is m.built.graph.nodes["y"]  # the same attribute dicts (node and edge dicts its own)
    m.grad({"x": np.ones(3)}, of="y", wrt=["x"])
    assert nx.is_directed_acyclic_graph(g)


# ---- the shipped parser tables ---------------------------------------------------------------

def test_the_shipped_parser_tables_are_current():
    from graphdsl import _parser_tables as shipped
    from graphdsl.syntax import _grammar_text, grammar_sha256
    from graphdsl.tablegen import COMMAND, TABLES_PATH, tables_source
    stale = f"graphdsl/_parser_tables.py is stale: regenerate it with `{COMMAND}`"
    assert shipped.GRAMMAR_SHA256 == grammar_sha256(_grammar_text()), stale
    assert TABLES_PATH.read_text("utf-8") == tables_source(), stale


def test_regenerating_the_tables_gives_the_same_bytes_under_any_hash_seed():
    code = "from graphdsl.tablegen import tables_source\nimport sys\nsys.stdout.write(tables_source())"
    texts = set()
    for seed in ("1", "2", "12345"):  # lark numbers states in set order, which follows the seed
        out = _python(code, {"PYTHONHASHSEED": seed})
        assert out.returncode == 0, out.stderr
        texts.add(out.stdout)
    assert len(texts) == 1


def _examples():
    return sorted((ROOT / "examples").glob("*.gdsl"))


def test_the_parser_from_the_tables_parses_every_example_as_the_built_one():
    from graphdsl.syntax import _grammar_text, _load_tables, build_parser
    grammar = _grammar_text()
    loaded, built = _load_tables(grammar), build_parser(grammar, strict=False)
    assert loaded is not None and len(_examples()) >= 5
    for path in _examples():
        text = path.read_text("utf-8")
        assert repr(loaded.parse(text)) == repr(built.parse(text)), path.name


def test_the_tables_parser_reports_the_same_syntax_errors(monkeypatch):
    from graphdsl import syntax
    bad = ["x = (1 +\ny = 2\noutput y", "input = 3", "y = a b\noutput y", "z = 1 ^ 2"]
    grammar = syntax._grammar_text()
    found = {}
    for name, parser in (("tables", syntax._load_tables(grammar)), ("built", syntax.build_parser(grammar, False))):
        monkeypatch.setattr(syntax, "get_parser", lambda strict=False, p=parser: p)
        found[name] = []
        for text in bad:
            with pytest.raises(graphdsl.GraphDSLError) as err:
                syntax.parse_program(text)
            found[name].append(str(err.value))
    assert found["tables"] == found["built"]


@pytest.mark.parametrize("field, value", [("LARK_VERSION", "0.0.1"), ("GRAMMAR_SHA256", "0" * 64)])
def test_tables_for_another_grammar_or_lark_are_not_used(field, value):
    from types import SimpleNamespace
    from graphdsl import _parser_tables as shipped
    from graphdsl.syntax import _grammar_text, _load_tables
    tables = SimpleNamespace(**{k: getattr(shipped, k) for k in ("LARK_VERSION", "GRAMMAR_SHA256", "DATA", "MEMO")})
    assert _load_tables(_grammar_text(), tables) is not None
    setattr(tables, field, value)
    assert _load_tables(_grammar_text(), tables) is None


def test_a_stale_table_falls_back_to_building_the_parser():
    code = ("import graphdsl._parser_tables as t\nt.LARK_VERSION = 'other'\n"
            "from graphdsl.syntax import get_parser\nimport graphdsl\n"
            "p = get_parser()\nassert p.source_path != '<deserialized>', p.source_path\n"
            "print(graphdsl.parse('input x : [3]\\ny = sum(x * 2)\\noutput y').outputs)\n")
    out = _python(code)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert out.stdout.strip() == "['y']"


def test_the_ordinary_parser_is_loaded_and_the_strict_one_built():
    from graphdsl.syntax import get_parser
    assert get_parser().source_path == "<deserialized>"
    assert get_parser(strict=True).source_path != "<deserialized>"
    assert get_parser(strict=True).options.strict is True


def test_a_command_writes_no_cache_and_no_pickle(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"),
           "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, "-m", "graphdsl.cli", "check", "examples/d2l_mlp.gdsl"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert list(home.iterdir()) == []
    assert list(ROOT.rglob("*.pickle")) == []


def test_no_module_of_the_package_loads_pickles():
    for path in (ROOT / "graphdsl").rglob("*.py"):
        text = path.read_text("utf-8")
        assert "import pickle" not in text and "cache=" not in text, path


# ---- the light graph ------------------------------------------------------------------------

def test_light_graph_answers_as_networkx_does():
    m = graphdsl.parse(Path(ROOT / "examples" / "rnn.gdsl").read_text())
    light, full = m.built.graph, m.graph
    for n in light:
        assert ancestors(light, n) == nx.ancestors(full, n)
        assert descendants(light, n) == nx.descendants(full, n)
        assert sorted(light.in_edges(n, keys=True)) == sorted(full.in_edges(n, keys=True))
        assert light.in_degree(n) == full.in_degree(n) and light.out_degree(n) == full.out_degree(n)
    assert sorted(light.edges(keys=True)) == sorted(full.edges(keys=True))
    assert light.nodes(data=True) == list(full.nodes(data=True))
    sub = light.subgraph(list(light)[:10])
    assert set(sub) == set(list(light)[:10]) and sub.nodes[list(light)[0]] is light.nodes[list(light)[0]]
    copy = light.copy()
    copy.remove_node(list(copy)[-1])
    assert len(copy) == len(light) - 1 and copy.nodes[list(light)[0]] is not light.nodes[list(light)[0]]


def test_remove_node_drops_its_edges():
    g = MultiDiGraph()
    g.add_edge("a", "b", key=0)
    g.add_edge("b", "c", key=0)
    g.remove_node("b")
    assert list(g) == ["a", "c"] and g.out_degree("a") == 0 and g.in_degree("c") == 0


# ---- the first call and the compiled program ----------------------------------------------------

def _rnn_plan(T):
    m = graphdsl.Model(rnn_source(T))
    v = rnn_values(T)
    first = m.grad(v, of="J", wrt=WRT)
    compiled = next(iter(m._compiled.values()))
    plan = next(iter(compiled.grad_plans.values()))[0]
    return m, v, first, plan


def test_first_call_uses_the_reference_schedule_and_later_calls_the_same_numbers(monkeypatch):
    monkeypatch.undo()  # conftest makes first calls run the compiled program too; not here
    m, v, first, plan = _rnn_plan(6)
    assert plan._program is None  # nothing generated for the first answer
    second = m.grad(v, of="J", wrt=WRT)
    assert plan._program is not None
    for k in WRT:
        assert np.array_equal(first[1][k], second[1][k])
    assert float(first[0]) == float(second[0])


def test_rnn_program_rewrites_are_exact_and_match_hand_written_numpy():
    m, v, _, plan = _rnn_plan(7)
    compiled = next(iter(m._compiled.values()))
    leaves = m.leaf_values(compiled, v)
    got, want = plan.run(leaves), plan.run_reference(leaves)
    for a, b in zip(got, want):
        assert np.array_equal(np.asarray(a), np.asarray(b))  # bit for bit
    code = plan.source_code
    assert "np.subtract(1.0, np.square(" in code  # tanh' from tanh's value, not a second tanh
    assert code.count("np.tanh(") == 7
    assert "_add_reduce(" in code and "[_k" in code  # sum_to and constant indexing inline
    J, grads = m.grad(v, of="J", wrt=WRT)
    J_np, grads_np = numpy_rnn_step(v)  # backpropagation through time by hand
    assert abs(float(J) - J_np) <= 1e-12 * abs(J_np)
    for k in WRT:
        np.testing.assert_allclose(grads[k], grads_np[k], rtol=1e-10, atol=1e-14)


def test_a_scalar_leaf_is_read_as_a_numpy_scalar_with_the_same_numbers():
    m = graphdsl.parse("input x : [3]\ninput s\nconst c = 0.1\ny = sum(x * (s / c) + s * s)\noutput y")
    values = {"x": np.array([1.0, -2.0, 0.5]), "s": 3.0}
    compiled, given = m.compile(values)
    plan = m._plan(compiled, ("y",))
    leaves = m.leaf_values(compiled, given)
    assert "[()]" in plan.source_code
    assert np.array_equal(np.asarray(plan.run(leaves)[0]), np.asarray(plan.run_reference(leaves)[0]))
    values["s"] = 0.0
    leaves = m.leaf_values(*m.compile(values))
    assert np.array_equal(np.asarray(plan.run(leaves)[0]), np.asarray(plan.run_reference(leaves)[0]))


def test_nothing_recurses_per_node_from_parse_to_gradient():
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(400)  # far fewer frames than the 1,200-step chain has nodes
    try:
        m = graphdsl.Model(rnn_source(1200))
        J, _ = m.grad(rnn_values(1200), of="J", wrt=WRT)
    finally:
        sys.setrecursionlimit(limit)
    assert np.isfinite(J)


def test_a_compiled_graph_is_promoted_past_the_young_collections_and_still_freed():
    """gc_paused moves a build's objects to the oldest generation unscanned; dropping the model frees them."""
    import gc
    import weakref


    gc.collect()
    model = graphdsl.Model(rnn_source(200))
    assert gc.get_count()[0] < 2_000  # the build's objects (tens of thousands) are not waiting for a young pass
    model.grad(rnn_values(200), of="J", wrt=WRT)
    assert gc.get_count()[0] < 2_000
    compiled = next(iter(model._compiled.values()))
    graphs = [weakref.ref(model.built.gb), weakref.ref(compiled.built.gb)]
    del model, compiled
    gc.collect()  # a full pass still sees them: nothing is leaked
    assert [ref() for ref in graphs] == [None, None]


def test_the_collector_is_left_as_it_was():
    import gc

    gc.disable()
    try:
        graphdsl.Model(rnn_source(200)).grad(rnn_values(200), of="J", wrt=WRT)
        assert not gc.isenabled()
    finally:
        gc.enable()
    graphdsl.Model(rnn_source(5)).grad(rnn_values(5), of="J", wrt=WRT)
    assert gc.isenabled()


@pytest.mark.parametrize("size", [1, 7, 64, 65, 1000])
def test_the_finite_check_agrees_with_numpy_on_nan_inf_and_overflowing_sums(size):
    from graphdsl.arrays import all_finite

    rng = np.random.default_rng(size)
    cases = [rng.standard_normal(size), np.full(size, 1e308)]  # the second sums to inf, every element finite
    for bad in (np.nan, np.inf, -np.inf):
        a = rng.standard_normal(size)
        a[rng.integers(size)] = bad
        cases.append(a)
    both = np.full(size, 1e308)
    both[0] = np.inf
    cases += [both, np.array(np.nan), np.array(2.0), np.float64(np.inf), 3.0]
    for a in cases:
        assert all_finite((a,)) == bool(np.isfinite(a).all()), a
    for a in cases:  # among others: one running sum over all of them
        for b in cases:
            assert all_finite([cases[0], a, b]) == bool(np.isfinite(a).all() and np.isfinite(b).all())
    assert all_finite([]) and all_finite([np.full(size, 1e308), np.full(size, 1e308)])


def test_leaf_values_without_the_walk_equal_the_walk_when_nothing_is_drawn():
    from graphdsl.values import given_or_fixed, initial_values, known_values

    for path in sorted((ROOT / "examples").glob("*.gdsl")):
        model = graphdsl.load(path)
        data = path.with_suffix(".json")
        values = __import__("json").loads(data.read_text()) if data.exists() else {}
        try:
            compiled, given = model.compile(values)
        except graphdsl.GraphDSLError:  # an example that needs more than its data file (oneliner)
            continue
        fixed = given_or_fixed(compiled.built)
        full = initial_values(compiled.built, given, seed=3)
        everything = {**given, **{k: v for k, v in full.items() if k in fixed[0]}}
        fast = known_values(fixed, everything)
        slow = initial_values(compiled.built, everything, seed=3)
        assert list(fast) == list(slow), path.name
        assert all(np.array_equal(fast[k], slow[k]) and fast[k].dtype == slow[k].dtype for k in slow), path.name
        missing = [k for k in fixed[0] if k not in given]
        if missing:  # something would be drawn: the walk must run
            assert known_values(fixed, given) is None, path.name


def test_objects_the_program_froze_stay_frozen():
    import gc

    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        graphdsl.Model(rnn_source(200)).grad(rnn_values(200), of="J", wrt=WRT)
        assert gc.get_freeze_count() > frozen // 2  # a few frozen objects are freed; thawing would leave none
    finally:
        gc.unfreeze()


def test_argument_order_without_a_sort_is_the_edge_keys_order():
    from graphdsl.graph import arguments

    model = graphdsl.Model("input x : [2]\ninput w : [2]\nJ = sum(x * x + w * x + (w - x) / (x - w))\noutput J\n")
    model.grad({"x": np.array([1.0, 2.0]), "w": np.array([3.0, 5.0])}, of="J", wrt=["x", "w"])
    graphs = [model.built.graph, next(iter(model._compiled.values())).built.graph]
    rnn = graphdsl.Model(rnn_source(3))
    rnn.grad(rnn_values(3), of="J", wrt=WRT)
    graphs.append(next(iter(rnn._compiled.values())).built.graph)
    seen = set()
    for g in graphs:
        for n, data in g.nodes(data=True):
            if data["kind"] == "op":
                by_key = [u for u, _, k in sorted(g.in_edges(n, keys=True), key=lambda e: e[2])]
                assert arguments(g._pred[n]) == by_key, n
                seen.add(len(g._pred[n]))
                if len(by_key) == 2 and by_key[0] == by_key[1]:
                    seen.add("same value twice")
    assert {1, 2, "same value twice"} <= seen


def test_plain_tables_align_and_are_bold_only_on_a_terminal(monkeypatch):
    """The CLI's own table printer (which replaced rich's): columns two spaces apart, no trailing
    spaces, the header bold (ANSI) only when stdout is a terminal and NO_COLOR is unset."""
    import io

    from graphdsl.cli import Output

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    rows = [("W1", "[5, 4]", "min -1, max 2"), ("bias", "[]", "0")]
    plain = io.StringIO()
    monkeypatch.setattr("sys.stdout", plain)
    Output().table(("name", "shape", "value"), rows)
    assert plain.getvalue().splitlines() == ["name  shape   value", "W1    [5, 4]  min -1, max 2", "bias  []      0"]
    tty = Terminal()
    monkeypatch.setattr("sys.stdout", tty)
    monkeypatch.delenv("NO_COLOR", raising=False)
    Output().table(("name",), [("x",)])
    assert tty.getvalue() == "\x1b[1mname\x1b[0m\nx\n"
    monkeypatch.setenv("NO_COLOR", "1")
    tty.seek(0)
    tty.truncate()
    Output().line("ok: m.gdsl", "bold green")
    assert tty.getvalue() == "ok: m.gdsl\n"

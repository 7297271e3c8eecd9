"""Loop programs: `for` loops, sequences, loops in defs, defs that return two values.

One representation gives two texts of the same model: the program as written
(`for t in 1..TL { hs[t] = ... hs[t-1] ... }`) and the same program unrolled by
hand (`hs[1] = ... hs[0] ...`, each iteration's locals renamed), which must
give bit-for-bit the same values and gradients.

The representation: a list of items, each a line template or a Loop. In a
template, `⟨e⟩` is a static index expression (`⟨t-1⟩`, `⟨TL-t⟩`, `⟨t⟩` in
`0.5 ** ⟨t⟩`): written as is in a loop, evaluated in the unrolled text; `«z»`
is a name local to one iteration: `z` in a loop, `z_3` (one suffix per
enclosing loop) unrolled. The expressions inside the bodies come from Gen, so
every builtin can sit in a loop; they may read the state `hs[t-1]`.
"""
from __future__ import annotations

import re

from hypothesis import strategies as st

from fuzz.gen import Gen
from fuzz.program import Program
from fuzz.tables import KINKED_UNARY, SMOOTH_UNARY

INDEX = re.compile(r"⟨([^⟩]*)⟩")
LOCAL = re.compile(r"«(\w+)»")
# every loop form the generator writes: a run that never wrote one fails (test_loop_forms_are_generated)
LOOP_FEATURES = ("loop", "loop_local", "loop_two_back", "loop_reversed_column", "loop_power_of_t",
                 "nested_loop", "loop_in_def", "multi_return", "multi_return_in_loop", "output_element",
                 "element_indexed_after_loop", "loop_gen_expr")


class Loop:
    """`for var in lo..hi { body }`; lo and hi are index expressions (`1`, `TL`, `l`)."""

    def __init__(self, var, lo, hi, body):
        self.var, self.lo, self.hi, self.body = var, lo, hi, body


def render(items, env, unroll, active=(), indent=""):
    """The lines of `items`: as written (unroll=False) or unrolled with the loop variables' values."""
    lines = []
    for item in items:
        if isinstance(item, Loop) and unroll:
            for v in range(_value(item.lo, env), _value(item.hi, env) + 1):
                lines += render(item.body, {**env, item.var: v}, unroll, active + (item.var,), indent)
        elif isinstance(item, Loop):
            lines.append(f"{indent}for {item.var} in {item.lo}..{item.hi} {{")
            lines += render(item.body, env, unroll, active, indent + "    ")
            lines.append(indent + "}")
        elif isinstance(item, tuple):  # a def: (header, body items)
            header, body = item
            lines += [header + " {"] + render(body, env, unroll, (), "    ") + ["}"]
        else:
            lines.append(indent + _line(item, env, unroll, active))
    return lines


def _value(expr, env) -> int:
    return int(eval(expr, {"__builtins__": {}}, env))  # noqa: S307 - our own index arithmetic


def _line(template, env, unroll, active):
    if not unroll:
        return LOCAL.sub(r"\1", INDEX.sub(r"\1", template))
    suffix = "".join(f"_{env[v]}" for v in active)
    return LOCAL.sub(lambda m: m.group(1) + suffix, INDEX.sub(lambda m: str(_value(m.group(1), env)), template))


class LoopGen(Gen):
    """Draws a loop program (rolled and unrolled text). Gen's forms fill the bodies."""

    def __init__(self, draw, mode="any"):
        super().__init__(draw, mode)
        self.zero_sizes = False  # a loop of zero steps is tested in test_loops.py; here every loop runs
        self.budget = draw(st.integers(2, 8))  # Gen's nodes per body expression, times the iterations
        self.nh, self.steps = draw(st.integers(1, 3)), draw(st.integers(1, 4))
        self.dims.update(nh=self.nh, TL=self.steps)
        self.state = (("nh", self.nh),)
        self.items: list = []
        self.loop_defs: list = []

    def act(self, arg):
        table = SMOOTH_UNARY[:-1] + (KINKED_UNARY if self.mode != "smooth" else [])
        return self.pick(table).format(arg)

    def gen_expr(self, reads=()):
        """A Gen expression of the state's shape, which may read the names in `reads` (`hs[⟨t-1⟩]`)."""
        self.assigned += [(r, self.state) for r in reads]
        e = self.expr(self.state, self.draw(st.integers(0, 2)))
        del self.assigned[len(self.assigned) - len(reads):]
        self.features["loop_gen_expr"] += 1
        return e

    def column(self, x, var="t"):
        """A column of X : [nh, TL] for step var = 1..TL: in order, or reversed."""
        if self.chance(0.3):
            self.features["loop_reversed_column"] += 1
            return f"{x}[:, ⟨TL-{var}⟩]"
        return f"{x}[:, ⟨{var}-1⟩]"

    # -- defs
    def cell_def(self, w):
        """A def of three arguments returning two values."""
        name = self.fresh("cell")
        u = self.fresh("u")
        body = [f"{u} = {self.act(f'{w} @ h + x')}",
                f"return {u} * 0.5 + c * {self.num(0.1, 0.9)}, " + self.pick([f"c + {u}", f"{self.act('c')} - {u}"])]
        self.loop_defs.append((f"def {name}(h, c, x)", body))
        return name

    def roll_def(self):
        """A def whose body is a loop over a sequence of its own."""
        name, seq, k = self.fresh("roll"), self.fresh("s"), self.pick(["2", "3", "TL"])
        body = [f"{seq}[0] = x", Loop("j", "1", k, [f"{seq}[⟨j⟩] = {self.act(f'{seq}[⟨j-1⟩]')} * 0.5 + x"]),
                f"return {seq}[{k}]"]
        self.loop_defs.append((f"def {name}(x)", body))
        self.features["loop_in_def"] += 1
        return name

    # -- the main loop and what follows it
    def main_loop(self, w, x):
        """hs[0..TL] (and cs[0..TL] when a cell returns two values); the loop's items."""
        prev = "hs[⟨t-1⟩]"
        init = [f"hs[0] = {self.gen_expr() if self.chance(0.5) else f'{x}[:, 0] * 0.5'}"]
        form = self.pick(["plain", "local", "two_back", "cell", "roll"])
        lo, two = "1", False
        if form == "plain":
            body = [f"hs[⟨t⟩] = {self.act(f'{w} @ {prev} + {self.column(x)}')}"]
        elif form == "local":
            z = self.fresh("z")
            self.features["loop_local"] += 1
            self.features["loop_power_of_t"] += 1
            body = [f"«{z}» = {w} @ {prev} + {self.gen_expr([prev])}",
                    f"hs[⟨t⟩] = {self.act(f'«{z}»')} * 0.5 ** ⟨t⟩ + {prev}"]
        elif form == "two_back" and self.steps >= 2:
            self.features["loop_two_back"] += 1
            lo = "2"
            init.append(f"hs[1] = {self.act('hs[0]')}")
            body = [f"hs[⟨t⟩] = {self.act(f'{prev} * 0.6 - hs[⟨t-2⟩] * 0.3')} + sin(⟨t⟩ * 0.5) * {self.gen_expr()}"]
        elif form == "cell":
            cell = self.cell_def(w)
            two = True
            self.features["multi_return_in_loop"] += 1
            init.append(f"cs[0] = {self.gen_expr()}")
            body = [f"hs[⟨t⟩], cs[⟨t⟩] = {cell}(hs[⟨t-1⟩], cs[⟨t-1⟩], {self.column(x)})"]
        else:
            roll = self.roll_def()
            body = [f"hs[⟨t⟩] = {roll}({prev}) + {self.column(x)} * {self.gen_expr([prev])}"]
        self.features["loop"] += 1
        return init + [Loop("t", lo, "TL", body)], two

    def nested(self):
        """gs[l, t] over two loops: layers read the layer below and their own previous step."""
        self.features["nested_loop"] += 1
        layers = self.pick(["1", "2"])
        return [Loop("t", "0", "TL", ["gs[0, ⟨t⟩] = hs[⟨t⟩]"]),
                Loop("l", "1", layers, ["gs[⟨l⟩, 0] = hs[0] * 0.5 ** ⟨l⟩"]),
                Loop("l", "1", layers, [Loop("t", "1", "TL", [
                    f"gs[⟨l⟩, ⟨t⟩] = {self.act('gs[⟨l-1⟩, ⟨t⟩] * 0.7 + gs[⟨l⟩, ⟨t-1⟩] * 0.4')}"])])], f"sum(gs[{layers}, TL])"

    def program(self) -> Program:
        w = self.declare((("nh", self.nh), ("nh", self.nh)))
        x = self.declare((("nh", self.nh), ("TL", self.steps)))
        items, two = self.main_loop(w, x)
        terms = [self.pick(["sum(hs[TL] ** 2)", f"sum(hs[TL] * {self.gen_expr()})"])]
        if self.chance(0.5):
            self.features["element_indexed_after_loop"] += 1
            terms.append(f"hs[⟨TL-1⟩][{self.pick(['0', '-1', ':1'])}]")
        if two:
            terms.append("sum(cs[TL])")
        if self.chance(0.4):
            more, term = self.nested()
            items += more
            terms.append(term)
        if self.chance(0.4):
            self.features["multi_return"] += 1
            cell = self.cell_def(w)
            items.append(f"a{self.n}, b{self.n} = {cell}(hs[TL], hs[0], {x}[:, 0])")
            terms.append(f"sum(a{self.n} * b{self.n})")
        items.append("L = " + " + ".join(t if t.startswith("sum") else f"sum({t})" for t in terms))
        if self.chance(0.4):
            self.features["output_element"] += 1
            items.append("output hs[TL]")
        items.append("output L")
        return self.finish(items)

    def finish(self, items) -> Program:
        """Both texts of the program; the shared declarations and Gen's defs first."""
        head = self.header()
        env = dict(self.dims)
        texts = []
        for unroll in (False, True):
            defs = render(self.loop_defs, env, unroll)
            texts.append("\n".join(head + self.defs + defs + render(items, env, unroll)) + "\n")
        values, wrt = self.used_leaves(texts[0][len("\n".join(head)):])
        self.features["loop_program"] += 1
        return Program(texts[0], values, "L", wrt, self.features, unrolled=texts[1])




# ---- hostile loop programs: each must give a located diagnostic (exit 1), never an internal error ------

# the error each hostile variant must give (docs/errors.md)
HOSTILE_CODES = {"bound backwards": "E115", "bound not static": "E109", "element read past the end": "E111",
                 "element defined twice": "E110", "one name for two values": "E113",
                 "two values in an expression": "E113", "two names for one value": "E113"}


def hostile_variants(text: str) -> list[tuple[str, str]]:
    """Mutations of a loop program that are errors, each (what, text): a bound backwards or not static, an
    element read past the end or defined twice, a def's number of values not what the call takes."""
    out = [("bound backwards", text.replace("for t in 1..TL", "for t in TL+2..TL", 1)),
           ("bound not static", re.sub(r"for t in (\d)\.\.TL", r"for t in \1..hs[0]", text, count=1)),
           ("element read past the end", text.replace("\nL = ", "\nL = sum(hs[TL+1]) + ", 1)),
           ("element defined twice", text.replace("\nL = ", "\nhs[1] = hs[0]\nL = ", 1)),
           ("one name for two values", text.replace("hs[t], cs[t] = ", "hs[t] = ", 1)),
           ("one name for two values", re.sub(r"a(\d+), b\d+ = ", r"a\1 = ", text, count=1)),
           ("two values in an expression", re.sub(r"(hs\[t\]|a\d+), (cs\[t\]|b\d+) = ", r"\1 = 1 + ", text, count=1)),
           ("two names for one value", text.replace("hs[t] = roll", "hs[t], qs[t] = roll", 1))]
    return [(what, t) for what, t in out if t != text]


@st.composite
def loop_mutants(draw):
    """A loop program made wrong in one of the ways of hostile_variants, with its values."""
    prog = draw(loop_programs("any"))
    what, text = draw(st.sampled_from(hostile_variants(prog.text)))
    return what, text, prog.values


@st.composite
def loop_programs(draw, mode="any"):
    return LoopGen(draw, mode).program()

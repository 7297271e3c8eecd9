"""The parser: grammar, AST shapes and spans, continuation, syntax diagnostics."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphdsl import ast
from graphdsl.diagnostics import GraphDSLError
from graphdsl.syntax import MAX_DEPTH, RESERVED, get_parser, parse_program

FIRST_FILE = """\
# mlp.gdsl: Dive into Deep Learning 5.3, with weight decay
dim d = 4, m = 5, q = 3       # fixed sizes (override: --dim m=16)
dim b                         # free: bound from the data at run time
input x : [d, b]              # columns are examples
input y : [q, b]
param W1 : [m, d] = randn(std=0.1)
param W2 : [q, m] = randn(std=0.1)
const lam = 0.01

def phi(z) = relu(z)
def loss(o, y) = 0.5 * sum((o - y) ** 2) / b

z = W1 @ x; h = phi(z); o = W2 @ h
L = loss(o, y)
s = lam / 2 * (sqnorm(W1) + sqnorm(W2))
J = L + s
output J
"""

ONE_LINER = "z = W1 @ x; h = phi(z); o = W2 @ h; J = loss(o,y) + lam*(norm(W1)+norm(W2))"


# ---- helpers -------------------------------------------------------------------

def show(e) -> str:
    """A compact, fully parenthesised rendering of an expression."""
    if isinstance(e, ast.BinOp):
        return f"({show(e.left)} {e.op} {show(e.right)})"
    if isinstance(e, ast.UnaryOp):
        return f"({e.op}{show(e.operand)})"
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Num):
        return f"{e.value:g}"
    if isinstance(e, ast.Bool):
        return "true" if e.value else "false"
    if isinstance(e, ast.Call):
        args = [show(a) for a in e.args] + [f"{k.name}={show(k.value)}" for k in e.kwargs]
        return f"{e.func}({', '.join(args)})"
    if isinstance(e, ast.Transpose):
        return f"{show(e.operand)}.T"
    if isinstance(e, ast.Index):
        return f"{show(e.value)}[{', '.join(show(i) for i in e.items)}]"
    if isinstance(e, ast.Slice):
        return ":".join("" if p is None else show(p) for p in (e.start, e.stop, e.step))
    if isinstance(e, ast.ArrayLit):
        return f"[{', '.join(show(x) for x in e.elements)}]"
    raise TypeError(e)


def expr(text: str):
    """The expression of `y = <text>`."""
    (stmt,) = parse_program(f"y = {text}").statements
    return stmt.value


def error(text: str):
    """The one diagnostic that parsing `text` raises."""
    with pytest.raises(GraphDSLError) as info:
        parse_program(text, "m.gdsl")
    (diag,) = info.value.diagnostics
    assert info.value.source is not None and info.value.source.name == "m.gdsl"
    return diag


def at(span) -> tuple[int, int]:
    return span.line, span.col


# ---- the grammar ----------------------------------------------------------------

def test_grammar_has_no_conflicts_in_strict_mode():
    # lark's strict mode raises on shift/reduce conflicts and on colliding
    # terminals; it needs the `interegular` package to find the latter.
    pytest.importorskip("interegular", reason="lark's strict mode needs `pip install interegular`")
    parser = get_parser(strict=True)
    assert parser.options.strict


def test_parser_is_built_once():
    assert get_parser() is get_parser()


def test_grammar_file_ships_in_the_package_directory():
    assert (Path(__file__).parent.parent / "grammars" / "graphdsl.lark").is_file()


# ---- expressions: precedence and associativity -----------------------------------

@pytest.mark.parametrize("text, tree", [
    ("-x**2", "(-(x ** 2))"),
    ("2**-1", "(2 ** (-1))"),
    ("2 ** 3 ** 2", "(2 ** (3 ** 2))"),
    ("2 ** -1 ** 2", "(2 ** (-(1 ** 2)))"),
    ("a - b - c", "((a - b) - c)"),
    ("a / b / c", "((a / b) / c)"),
    ("a @ b * c", "((a @ b) * c)"),
    ("a * b @ c", "((a * b) @ c)"),
    ("a + b * c", "(a + (b * c))"),
    ("(a + b) * c", "((a + b) * c)"),
    ("-x * y", "((-x) * y)"),
    ("a * -b + c", "((a * (-b)) + c)"),
    ("--x", "(-(-x))"),
    ("+x", "(+x)"),
    ("a < b + 1", "(a < (b + 1))"),
    ("-a <= b * c ** d", "((-a) <= (b * (c ** d)))"),
    ("a == b", "(a == b)"),
    ("a != b", "(a != b)"),
    ("a >= b", "(a >= b)"),
    ("a > b", "(a > b)"),
    ("(a < b) < c", "((a < b) < c)"),
    ("W.T @ x", "(W.T @ x)"),
    ("W.T.T", "W.T.T"),
    ("f(x).T", "f(x).T"),
    ("-W.T", "(-W.T)"),
    ("x.T ** 2", "(x.T ** 2)"),
])
def test_precedence(text, tree):
    assert show(expr(text)) == tree


def test_unary_minus_binds_looser_than_power_in_nodes():
    e = expr("-x**2")
    assert isinstance(e, ast.UnaryOp) and e.op == "-"
    assert isinstance(e.operand, ast.BinOp) and e.operand.op == "**"
    e = expr("2**-1")
    assert isinstance(e, ast.BinOp) and e.op == "**"
    assert e.left == ast.Num(2.0, e.left.span)
    assert isinstance(e.right, ast.UnaryOp) and e.right.operand.value == 1.0


@pytest.mark.parametrize("text, tree", [
    ("f(x)", "f(x)"),
    ("f()", "f()"),
    ("sum(x, axis=0)", "sum(x, axis=0)"),
    ("sum(x, axis=0, keepdims=true)", "sum(x, axis=0, keepdims=true)"),
    ("f(a, b,)", "f(a, b)"),
    ("randn(std=0.1)", "randn(std=0.1)"),
    ("concat([a, b], axis=0)", "concat([a, b], axis=0)"),
    ("reshape(x, [2, -1])", "reshape(x, [2, (-1)])"),
    ("grad(grad(f, x), x)", "grad(grad(f, x), x)"),
    ("x[0]", "x[0]"),
    ("x[-1]", "x[(-1)]"),
    ("x[:, 1]", "x[::, 1]"),
    ("x[1:3]", "x[1:3:]"),
    ("x[::2]", "x[::2]"),
    ("x[1:]", "x[1::]"),
    ("x[:-1]", "x[:(-1):]"),
    ("x[i + 1, :]", "x[(i + 1), ::]"),
    ("x[0][1]", "x[0][1]"),
    ("f(x)[0].T", "f(x)[0].T"),
    ("[[1, 2], [3, 4]]", "[[1, 2], [3, 4]]"),
    ("[]", "[]"),
    ("[1, 2,]", "[1, 2]"),
    ("true", "true"),
    ("false", "false"),
    ("3", "3"),
    ("0.5", "0.5"),
    ("1e-3", "0.001"),
    (".5", "0.5"),
    ("2.5E+2", "250"),
])
def test_postfix_calls_and_literals(text, tree):
    assert show(expr(text)) == tree


def test_numbers_are_floats():
    assert expr("3") == ast.Num(3.0, expr("3").span)
    assert isinstance(expr("3").value, float)


def test_call_keeps_positional_and_keyword_arguments_apart():
    e = expr("clip(x, lo, hi=1)")
    assert isinstance(e, ast.Call) and e.func == "clip"
    assert [a.id for a in e.args] == ["x", "lo"]
    assert [(k.name, k.value.value) for k in e.kwargs] == [("hi", 1.0)]


def test_slice_nodes():
    e = expr("x[1:3, ::2, 0]")
    s1, s2, i = e.items
    assert isinstance(s1, ast.Slice) and s1.start.value == 1 and s1.stop.value == 3 and s1.step is None
    assert isinstance(s2, ast.Slice) and s2.start is None and s2.stop is None and s2.step.value == 2
    assert isinstance(i, ast.Num)


# ---- spans ------------------------------------------------------------------------

def test_spans_of_a_binop():
    (stmt,) = parse_program("z = W1 @ x").statements
    assert at(stmt.span) == (1, 1) and stmt.span.end_col == 11
    assert at(stmt.name_span) == (1, 1) and stmt.name_span.end_col == 2
    e = stmt.value
    assert (e.span.start, e.span.end) == (4, 10)
    assert at(e.op_span) == (1, 8) and e.op_span.end_col == 9
    assert at(e.left.span) == (1, 5) and e.left.span.end_col == 7


def test_spans_on_later_lines_and_of_calls():
    prog = parse_program("dim n = 2\n\n  y = sum(x, axis=0) ** 2\n")
    assign = prog.statements[1]
    assert at(assign.span) == (3, 3) and at(assign.name_span) == (3, 3)
    call = assign.value.left
    assert at(call.span) == (3, 7) and call.span.end_col == 21
    assert at(call.func_span) == (3, 7) and call.func_span.end_col == 10
    assert at(call.kwargs[0].span) == (3, 14)
    assert at(assign.value.op_span) == (3, 22)


def test_parenthesised_operation_span_covers_the_brackets():
    e = expr("(a + b) * c")
    assert e.left.op == "+" and at(e.left.span) == (1, 5) and e.left.span.end_col == 12
    assert at(e.span) == (1, 5)
    e = expr("((x))")
    assert isinstance(e, ast.Name) and at(e.span) == (1, 7) and e.span.end_col == 8


def test_span_of_an_expression_continued_over_lines():
    (stmt,) = parse_program("y = (a +\n     b)").statements
    assert (stmt.value.span.line, stmt.value.span.end_line) == (1, 2)


def test_def_and_decl_spans():
    prog = parse_program("param W : [m, 2] = randn()\ndef f(a, b: [k, _]) { t = a; return t }")
    decl, fn = prog.statements
    item = decl.items[0]
    assert at(item.name_span) == (1, 7) and at(item.span) == (1, 7) and item.span.end_col == 27
    assert at(decl.span) == (1, 1)
    assert at(fn.name_span) == (2, 5) and at(fn.span) == (2, 1) and fn.span.end_col == 40
    assert at(fn.params[1].span) == (2, 10) and fn.params[1].span.end_col == 19


# ---- declarations and statements ----------------------------------------------------

def test_dims():
    (decl,) = parse_program("dim d = 4, m = 5, q = 3").statements
    assert isinstance(decl, ast.DimDecl)
    assert [(i.name, i.size.value) for i in decl.items] == [("d", 4), ("m", 5), ("q", 3)]
    (free,) = parse_program("dim b").statements
    assert free.items[0].name == "b" and free.items[0].size is None
    (computed,) = parse_program("dim h = 2 * n").statements
    assert show(computed.items[0].size) == "(2 * n)"


@pytest.mark.parametrize("text, kind, name, shape, init", [
    ("input x : [d, b]", "input", "x", [("d", None), ("b", None)], None),
    ("input x", "input", "x", None, None),
    ("input x : [2] = [0.05, 0.10]", "input", "x", [(None, 2)], "[0.05, 0.1]"),
    ("param W1 : [m, d] = randn(std=0.1)", "param", "W1", [("m", None), ("d", None)], "randn(std=0.1)"),
    ("param w = [[0.15, 0.20]]", "param", "w", None, "[[0.15, 0.2]]"),
    ("const lam = 0.01", "const", "lam", None, "0.01"),
    ("input s : []", "input", "s", [], None),
    ("input v : [n, 1]", "input", "v", [("n", None), (None, 1)], None),
    ("input u : [3, _]", "input", "u", [(None, 3), (None, None)], None),
])
def test_var_decls(text, kind, name, shape, init):
    (decl,) = parse_program(text).statements
    assert isinstance(decl, ast.VarDecl) and decl.kind == kind
    (item,) = decl.items
    assert item.name == name
    assert (None if item.shape is None else [(d.name, d.size) for d in item.shape]) == shape
    assert (None if item.init is None else show(item.init)) == init


def test_several_items_of_one_kind_on_a_line():
    (decl,) = parse_program("const b1 = 0.35, b2 = 0.60").statements
    assert [(i.name, i.init.value) for i in decl.items] == [("b1", 0.35), ("b2", 0.60)]
    (decl,) = parse_program("input x : [2], y").statements
    assert [i.name for i in decl.items] == ["x", "y"]


def test_def_with_expression_body():
    (fn,) = parse_program("def loss(o: [k, _], t: [k, _]) = mse(o, t)").statements
    assert isinstance(fn, ast.Def) and fn.name == "loss" and fn.body == ()
    assert [p.name for p in fn.params] == ["o", "t"]
    assert [(d.name, d.size) for d in fn.params[0].shape] == [("k", None), (None, None)]
    assert show(fn.result) == "mse(o, t)"
    (fn,) = parse_program("def one() = 1").statements
    assert fn.params == ()


@pytest.mark.parametrize("text", [
    "def f(a) { t = a * b; return t + 1 }",
    "def f(a) {\n  t = a * b\n  return t + 1\n}",
    "def f(a) {\n  t = a * b;\n\n  return t + 1;\n}",
    "def f(a) { t = a *\n b; return t + 1 }",
    "def f(a) { t = (a\n * b)\n return t + 1 }",
])
def test_def_with_block_body(text):
    (fn,) = parse_program(text).statements
    (t,) = fn.body
    assert isinstance(t, ast.Assign) and t.name == "t" and show(t.value) == "(a * b)"
    assert show(fn.result) == "(t + 1)"


def test_def_block_with_only_return():
    (fn,) = parse_program("def f(a) { return a }").statements
    assert fn.body == () and show(fn.result) == "a"


def test_output():
    (out,) = parse_program("output J, o").statements
    assert isinstance(out, ast.Output) and [n.id for n in out.names] == ["J", "o"]
    assert at(out.names[1].span) == (1, 11)


def test_first_file_of_the_spec():
    prog = parse_program(FIRST_FILE, "mlp.gdsl")
    kinds = [type(s).__name__ for s in prog.statements]
    assert kinds == ["DimDecl", "DimDecl", "VarDecl", "VarDecl", "VarDecl", "VarDecl", "VarDecl",
                     "Def", "Def", "Assign", "Assign", "Assign", "Assign", "Assign", "Assign", "Output"]
    loss = prog.statements[8]
    assert show(loss.result) == "((0.5 * sum(((o - y) ** 2))) / b)"


def test_design_card_one_liner():
    prog = parse_program(ONE_LINER)
    assert [s.name for s in prog.statements] == ["z", "h", "o", "J"]
    assert show(prog.statements[3].value) == "(loss(o, y) + (lam * (norm(W1) + norm(W2))))"


def test_the_design_file_matches_this_copy():
    here = Path(__file__).resolve().parent.parent
    for spec in (here.parent / "shared" / "design" / "language.md",
                 here / "shared" / "design" / "language.md"):
        if spec.exists():
            assert FIRST_FILE.strip() in spec.read_text(encoding="utf-8")
            return
    pytest.skip("the design docs are not beside this checkout")


# ---- lexical matters ----------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "y = f(a,\n      b)",                    # inside ()
    "y = [1,\n 2]",                          # inside []
    "y = a +\n    b",                        # after a binary operator
    "y = a **\n b",
    "y = a <\n b",
    "y =\n  a",                              # after `=`
    "dim d = 1,\n    e = 2",                  # after `,`
    "input x :\n [d]",                       # after `:`
    "y = (\n\n  a  # comment\n\n)",           # blank lines and comments inside ()
])
def test_newline_continuation(text):
    parse_program(text)


def test_continuation_keeps_one_statement():
    prog = parse_program("y = a +\n  b\nz = (c\n  * d)")
    assert [show(s.value) for s in prog.statements] == ["(a + b)", "(c * d)"]


def test_separators_comments_and_blank_lines():
    prog = parse_program("\n\n# a comment\n  a = 1 ; b = 2;\n\n\n;c = 3  # trailing comment")
    assert [s.name for s in prog.statements] == ["a", "b", "c"]


def test_empty_and_comment_only_files():
    assert parse_program("").statements == ()
    assert parse_program("# nothing\n\n").statements == ()
    assert parse_program("   ").statements == ()


def test_crlf_line_endings():
    prog = parse_program("dim n = 2\r\ny = (a +\r\n  b)\r\nz = y # c\r\n")
    assert [type(s).__name__ for s in prog.statements] == ["DimDecl", "Assign", "Assign"]
    assert at(prog.statements[2].span) == (4, 1)


def test_byte_order_mark_is_ignored():
    (stmt,) = parse_program("\ufeffy = 1").statements
    assert stmt.name == "y" and at(stmt.span) == (1, 2)


def test_names_may_contain_reserved_words_and_underscores():
    prog = parse_program("input_ = 1; dims = 2; _x = 3; T = 4; def_2 = 5")
    assert [s.name for s in prog.statements] == ["input_", "dims", "_x", "T", "def_2"]


# ---- syntax errors --------------------------------------------------------------------

# text, code, (line, col), text in the message, text in the help
ERRORS = [
    ("z = W1 x", "E001", (1, 8), "expected an operator between `W1` and `x`", "`W1 @ x`"),
    ("z = W1 @ x h = relu(z)", "E001", (1, 12), "`h`", "separate statements with `;` or a newline"),
    ("z = relu(W1 @ x", "E002", (1, 9), "unclosed `(`", "`)`"),
    ("z = relu(W1 @ x\n", "E002", (1, 9), "unclosed `(`", "`)`"),
    ("z = relu(W1 @ x\nh = relu(z)\nJ = h\n", "E002", (1, 9), "unclosed `(`", "`)`"),
    ("x = [1, 2\ny = 3", "E002", (1, 5), "unclosed `[`", "`]`"),
    ("def f(a) { return a", "E002", (1, 10), "unclosed `{`", "`}`"),
    ("z = (a]", "E002", (1, 7), "mismatched `]`", "close `(` with `)`"),
    ("z = f(a, [b)]", "E002", (1, 12), "mismatched `)`", "close `[` with `]`"),
    ("z = a)", "E002", (1, 6), "unmatched `)`", "remove it"),
    ("J = a\n+ b", "E001", (2, 1), "`+`",
     "a line cannot start with `+`; to continue a statement, end the previous line with the operator"),
    ("J = a\n* b", "E001", (2, 1), "`*`", "a line cannot start with `*`"),
    ("J = a\n  - b", "E001", (2, 3), "`-`", "a line cannot start with `-`"),
    ("y = x^2", "E003", (1, 6), "`^`", "use `**` for powers"),
    ("g = W'", "E003", (1, 6), "`'`", "use `W.T` to transpose"),
    ("m = a && b", "E003", (1, 7), "`&&`", "(a > 0) * (b > 0)"),
    ("m = a || b", "E003", (1, 7), "`||`", "maximum"),
    ("m = !a", "E003", (1, 5), "`!`", "1 - m"),
    ("x := 1", "E003", (1, 3), "`:=`", "assign with `=`"),
    ("y = a // b", "E003", (1, 7), "`//`", "`/` divides"),
    ("y = a \\\n + b", "E003", (1, 7), "`\\`", "continues by itself"),
    ("input = 3", "E005", (1, 1), "`input` is a reserved word", "rename it, e.g. `input_`"),
    ("def = 2", "E005", (1, 1), "`def` is a reserved word", "`def_`"),
    ("z = output + 1", "E005", (1, 5), "`output` is a reserved word", "`output_`"),
    ("param dim : [2]", "E005", (1, 7), "`dim` is a reserved word", "`dim_`"),
    ("true = 1", "E005", (1, 1), "`true` is a reserved word", "`true_`"),
    ("return = 1", "E005", (1, 1), "`return` is a reserved word", "`return_`"),
    ("def f(param) = 1", "E005", (1, 7), "`param` is a reserved word", "`param_`"),
    ("y = $", "E004", (1, 5), "invalid character `$`", ""),
    ("y = 3 € 2", "E004", (1, 7), "invalid character `€`", ""),
    ("y = x²", "E004", (1, 6), "invalid character `²`", "did you mean `** 2`?"),  # \\w, not an identifier
    ("y = a × b", "E004", (1, 7), "`×`", "did you mean `*`?"),
    ("y = a\u00a0+ b", "E004", (1, 6), "U+00A0", ""),
    ('y = "a', "E004", (1, 5), '`"`', "only einsum takes one"),
    ("y = a < b < c", "E001", (1, 11), "comparisons cannot be chained", "(a < b) * (b < c)"),
    ("y = a == b != c", "E001", (1, 12), "comparisons cannot be chained", ""),
    ("y = x.foo", "E001", (1, 7), "unknown attribute `.foo`", "`.T`"),
    ("def f(a) { t = a }", "E001", (1, 18), "must end with `return", ""),
    ("def f(a) { dim k }", "E001", (1, 12), "`dim` inside a `def` block", ""),
    ("return x", "E001", (1, 1), "`return` outside a `def` block", ""),
    ("y = 2x", "E001", (1, 6), "expected an operator between `2` and `x`", "`2 * x`"),
    ("y = f(a b)", "E001", (1, 9), "expected an operator between `a` and `b`", "`,`"),
    ("y = (a) (b)", "E001", (1, 9), "expected an operator between `)` and `(`", ""),
    ("dim d = 4 m = 5", "E001", (1, 11), "`m`", "separate declarations with `,`"),
    ("x = 1 dim d", "E001", (1, 7), "`dim`", "separate statements"),
    ("x = ", "E001", (1, 4), "expected an expression, found the end of the file", ""),
    ("x = 1 +", "E001", (1, 8), "expected an expression, found the end of the file", ""),
    ("y = x +* 2", "E001", (1, 8), "expected an expression, found `*`", ""),
    ("output J o", "E001", (1, 10), "found `o`", ""),
    ("f(x)", "E001", (1, 2), "expected `=`", "a statement is an assignment"),
    ("input x : [2.5]", "E001", (1, 12), "whole number", ""),
    ("input x : [-1]", "E001", (1, 12), "found `-`", ""),
    ("y = f(x, a=1, 2)", "E001", (1, 15), "positional argument cannot follow a keyword", ""),
    ("x = a = 2", "E001", (1, 7), "unexpected `=`", "`==`"),
    ("a = 1; = 2", "E001", (1, 8), "`=`", ""),
    ("y = x.", "E001", (1, 7), "expected `T` (transpose) after `.`", "`W.T`"),
    ("y = x.2", "E001", (1, 6), "expected an operator between `x` and `.2`", ""),
    ("dim", "E001", (1, 4), "expected a name", ""),
    ("y = x[1:2:3:4]", "E001", (1, 12), "found `:`", ""),
]


@pytest.mark.parametrize("text, code, where, message, help", ERRORS, ids=[e[0] for e in ERRORS])
def test_syntax_error(text, code, where, message, help):
    diag = error(text)
    assert diag.code == code
    assert at(diag.span) == where
    assert message in diag.message
    assert help in " ".join(diag.help)


# lark's terminal names, and its own wording, must never reach a user.
INTERNAL = re.compile(r"__ANON|\b(RPAR|LPAR|LSQB|RSQB|LBRACE|RBRACE|NAME|NUMBER|ADD_OP|MUL_OP|"
                      r"COMP_OP|POW|STRING|DIM|_SEP|_EQ|_COMMA|_COLON|_DOT|_RETURN)\b|\$END|Token\(")


@pytest.mark.parametrize("text", [e[0] for e in ERRORS] + [
    "y = (", "y = [", "def f(", "def f(a", "def f(a) {", "def f(a) = ", "input x : [", "input x : [d",
    "y = f(,)", "y = x[]", "param", "output", "output 1", ")", "]", "}", "{", ",", ".", "=", ";;;=",
])
def test_messages_never_show_internal_names(text):
    diag = error(text)
    words = " ".join((diag.message, *diag.help, *diag.notes))
    assert not INTERNAL.search(words), words
    assert diag.span is not None and diag.span.line >= 1 and diag.span.col >= 1


def test_error_text_rendering_points_at_the_token():
    with pytest.raises(GraphDSLError) as info:
        parse_program("dim n = 2\nz = W1 x\n", "model.gdsl")
    text = info.value.format()
    assert text.startswith("model.gdsl:2:8: error[E001]: expected an operator between `W1` and `x`")
    assert "2 | z = W1 x" in text
    assert "  |        ^" in text


def test_unclosed_bracket_notes_where_the_statement_ran_on_to():
    diag = error("z = relu(W1 @ x\nh = relu(z)\n")
    assert any("line 2" in n for n in diag.notes)


def test_missing_comma_across_lines_is_not_an_unclosed_bracket():
    diag = error("y = f(a\n      b)")
    assert diag.code == "E001" and at(diag.span) == (2, 7)


def test_reserved_words_are_the_specified_ones():
    assert set(RESERVED) == {"dim", "input", "param", "const", "def", "return", "output", "true", "false",
                             "for", "in"}  # v2: loops


def test_parsers_may_be_shared_by_threads():
    import threading

    texts = {i: ("z = W1 x" if i % 2 else f"y{i} = (a + b") for i in range(8)}
    found = {}

    def work(i):
        for _ in range(20):
            try:
                parse_program(texts[i])
            except GraphDSLError as err:
                found.setdefault(i, set()).add(err.diagnostics[0].code)

    threads = [threading.Thread(target=work, args=(i,)) for i in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert found == {i: {"E001"} if i % 2 else {"E002"} for i in texts}


# ---- depth and size limits ----------------------------------------------------------

def test_nesting_at_the_limit_parses():
    e = expr("(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH)
    assert show(e) == "x"
    parse_program("y = " + "[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH)


def test_nesting_too_deep_is_a_clean_error():
    diag = error("y = " + "(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1))
    assert diag.code == "E001" and "nested too deeply" in diag.message
    assert at(diag.span) == (1, 5 + MAX_DEPTH)


def test_ten_thousand_nested_parentheses_fail_fast():
    start = time.perf_counter()
    diag = error("y = " + "(" * 10_000 + "x" + ")" * 10_000)
    assert "nested too deeply" in diag.message
    assert time.perf_counter() - start < 1.0
    diag = error("y = f(" * 10_000)
    assert "nested too deeply" in diag.message


def test_very_long_line_parses_without_recursion():
    text = "y = x" + " + x" * 50_000
    assert len(text) > 200_000
    (stmt,) = parse_program(text).statements
    node, depth = stmt.value, 0
    while isinstance(node, ast.BinOp):  # left-nested: ((x + x) + x) + ...
        node, depth = node.left, depth + 1
    assert depth == 50_000


def test_long_runs_of_unary_and_power_operators():
    e = expr("-" * 5000 + "x")
    assert isinstance(e, ast.UnaryOp)
    e = expr(" ** ".join(["x"] * 5000))
    assert isinstance(e, ast.BinOp) and e.op == "**" and isinstance(e.left, ast.Name)


def test_parse_time_grows_linearly():
    # Absolute times depend on the machine and its load; the ratio does not:
    # ten times the statements must take about ten times as long, not a
    # hundred (quadratic work would show here). See the report for timings.
    def text(n):
        return "\n".join(f"h{i} = relu(W @ h{i - 1} + b{i})" for i in range(n))

    def best(src, runs):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            parse_program(src)
            times.append(time.perf_counter() - start)
        return min(times)

    small, large = text(1_000), text(10_000)
    get_parser()
    assert len(parse_program(large).statements) == 10_000
    assert best(large, 2) < 30 * best(small, 5)


# ---- fuzzing: any text gives a Program or a GraphDSLError, nothing else -------------

ALPHABET = st.sampled_from(list("abcxyzWT_019.eE+-*/@<>=!()[]{},:;#'^&|$ \t\n\r")
                           + ["**", "dim ", "input ", "param ", "const ", "def ", "return ",
                              "output ", "true", "false", "\r\n", "€", "\u00a0"])


def _parses_or_reports(text):
    try:
        parse_program(text, "fuzz.gdsl")
    except GraphDSLError as err:
        (diag,) = err.diagnostics
        assert diag.code in {"E001", "E002", "E003", "E004", "E005"}
        assert diag.span is not None
        assert not INTERNAL.search(diag.message)
        err.format()  # renders without raising


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_fuzz_any_text(text):
    _parses_or_reports(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ALPHABET, max_size=60).map("".join))
def test_fuzz_language_characters(text):
    _parses_or_reports(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["y = ", "x", "1", " + ", " * ", " ** ", "-", "(", ")", "[", "]",
                                 ", ", "f(", "a=", ":", ".T", "\n", "; ", "def g(a) ", "{", "}",
                                 "return ", "dim n", " = ", "input v : ", "_"]),
                max_size=40).map("".join))
def test_fuzz_statement_fragments(text):
    _parses_or_reports(text)


@pytest.mark.parametrize("text, where", [
    ("J = L + s *\noutput J", (2, 1)),
    ("a = b /\nc = 2", (2, 3)),
])
def test_a_trailing_operator_runs_into_the_next_statement(text, where):
    diag = error(text)
    assert diag.code == "E001" and at(diag.span) == where
    assert "continues the statement above" in diag.message
    assert any("ends with" in n for n in diag.notes)

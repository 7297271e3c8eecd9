"""Text to AST: the lark LALR parser, its post-lexer and syntax diagnostics.

The grammar lives in grammars/graphdsl.lark. The AST is built by a Transformer
that lark runs at reduce time (``transformer=`` on the LALR parser), so parsing
never recurses, however deep the input. A syntax error stops the parse and is
turned into one Diagnostic (E001-E005) that names what was found and what was
expected in words, never in lark's terminal names.

Speed: lark's own lexers match every run of whitespace as a token of its own,
which was half the parse time. `_Lexer` is lark's basic lexer (same terminals
from the grammar, same validation, including the strict collision check) with
a scanning loop that skips whitespace and comments in the same regex match as
the token after them. No terminal depends on context (strict mode proves the
terminals never collide), so a contextual lexer would give the same tokens.
"""
from __future__ import annotations

import dataclasses
import functools
import gc
import hashlib
import os
import re
import threading
import unicodedata

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput
from lark.lark import PostLex
from lark.lexer import BasicLexer

from . import ast, habits
from .diagnostics import Diagnostic, GraphDSLError, Source, Span

__all__ = ["parse_program", "get_parser", "MAX_DEPTH", "RESERVED"]

MAX_DEPTH = 256  # brackets nested deeper than this are refused (E001)

# Reserved words and the terminals the grammar gives them.
RESERVED = {
    "dim": "DIM", "input": "INPUT", "param": "PARAM", "const": "CONST",
    "def": "DEF", "return": "_RETURN", "output": "OUTPUT",
    "true": "TRUE", "false": "FALSE", "for": "FOR", "in": "IN",
}
_KEYWORD_TYPES = {t: w for w, t in RESERVED.items()}
_STMT_KEYWORDS = {"DIM", "INPUT", "PARAM", "CONST", "DEF", "OUTPUT", "FOR"}

_OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
_CLOSERS = {v: k for k, v in _OPENERS.items()}
_CHAR = {"LPAR": "(", "RPAR": ")", "LSQB": "[", "RSQB": "]", "LBRACE": "{", "RBRACE": "}"}
_BINOPS = {"ADD_OP", "MUL_OP", "POW", "COMP_OP"}
# A newline right after one of these continues the statement.
_CONTINUE = _BINOPS | {"_EQ", "_COMMA", "_COLON", "DOTDOT"}


# ---- loading the parser --------------------------------------------------------

def _grammar_text() -> str:
    """The grammar from the installed package, a source checkout, or (zipped installs) importlib.resources.

    The files are tried first: importing importlib.resources costs a command tens of milliseconds.
    """
    here = os.path.dirname(os.path.realpath(__file__))  # (os.path: pathlib costs a command 4 ms to import)
    for path in (os.path.join(here, "grammars", "graphdsl.lark"), os.path.join(here, "..", "grammars", "graphdsl.lark")):
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                return fh.read()
    from importlib import resources
    return resources.files("graphdsl.grammars").joinpath("graphdsl.lark").read_text("utf-8")


@functools.lru_cache(maxsize=None)
def get_parser(strict: bool = False) -> Lark:
    """The LALR parser, made once per process (per value of `strict`).

    `strict=True` makes lark refuse shift/reduce conflicts and colliding
    terminals; the test suite builds it that way to keep the grammar clean.
    The ordinary parser is loaded from the tables shipped in _parser_tables.py
    when they were generated from this grammar with this lark version: building
    them costs most of a command's start-up. Otherwise, and always for the
    strict parser (so that its checks really run), it is built from the grammar.
    """
    grammar = _grammar_text()
    if not strict:
        shipped = _load_tables(grammar)
        if shipped is not None:
            return shipped
    return build_parser(grammar, strict)


def build_parser(grammar: str, strict: bool) -> Lark:
    """The parser built from the grammar text (computes the LALR tables)."""
    return Lark(
        grammar,
        parser="lalr",
        lexer=_Lexer,
        maybe_placeholders=False,
        transformer=_Builder(),
        postlex=_Continuation(),
        strict=strict,
    )


def _load_tables(grammar: str, tables=None) -> Lark | None:
    """The parser from the generated tables, or None when they are not for this grammar and lark.

    The tables are plain Python data (see graphdsl/tablegen.py, which writes
    them); the objects left out of them are put back here, in a copy, so that
    the module's data stays as generated.
    """
    import lark
    if tables is None:
        from . import _parser_tables as tables
    if (tables.LARK_VERSION != lark.__version__
            or tables.GRAMMAR_SHA256 != grammar_sha256(grammar)):
        return None
    data = dict(tables.DATA)
    data["options"] = {**data["options"], "lexer": _Lexer}
    data["parser"] = {**data["parser"],
                      "lexer_conf": {**data["parser"]["lexer_conf"], "lexer_type": _Lexer}}
    return Lark._load_from_dict(data, tables.MEMO, transformer=_Builder(), postlex=_Continuation())


def grammar_sha256(grammar: str) -> str:
    """The grammar's fingerprint recorded with the shipped tables."""
    return hashlib.sha256(grammar.encode("utf-8")).hexdigest()


def parse_program(text: str, name: str = "<string>") -> ast.Program:
    """Parse a whole model file; raise GraphDSLError at the first syntax error."""
    source = Source(text, name)
    parser = get_parser()
    # A byte-order mark becomes a space, so that offsets stay those of `text`.
    body = " " + text[1:] if text.startswith("\ufeff") else text
    # The parse allocates many small objects that all live on: pausing the
    # cyclic garbage collector meanwhile saves 10-15% and frees nothing less.
    paused = gc.isenabled()
    gc.disable()
    try:
        return parser.parse(body)
    except GraphDSLError as err:
        raise err.with_source(source) from None
    except UnexpectedInput as err:
        state = parser.options.postlex.state()
        raise GraphDSLError(_diagnose(err, body, state), source) from None
    finally:
        if paused:
            gc.enable()


# ---- spans -----------------------------------------------------------------------

def _tspan(t: Token) -> Span:
    return Span(t.start_pos, t.end_pos, t.line, t.column, t.end_line, t.end_column)


def _cover(a, b) -> Span:
    """One span from the start of `a` to the end of `b`, each a Token or a Span.

    Building the span straight from tokens saves making throwaway Spans (a
    frozen dataclass is slow to make; this is on the hot path).
    """
    if isinstance(a, Token):
        start, line, col = a.start_pos, a.line, a.column
    else:
        start, line, col = a.start, a.line, a.col
    if isinstance(b, Token):
        return Span(start, b.end_pos, line, col, b.end_line, b.end_column)
    return Span(start, b.end, line, col, b.end_line, b.end_col)


def _span_at(text: str, pos: int, width: int = 1) -> Span:
    """A span computed from the text (error paths only: this is O(n))."""
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return Span(pos, pos + width, line, col, line, col + width)


def _token_span(t: Token, text: str) -> Span:
    """Where an unexpected token is; a newline is shown as one column wide."""
    if t.type == "$END" or t.start_pos is None:
        return _span_at(text, len(text), 0)
    if t.type == "_SEP" and t.value != ";":
        return _span_at(text, t.start_pos, 1 if t.value else 0)
    return _tspan(t)


def _error(code: str, message: str, span: Span | None, help=(), notes=()) -> Diagnostic:
    return Diagnostic(code, message, span, "error", tuple(notes), tuple(help))


# ---- lexer ---------------------------------------------------------------------

# Token(...) goes through a __new__ that checks for a deprecated keyword, then calls this
# constructor; the lexer makes every token of a file, so it calls the constructor itself.
_token = getattr(Token, "_future_new", Token)


class _Lexer(BasicLexer):
    """lark's basic lexer, scanning with one regex that also skips blanks.

    The terminals, their order and their validation come from BasicLexer;
    only the loop differs: each match consumes the ignored text (whitespace,
    comments) before a token together with the token.
    """

    __future_interface__ = 2  # lex(lexer_state, parser_state), as lark's own lexers

    def __init__(self, conf, comparator=None):
        # Validating the terminals (interegular's collision search) costs over a
        # second per process; the strict build in the test suite does it once.
        conf.skip_validation = conf.skip_validation or not conf.strict
        super().__init__(conf, comparator)
        ignored = [t for t in self.terminals if t.name in self.ignore_types]
        tokens = [t for t in self.terminals if t.name not in self.ignore_types]
        skip = "|".join(t.pattern.to_regexp() for t in ignored)
        alts = "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in tokens)
        self._skip = self.re.compile(f"(?:{skip})*")
        # The blanks are matched inside a lookahead and then consumed by a
        # backreference: an atomic group that works before Python 3.11, so
        # that a comment at the end of the file cannot give back its tail
        # (`# note` must not end as `# not` followed by the name `e`).
        self._token = self.re.compile(f"(?=(?P<_blank>(?:{skip})*))(?P=_blank)(?:{alts})")

    def lex(self, lexer_state, parser_state):
        text = lexer_state.text.text
        pos, end = lexer_state.text.start, lexer_state.text.end
        line, line_start = 1, 0
        match, newline_types = self._token.match, self.newline_types
        while pos < end:
            m = match(text, pos, end)
            if m is None:
                pos, line, line_start = self._blank_to(text, pos, end, line, line_start)
                if pos == end:
                    return
                raise UnexpectedCharacters(text, pos, line, pos - line_start + 1,
                                           allowed=set(), state=parser_state)
            kind = m.lastgroup
            start, stop = m.span(kind)
            if start > pos and text.find("\n", pos, start) >= 0:  # a comment may hold one
                _, line, line_start = self._blank_to(text, pos, start, line, line_start)
            value = text[start:stop]
            first_line, col = line, start - line_start + 1
            if kind in newline_types and "\n" in value:
                line += value.count("\n")
                line_start = start + value.rindex("\n") + 1
            yield _token(kind, value, start, first_line, col, line, stop - line_start + 1, stop)
            pos = stop

    def _blank_to(self, text, pos, end, line, line_start):
        """Skip ignored text from `pos`; returns where it ends and the line there."""
        stop = self._skip.match(text, pos, end).end()
        blank = text[pos:stop]
        if "\n" in blank:
            line += blank.count("\n")
            line_start = pos + blank.rindex("\n") + 1
        return stop, line, line_start


# ---- post-lexer ----------------------------------------------------------------

class _ScanState:
    """What the post-lexer has seen, kept for the error report of one parse."""

    __slots__ = ("stack", "prev", "last")

    def __init__(self):
        self.stack: list[Token] = []  # open brackets, innermost last
        self.prev: Token | None = None  # the token before `last`
        self.last: Token | None = None  # the last token handed to the parser


class _Continuation(PostLex):
    """Newline continuation, reserved words, bracket depth and a final newline.

    A bracket's effect on the stack is applied only when the parser asks for
    the next token, so after a parse error the stack is the one the rejected
    token met. The state is per thread, so parsers may be shared by threads.
    """

    def __init__(self):
        self._local = threading.local()

    def state(self) -> _ScanState:
        return getattr(self._local, "state", None) or _ScanState()

    def process(self, stream):
        st = self._local.state = _ScanState()
        return self._run(stream, st)

    def _run(self, stream, st):
        stack = st.stack
        for tok in stream:
            kind = tok.type
            if kind == "_SEP" and tok.value != ";":  # a newline
                if stack and stack[-1].type != "LBRACE":
                    continue  # inside () or []
                if st.last is not None and st.last.type in _CONTINUE:
                    continue  # after an operator, `=`, `,` or `:`
            elif kind == "NAME":
                if not tok.value.isascii():
                    tok = _unicode_name(tok)
                if tok.value in RESERVED:
                    tok.type = kind = RESERVED[tok.value]  # reserved in every lexer state
            elif kind in _OPENERS and len(stack) >= MAX_DEPTH:
                raise GraphDSLError(_too_deep(tok))
            st.prev, st.last = st.last, tok
            yield tok
            if kind in _OPENERS:
                stack.append(tok)
            elif kind in _CLOSERS and stack:
                stack.pop()
        yield from self._finish(st)

    @staticmethod
    def _finish(st):
        """At the end: refuse an open bracket, else end the last statement."""
        if st.stack:
            raise GraphDSLError(_unclosed(st.stack[-1], None))
        last = st.last
        if last is None:
            end = Token("_SEP", "", 0, 1, 1, 1, 1, 0)
        else:
            end = Token("_SEP", "", last.end_pos, last.end_line, last.end_column,
                        last.end_line, last.end_column, last.end_pos)
        st.prev, st.last = st.last, end
        yield end


def _too_deep(tok: Token) -> Diagnostic:
    return _error(
        "E001", "expression nested too deeply", _tspan(tok),
        help=(f"at most {MAX_DEPTH} levels of brackets are allowed; "
              "name intermediate results with assignments",),
    )


def _unclosed(opener: Token, found: Token | None) -> Diagnostic:
    o = _CHAR[opener.type]
    c = _CHAR[_OPENERS[opener.type]]
    notes = ()
    if found is not None:
        notes = (f"the statement runs on to line {found.line}, where {_found(found)} was found",)
    return _error("E002", f"unclosed `{o}`", _tspan(opener), notes=notes,
                  help=(f"add the missing `{c}`; inside brackets a statement continues onto the next line",))


# ---- AST builder ---------------------------------------------------------------

class _Shape(tuple):
    """A declared shape on its way into DeclItem/Param: (dims, span)."""


class _Builder(Transformer):
    """Parse-tree callbacks, run by lark at reduce time; each returns AST nodes.

    Children arrive as lists: named tokens (kept for their positions) and the
    nodes already built for sub-rules; `_`-terminals are already dropped.
    """

    # -- program and statements

    def start(self, c):
        return ast.Program(tuple(c))

    def assign(self, c):
        *targets, value = c
        if len(targets) > 1:
            return ast.MultiAssign(tuple(_target(t) for t in targets), value,
                                   _cover(_start(targets[0]), value.span))
        name = targets[0]
        if isinstance(name, ast.Index):  # `h[t] = e`
            return ast.ElemAssign(name.value.id, name.items, value, _cover(name.span, value.span),
                                  name.value.span)
        return ast.Assign(name.value, value, _cover(name, value.span), _tspan(name))

    def element(self, c):
        name = ast.Name(c[0].value, _tspan(c[0]))
        return ast.Index(name, tuple(c[2:-1]), _cover(c[0], c[-1]))

    def for_(self, c):
        kw, var, first, last, body, end = c[0], c[1], c[3], c[5], c[7:-1], c[-1]
        return ast.For(var.value, first, last, tuple(body), _cover(kw, end), _tspan(var))

    def dim_decl(self, c):
        return ast.DimDecl(tuple(c[1:]), _cover(c[0], c[-1].span))

    def dim_item(self, c):
        name = c[0]
        size = c[1] if len(c) > 1 else None
        return ast.DimItem(name.value, size, _cover(name, size.span if size else name))

    def var_decl(self, c):
        return ast.VarDecl(c[0].value, tuple(c[1:]), _cover(c[0], c[-1].span))

    def decl_item(self, c):
        name, rest = c[0], c[1:]
        shape = rest.pop(0) if rest and isinstance(rest[0], _Shape) else None
        init = rest[0] if rest else None
        last = init.span if init is not None else shape[1] if shape else name
        return ast.DeclItem(name.value, shape[0] if shape else None, init,
                            _cover(name, last), _tspan(name))

    def shape(self, c):
        return _Shape((tuple(c[1:-1]), _cover(c[0], c[-1])))

    def shape_dim(self, c):
        t = c[0]
        if t.type == "NAME" and t.value == "_":
            return ast.ShapeDim(None, None, _tspan(t))
        if t.type == "NAME":
            return ast.ShapeDim(t.value, None, _tspan(t))
        if not t.value.isdigit():
            raise GraphDSLError(_error(
                "E001", f"a shape size must be a whole number, found `{t.value}`", _tspan(t),
                help=("write sizes as whole numbers, e.g. `[3, n]`",)))
        return ast.ShapeDim(None, int(t.value), _tspan(t))

    def def_(self, c):
        kw, name = c[0], c[1]
        i = 3
        while isinstance(c[i], ast.Param):
            i += 1
        params, rest = tuple(c[3:i]), c[i + 1:]
        if isinstance(rest[0], Token):  # a `{ ... return e }` block, maybe `return a, b`
            inner = rest[1:-1]
            k = 0
            while isinstance(inner[k], _BODY_STATEMENTS):
                k += 1
            body, results, end = tuple(inner[:k]), inner[k:], rest[-1]
        else:
            body, results, end = (), [rest[0]], rest[0].span
        return ast.Def(name.value, params, body, results[0], _cover(kw, end), _tspan(name),
                       tuple(results[1:]))

    def fparam(self, c):
        name = c[0]
        if len(c) == 1:
            return ast.Param(name.value, None, _tspan(name))
        return ast.Param(name.value, c[1][0], _cover(name, c[1][1]))

    def output(self, c):
        names = tuple(_target(t) for t in c[1:])
        return ast.Output(names, _cover(c[0], names[-1].span))

    # -- expressions

    def expr(self, c):
        """Precedence for a flat run [operand, op, operand, ...] with prefix ops.

        Shunting-yard, so no recursion: an operator first applies the ones
        waiting on the stack that bind tighter (or as tight, if it is
        left-associative). A prefix `-` waits with its own precedence, so `**`
        on its right binds first (-x**2 is -(x**2)) and `*` on its right does
        not (-x*y is (-x)*y).
        """
        operands: list = []
        ops: list = []  # (precedence, token, is_prefix)
        compares: set[int] = set()  # ids of the comparisons built here
        want_operand = True
        for item in c:
            if not isinstance(item, Token):
                operands.append(item)
                want_operand = False
            elif want_operand:
                ops.append((_PREFIX_PREC, item, True))
            else:
                prec = _BINARY_PREC[item.type]
                keep = prec == _POW_PREC  # right-associative: leave equals waiting
                while ops and (ops[-1][0] > prec or (ops[-1][0] == prec and not keep)):
                    _apply(ops.pop(), operands, compares)
                ops.append((prec, item, False))
                want_operand = True
        while ops:
            _apply(ops.pop(), operands, compares)
        return operands[0]

    def number(self, c):
        return ast.Num(float(c[0]), _tspan(c[0]))

    def name(self, c):
        return ast.Name(c[0].value, _tspan(c[0]))

    def string(self, c):
        return ast.Str(c[0].value[1:-1], _tspan(c[0]))

    def true(self, c):
        return ast.Bool(True, _tspan(c[0]))

    def false(self, c):
        return ast.Bool(False, _tspan(c[0]))

    def paren(self, c):
        # An operation's span grows to cover its brackets, so that `(a + b) * c`
        # is underlined from the `(`; a name or call keeps its own span, so
        # that "undefined name `x`" underlines just `x`.
        inner = c[1]
        if isinstance(inner, (ast.BinOp, ast.UnaryOp)):
            return dataclasses.replace(inner, span=_cover(c[0], c[2]))
        return inner

    def array(self, c):
        return ast.ArrayLit(tuple(c[1:-1]), _cover(c[0], c[-1]))

    def call(self, c):
        name, items = c[0], c[2:-1]
        args, kwargs = [], []
        for item in items:
            if isinstance(item, ast.Keyword):
                kwargs.append(item)
            elif kwargs:
                raise GraphDSLError(_error(
                    "E001", "a positional argument cannot follow a keyword argument", item.span,
                    help=("put positional arguments first, e.g. `sum(x, axis=0)`",)))
            else:
                args.append(item)
        return ast.Call(name.value, tuple(args), tuple(kwargs), _cover(name, c[-1]), _tspan(name))

    def keyword(self, c):
        name, value = c
        return ast.Keyword(name.value, value, _cover(name, value.span))

    def attribute(self, c):
        operand, attr = c
        if attr.value != "T":
            raise GraphDSLError(_error(
                "E001", f"unknown attribute `.{attr.value}`", _tspan(attr),
                help=("`.T` (transpose) is the only attribute, e.g. `W.T`",)))
        return ast.Transpose(operand, _cover(operand.span, attr))

    def index(self, c):
        value = c[0]
        return ast.Index(value, tuple(c[2:-1]), _cover(value.span, c[-1]))

    def slice(self, c):
        # Children are expressions and the `:` tokens between them; `::2`
        # arrives as [':', ':', 2]. Split at the colons.
        parts: list = [None]
        for item in c:
            if isinstance(item, Token):
                parts.append(None)
            else:
                parts[-1] = item
        parts += [None] * (3 - len(parts))
        first, last = c[0], c[-1]
        span = _cover(first if isinstance(first, Token) else first.span,
                      last if isinstance(last, Token) else last.span)
        return ast.Slice(parts[0], parts[1], parts[2], span)


_TARGET_NEXT = {"_EQ", "_COMMA", "LSQB"}  # what may follow an assignment's target
_BODY_STATEMENTS = (ast.Assign, ast.ElemAssign, ast.MultiAssign, ast.For)


def _target(t):
    """An assignment or output target: a Name, or an Index of a Name (a sequence element)."""
    return ast.Name(t.value, _tspan(t)) if isinstance(t, Token) else t


def _start(t):
    return t if isinstance(t, Token) else t.span


_BINARY_PREC = {"COMP_OP": 1, "ADD_OP": 2, "MUL_OP": 3, "POW": 5}
_PREFIX_PREC = 4
_POW_PREC = 5


def _apply(op, operands: list, compares: set) -> None:
    """Replace the top operand(s) with `op` applied to them."""
    _, tok, prefix = op
    right = operands.pop()
    if prefix:
        operands.append(ast.UnaryOp(tok.value, right, _cover(tok, right.span)))
        return
    left = operands.pop()
    node = ast.BinOp(tok.value, left, right, _cover(left.span, right.span), _tspan(tok))
    if tok.type == "COMP_OP":
        if id(left) in compares or id(right) in compares:
            raise GraphDSLError(_error(
                "E001", "comparisons cannot be chained", _tspan(tok),
                help=("write `(a < b) * (b < c)` for a 0/1 mask of both",)))
        compares.add(id(node))
    operands.append(node)


# ---- syntax diagnostics ----------------------------------------------------------

# How each terminal is described when it is expected.
_WORDS = {
    "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "_SEP": "the end of the statement",
    "$END": "the end of the file", "_EQ": "`=`", "_COMMA": "`,`", "_COLON": "`:`",
    "_DOT": "`.`", "DOTDOT": "`..`", "_RETURN": "`return`", "POW": "`**`", "COMP_OP": "a comparison",
    "ADD_OP": "`+` or `-`", "MUL_OP": "`*`, `/` or `@`",
    **{k: f"`{v}`" for k, v in _CHAR.items()},
    **{k: f"`{v}`" for k, v in _KEYWORD_TYPES.items()},
}
_EXPR_START = {"NAME", "NUMBER", "STRING", "TRUE", "FALSE", "LPAR", "LSQB", "ADD_OP"}
_EXPR_END = {"NAME", "NUMBER", "STRING", "TRUE", "FALSE", "RPAR", "RSQB"}
_POSTFIX = {"_DOT", "LSQB", "LPAR"}
# Characters other languages use, and what graphdsl writes instead.
_LOOKALIKES = {
    "×": "*", "·": "*", "⋅": "*", "∗": "*", "−": "-", "–": "-", "—": "-",
    "÷": "/", "≤": "<=", "≥": ">=", "≠": "!=", "²": "** 2", "³": "** 3",
    "“": None, "”": None, "‘": None, "’": None,
}


def _found(t: Token) -> str:
    if t.type == "$END" or (t.type == "_SEP" and not t.value):
        return "the end of the file"
    if t.type == "_SEP" and t.value != ";":
        return "the end of the line"
    text = t.value if len(t.value) <= 30 else t.value[:27] + "..."
    return f"`{text}`"


def _expected(err) -> set[str]:
    """The terminals the parser could take where it stopped."""
    ps = getattr(err, "state", None)
    try:
        return {k for k in ps.parse_conf.states[ps.position] if k.isupper()}
    except (AttributeError, KeyError, IndexError, TypeError):
        return set(getattr(err, "expected", None) or ())


def _describe(expected: set[str], stack: list) -> str:
    """`expected` in words, most general first: 'an expression or `)`'."""
    # LALR merges the lookaheads of similar states: keep only the closer that
    # the innermost open bracket wants.
    want = _OPENERS[stack[-1].type] if stack else None
    left = {k for k in expected if k not in _CLOSERS or k == want}
    words = []
    if {"NAME", "NUMBER", "RSQB"} <= left and "LPAR" not in left:  # in a shape
        words += ["a dim name", "a size", "`_`"]
        left -= {"NAME", "NUMBER"}
    if {"NAME", "NUMBER"} <= left:
        words.append("an expression")
        left -= _EXPR_START
    if {"DIM", "DEF", "NAME"} <= left:
        words.append("a statement")
        left -= _STMT_KEYWORDS | {"NAME", "_SEP", "$END"}
    if {"MUL_OP", "ADD_OP"} <= left:
        words.append("an operator")
        left -= _BINOPS | _POSTFIX
    words += sorted({_WORDS[k] for k in left if k in _WORDS}, key=_order)
    if not words:
        return "something else"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _order(word: str):
    # Specific tokens first, the end of the statement or file last.
    return (word.startswith("the end"), word)


def _diagnose(err: UnexpectedInput, text: str, st: _ScanState) -> Diagnostic:
    if isinstance(err, UnexpectedCharacters):
        return _bad_character(text, err.pos_in_stream, st.last)
    tok = getattr(err, "token", None)
    if tok is None:  # not raised by the LALR parser; be safe anyway
        return _error("E001", "unexpected end of the file", _span_at(text, len(text), 0))
    # The parser rejected `last` itself, or the lexer stopped before it.
    prev = st.prev if tok is st.last else st.last
    exp = _expected(err)
    for check in _CHECKS:
        diag = check(tok, prev, exp, st.stack, text)
        if diag is not None:
            return diag
    help = ()
    if prev is not None and prev.type == "_DOT":
        return _error("E001", f"expected `T` (transpose) after `.`, found {_found(tok)}",
                      _token_span(tok, text), help=("e.g. `W.T`",))
    if "_EQ" in exp and exp <= _TARGET_NEXT and prev is not None and prev.type in ("NAME", "RSQB"):
        exp = {"_EQ"}  # `f(x)` as a statement: `=` is the useful word, not `,` or `[` (a.b = ..., h[t] = ...)
        help = ("a statement is an assignment `name = expr`, a declaration "
                "(`dim`, `input`, `param`, `const`, `def`), a loop `for` or `output`",)
    return _error("E001", f"expected {_describe(exp, st.stack)}, found {_found(tok)}",
                  _token_span(tok, text), help=help)


def _bad_character(text: str, pos: int, prev: Token | None) -> Diagnostic:
    ch, nxt = text[pos], text[pos + 1:pos + 2]
    span = _span_at(text, pos, 1)
    if ch == "^":
        return _error("E003", "`^` is not an operator in graphdsl", span,
                      help=("use `**` for powers, e.g. `x ** 2`",))
    if ch == "'":
        name = prev.value if prev is not None and prev.type == "NAME" else "W"
        return _error("E003", "`'` is not graphdsl syntax", span,
                      help=(f"use `{name}.T` to transpose",))
    if ch in "&|!":
        return _logical(ch, nxt, text, pos)
    if ch == "\\":
        return _error("E003", "`\\` is not graphdsl syntax", span,
                      help=("a statement continues by itself after an operator, `=` or `,`, "
                            "and inside brackets",))
    return _invalid(ch, span)


def _logical(ch: str, nxt: str, text: str, pos: int) -> Diagnostic:
    op = ch * 2 if nxt == ch else ch
    hint = {
        "&": "graphdsl has no logical operators; multiply 0/1 masks for 'and': `(a > 0) * (b > 0)`",
        "|": "graphdsl has no logical operators; use `maximum(m1, m2)` of 0/1 masks for 'or'",
        "!": "graphdsl has no logical operators; for 'not' of a 0/1 mask write `1 - m` "
             "(`!=` means not equal)",
    }[ch]
    return _error("E003", f"`{op}` is not graphdsl syntax", _span_at(text, pos, len(op)), help=(hint,))


def _unicode_name(tok: Token) -> Token:
    """A non-ASCII name, NFKC-normalised as Python does; refuse what Python refuses.

    The NAME pattern (`\\w`) also takes characters no identifier may hold, such as
    `²`: the first of them is reported as an invalid character, with its hint.
    """
    value = tok.value
    if not value.isidentifier():
        bad = next(i for i in range(len(value)) if not ("a" + value[: i + 1]).isidentifier()
                   or (i == 0 and not value[0].isidentifier()))
        raise GraphDSLError(_invalid(value[bad], Span(tok.start_pos + bad, tok.start_pos + bad + 1, tok.line,
                                                      tok.column + bad, tok.line, tok.column + bad + 1)))
    return Token.new_borrow_pos("NAME", unicodedata.normalize("NFKC", value), tok)


def _invalid(ch: str, span: Span) -> Diagnostic:
    shown = f"`{ch}`" if ch.isprintable() and not ch.isspace() else _codepoint(ch)
    if ch in _LOOKALIKES:
        good = _LOOKALIKES[ch]
        help = f"did you mean `{good}`?" if good else "graphdsl has no strings; names need no quotes"
    elif ch == '"':
        help = 'a string closes on its own line, and only einsum takes one ("ij,jk->ik"); names need no quotes'
    elif ch == "`":
        help = "graphdsl has no strings; names need no quotes"
    elif ch.isalpha() or ch.isdigit():
        help = "names are made of letters, digits and `_`, as in Python"
    else:
        help = "remove it; see the language reference for the characters graphdsl uses"
    return _error("E004", f"invalid character {shown}", span, help=(help,))


def _codepoint(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" ({name.lower()})" if name else "")


# -- checks, tried in order on an unexpected token; each returns a Diagnostic or None.
# Arguments: the token, the token before it, the expected terminals, the open
# brackets (innermost last) and the text.

def _check_brackets(tok, prev, exp, stack, text):
    """A closer that matches no opener, or the wrong one."""
    if tok.type not in _CLOSERS:
        return None
    c = _CHAR[tok.type]
    if not stack:
        return _error("E002", f"unmatched `{c}`", _tspan(tok),
                      help=(f"remove it, or add the `{_CHAR[_CLOSERS[tok.type]]}` it should close",))
    top = stack[-1]
    if _OPENERS[top.type] != tok.type:
        o, want = _CHAR[top.type], _CHAR[_OPENERS[top.type]]
        return _error("E002", f"mismatched `{c}`: the open bracket is `{o}`", _tspan(tok),
                      notes=(f"`{o}` was opened at line {top.line}, col {top.column}",),
                      help=(f"close `{o}` with `{want}`",))
    if tok.type == "RBRACE" and "RBRACE" not in exp and ("_RETURN" in exp or "_SEP" in exp):
        return _error("E001", "a `def` block must end with `return <expression>`", _tspan(tok),
                      help=("e.g. `def f(a) { t = a * a; return t + 1 }`",))
    return None


def _check_unclosed(tok, prev, exp, stack, text):
    """The statement ran past the end of its line because a bracket stayed open."""
    if not stack or stack[-1].type == "LBRACE" or prev is None or tok.type == "$END":
        return None
    if tok.type == "_EQ" and prev.type == "NAME" and _starts_line(text, prev):
        return _unclosed(stack[-1], prev)  # `name = ...` on a new line: a new statement
    if tok.type in _STMT_KEYWORDS and _starts_line(text, tok):
        return _unclosed(stack[-1], tok)
    if tok.line > prev.end_line and not _closed_later(text, tok.start_pos):
        return _unclosed(stack[-1], tok)
    return None  # e.g. a missing comma in a call spread over lines


def _starts_line(text: str, tok: Token) -> bool:
    return not text[text.rfind("\n", 0, tok.start_pos) + 1:tok.start_pos].strip()


_BRACKET_OR_COMMENT = re.compile(r"[()\[\]{}]|#[^\n]*")


def _closed_later(text: str, pos: int) -> bool:
    """Whether a bracket after `pos` closes the innermost one open there."""
    depth = 0
    for m in _BRACKET_OR_COMMENT.finditer(text, pos):
        ch = m.group()
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                return True
    return False


def _check_reserved(tok, prev, exp, stack, text):
    """A reserved word where a name belongs: `input = 3`, `z = output + 1`."""
    if tok.type in _STMT_KEYWORDS and _continued(text, tok):
        return _continued_error(text, tok, tok)
    if tok.type in _KEYWORD_TYPES and "NAME" in exp and tok.type not in exp:
        if tok.type == "_RETURN" and not _assigns_next(text, tok.end_pos):
            return _error("E001", "`return` outside a `def` block", _tspan(tok),
                          help=("`return` ends a block: `def f(a) { t = a * a; return t }`",))
        if "_RETURN" in exp and tok.type in _STMT_KEYWORDS:
            return _error("E001", f"`{tok.value}` inside a `def` block", _tspan(tok),
                          help=("a block holds assignments and loops, and ends with `return <expression>`",))
        if "FOR" in exp and "RBRACE" in exp and tok.type in _STMT_KEYWORDS:
            return _error("E001", f"`{tok.value}` inside a loop body", _tspan(tok),
                          help=("a loop body holds assignments (`h[t] = ...`, `a, b = f(...)`) and loops; "
                                "declare and define before the loop, name outputs after it",))
        return _reserved(tok)
    if (prev is not None and prev.type in _KEYWORD_TYPES and tok.type == "_EQ"
            and "NAME" in exp and prev.type not in ("TRUE", "FALSE")):
        return _reserved(prev)
    return None


def _reserved(tok: Token) -> Diagnostic:
    return _error("E005", f"`{tok.value}` is a reserved word", _tspan(tok),
                  notes=("reserved words: " + " ".join(RESERVED),),
                  help=(f"rename it, e.g. `{tok.value}_`",))


def _check_foreign(tok, prev, exp, stack, text):
    """Operators from other languages that lex as graphdsl tokens: `:=`, `//`."""
    if tok.type == "_COLON" and text.startswith("=", tok.end_pos):
        return _walrus(text, tok.start_pos)
    if (tok.type == "_EQ" and prev is not None and prev.type == "_COLON"
            and prev.end_pos == tok.start_pos):
        return _walrus(text, prev.start_pos)
    if (tok.value == "/" and prev is not None and prev.value == "/"
            and prev.end_pos == tok.start_pos):
        return _error("E003", "`//` is not graphdsl syntax", _span_at(text, prev.start_pos, 2),
                      help=("graphdsl has no floor division; `/` divides",))
    return None


def _walrus(text: str, pos: int) -> Diagnostic:
    return _error("E003", "`:=` is not graphdsl syntax", _span_at(text, pos, 2),
                  help=("assign with `=`, e.g. `x = 1`",))


def _check_line_start(tok, prev, exp, stack, text):
    """`J = a` then `+ b` on the next line: the operator begins a new statement."""
    if not (prev is None or prev.type == "_SEP") or tok.type not in _BINOPS | {"_EQ"}:
        return None
    op = tok.value
    if prev is not None and prev.value == ";":
        return _error("E001", f"unexpected `{op}` at the start of a statement", _tspan(tok),
                      help=(f"a statement cannot start with `{op}`",))
    return _error("E001", f"unexpected `{op}` at the start of a line", _tspan(tok),
                  help=(f"a line cannot start with `{op}`; to continue a statement, "
                        "end the previous line with the operator",))


def _check_operator_misuse(tok, prev, exp, stack, text):
    """`=` inside an expression (chained comparisons are refused in _apply)."""
    if tok.type == "_EQ" and "_EQ" not in exp and "MUL_OP" in exp:
        if prev is not None and prev.type == "NAME" and _continued(text, prev):
            return _continued_error(text, prev, tok)
        return _error("E001", "unexpected `=` in an expression", _tspan(tok),
                      help=("use `==` to compare; an assignment `name = expr` is a statement of its own",))
    if tok.type == "LBRACE" and "LBRACE" not in exp:
        return _error("E001", "unexpected `{`", _tspan(tok),
                      help=("braces only hold the body of a `def`: `def f(a) { t = a * a; return t }`; "
                            "group with `(` and `)`",))
    return None


def _continued(text: str, tok: Token) -> str:
    """The operator, `=`, `,` or `:` ending the line before `tok`, if `tok`
    starts its line and so continues the statement above; else ''."""
    if not _starts_line(text, tok):
        return ""
    for line in reversed(text[:tok.start_pos].split("\n")[:-1]):
        code = line.split("#", 1)[0].rstrip()
        if code:
            return code[-1] if code[-1] in "+-*/@<>=,:" else ""
    return ""


def _continued_error(text: str, start: Token, found: Token) -> Diagnostic:
    end = _continued(text, start)
    return _error("E001", f"unexpected {_found(found)}: this line continues the statement above",
                  _tspan(found),
                  notes=(f"the line above ends with `{end}`, so the statement goes on",),
                  help=(f"remove the trailing `{end}`, or finish the expression it starts",))


def _check_juxtaposed(tok, prev, exp, stack, text):
    """Two operands side by side: a missing operator, or two statements on one line."""
    if prev is None or prev.type not in _EXPR_END:
        return None
    new_stmt = tok.type in _STMT_KEYWORDS or (
        tok.type == "NAME" and _assigns_next(text, tok.end_pos))
    if new_stmt and "_SEP" in exp:
        help = "separate statements with `;` or a newline"
        if _statement_head(text, tok.start_pos) in ("dim", "input", "param", "const", "output"):
            help = "separate declarations with `,`, or statements with `;` or a newline"
        return _error("E001", f"expected `;` or a newline before {_found(tok)}", _tspan(tok), help=(help,))
    if tok.type not in _EXPR_START or "MUL_OP" not in exp:
        return None
    a, b = prev.value, tok.value
    msg = f"expected an operator between `{a}` and `{b}`"
    if prev.type in ("RPAR", "RSQB") or tok.type in ("LPAR", "LSQB"):
        help = f"put an operator such as `@` or `*` between `{a}` and `{b}`"
    elif prev.type == "NUMBER":
        help = f"did you mean `{a} * {b}`?"
    else:
        help = f"did you mean `{a} @ {b}` (matrix product) or `{a} * {b}` (elementwise)?"
    if stack and stack[-1].type != "LBRACE":
        help += " Or a `,` between arguments?"
    return _error("E001", msg, _tspan(tok), help=(help,))


def _statement_head(text: str, pos: int) -> str:
    """The first word of the statement that `pos` is in (on the same line)."""
    segment = text[text.rfind("\n", 0, pos) + 1:pos]
    words = segment[segment.rfind(";") + 1:].split(None, 1)
    return words[0] if words else ""


def _in_loop_header(text: str, pos: int) -> bool:
    """Whether `pos` is in a `for ... in A..B` header, before its `{` (LALR offers `{` after any expression)."""
    segment = text[text.rfind("\n", 0, pos) + 1:pos]
    segment = segment[segment.rfind(";") + 1:]
    head = segment.split(None, 1)
    return bool(head) and head[0] == "for" and "{" not in segment


def _assigns_next(text: str, pos: int) -> bool:
    """Whether the text after `pos` is `=` (not `==`): a new assignment starts."""
    rest = text[pos:pos + 64].lstrip(" \t")
    return rest.startswith("=") and not rest.startswith("==")


def _check_loop_brace(tok, prev, exp, stack, text):
    """`for t in 1..T h[t] = ...`: the body's `{` is missing after the range."""
    if "LBRACE" in exp and tok.type != "LBRACE" and _in_loop_header(text, tok.start_pos):
        return _error("E001", f"expected `{{` to open the loop body, found {_found(tok)}", _token_span(tok, text),
                      help=("a loop is `for t in 1..T { h[t] = ... }`, its `{` on the line of `for`",))
    return None


_CHECKS = (
    _check_loop_brace,
    habits.check_dim_keyword,  # NumPy/PyTorch spellings first: their generic reading misleads
    habits.check_foreign_call,
    _check_brackets,
    _check_foreign,
    _check_unclosed,
    _check_reserved,
    _check_line_start,
    _check_operator_misuse,
    _check_juxtaposed,
)

"""The one diagnostic type, used by every stage, and its two renderings.

A Diagnostic is data: a code, a severity, a message, a source span and
`note:`/`help:` lines. Text rendering is Rust-style (file:line:col, the source
line, carets under the span); JSON rendering is a list of plain dicts.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import NamedTuple

MAX_ERRORS = 20

# One table of codes, so that docs/errors.md and tests have one place to look.
CODES = {
    # syntax (the parser stops at the first)
    "E001": "syntax error",
    "E002": "unclosed bracket",
    "E003": "foreign syntax",
    "E004": "invalid character",
    "E005": "reserved word used as a name",
    "E006": "file cannot be read",
    # names and structure
    "E101": "undefined name",
    "E102": "unknown function",
    "E103": "wrong arguments",
    "E104": "name assigned twice",
    "E105": "recursive def",
    "E106": "invalid output",
    "E107": "invalid declaration",
    "E108": "model too large",
    "E109": "not a static integer",
    "E110": "sequence element defined twice",
    "E111": "sequence element not defined",
    "E112": "sequence index count differs",
    "E113": "wrong number of values",
    "E114": "loop variable assigned",
    "E115": "loop range runs backwards",
    "E116": "operation not supported by the target",
    # shapes
    "E201": "matmul dimensions differ",
    "E202": "shapes do not broadcast",
    "E203": "declared shape disagrees with value",
    "E204": "invalid shape",
    "E205": "window does not fit",
    # run time
    "E301": "value has the wrong shape",
    "E302": "non-finite value",
    "E303": "value too large",
    "E304": "missing value",
    "E305": "cannot evaluate",
    "E306": "bad value file",
    "E307": "gradient check failed",
    "E308": "cannot write output",
    "E309": "renderer unavailable",
    "E310": "not enough memory",
    "E311": "optional library not installed",
    "E312": "device not available",
    # warnings
    "W001": "implicit input",
    "W002": "undefined function",
    "W003": "def shadows a builtin",
    "W004": "unused value",
    "W005": "loop not unrolled yet",
}


class Span(NamedTuple):
    """A half-open range of the source: offsets plus 1-based line/column.

    A NamedTuple rather than a frozen dataclass: the parser makes one per token
    and node, and a tuple is three times cheaper to create.
    """

    start: int
    end: int
    line: int
    col: int
    end_line: int
    end_col: int

    @staticmethod
    def merge(a: "Span | None", b: "Span | None") -> "Span | None":
        if a is None or b is None:
            return a or b
        first, last = (a, b) if a.start <= b.start else (b, a)
        far = a if a.end >= b.end else b
        return Span(first.start, far.end, first.line, first.col, far.end_line, far.end_col)


@dataclass(frozen=True)
class Source:
    """A model's text and the name it is reported under."""

    text: str
    name: str = "<string>"

    def line_text(self, line: int) -> str:
        # Lines end at "\n" only, as the lexer counts them: str.splitlines() would also
        # split at form feeds, U+2028 and the like, and show the wrong line.
        start = 0
        for _ in range(line - 1):
            start = self.text.find("\n", start) + 1
            if start == 0:
                return ""
        end = self.text.find("\n", start)
        return self.text[start: end if end >= 0 else len(self.text)].rstrip("\r")


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    span: Span | None = None
    severity: str = "error"  # "error" | "warning"
    notes: tuple[str, ...] = ()
    help: tuple[str, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def format(self, source: Source | None) -> str:
        message = _clip_words(self.message)
        if source is None:  # not about a model file (a value file, an output path): no location
            head = f"{self.severity}[{self.code}]: {message}"
        else:
            where = f"{_clip_words(source.name)}:{self.span.line}:{self.span.col}" if self.span \
                else _clip_words(source.name)
            head = f"{where}: {self.severity}[{self.code}]: {message}"
        out = [head]
        if self.span and source:
            out.extend(_caret_lines(source, self.span))
        out.extend(f"  = note: {_clip_words(n)}" for n in self.notes)
        out.extend(f"  = help: {_clip_words(h)}" for h in self.help)
        return _visible("\n".join(out))

    def to_json(self, source: Source | None) -> dict:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": _clip_words(self.message),
            "file": source.name if source else None,
            "line": self.span.line if self.span else None,
            "col": self.span.col if self.span else None,
            "end_line": self.span.end_line if self.span else None,
            "end_col": self.span.end_col if self.span else None,
            "notes": [_clip_words(n) for n in self.notes],
            "help": [_clip_words(h) for h in self.help],
        }


def _caret_lines(source: Source, span: Span) -> list[str]:
    text = source.line_text(span.line)
    gutter = str(span.line)
    pad = " " * len(gutter)
    end_col = span.end_col if span.end_line == span.line else len(text) + 1
    # Keep tabs in the lead so the caret lines up with what a terminal shows; a
    # wide character (CJK) takes two columns, a combining one none.
    lead = "".join(_blank(ch) for ch in text[: span.col - 1])
    width = max(1, sum(len(_blank(ch).expandtabs(1)) for ch in text[span.col - 1: end_col - 1]))
    shown = text if len(text) <= 240 else _clip(text, span.col)
    if shown is not text:
        lead, width = " " * min(span.col - 1, 80), min(width, 80)
    return [f"{pad} |", f"{gutter} | {_printable(shown)}", f"{pad} | {lead}{'^' * width}"]


def _blank(ch: str) -> str:
    if ch == "\t":
        return ch
    if unicodedata.combining(ch):
        return ""
    return "  " if unicodedata.east_asian_width(ch) in ("W", "F") else " "


# Control characters (and bidirectional overrides) from a hostile file must not
# reach the terminal: ESC [2J would clear the screen. Each is shown as one
# visible character, so the caret stays in place.
_CONTROL = {c: chr(0x2400 + c) for c in range(0x20) if c not in (0x09, 0x0A)}
_CONTROL.update({0x7F: "\u2421", **{c: "\ufffd" for c in range(0x80, 0xA0)},
                 **{c: "\ufffd" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}})


_LONG_WORD = re.compile(r"\S{121,}")


def _clip_words(text: str) -> str:
    """A name or number of a million characters is shown by its ends and its length."""
    if len(text) <= 120:
        return text
    def clip(m):
        word = m[0]
        core = word.strip("`'\"()[]{},.;:?!")
        if len(core) <= 120:
            return word
        start = word.index(core)
        return f"{word[:start]}{core[:60]}...({len(core):,} characters)...{core[-20:]}{word[start + len(core):]}"

    return _LONG_WORD.sub(clip, text)


def _printable(text: str) -> str:
    return text.translate(_CONTROL)


def _visible(text: str) -> str:
    """The whole diagnostic, control characters made visible (newlines and tabs kept)."""
    return text.translate(_CONTROL)


def _clip(text: str, col: int) -> str:
    """Very long lines (minified input, 1 MB lines) are cut around the column."""
    start = max(0, col - 1 - 80)
    piece = text[start : start + 160]
    return ("..." if start else "") + piece + ("..." if start + 160 < len(text) else "")


class GraphDSLError(ValueError):
    """Raised for any problem in a model or its data; carries the diagnostics.

    A ValueError, as NumPy and PyTorch raise for bad input, so `except ValueError` works."""

    def __init__(self, diagnostics, source: Source | None = None):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        self.source = source
        super().__init__(self.format())

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    def format(self) -> str:
        return "\n\n".join(d.format(self.source) for d in self.diagnostics)

    def to_json(self) -> str:
        return json.dumps({"diagnostics": [d.to_json(self.source) for d in self.diagnostics]})

    def with_source(self, source: Source) -> "GraphDSLError":
        if self.source is None:
            self.source = source
            self.args = (self.format(),)
        return self


@dataclass
class Reporter:
    """Collects diagnostics for one stage; raises once at the end if any are errors."""

    source: Source | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    error_count: int = 0  # kept, not counted: the builder asks after every call

    def error(self, code, message, span=None, notes=(), help=()):
        if self.error_count < MAX_ERRORS:
            self.diagnostics.append(Diagnostic(code, message, span, "error", tuple(notes), tuple(help)))
            self.error_count += 1

    @property
    def full(self) -> bool:
        """No further error would be shown: work spent on one (a did-you-mean) is wasted."""
        return self.error_count >= MAX_ERRORS

    def warn(self, code, message, span=None, notes=(), help=()):
        self.diagnostics.append(Diagnostic(code, message, span, "warning", tuple(notes), tuple(help)))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    def raise_if_errors(self):
        if self.error_count:
            raise GraphDSLError(self.diagnostics, self.source)


def suggest(name: str, candidates) -> str | None:
    """The closest known name, for did-you-mean hints.

    difflib's ratio 2M/(len(a)+len(b)) reaches the 0.6 cutoff only when the shorter
    name is at least 3/7 of the longer, so other lengths are dropped before difflib
    builds a matcher for each candidate.
    """
    import difflib

    candidates = sorted(set(candidates))
    # A case slip first (`ReLU` for `relu`, `w1` for `W1`): difflib scores it too low.
    folded = [c for c in candidates if c.lower() == name.lower()]
    if folded and name not in candidates:
        return folded[0]
    n = len(name)
    near = [c for c in candidates if 3 * max(n, len(c)) <= 7 * min(n, len(c))]
    found = difflib.get_close_matches(name, near, n=1, cutoff=0.6)
    return found[0] if found else None


def fail(code, message, span=None, notes=(), help=(), source=None):
    raise GraphDSLError(Diagnostic(code, message, span, "error", tuple(notes), tuple(help)), source)

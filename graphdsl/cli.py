"""The command line: a thin layer over the Python API that never shows a traceback.

Exit status: 0 success; 1 an error in the model or its data (diagnostics on
stderr); 2 a usage error; 128 + the signal's number when stopped by a signal
(130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP).
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings

from . import __version__
from .commands import modules_for
from .commands.common import UsageError, check_command_outputs
from .diagnostics import Diagnostic, GraphDSLError
from .fileio import dumps
from .textcols import aligned


class Output:
    """Where results (stdout) and diagnostics (stderr) go, as text or JSON.

    Results and diagnostics are plain lines and aligned columns written here (bold only on a
    terminal); rich is imported only by the commands that draw with it (train's progress bar,
    render's summary, --profile): importing it was a seventh of a small `grad` command.
    """

    def __init__(self, error_format: str = "text"):
        self.error_format = error_format
        self._console = None

    @property
    def console(self):
        """A rich Console on stdout, for the commands that draw with rich."""
        if self._console is None:
            self._console = _console(stderr=False)
        return self._console

    def line(self, text: str = "", style: str | None = None) -> None:
        """One line of results on stdout; style ("bold", "bold green") is shown only on a terminal."""
        sys.stdout.write(_styled(text, style, sys.stdout) + "\n")

    def table(self, headers, rows) -> None:
        """Columns aligned on stdout, the header row bold on a terminal (no borders, as `rich` drew them)."""
        head, *body = aligned([headers, *rows])
        self.line(head, "bold")
        for text in body:
            self.line(text)

    def note(self, text: str) -> None:
        """A line on stderr (diagnostics, notes)."""
        sys.stderr.write(text + "\n")

    def json(self, value) -> None:
        sys.stdout.write(dumps(value) + "\n")

    def warn(self, diag: Diagnostic, source) -> None:
        if self.error_format == "text":
            self.note(diag.format(source))

    def fail(self, err: GraphDSLError) -> None:
        if self.error_format == "json":
            sys.stderr.write(err.to_json() + "\n")
            return
        for diag in err.diagnostics:
            self.note(diag.format(err.source) + "\n")
        n = len(err.errors)
        if n > 1:
            self.note(f"{n} errors")


_STYLES = {"bold": "1", "bold green": "1;32"}


def _styled(text: str, style: str | None, stream) -> str:
    """text in ANSI style when the stream is a terminal and NO_COLOR is unset (https://no-color.org)."""
    if not style or not text or os.environ.get("NO_COLOR") or not getattr(stream, "isatty", lambda: False)():
        return text
    return f"\x1b[{_STYLES[style]}m{text}\x1b[0m"


def _console(stderr: bool):
    from rich.console import Console
    # markup off: shapes like [d=4, b=?] are data, not rich markup
    return Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own exit(2) path, with our wording
        self.print_usage(sys.stderr)
        sys.stderr.write(f"graphdsl: error: {message}\n")
        raise SystemExit(2)


def make_parser(argv=None) -> argparse.ArgumentParser:
    """The parser for `argv`: only the subcommand named there is loaded (all when none is named)."""
    parser = _Parser(prog="graphdsl", description="A text language for computation graphs: check, evaluate, "
                                                   "differentiate, render and train a model file.")
    parser.add_argument("--version", action="version", version=f"graphdsl {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--error-format", choices=("text", "json"), default="text",
                        help="how to print diagnostics (default text)")
    common.add_argument("--debug", action="store_true", help="show Python tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    original = sub.add_parser

    def add_parser(name, **kw):  # every subcommand takes the common options
        kw.setdefault("parents", [common])
        return original(name, **kw)

    sub.add_parser = add_parser
    for module in modules_for(_command_in(sys.argv[1:] if argv is None else argv)):
        if hasattr(module, "add_parsers"):
            module.add_parsers(sub)
        else:
            module.add_parser(sub).set_defaults(run=module.run)
    return parser


def _command_in(argv) -> str | None:
    """The subcommand's name: the first word that is not an option (options before it take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv=None) -> int:
    parser = make_parser(argv)
    args = parser.parse_args(argv)
    out = Output(args.error_format)
    try:
        with warnings.catch_warnings():
            if not getattr(args, "debug", False):  # NumPy's RuntimeWarnings are not for users: E302 says it
                warnings.simplefilter("ignore")
            check_command_outputs(args)  # every command's output files, before any work
            return args.run(args, out)
    except GraphDSLError as err:
        out.fail(err)
        return 1
    except UsageError as err:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"graphdsl: error: {err}\n")
        return 2
    except KeyboardInterrupt as err:
        sys.stderr.write("graphdsl: interrupted\n")
        return 128 + getattr(err, "signum", 2)  # 130 for Ctrl-C
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except MemoryError:  # an estimate missed it (NumPy's own temporaries): still the user's to fix, not ours
        out.fail(GraphDSLError(Diagnostic(
            "E310", "the machine ran out of memory while running this model",
            notes=("the estimate made before running was under the budget, so an operator's temporaries "
                   "(or another process) took the rest",),
            help=("use smaller dims or data, or set a lower --max-memory so that such runs are refused early",))))
        return 1
    except RecursionError as err:
        return _internal(err, args, "the model is too large or too deep for this machine")
    except Exception as err:  # a bug of ours: say so plainly, never a traceback unless asked
        return _internal(err, args, "internal error")


def _internal(err, args, what) -> int:
    if getattr(args, "debug", False):
        traceback.print_exc()
    sys.stderr.write(f"graphdsl: {what}: {type(err).__name__}: {str(err)[:300]}\n"
                     "  = help: this is a bug in graphdsl, not in your model; rerun with --debug and report it\n")
    return 3


if __name__ == "__main__":
    sys.exit(main())

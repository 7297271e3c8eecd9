"""graphdsl lsp: the language server, over stdio (needs the `lsp` extra: pygls)."""
from __future__ import annotations

from .common import UsageError

HELP = "run the language server over stdio (diagnostics, hover, go-to-definition) for editors"


def add_parser(sub):
    p = sub.add_parser("lsp", help=HELP, description=HELP + ". Needs pygls: pip install 'graphdsl[lsp]'.")
    p.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default and only transport; "
                                                        "accepted because editor clients pass it)")
    return p


def run(args, out) -> int:
    try:  # imported here: pygls is optional, and only this command needs it
        from ..editors.lsp_server import serve
    except ImportError as err:
        raise UsageError(f"`graphdsl lsp` needs pygls ({err}); install it with: pip install 'graphdsl[lsp]'")
    serve()
    return 0

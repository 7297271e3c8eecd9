"""`graphdsl lsp`: a language server over stdio (pygls).

Diagnostics on open and change (the checker's own, with their spans), hover
with a value's kind and shape, go-to-definition for names, dims and defs. All
answers come from editors.analysis; this module only speaks the protocol.
"""
from __future__ import annotations

from lsprotocol import types as T
from pygls.lsp.server import LanguageServer

from .. import __version__
from .analysis import Analysis, Range

_SEVERITY = {"error": T.DiagnosticSeverity.Error, "warning": T.DiagnosticSeverity.Warning}


def _range(r: Range) -> T.Range:
    return T.Range(start=T.Position(line=r.line, character=r.col),
                   end=T.Position(line=r.end_line, character=r.end_col))


def _diagnostic(d) -> T.Diagnostic:
    extra = [f"note: {n}" for n in d.notes] + [f"help: {h}" for h in d.help]
    return T.Diagnostic(range=_range(Range.of_span(d.span)), message="\n".join([d.message, *extra]),
                        severity=_SEVERITY.get(d.severity, T.DiagnosticSeverity.Error),
                        code=d.code, source="graphdsl")


class GraphDSLServer(LanguageServer):
    def __init__(self):
        super().__init__("graphdsl", __version__)
        self.analyses: dict[str, Analysis] = {}  # uri -> the latest version, checked

    def analyse(self, uri: str) -> Analysis:
        doc = self.workspace.get_text_document(uri)
        analysis = self.analyses[uri] = Analysis(doc.source, doc.path or uri)
        self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(
            uri=uri, version=doc.version, diagnostics=[_diagnostic(d) for d in analysis.diagnostics]))
        return analysis

    def analysis(self, uri: str) -> Analysis:
        return self.analyses.get(uri) or self.analyse(uri)


def make_server() -> GraphDSLServer:
    server = GraphDSLServer()

    @server.feature(T.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: GraphDSLServer, params: T.DidOpenTextDocumentParams):
        ls.analyse(params.text_document.uri)

    @server.feature(T.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: GraphDSLServer, params: T.DidChangeTextDocumentParams):
        ls.analyse(params.text_document.uri)

    @server.feature(T.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: GraphDSLServer, params: T.DidCloseTextDocumentParams):
        ls.analyses.pop(params.text_document.uri, None)

    @server.feature(T.TEXT_DOCUMENT_HOVER)
    def hover(ls: GraphDSLServer, params: T.HoverParams):
        text = ls.analysis(params.text_document.uri).hover(params.position.line, params.position.character)
        return T.Hover(contents=T.MarkupContent(kind=T.MarkupKind.Markdown, value=text)) if text else None

    @server.feature(T.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: GraphDSLServer, params: T.DefinitionParams):
        found = ls.analysis(params.text_document.uri).definition(params.position.line, params.position.character)
        return T.Location(uri=params.text_document.uri, range=_range(found)) if found else None

    return server


def serve() -> None:
    make_server().start_io()

"""Editor support: a Pygments lexer and a language server (`graphdsl lsp`).

Nothing here is imported by the rest of the package; each module imports its
third-party dependency (pygments, pygls) itself, so the core never needs them.
"""

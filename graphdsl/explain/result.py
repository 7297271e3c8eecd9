"""What `Model.explain(...)` returns: the walkthrough in every format, and the player in a notebook."""
from __future__ import annotations

import html as html_lib
from functools import cached_property

from .latex import format_latex
from .markdown import format_markdown
from .text import format_text

FORMATS = ("text", "markdown", "latex", "html")


class Explanation:
    def __init__(self, walk, model, values=None, seed=0):
        self.walk = walk
        self._model, self._values, self._seed = model, values, seed  # the player draws the model with them

    @cached_property
    def text(self) -> str:
        return format_text(self.walk)

    @cached_property
    def markdown(self) -> str:
        return format_markdown(self.walk)

    @cached_property
    def latex(self) -> str:
        return format_latex(self.walk)

    def latex_document(self) -> str:
        return format_latex(self.walk, standalone=True)

    @cached_property
    def html(self) -> str:
        from .player import player_page  # the renderer is imported only when a picture is wanted
        return player_page(self.walk, self._model, self._values, self._seed)

    def format(self, fmt: str = "text", standalone: bool = False) -> str:
        if fmt == "latex":
            return self.latex_document() if standalone else self.latex
        if fmt not in FORMATS:
            raise ValueError(f"unknown format `{fmt}`; use one of {', '.join(FORMATS)}")
        return getattr(self, fmt)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"<Explanation of {self.walk.name}: {len(self.walk.steps)} steps, {self.walk.of} = {self.walk.loss:.9g}>"

    def _repr_html_(self) -> str:
        """The player in a notebook: in a sandboxed iframe, so that its page style, its keys and its
        script stay out of the notebook's own page."""
        return (f'<iframe srcdoc="{html_lib.escape(self.html, quote=True)}" sandbox="allow-scripts" '
                f'title="{html_lib.escape(self.walk.name)}: backpropagation step by step" '
                'style="width: 100%; height: 600px; border: 1px solid #ddd;"></iframe>')

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {"text/html": self._repr_html_(), "text/markdown": self.markdown, "text/plain": self.text}
        if include:
            bundle = {k: v for k, v in bundle.items() if k in include or k == "text/plain"}
        if exclude:
            bundle = {k: v for k, v in bundle.items() if k not in exclude}
        return bundle

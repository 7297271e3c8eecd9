"""The equations in LaTeX (align* blocks), operators written with the op table's templates."""
from __future__ import annotations

import re
from string import Formatter

from ..ops import REGISTRY
from .expr import ATOM_PREC, POSTFIX_PREC, Sym, exact
from .printer import Printer, attr_text, fmt_number, key_text
from .rolled import rolled_rows
from .texnames import tex_escape, tex_name

# An argument between these needs no brackets of its own: \sqrt{x}, \max(a, b), \|x\|.
OPENERS = ("(", "{", "[", ",", "|", r"\|")
CLOSERS = (")", "}", "]", ",", "|", r"\|")


class LatexPrinter(Printer):
    latex = True
    odot = r" \odot "

    def paren(self, s):
        if "\\frac" in s or "\\sum" in s:  # tall contents want tall brackets
            return r"\left(" + s + r"\right)"
        return "(" + s + ")"

    def number(self, v):
        text = fmt_number(v)
        if "e" in text and not text.startswith(("inf", "-inf", "nan")):
            mantissa, exponent = text.split("e")
            return f"{mantissa} \\times 10^{{{int(exponent)}}}"
        return r"\infty" if text == "inf" else r"-\infty" if text == "-inf" else text

    def literal(self, value):
        if value.ndim == 1 and value.size <= 6:
            return r"\left[" + ", ".join(self.number(exact(x)) for x in value) + r"\right]"
        return r"\mathrm{const}_{" + r" \times ".join(map(str, value.shape)) + "}"

    def fraction(self, num, den, single, den_single, only):
        return r"\frac{" + num + "}{" + den + "}"

    def compound(self, a) -> bool:
        return isinstance(a, Sym) and a.adjoint  # a \frac: (\frac{∂J}{∂W})^\top

    def _transpose(self, e):
        if e.attrs:
            return r"\mathrm{transpose}\left(" + self.render(e.args[0]) + r"\right)"
        return _braced(self.postfix(e.args[0])) + r"^\top"

    def _pow(self, e):
        return _braced(self.postfix(e.args[0])) + "^{" + self.render(e.args[1]) + "}"

    def _sum_to(self, e):
        over = dict(e.attrs).get("over")
        if not over:
            return self.render(e.args[0])
        under = ", ".join(o if o.isdigit() else tex_name(o) for o in over)
        return r"\sum_{" + under + "} " + self.render(e.args[0], ATOM_PREC)

    def _index_grad(self, e):
        return r"\mathrm{scatter}_{" + key_text(dict(e.attrs).get("key", ())) + "}" + \
            self.paren(self.render(e.args[0]))

    def function(self, e):
        """A user's def as f(x), an op by its table template, or by name when the template will not do."""
        if e.op.startswith("call:"):
            return self._call(tex_name(e.op[5:]), e.args, e.attrs)
        template = REGISTRY[e.op].latex if e.op in REGISTRY else None
        around = _surroundings(template) if template is not None else {}
        if template is None or e.attrs or any(k not in around for k in range(len(e.args))):
            # static arguments to show, or more arguments than the template has places for (concat)
            head = r"\mathrm{" + tex_escape(e.op.replace("'", "")) + "}" + "'" * e.op.count("'")
            return self._call(head, e.args, e.attrs)
        return template.format(*(self._slot(a, *around[k]) for k, a in enumerate(e.args)))

    def _call(self, head, args, attrs):
        inner = [self.render(a) for a in args] + [rf"\mathrm{{{tex_escape(k)}}}={tex_escape(attr_text(v))}"
                                                  for k, v in attrs]
        return head + self.paren(", ".join(inner))

    def _slot(self, a, before, after):
        """An argument in a template: bracketed unless the template encloses it."""
        enclosed = before.rstrip().endswith(OPENERS) and after.lstrip().startswith(CLOSERS)
        return self.render(a) if enclosed else self.render(a, POSTFIX_PREC)

    FORMS = {**Printer.FORMS, "transpose": _transpose, "pow": _pow, "sum_to": _sum_to, "index_grad": _index_grad}


def _surroundings(template) -> dict:
    """{argument index: (the text before it, the text after it)} in a str.format template,
    the text running to the neighbouring arguments, with braces unescaped."""
    texts, fields = [""], []
    for literal, field, _, _ in Formatter().parse(template):  # literals come split at escaped braces
        texts[-1] += literal
        if field is not None:
            fields.append(int(field))
            texts.append("")
    around: dict = {}
    for k, field in enumerate(fields):
        around.setdefault(field, (texts[k], texts[k + 1]))
    return around


def _braced(s):
    """A base for ^ in braces unless it is one symbol (x, \\alpha, W_{1})."""
    return s if re.fullmatch(r"\\?[A-Za-z]+(_\{[^{}]*\})?", s) else "{" + s + "}"


def latex_block(eqs, env="align*", roller=None) -> list:
    """An align block; with a Roller, a loop's equations once, under `for t = 1, ..., T:`."""
    rows = []
    for row in rolled_rows(eqs, LatexPrinter(), roller):
        pad = r"\quad " * row.depth
        if row.left is None:
            values = row.note.replace("..", r", \ldots, ").replace("…", r"\ldots")
            rows.append(rf"  &{pad}\mathrm{{for}}\ {tex_name(row.right)} = {values}:")
        else:
            note = rf" \quad ({_note(row.note)})" if row.note else ""
            rows.append(f"  {pad}{row.left} &= {row.right}{note}")
    return [rf"\begin{{{env}}}"] + [r + r" \\" for r in rows[:-1]] + rows[-1:] + [rf"\end{{{env}}}"]


def _note(note: str) -> str:
    """`t = 4, 3, …, 2` (or `l = 2, t = 3, 2`) in LaTeX."""
    return re.sub(r"(\w+) = ", lambda m: tex_name(m.group(1)) + " = ", note).replace("…", r"\ldots")


def format_latex(eqs, standalone=False) -> str:
    lines = []
    if standalone:
        lines += [r"\documentclass{article}", r"\usepackage{amsmath}", r"\begin{document}", ""]
    lines += [f"% equations of {_comment(eqs.name)}", "% forward"]
    lines += latex_block(eqs.forward, roller=eqs.roller(backward=False)) if eqs.forward else []
    if eqs.backward:
        lines += ["", f"% backward (reverse mode, d{_comment(eqs.of)}/dv, last to first)"]
        lines += latex_block(eqs.backward, roller=eqs.roller(backward=True))
    if standalone:
        lines += ["", r"\end{document}"]
    return "\n".join(lines) + "\n"


def _comment(s) -> str:
    """Text for a % comment, which ends at a newline."""
    return str(s).replace("\n", " ")

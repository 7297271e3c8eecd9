"""Names in LaTeX: W1 -> W_{1}, lam and λ -> \\lambda, logits -> \\mathrm{logits}, escaped specials."""
from __future__ import annotations

import re
import unicodedata

GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda",
         "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
         "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}
# the short spellings models use for Greek letters (D2L writes lam for lambda)
ALIASES = {"lam": "lambda", "lmbda": "lambda", "eps": "epsilon"}


def _greek_word(ch: str) -> str | None:
    """`λ` -> `lambda`, `Σ` -> `Sigma`: the LaTeX word for a Greek letter, from its Unicode name."""
    parts = unicodedata.name(ch, "").split()
    if len(parts) != 4 or parts[:2] != ["GREEK", "SMALL" if ch.islower() else "CAPITAL"] or parts[2] != "LETTER":
        return None
    word = parts[3].lower().replace("lamda", "lambda")  # Unicode spells it LAMDA
    word = word if ch.islower() else word.capitalize()
    return word if word in GREEK else None


_SPECIALS = {"#": r"\#", "_": r"\_", "%": r"\%", "&": r"\&", "$": r"\$", "{": r"\{", "}": r"\}",
             "^": r"\hat{}", "~": r"\sim{}", "\\": r"\backslash{}"}


def tex_escape(s: str) -> str:
    return "".join(_SPECIALS.get(c, c) for c in s)


_ELEMENT = re.compile(r"([^\W\d]\w*)\[(-?\d+(?:,-?\d+)*)\]")


def tex_name(name: str) -> str:
    """W1 -> W_{1}, x_t -> x_{t}, alpha -> \\alpha, lam -> \\lambda, logits -> \\mathrm{logits}."""
    if "." in name:  # a def's local (f#1.t): not a mathematical name
        return tex_escape(name)
    element = _ELEMENT.fullmatch(name)
    if element:  # a sequence's element as Goodfellow et al. write it: h[3] -> h^{(3)} (h3 is h_{3})
        return tex_name(element.group(1)) + "^{(" + element.group(2) + ")}"
    base, _, sub = name.partition("_")
    digits = ""
    trailing_digits = re.fullmatch(r"([^\W\d_]+?)(\d+)", base)
    if trailing_digits and not sub:
        base, digits = trailing_digits.group(1), trailing_digits.group(2)
    head = _tex_head(base)
    if sub:
        return head + "_{" + tex_name(sub) + "}"
    if digits:
        return head + "_{" + digits + "}"
    return head


def _tex_head(base: str) -> str:
    word = ALIASES.get(base, base)
    if len(base) == 1 and not base.isascii():
        word = _greek_word(base) or base
    if word in GREEK:
        return "\\" + word
    if len(base) == 1:
        return base
    return r"\mathrm{" + tex_escape(base) + "}"

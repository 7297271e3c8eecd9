"""The equations a textbook writes by hand, read off the graph.

Forward equations are the model's named values in topological order; backward
equations are the adjoints that reverse mode built into the same graph
(graph.graph["adjoints"][of]), in reverse topological order. Anonymous
intermediates are inlined into expressions, named values and adjoints of named
values are referred to by name (dJ/dW1), and products are simplified (scalar
factors collected, `* 1` and `+ 0` dropped, transposes and broadcasts folded),
so that for Dive into Deep Learning's MLP the printout reads like section 5.3.3:

    dJ/dW2 = dJ/do hᵀ + lam W2        dJ/dz = dJ/dh ⊙ relu'(z)

Modules, in the order the work flows:

    expr       expressions and the simplifying constructors
    nodes      small graph queries
    texnames   names in LaTeX
    names      which nodes are referred to by name
    convert    graph nodes to expressions, auxiliaries for long ones
    forward, backward, local   the three kinds of equations
    derive     `equations(model)`: the entry point
    equation   Equation and Equations (the results)
    printer, text, latex, markdown   the renderings
"""
from .derive import equations
from .equation import Equation, Equations
from .latex import LatexPrinter, format_latex
from .markdown import format_markdown
from .text import TextPrinter, format_text
from .texnames import tex_escape, tex_name

__all__ = ["equations", "Equation", "Equations", "format_text", "format_latex", "format_markdown",
           "TextPrinter", "LatexPrinter", "tex_name", "tex_escape"]

"""graphdsl: a text language for computation graphs.

Parse a model, check its shapes, evaluate it with NumPy, differentiate it by
reverse mode (gradients are graph nodes too), render it, and train it.
"""
from .api import Model, load, parse
from .diagnostics import Diagnostic, GraphDSLError

__all__ = ["Model", "load", "parse", "GraphDSLError", "Diagnostic"]
__version__ = "0.1.0"

"""Gen: the program generator, GenCore and its families of forms put together; the strategy `programs`."""
from __future__ import annotations

from hypothesis import strategies as st

from fuzz.core import GenCore
from fuzz.forms_arith import ArithmeticForms
from fuzz.forms_grad import GradForms
from fuzz.forms_shape import ShapeForms
from fuzz.forms_v2 import V2Forms


class Gen(ArithmeticForms, ShapeForms, V2Forms, GradForms, GenCore):
    """Draws a valid program. `mode`: "smooth" (differentiable everywhere), "kinked" or "any"."""


@st.composite
def programs(draw, mode="any"):
    return Gen(draw, mode).program()

"""Colours and shapes: one table keyed by role, a colour-blind-safe palette, the legend.

The palette is Okabe and Ito's (2008), safe for the common colour-vision
deficiencies. Colour is never the only cue: each role also has its own border
(bold for params, dashed for consts, double for outputs), and the role is
written on the node.
"""
from __future__ import annotations

# Okabe-Ito
ORANGE = "#E69F00"
SKY = "#56B4E9"
GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
BLACK = "#000000"
GREY = "#999999"

FONT = "Helvetica"
MONO = "Courier"
TEXT = "#1A1A1A"
MUTED = "#555555"
EDGE = "#4D4D4D"
BAD = VERMILLION  # NaN / Inf
GRAD_TEXT = "#8F3F00"  # a darker vermillion, readable on every fill

# role -> node attributes (box shapes; the fill is a light tint of the border colour)
ROLE_STYLE = {
    "input": {"color": SKY, "fillcolor": "#DDF0FB", "style": "filled", "penwidth": "1.6"},
    "param": {"color": ORANGE, "fillcolor": "#FBEBC7", "style": "filled,bold", "penwidth": "2.2"},
    "const": {"color": GREY, "fillcolor": "#F2F2F2", "style": "filled,dashed", "penwidth": "1.2"},
    "intermediate": {"color": BLUE, "fillcolor": "#FFFFFF", "style": "filled", "penwidth": "1.2"},
    "output": {"color": PURPLE, "fillcolor": "#F6E1EC", "style": "filled,bold", "penwidth": "2.2",
               "peripheries": "2"},
}
ROLE_LABEL = {"input": "input", "param": "param", "const": "const", "intermediate": "intermediate",
              "output": "output / loss"}

OP_STYLE = {"shape": "circle", "style": "filled", "fillcolor": "#EDEDED", "color": "#333333",
            "penwidth": "1.0", "margin": "0.06", "fontsize": "11"}
OPAQUE_STYLE = {"shape": "circle", "style": "filled,dashed", "fillcolor": "#FFFFFF", "color": "#333333",
                "penwidth": "1.2", "margin": "0.06", "fontsize": "11"}
CALL_STYLE = {"style": "filled", "fillcolor": "#E3F2EC", "color": GREEN, "penwidth": "1.6"}
LITERAL_STYLE = {"shape": "box", "style": "filled,dashed", "fillcolor": "#F2F2F2", "color": GREY,
                 "penwidth": "1.0", "fontsize": "10", "margin": "0.04,0.02", "height": "0.3", "width": "0.3"}

# backward view: adjoint variables keep their primal's role colour as the border
ADJOINT_FILL = "#FBE3D6"
BACKWARD_VAR = {"color": VERMILLION, "fillcolor": "#FFFFFF", "style": "filled", "penwidth": "1.2"}
BACKWARD_OP = {"shape": "circle", "style": "filled", "fillcolor": "#FBE3D6", "color": VERMILLION,
               "penwidth": "1.0", "margin": "0.06", "fontsize": "11"}
GHOST_STYLE = {"color": "#AAAAAA", "fillcolor": "#FAFAFA", "style": "filled,dashed", "penwidth": "1.0",
               "fontcolor": "#666666"}

FORWARD_EDGE = {"color": EDGE}
CHAIN_EDGE = {"weight": "3"}  # heavier than a param's edge: the computation runs straight down
GRADIENT_EDGE = {"color": VERMILLION, "style": "dashed", "constraint": "false", "arrowhead": "vee",
                 "penwidth": "1.1"}
BACKWARD_EDGE = {"color": VERMILLION, "weight": "4"}  # heavier: the chain of adjoints stays straight
GHOST_EDGE = {"color": "#AAAAAA", "style": "dashed", "weight": "0"}  # read, not part of the chain: no pull

CLUSTER_STYLE = {"style": "rounded,dashed", "color": GREEN, "fontcolor": GREEN, "fontname": MONO,
                 "fontsize": "10", "penwidth": "1.2", "margin": "6"}
# a rolled loop (one iteration drawn, `×N`) and one iteration of an unrolled loop
LOOP_STYLE = {"style": "rounded,bold", "color": BLUE, "fontcolor": BLUE, "fontname": MONO, "fontsize": "11",
              "penwidth": "2.0", "margin": "8"}
ITER_STYLE = {"style": "rounded", "color": SKY, "fontcolor": BLUE, "fontname": MONO, "fontsize": "10",
              "penwidth": "1.2", "margin": "6"}
# the state an iteration hands the next (h[t-1] -> h[t]): drawn back into the block, not pulling the layout
CARRIED_EDGE = {"color": BLUE, "style": "dashed", "constraint": "false", "penwidth": "1.6", "fontcolor": BLUE,
                "fontname": MONO, "fontsize": "10"}
ITERATION_EDGE = {"fontcolor": BLUE, "fontname": MONO, "fontsize": "10"}  # holds in some iterations only

# --heat: ColorBrewer YlOrBr, 7 classes (colour-blind safe, sequential); dark classes take white text
HEAT = ("#FFFFD4", "#FEE391", "#FEC44F", "#FE9929", "#EC7014", "#CC4C02", "#8C2D04")
HEAT_DARK = 5  # classes from here on are dark
NO_GRAD_FILL = "#FFFFFF"


def heat_class(log_norm: float, lo: float, hi: float) -> int:
    if hi <= lo:
        return len(HEAT) - 1
    k = int((log_norm - lo) / (hi - lo) * len(HEAT))
    return min(max(k, 0), len(HEAT) - 1)

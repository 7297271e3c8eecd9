"""The forms the generator formats: elementwise functions, binary operations, reductions, grad bodies."""
# axis is written in a declaration (a dim name, or a number).

SMOOTH_UNARY = [
    "tanh({})", "sigmoid({})", "sin({})", "cos({})", "softplus({})", "log_sigmoid({})", "gelu({})",
    "square({})", "({}) ** 2", "({}) ** 3", "exp(tanh({}))", "expm1(tanh({}))", "log1p(square({}))",
    "log(1 + square({}))", "sqrt(1 + square({}))", "reciprocal(2 + sin({}))", "exp(-square({}))",
    "elu({}, alpha=1)", "-({})", "+({})",
    # v2 elementwise, their arguments kept inside the domain (|x| < 1 for asin/acos, x > 0 for the logs)
    "tan(tanh({}))", "atan({})", "asin(0.9 * tanh({}))", "acos(0.9 * tanh({}))", "sinh(tanh({}))",
    "cosh(tanh({}))", "erf({})", "log2(1 + square({}))", "log10(2 + sin({}))",
    "stop_gradient_free({})",
]
KINKED_UNARY = ["relu({})", "abs({})", "leaky_relu({}, alpha=0.1)", "leaky_relu({})", "sign({}) * 0.5",
                "floor({})", "ceil({})", "round({})"]  # steps: gradient zero, jumps at integers (halves)
UNSAFE_UNARY = ["log({})", "sqrt({})", "reciprocal({})", "exp({})", "({}) ** 0.5", "({}) ** -1", "sign({})",
                "stop_gradient({})", "exp(exp({}))", "elu({}, alpha=0.5)",
                "tan({})", "asin({})", "acos({})", "log2({})", "log10({})", "sinh({})", "cosh({})"]
# Scalars an in-language grad differentiates: their reverse-mode rules' own operators (sum_to, count,
# extreme_mask, min_mask, ...) are then differentiated in turn.
GRAD_BODIES = ["sum(tanh({x}) * {e})", "sum(({x}) ** 3 * {e})", "sqnorm(sin({x}) * {e})", "mean(sigmoid({x} * {e}))",
               "logsumexp({x} * {e})", "sum(softplus({x}) * {e})", "mse({x}, {e})", "bce_with_logits({x}, sigmoid({e}))",
               "sum({x} * {big})"]
GRAD_BODIES_KINKED = ["max({x} * {e})", "sum(minimum({x}, {e}))", "sum(maximum({x}, {e}) * {e})"]
# Activations inside an in-language grad: their derivatives (gelu', relu', ...) are operators of their own.
GRAD_INNER = ["gelu({})", "sigmoid({})", "tanh({})", "softplus({})", "log_sigmoid({})", "sin({})", "exp({})"]
GRAD_INNER_KINKED = ["relu({})", "leaky_relu({}, alpha=0.1)", "elu({}, alpha=0.5)", "abs({})", "elu({})"]
SMOOTH_BINARY = ["{} + {}", "{} - {}", "{} * {}", "{} / (1.5 + sin({}))", "(2 + sin({})) ** tanh({})"]
KINKED_BINARY = ["maximum({}, {})", "minimum({}, {})", "({} > {}) * 1.5", "({} <= {}) + 0", "({} < {}) * -1",
                 "({} >= {}) * 2", "({} != {}) * 0.5", "({} == {}) - 1"]
UNSAFE_BINARY = ["{} / {}", "{} ** {}", "({} == {}) * 2", "({} != {})"]
SMOOTH_REDUCE = ["sum", "mean", "logsumexp", "var", "norm", "sqnorm"]
KINKED_REDUCE = ["max", "min"]
KINK_OPS = {"relu", "abs", "leaky_relu", "maximum", "minimum", "max", "min", "clip", "gt", "ge", "lt", "le",
            "eq", "ne", "sign", "where", "elu", "floor", "ceil", "round", "argmax", "argmin", "max_pool2d"}

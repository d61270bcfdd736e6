"""The op registry: importing this package fills ``symgrad.graph.registry.OPS``.

One module per family; each op's meaning, shape rule, derivative rule, NumPy
meaning and code hook sit in one entry.
"""
from symgrad.ops import elementwise, linalg, losses, reductions, selection  # noqa: F401
from symgrad.ops.api import (abs, binary_cross_entropy, clip, cross_entropy, exp, hinge, l1, l2,
                             log, log_softmax, logsumexp, max, maximum, mean, minimum, mse, onehot,
                             relu, sigmoid, softmax, softplus, sqrt, sse, sum, take, tanh, where)
from symgrad.ops.library import (cos, elu, erf, expm1, gelu, huber, leaky_relu, log1p,
                                 silu, sin, square)
from symgrad.graph.registry import OPS as _OPS

# The entries symgrad itself defines (their code is symgrad's): compile's graph key
# (symgrad.codegen.graph_key) names these ops by name alone.
BUILTIN_OPS = dict(_OPS)

__all__ = ["clip", "maximum", "minimum", "onehot", "take", "where",
           "cos", "elu", "erf", "expm1", "gelu", "huber", "leaky_relu",
           "log1p", "silu", "sin", "square",
           "abs", "binary_cross_entropy", "cross_entropy", "exp", "hinge", "l1", "l2", "log",
           "log_softmax", "logsumexp", "max", "mean", "mse", "relu", "sigmoid", "softmax",
           "softplus", "sqrt", "sse", "sum", "tanh"]

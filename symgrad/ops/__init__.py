"""The op registry: importing this package fills ``symgrad.graph.registry.OPS``.

One module per family; each op's meaning, shape rule, derivative rule, NumPy
meaning and code hook sit in one entry.
"""
from symgrad.ops import elementwise, linalg, losses, reductions  # noqa: F401  (registration)
from symgrad.ops.api import (abs, binary_cross_entropy, cross_entropy, exp, hinge, l1, l2, log,
                             log_softmax, logsumexp, max, mean, mse, relu, sigmoid, softmax,
                             softplus, sqrt, sse, sum, tanh)

__all__ = ["abs", "binary_cross_entropy", "cross_entropy", "exp", "hinge", "l1", "l2", "log",
           "log_softmax", "logsumexp", "max", "mean", "mse", "relu", "sigmoid", "softmax",
           "softplus", "sqrt", "sse", "sum", "tanh"]

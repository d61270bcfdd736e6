"""symgrad: derive, explain and compile gradients of small machine-learning models.

The public API, re-exported from the pipeline stages:
declare (graph, ops) -> derive (diff) -> explain -> compile (codegen) -> train.
"""
from symgrad.errors import (DataError, DeclarationError, DimError, DivergenceError,
                            MissingRuleError, SymgradError)
from symgrad.graph import Node, param, tensor
from symgrad.graph.evaluate import evaluate
from symgrad.ops import (abs, binary_cross_entropy, clip, cross_entropy, exp, hinge, l1, l2, log,
                         log_softmax, logsumexp, max, maximum, mean, minimum, mse, onehot, relu,
                         sigmoid, softmax, softplus, sqrt, sse, sum, take, tanh, where)
from symgrad.ops import (cos, elu, erf, expm1, gelu, huber, leaky_relu, log1p, silu, sin,
                         square)
# not re-exported by symgrad.ops, where the name is the module of built-in elementwise ops
from symgrad.ops.custom import elementwise
from symgrad.diff.check import check_grad
from symgrad.diff.reverse import gradients

__version__ = "0.1.0"

# Stages are imported on first use (PEP 562 module __getattr__): the numeric ones load
# Numba, so deriving and printing rules stays instant; the symbolic ones load SymPy, so
# running a cached compiled model never imports it.
_LAZY = {
    "grad": "symgrad.diff.scalar", "scalars": "symgrad.diff.scalar",
    "Derivation": "symgrad.explain",
    "derive": "symgrad.explain", "backprop": "symgrad.explain.backprop",
    "hessian": "symgrad.explain.hessian",
    "compile": "symgrad.codegen", "CompiledModel": "symgrad.codegen",
    "fit": "symgrad.train", "History": "symgrad.train", "EarlyStopping": "symgrad.train",
    "sweep": "symgrad.train", "SweepResult": "symgrad.train",
    "Constant": "symgrad.train", "StepDecay": "symgrad.train",
    "ExponentialDecay": "symgrad.train", "InverseTimeDecay": "symgrad.train",
    "CosineDecay": "symgrad.train", "nn": None, "estimators": None,
    "graph_view": "symgrad.explain.graphview", "graph_dot": "symgrad.explain.graphview",
    "GraphView": "symgrad.explain.graphview",
    "MatrixFormError": "symgrad.explain.matrix",
}


def __getattr__(name):
    import importlib
    if name not in _LAZY:
        raise AttributeError(f"module 'symgrad' has no attribute {name!r}")
    module = _LAZY[name]
    value = importlib.import_module(f"symgrad.{name}") if module is None \
        else getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

__all__ = [
    "DataError", "DeclarationError", "DimError", "DivergenceError", "MissingRuleError",
    "SymgradError", "Node", "param", "tensor", "evaluate", "clip", "maximum", "minimum",
    "onehot", "take", "where", "abs", "binary_cross_entropy",
    "cos", "elementwise", "elu", "erf", "expm1", "gelu", "huber", "leaky_relu", "log1p",
    "silu", "sin", "square",
    "cross_entropy", "exp", "hinge", "l1", "l2", "log", "log_softmax", "logsumexp", "max", "mean",
    "mse", "relu", "sigmoid", "softmax", "softplus", "sqrt", "sse", "sum", "tanh", "check_grad",
    "gradients", *_LAZY,
]

"""Ready-made small models (``sg.nn.mlp``, ``softmax_regression``, ...) as declared graphs.

Importing this package declares nothing and compiles nothing; the compiler is imported
only when a model is compiled or trained.
"""
from symgrad.nn.models import (Model, linear_regression, logistic_regression, mlp,
                               softmax_regression)

__all__ = ["Model", "linear_regression", "logistic_regression", "mlp", "softmax_regression"]

"""scikit-learn-style estimators built on symgrad.nn, compile and fit.

``LogisticRegression`` (binary or softmax), ``MLPClassifier`` and ``LinearRegression``
follow scikit-learn's conventions (``fit`` returns self, fitted attributes end in
``_``, ``get_params``/``set_params``), so they work in a ``Pipeline``, with
``cross_val_score`` and ``GridSearchCV``.
"""
from symgrad.estimators.linear import LinearRegression, LogisticRegression
from symgrad.estimators.mlp import MLPClassifier

__all__ = ["LinearRegression", "LogisticRegression", "MLPClassifier"]

"""End to end: fit on scikit-learn's digits (standardized) reaches >= 95% training accuracy.

Uses the compiled model when symgrad.codegen provides compile, else the NumPy reference.
"""
import numpy as np

from symgrad import nn
from symgrad.train import fit


def test_softmax_regression_on_digits(digits):
    X, y = digits
    model = nn.softmax_regression(64, 10, l2=1e-4)
    hist = fit(model, model.init_params(0), {"X": X, "y": y}, lr=0.1, epochs=10,
               batch_size=32, seed=0, progress=False)
    assert hist.metrics["accuracy"][-1] >= 0.95
    # fit measures with the trained model, Model.accuracy with the NumPy evaluator:
    # they agree up to rounding ties in the argmax.
    assert abs(model.accuracy(hist.params, X, y) - hist.metrics["accuracy"][-1]) <= 2 / len(y)
    assert np.all(np.diff(hist.loss) < 0)


def test_mlp_on_digits(digits):
    X, y = digits
    model = nn.mlp([64, 32, 10], activation="relu")
    hist = fit(model, model.init_params(0), {"X": X, "y": y}, lr=0.1, epochs=10,
               batch_size=32, seed=0, momentum=0.5, progress=False)
    assert hist.metrics["accuracy"][-1] >= 0.95
    # fit measures with the trained model, Model.accuracy with the NumPy evaluator:
    # they agree up to rounding ties in the argmax.
    assert abs(model.accuracy(hist.params, X, y) - hist.metrics["accuracy"][-1]) <= 2 / len(y)


def test_logistic_regression_on_breast_cancer():
    from sklearn.datasets import load_breast_cancer
    data = load_breast_cancer()
    X = (data.data - data.data.mean(0)) / data.data.std(0)
    y = data.target.astype(float)
    model = nn.logistic_regression(X.shape[1], l2=1e-3)
    hist = fit(model, model.init_params(0), {"X": X, "y": y}, lr=0.1, epochs=10,
               batch_size=32, progress=False)
    assert hist.metrics["accuracy"][-1] >= 0.97
    # fit measures with the trained model, Model.accuracy with the NumPy evaluator:
    # they agree up to rounding ties in the argmax.
    assert abs(model.accuracy(hist.params, X, y) - hist.metrics["accuracy"][-1]) <= 2 / len(y)

"""Shared small problems for the training tests (all float64, all deterministic)."""
import numpy as np
import pytest

import symgrad as sg
from symgrad.train import NumpyModel


@pytest.fixture(autouse=True)
def _no_progress_bars(monkeypatch):
    # Bars would clutter test output; the tests that check the bar set this back.
    monkeypatch.setenv("SYMGRAD_PROGRESS", "0")


def softmax_problem(n=60, d=5, c=3, seed=0, l2=0.01):
    """A small softmax regression: (loss node, params dict, data dict)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.integers(0, c, n)
    Xn, yn = sg.tensor("X", ("N", "D")), sg.tensor("y", ("N",), dtype=int)
    W, b = sg.param("W", ("D", "C")), sg.param("b", ("C",))
    z = (Xn @ W + b).named("z")
    L = sg.cross_entropy(z, yn) + l2 * sg.l2(W)
    params = {"W": 0.1 * rng.standard_normal((d, c)), "b": np.zeros(c)}
    return L, params, {"X": X, "y": y}


@pytest.fixture
def make_softmax():
    """The factory itself, for tests that need several sizes or seeds."""
    return softmax_problem


@pytest.fixture
def softmax_small():
    L, params, data = softmax_problem()
    return NumpyModel(L), params, data


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits (1797 x 64), standardized per feature (no download needed)."""
    from sklearn.datasets import load_digits
    d = load_digits()
    X = d.data.astype(np.float64)
    std = X.std(axis=0)
    std[std == 0] = 1.0
    return (X - X.mean(axis=0)) / std, d.target.astype(np.int64)

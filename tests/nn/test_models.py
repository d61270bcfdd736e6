"""Ready-made models: graph names and dims, initialisation, prediction, training."""
import subprocess
import sys

import numpy as np
import pytest

from symgrad import nn
from symgrad.graph.traverse import topo_order
from symgrad.train import fit


def _named(model):
    return {n.name: n for n in topo_order(model.loss) if n.name}


def test_mlp_names_and_dims():
    model = nn.mlp([64, 32, 16, 10], activation="tanh", l2=1e-3)
    nodes = _named(model)
    for name in ["X", "y", "W1", "b1", "z1", "h1", "W2", "z2", "h2", "W3", "b3", "z3", "L"]:
        assert name in nodes, name
    assert nodes["W1"].dims == ("D", "H1") and nodes["W2"].dims == ("H1", "H2")
    assert nodes["W3"].dims == ("H2", "C") and nodes["z3"].dims == ("N", "C")
    assert [p.name for p in model.params] == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert [x.name for x in model.inputs] == ["X", "y"] and model.logits is nodes["z3"]
    assert nodes["h1"].op == "tanh" and model.loss.name == "L"


@pytest.mark.parametrize("activation, op", [("relu", "relu"), ("sigmoid", "sigmoid"),
                                            ("softplus", "softplus")])
def test_mlp_activations(activation, op):
    assert _named(nn.mlp([4, 3, 2], activation=activation))["h1"].op == op


def test_init_params_are_deterministic_float64_he_and_glorot():
    model = nn.mlp([200, 100, 10])
    p1, p2 = model.init_params(3), model.init_params(3)
    assert all(np.array_equal(p1[k], p2[k]) and p1[k].dtype == np.float64 for k in p1)
    assert not np.array_equal(p1["W1"], model.init_params(4)["W1"])
    assert p1["W1"].shape == (200, 100) and p1["b2"].shape == (10,) and not p1["b1"].any()
    assert abs(p1["W1"].std() - np.sqrt(2 / 200)) < 0.005          # He for relu layers
    assert abs(p1["W2"].std() - np.sqrt(2 / 110)) < 0.02           # Glorot for the output


def test_mse_mlp_with_one_output_has_vector_targets():
    model = nn.mlp([3, 8, 1], loss="mse")
    nodes = _named(model)
    assert nodes["W2"].dims == ("H1",) and nodes["b2"].dims == () and nodes["y"].dims == ("N",)
    assert model.task == "regression"
    p = model.init_params(0)
    assert p["W2"].shape == (8,) and p["b2"].shape == ()
    assert nn.mlp([3, 8, 2], loss="mse").inputs[1].dims == ("N", "K")


@pytest.mark.parametrize("call, message", [
    (lambda: nn.mlp([64]), "sizes"),
    (lambda: nn.mlp([64, 0, 10]), r"sizes\[1\]"),
    (lambda: nn.mlp([4, 2], activation="gelu"), "activation"),
    (lambda: nn.mlp([4, 2], loss="hinge"), "loss"),
    (lambda: nn.mlp([4, 2], l2=-1), "l2"),
    (lambda: nn.softmax_regression(4, 1), "n_classes"),
    (lambda: nn.logistic_regression(0), "n_features"),
])
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_softmax_regression_graph_and_predict():
    model = nn.softmax_regression(5, 3, l2=0.1)
    assert _named(model)["W"].dims == ("D", "C") and _named(model)["z"].dims == ("N", "C")
    p = model.init_params(0)
    X = np.random.default_rng(0).standard_normal((7, 5))
    np.testing.assert_array_equal(model.predict(p, X), np.argmax(X @ p["W"] + p["b"], 1))
    probs = model.forward(p, X)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_logistic_regression_predict_and_accuracy():
    model = nn.logistic_regression(2)
    p = {"w": np.array([1.0, -1.0]), "b": np.array(0.0)}
    X = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 0.5]])
    np.testing.assert_array_equal(model.predict(p, X), [1, 0, 1])
    assert model.accuracy(p, X, np.array([1.0, 0.0, 0.0])) == pytest.approx(2 / 3)
    np.testing.assert_allclose(model.forward(p, X), 1 / (1 + np.exp(-(X @ p["w"]))))


def test_linear_regression_recovers_the_weights():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((100, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 3.0
    model = nn.linear_regression(3)
    hist = fit(model, model.init_params(0), {"X": X, "y": y}, lr=0.3, epochs=200,
               progress=False)
    np.testing.assert_allclose(hist.params["w"], [1.0, -2.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(hist.params["b"], 3.0, atol=1e-6)
    with pytest.raises(ValueError, match="regression"):
        model.accuracy(hist.params, X, y)


def test_importing_nn_does_not_import_the_compiler():
    code = ("import sys, symgrad; before = set(sys.modules); import symgrad.nn; "
            "new = set(sys.modules) - before; "
            "bad = [m for m in new if 'codegen' in m or m.startswith('numba')]; "
            "assert not bad, bad; nn = symgrad.nn.mlp([4, 3, 2])")
    subprocess.run([sys.executable, "-c", code], check=True)

"""Models used across the test suite: the lecture's, and a corpus covering every op and loss.

Each case returns ``(loss, params, data)`` with small random data, float64.
"""
import numpy as np

import symgrad as sg


def _rng(seed):
    return np.random.default_rng(seed)


def linear_regression(seed=0, n=7, d=3):
    r = _rng(seed)
    x, y, w = sg.tensor("x", ("N", "d")), sg.tensor("y", ("N",)), sg.param("w", ("d",))
    return sg.sum((y - x @ w) ** 2), [w], {"x": r.normal(size=(n, d)), "y": r.normal(size=n),
                                         "w": r.normal(size=d)}


def sigmoid_perceptron(seed=0, n=7, d=3):
    r = _rng(seed)
    x, y, w = sg.tensor("x", ("N", "d")), sg.tensor("y", ("N",)), sg.param("w", ("d",))
    loss = sg.sum((y - sg.sigmoid(x @ w)) ** 2)
    return loss, [w], {"x": r.normal(size=(n, d)), "y": (r.random(n) > 0.5) * 1.0,
                       "w": r.normal(size=d)}


def logistic_regression(seed=0, n=8, d=3):
    r = _rng(seed)
    X, t = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",))
    w, b = sg.param("w", ("d",)), sg.param("b")
    loss = sg.binary_cross_entropy(sg.sigmoid(X @ w + b), t) + 1e-3 * sg.l2(w)
    return loss, [w, b], {"X": r.normal(size=(n, d)), "t": (r.random(n) > 0.5) * 1.0,
                          "w": r.normal(size=d), "b": np.array(0.3)}


def softmax_regression(seed=0, n=9, d=4, c=3, onehot=False, reg="l2"):
    r = _rng(seed)
    X, W, b = sg.tensor("X", ("N", "D")), sg.param("W", ("D", "C")), sg.param("b", ("C",))
    labels = r.integers(0, c, size=n)
    if onehot:
        Y = sg.tensor("Y", ("N", "C"))
        y_data = np.eye(c)[labels]
    else:
        Y = sg.tensor("y", ("N",), dtype=int)
        y_data = labels
    penalty = {"l2": sg.l2(W), "l1": sg.l1(W)}[reg]
    loss = sg.cross_entropy(X @ W + b, Y) + 1e-2 * penalty
    return loss, [W, b], {"X": r.normal(size=(n, d)), Y.name: y_data,
                          "W": r.normal(size=(d, c)), "b": r.normal(size=c)}


ACTIVATIONS = {"relu": sg.relu, "tanh": sg.tanh, "sigmoid": sg.sigmoid, "softplus": sg.softplus}


def mlp(layers=2, activation="tanh", loss="cross_entropy", seed=0, n=6, sizes=None, l2=1e-3):
    """An MLP with ``layers`` weight layers; loss one of cross_entropy, mse, hinge."""
    r = _rng(seed)
    sizes = sizes or [4] + [5] * (layers - 1) + [3]
    act = ACTIVATIONS[activation]
    X = sg.tensor("X", ("N", "D0"))
    h, params, data = X, [], {"X": r.normal(size=(n, sizes[0]))}
    for k in range(layers):
        W = sg.param(f"W{k + 1}", (f"D{k}", f"D{k + 1}"))
        b = sg.param(f"b{k + 1}", (f"D{k + 1}",))
        data[W.name] = r.normal(size=(sizes[k], sizes[k + 1])) / np.sqrt(sizes[k])
        data[b.name] = 0.1 * r.normal(size=sizes[k + 1])
        params += [W, b]
        h = h @ W + b
        if k < layers - 1:
            h = act(h)
    out_dim = f"D{layers}"
    if loss == "cross_entropy":
        y = sg.tensor("y", ("N",), dtype=int)
        data["y"] = r.integers(0, sizes[-1], size=n)
        L = sg.cross_entropy(h, y)
    elif loss == "mse":
        y = sg.tensor("Y", ("N", out_dim))
        data["Y"] = r.normal(size=(n, sizes[-1]))
        L = sg.mse(h, y)
    else:
        y = sg.tensor("T", ("N", out_dim))
        data["T"] = np.where(r.random((n, sizes[-1])) > 0.5, 1.0, -1.0)
        L = sg.hinge(h, y)
    return L + l2 * sg.l2(params[0]), params, data


def corpus():
    """name -> zero-argument builder, for parametrised tests."""
    cases = {
        "linear_regression": linear_regression,
        "sigmoid_perceptron": sigmoid_perceptron,
        "logistic_regression": logistic_regression,
        "softmax_regression": softmax_regression,
        "softmax_regression_onehot": lambda: softmax_regression(onehot=True),
        "softmax_regression_l1": lambda: softmax_regression(reg="l1"),
    }
    for layers in (2, 3):
        for act in ACTIVATIONS:
            cases[f"mlp{layers}_{act}"] = (lambda l=layers, a=act: mlp(l, a))
    cases["mlp2_mse"] = lambda: mlp(2, "tanh", loss="mse")
    cases["mlp2_hinge"] = lambda: mlp(2, "sigmoid", loss="hinge")
    return cases

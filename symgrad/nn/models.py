"""Ready-made small models: MLPs, softmax, logistic and linear regression.

Each builder declares an ordinary symgrad graph with readable names (``z1 = X @ W1 + b1``,
``h1 = relu(z1)``, ..., loss ``L``) and named dims (``N`` rows, ``D`` features, ``H1``..
hidden units, ``C`` classes, ``K`` regression outputs), so its derivation reads as in a
lecture. Nothing here compiles at import: ``Model.compile`` imports the compiler lazily.
"""
import numbers

import numpy as np

import symgrad.ops as ops
from symgrad.graph.arguments import check_seed
from symgrad.graph.evaluate import evaluate
from symgrad.graph.node import param, tensor

ACTIVATIONS = {"relu": ops.relu, "tanh": ops.tanh, "sigmoid": ops.sigmoid,
               "softplus": ops.softplus}
LOSSES = ("cross_entropy", "mse")


class Model:
    """A declared model: its loss node, output nodes, params, inputs and initialiser.

    ``task`` is ``"multiclass"``, ``"binary"`` or ``"regression"``; ``layers`` lists
    ``(W name, b name, fan_in, fan_out, init)`` with init "he" or "glorot".
    """

    def __init__(self, name, loss, logits, output, params, inputs, task, layers):
        self.name, self.loss, self.logits, self.output = name, loss, logits, output
        self.params, self.inputs, self.task, self.layers = params, inputs, task, layers

    def __repr__(self):
        shapes = ", ".join(f"{p.name}{p.dims}" for p in self.params)
        return f"<{self.name} model: loss {self.loss.name!r}, params {shapes}>"

    @property
    def X(self):
        return self.inputs[0]

    @property
    def y(self):
        return self.inputs[1]

    def init_params(self, seed=0):
        """Deterministic float64 initial params: He (relu-like) or Glorot normal weights,
        zero biases, drawn from ``np.random.default_rng(seed)`` in layer order."""
        rng = np.random.default_rng(check_seed(seed))
        values = {}
        for w, b, fan_in, fan_out, init in self.layers:
            outs = 1 if fan_out is None else fan_out  # a weight vector feeds one output
            scale = np.sqrt(2.0 / fan_in) if init == "he" else np.sqrt(2.0 / (fan_in + outs))
            shape = (fan_in, fan_out) if fan_out is not None else (fan_in,)
            values[w] = rng.standard_normal(shape) * scale
            values[b] = np.zeros(fan_out) if fan_out is not None else np.zeros(())
        return values

    def compile(self, dtype=np.float64):
        """The compiled model of the loss (the NumPy reference if codegen is unavailable)."""
        from symgrad.train.checks import compile_loss
        return compile_loss(self.loss, self.params, dtype, outputs=[self.logits])

    def forward(self, params, X, node=None):
        """The value of ``node`` (default: the output node) for inputs ``X`` (NumPy reference)."""
        node = self.output if node is None else node
        return evaluate(node, {**params, self.X.name: X})

    def predict(self, params, X):
        """Class labels for classifiers (argmax / p > 0.5), values for regression."""
        scores = self.forward(params, X, self.logits)
        if self.task == "multiclass":
            return np.argmax(scores, axis=-1)
        if self.task == "binary":
            return (scores > 0).astype(np.int64)
        return scores

    def accuracy(self, params, X, y):
        """Fraction of rows whose predicted class equals ``y`` (classifiers only)."""
        if self.task == "regression":
            raise ValueError(f"{self.name} is a regression model; accuracy needs a classifier")
        y = np.asarray(y)
        truth = np.argmax(y, axis=-1) if y.ndim == 2 else (y > 0.5 if self.task == "binary" else y)
        return float(np.mean(self.predict(params, X) == truth))


def mlp(sizes=(64, 32, 10), activation="relu", loss="cross_entropy", l2=0.0):
    """A fully connected network ``sizes[0] -> ... -> sizes[-1]``.

    ``loss="cross_entropy"``: integer labels ``y`` (N,) over ``sizes[-1]`` classes.
    ``loss="mse"``: float targets ``y`` (N,) if ``sizes[-1] == 1`` else (N, K).
    ``l2`` adds ``l2 * sum_l sum W_l^2`` (weights only, not biases).
    """
    sizes = _sizes(sizes)
    if activation not in ACTIVATIONS:
        raise ValueError(f"mlp activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if loss not in LOSSES:
        raise ValueError(f"mlp loss must be one of {LOSSES}, got {loss!r}")
    l2 = _l2(l2)
    X = tensor("X", ("N", "D"))
    regression = loss == "mse"
    scalar_out = regression and sizes[-1] == 1
    dims = ["D"] + [f"H{i}" for i in range(1, len(sizes) - 1)] + [
        None if scalar_out else ("K" if regression else "C")]
    h, params, layers = X, [], []
    init = "he" if activation in ("relu", "softplus") else "glorot"
    for i in range(1, len(sizes)):
        last = i == len(sizes) - 1
        W = param(f"W{i}", (dims[i - 1],) if dims[i] is None else (dims[i - 1], dims[i]))
        b = param(f"b{i}", () if dims[i] is None else (dims[i],))
        z = (h @ W + b).named(f"z{i}")
        params += [W, b]
        layers.append((W.name, b.name, sizes[i - 1], None if dims[i] is None else sizes[i],
                       "glorot" if last else init))
        h = z if last else ACTIVATIONS[activation](z).named(f"h{i}")
    if regression:
        y = tensor("y", ("N",) if scalar_out else ("N", "K"))
        data_loss, output, task = ops.mse(z, y), z, "regression"
    else:
        y = tensor("y", ("N",), dtype=int)
        data_loss, output, task = ops.cross_entropy(z, y), ops.softmax(z).named("p"), "multiclass"
    L = _regularised(data_loss, [p for p in params if p.name.startswith("W")], l2)
    name = f"mlp({'-'.join(map(str, sizes))}, {activation})"
    return Model(name, L, z, output, params, [X, y], task, layers)


def softmax_regression(n_features, n_classes, l2=0.0):
    """``z = X @ W + b``, mean cross-entropy against integer labels, plus ``l2 * sum W^2``."""
    n_features = _count(n_features, "n_features")
    n_classes = _count(n_classes, "n_classes", 2)
    X, y = tensor("X", ("N", "D")), tensor("y", ("N",), dtype=int)
    W, b = param("W", ("D", "C")), param("b", ("C",))
    z = (X @ W + b).named("z")
    L = _regularised(ops.cross_entropy(z, y), [W], _l2(l2))
    return Model("softmax_regression", L, z, ops.softmax(z).named("p"), [W, b], [X, y],
                 "multiclass", [("W", "b", n_features, n_classes, "glorot")])


def logistic_regression(n_features, l2=0.0):
    """``p = sigmoid(X @ w + b)``, mean binary cross-entropy against 0/1 targets ``y``
    (computed stably from the logits ``z``), plus ``l2 * sum w^2``."""
    n_features = _count(n_features, "n_features")
    X, y = tensor("X", ("N", "D")), tensor("y", ("N",))
    w, b = param("w", ("D",)), param("b", ())
    z = (X @ w + b).named("z")
    L = _regularised(ops.binary_cross_entropy(z, y, from_logits=True), [w], _l2(l2))
    return Model("logistic_regression", L, z, ops.sigmoid(z).named("p"), [w, b], [X, y],
                 "binary", [("w", "b", n_features, None, "glorot")])


def linear_regression(n_features, l2=0.0):
    """``yhat = X @ w + b`` with mean squared error (plus ``l2 * sum w^2``: ridge)."""
    n_features = _count(n_features, "n_features")
    X, y = tensor("X", ("N", "D")), tensor("y", ("N",))
    w, b = param("w", ("D",)), param("b", ())
    yhat = (X @ w + b).named("yhat")
    L = _regularised(ops.mse(yhat, y), [w], _l2(l2))
    return Model("linear_regression", L, yhat, yhat, [w, b], [X, y], "regression",
                 [("w", "b", n_features, None, "glorot")])


def _regularised(data_loss, weights, l2):
    if not l2:
        return data_loss.named("L")
    penalty = ops.l2(weights[0])
    for W in weights[1:]:
        penalty = penalty + ops.l2(W)
    return (data_loss + l2 * penalty).named("L")


def _sizes(sizes):
    sizes = list(sizes) if isinstance(sizes, (list, tuple)) else sizes
    if not isinstance(sizes, list) or len(sizes) < 2:
        raise ValueError("mlp sizes must be a list [n_features, hidden..., n_outputs], "
                         f"got {sizes!r}")
    return [_count(s, f"mlp sizes[{i}]") for i, s in enumerate(sizes)]


def _count(value, what, low=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{what} must be an int >= {low}, got {value!r}")
    return int(value)


def _l2(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"l2 must be a number >= 0, got {value!r}")
    return float(value)

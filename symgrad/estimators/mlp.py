"""``MLPClassifier``: a ``symgrad.nn.mlp`` trained by compiled mini-batch Adam or SGD.

Parameter names and meanings follow scikit-learn's ``MLPClassifier``: ``solver="adam"``
(the default, with ``beta_1``, ``beta_2``, ``epsilon``; the update is torch.optim's
Adam, whose eps sits outside the bias-corrected square root, where scikit-learn's
adds it to the uncorrected one: the same for eps -> 0) or ``solver="sgd"`` (as
scikit-learn's with ``nesterovs_momentum=False``). The objective per mini-batch is the
mean cross-entropy plus ``alpha / (2 * batch_size) * sum ||W||^2``; training stops
after ``max_iter`` epochs or when the epoch loss has not improved by ``tol`` for
``n_iter_no_change`` epochs. Two classes use a 2-way softmax (sklearn uses one logistic unit; the model
is the same). The graph depends only on the number of layers and the activation (the
sizes are named dims), so every width shares one compiled kernel.
"""
import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets

from symgrad import nn
from symgrad.estimators._base import SymgradEstimator, compiled, penalized
from symgrad.estimators._params import check_hyperparameters

# scikit-learn's activation names -> symgrad's
ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "logistic": "sigmoid", "sigmoid": "sigmoid",
               "softplus": "softplus"}


class MLPClassifier(ClassifierMixin, SymgradEstimator):
    """A fully connected classifier. Fitted: ``classes_``, ``coefs_``, ``intercepts_``,
    ``loss_curve_``, ``n_iter_``, ``params_`` (symgrad names ``W1``, ``b1``, ...)."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", solver="adam",
                 alpha=1e-4, batch_size="auto", learning_rate_init=0.001, max_iter=200,
                 momentum=0.9, shuffle=True, tol=1e-4, n_iter_no_change=10, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, standardize=False, random_state=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.momentum = momentum
        self.shuffle = shuffle
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.standardize = standardize
        self.random_state = random_state

    def _hidden(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if np.isscalar(sizes) else list(sizes)
        if not sizes or any(int(s) != s or s < 1 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive ints, got {sizes!r}")
        return [int(s) for s in sizes]

    def _activation(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, "
                             f"got {self.activation!r}")
        return ACTIVATIONS[self.activation]

    def _optimizer(self):
        if self.solver == "adam":
            return {"optimizer": "adam", "betas": (self.beta_1, self.beta_2),
                    "eps": self.epsilon}
        if self.solver == "sgd":
            return {"optimizer": "sgd", "momentum": self.momentum}
        raise ValueError(f"solver must be 'adam' or 'sgd', got {self.solver!r}")

    def _spec(self):
        return ("mlp", self._n_layers, self._act)

    def _build(self):
        model = nn.mlp([2] * (self._n_layers + 1) + [2], activation=self._act)
        return model, penalized(model, [p for p in model.params if p.name.startswith("W")])

    def fit(self, X, y):
        check_hyperparameters(self)
        hidden, self._act = self._hidden(), self._activation()
        self._n_layers = len(hidden)
        X, y = self._check_Xy(X, y)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("MLPClassifier needs samples of at least 2 classes in the data, "
                             f"but the data contain only one class: {self.classes_[0]!r}")
        Xs = self._scale_fit(X)
        n, d = Xs.shape
        batch = min(200, n) if self.batch_size == "auto" else min(int(self.batch_size), n)
        sizes = [d] + hidden + [len(self.classes_)]
        init = nn.mlp(sizes, activation=self._act).init_params(seed=self._seed())
        stop = {"patience": int(self.n_iter_no_change), "min_delta": float(self.tol),
                "restore_best": False, "monitor": "loss"}
        _, fn = compiled(self._spec(), self._build)
        self.params_ = self._train(fn, init, {"X": Xs, "y": codes.astype(np.int64)},
                                   self.alpha / (2.0 * batch), early_stopping=stop,
                                   lr=self.learning_rate_init, epochs=self.max_iter,
                                   batch_size=batch, shuffle=self.shuffle,
                                   **self._optimizer())
        layers = range(1, len(sizes))
        self.coefs_ = [self.params_[f"W{i}"] for i in layers]
        self.intercepts_ = [self.params_[f"b{i}"] for i in layers]
        return self

    def predict_proba(self, X):
        scores = self._forward(X)
        scores = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(scores)
        return e / e.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        scores = self._forward(X)  # first: it raises NotFittedError before classes_ is read
        return self.classes_[np.argmax(scores, axis=1)]

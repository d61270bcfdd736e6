"""``LogisticRegression`` (binary, or softmax for several classes) and ``LinearRegression``.

Both minimise scikit-learn's objective, rescaled to a mean over rows (as scikit-learn
does internally): logistic regression ``mean loss + ||W||^2 / (2 C N)`` (sklearn's
``0.5 ||W||^2 + C sum loss``; the intercept is not penalised), linear regression
``mean (y - yhat)^2 + alpha ||w||^2 / N`` (sklearn's ``Ridge``; ``alpha=0`` is
``LinearRegression``). The default ``solver="lbfgs"`` is SciPy's L-BFGS-B on the
compiled loss and gradient, as scikit-learn's default solver, stopping when the largest
gradient component is <= ``tol``. ``solver="gd"`` is full-batch gradient descent with
momentum (or minibatch SGD with ``batch_size``), step ``1/L`` by default (L the
gradient's Lipschitz constant, from the data), so it converges without tuning.
"""
import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets

from symgrad import nn
from symgrad.estimators._base import SymgradEstimator, compiled, lipschitz_lr, penalized
from symgrad.estimators._params import check_hyperparameters


class LogisticRegression(ClassifierMixin, SymgradEstimator):
    """L2-regularised logistic regression; softmax (multinomial) for more than two classes.

    ``C``: inverse regularisation strength, as in scikit-learn. ``solver``: "lbfgs"
    (default; at most ``max_iter`` iterations, default 100, gradient tolerance ``tol``)
    or "gd": ``max_iter`` (default 300) epochs of full-batch gradient descent (or
    mini-batch SGD with ``batch_size``) with ``momentum``, step ``lr`` ("auto": 1/L).
    ``standardize`` scales features inside the
    estimator (the penalty then applies to standardized coefficients, exactly as for
    sklearn after a ``StandardScaler``). Fitted: ``classes_``, ``coef_``,
    ``intercept_``, ``loss_curve_``, ``n_iter_``, ``params_``.
    """

    def __init__(self, C=1.0, solver="lbfgs", tol=1e-4, lr="auto", max_iter=None,
                 batch_size=None, momentum=0.9, standardize=True, random_state=None):
        self.C = C
        self.solver = solver
        self.tol = tol
        self.lr = lr
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.momentum = momentum
        self.standardize = standardize
        self.random_state = random_state

    def _spec(self):
        return ("logistic", self._multiclass)

    def _build(self):
        if self._multiclass:
            model = nn.softmax_regression(2, 2)
        else:
            model = nn.logistic_regression(2)
        return model, penalized(model, [model.params[0]])

    def fit(self, X, y):
        check_hyperparameters(self)
        X, y = self._check_Xy(X, y)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("LogisticRegression needs samples of at least 2 classes in the "
                             f"data, but the data contain only one class: {self.classes_[0]!r}")
        self._multiclass = len(self.classes_) > 2
        Xs = self._scale_fit(X)
        n, d = Xs.shape
        lam = 1.0 / (2.0 * self.C * n)
        if self._multiclass:
            init = nn.softmax_regression(d, len(self.classes_)).init_params(0)
            target = codes.astype(np.int64)
        else:
            init = nn.logistic_regression(d).init_params(0)
            target = codes.astype(np.float64)
        init = {k: np.zeros_like(v) for k, v in init.items()}  # convex: start at zero
        curvature = 0.5 if self._multiclass else 0.25
        lr = self.lr
        if self.solver == "gd" and lr == "auto":
            lr = lipschitz_lr(Xs, curvature, lam)
        settings = self._solver_settings(lr, _max_iter(self), self.tol)
        _, fn = compiled(self._spec(), self._build)
        self.params_ = self._train(fn, init, {"X": Xs, "y": target}, lam, **settings)
        self._set_coefficients()
        return self

    def _set_coefficients(self):
        """coef_/intercept_ in the caller's feature units (undoing the standardization)."""
        W = self.params_["W"] if self._multiclass else self.params_["w"][:, None]
        b = self.params_["b"] if self._multiclass else self.params_["b"].reshape(1)
        coef = (W / self.scale_[:, None]).T
        self.coef_ = coef
        self.intercept_ = b - coef @ self.mean_

    def decision_function(self, X):
        """Scores: (n,) logits for two classes, (n, n_classes) otherwise (as sklearn)."""
        return self._forward(X)

    def predict_proba(self, X):
        scores = self._forward(X)
        if self._multiclass:
            scores = scores - scores.max(axis=1, keepdims=True)
            e = np.exp(scores)
            return e / e.sum(axis=1, keepdims=True)
        p1 = 0.5 * (1.0 + np.tanh(0.5 * scores))  # a sigmoid that cannot overflow
        return np.column_stack([1.0 - p1, p1])

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        scores = self._forward(X)
        index = np.argmax(scores, axis=1) if self._multiclass else (scores > 0).astype(int)
        return self.classes_[index]


class LinearRegression(RegressorMixin, SymgradEstimator):
    """Least squares (``alpha > 0``: ridge) on standardized features.

    ``solver``: "lbfgs" (default; at most ``max_iter`` iterations, default 100, gradient
    tolerance ``tol``) or "gd" (``max_iter`` epochs, default 500, of gradient descent
    with ``momentum``). The target is centred and scaled too, so one step size fits any
    units. Fitted: ``coef_``, ``intercept_``, ``loss_curve_`` (in standardized units),
    ``n_iter_``.
    """

    def __init__(self, alpha=0.0, solver="lbfgs", tol=1e-6, lr="auto", max_iter=None,
                 batch_size=None, momentum=0.9, standardize=True, random_state=None):
        self.alpha = alpha
        self.solver = solver
        self.tol = tol
        self.lr = lr
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.momentum = momentum
        self.standardize = standardize
        self.random_state = random_state

    def _spec(self):
        return ("linear",)

    def _build(self):
        model = nn.linear_regression(2)
        return model, penalized(model, [model.params[0]])

    def fit(self, X, y):
        check_hyperparameters(self)
        X, y = self._check_Xy(X, y, y_numeric=True)
        Xs = self._scale_fit(X)
        self.y_mean_ = float(y.mean()) if self.standardize else 0.0
        self.y_scale_ = (float(y.std()) or 1.0) if self.standardize else 1.0
        ys = (y - self.y_mean_) / self.y_scale_
        n, d = Xs.shape
        lam = self.alpha / n
        lr = self.lr
        if self.solver == "gd" and lr == "auto":
            lr = lipschitz_lr(Xs, 2.0, lam)
        init = {k: np.zeros_like(v) for k, v in nn.linear_regression(d).init_params(0).items()}
        settings = self._solver_settings(lr, _max_iter(self, gd=500), self.tol)
        _, fn = compiled(self._spec(), self._build)
        self.params_ = self._train(fn, init, {"X": Xs, "y": ys}, lam, **settings)
        w = self.params_["w"] * self.y_scale_ / self.scale_
        self.coef_ = w
        self.intercept_ = float(self.params_["b"]) * self.y_scale_ + self.y_mean_ - w @ self.mean_
        return self

    def predict(self, X):
        out = self._forward(X, "output")
        return out * self.y_scale_ + self.y_mean_


def _max_iter(est, gd=300, lbfgs=100):
    """``max_iter``, or the solver's default (scikit-learn's 100 for L-BFGS)."""
    if est.max_iter is None:
        return lbfgs if est.solver == "lbfgs" else gd
    return est.max_iter

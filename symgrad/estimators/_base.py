"""What the symgrad estimators share: data checks, scaling, compiled-model cache, training.

Each estimator is a ``symgrad.nn`` model whose loss gets an L2 penalty scaled by a
*data* tensor ``lam`` (so a new ``C``, ``alpha`` or number of rows never changes the
graph and never recompiles), compiled once per process and per model structure, and
trained with ``symgrad.train.fit``. Only plain arrays are stored on the estimator, so
it pickles and clones like any scikit-learn estimator.
"""
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

import symgrad.ops as ops
from symgrad.graph.node import tensor

# structure key -> (nn.Model used for its graph, compiled objective); see _compiled
_COMPILED = {}


def penalized(model, weights):
    """``model.loss + lam * sum_l sum W_l^2`` with ``lam`` a (1,)-shaped data tensor.

    (A (1,) tensor with a named dim, summed, rather than a 0-d tensor: the value is
    data, bound at run time, so every penalty strength shares one compiled kernel.)
    """
    lam = ops.sum(tensor("lam", ("R",)))
    penalty = ops.l2(weights[0])
    for W in weights[1:]:
        penalty = penalty + ops.l2(W)
    return (model.loss + lam * penalty).named("objective")


def compiled(key, build):
    """(graph model, compiled objective) for a model structure, compiled once per process.

    ``build()`` returns ``(model, objective node)``. Falls back to the NumPy reference
    trainer when symgrad.codegen is unavailable (``compile_loss`` decides).
    """
    if key not in _COMPILED:
        from symgrad.train.checks import compile_loss
        model, objective = build()
        _COMPILED[key] = (model, compile_loss(objective, model.params))
    return _COMPILED[key]


class SymgradEstimator(BaseEstimator):
    """Shared fit machinery; subclasses define ``_spec``, ``_build`` and the targets."""

    def _check_X(self, X, reset):
        return validate_data(self, X, reset=reset, dtype=np.float64)

    def _check_Xy(self, X, y, y_numeric=False):
        return validate_data(self, X, y, dtype=np.float64, y_numeric=y_numeric)

    def _scale_fit(self, X):
        """Standardize features (statistics kept as ``mean_``/``scale_``) when asked.

        Gradient descent converges with one learning rate for any units only on
        standardized features; coefficients are reported in the caller's units.
        """
        if getattr(self, "standardize", False):
            self.mean_ = X.mean(axis=0)
            scale = X.std(axis=0)
            scale[scale == 0] = 1.0
            self.scale_ = scale
        else:
            self.mean_, self.scale_ = np.zeros(X.shape[1]), np.ones(X.shape[1])
        return self._scale(X)

    def _scale(self, X):
        return (X - self.mean_) / self.scale_

    def _seed(self):
        return int(check_random_state(self.random_state).randint(2 ** 31 - 1))

    def _train(self, fn, params0, data, lam, early_stopping=None, **settings):
        """Run ``fit`` and record the sklearn-style fitted attributes; returns the params.

        ``settings`` are ``fit`` keywords (lr, epochs, batch_size, optimizer, ...).
        """
        from symgrad.train import fit
        hist = fit(fn, params0, data={**data, "lam": np.array([float(lam)])},
                   seed=self._seed(), early_stopping=early_stopping, metrics=(),
                   progress=False, **settings)
        self.loss_curve_ = [float(v) for v in hist.loss]
        self.n_iter_ = len(self.loss_curve_)
        self.history_ = hist
        return {k: np.array(v) for k, v in hist.params.items()}

    def _solver_settings(self, lr, epochs, tol):
        """fit keywords for this estimator's ``solver``: "lbfgs" (full batch, ``tol``) or
        "gd" (gradient descent with ``momentum``, minibatches with ``batch_size``)."""
        if self.solver == "lbfgs":
            if self.batch_size is not None:
                raise ValueError("solver='lbfgs' is full batch; set batch_size=None or use "
                                 "solver='gd'")
            return {"optimizer": "lbfgs", "epochs": epochs, "tol": float(tol)}
        if self.solver != "gd":
            raise ValueError(f"solver must be 'lbfgs' or 'gd', got {self.solver!r}")
        return {"optimizer": "sgd", "lr": lr, "epochs": epochs, "batch_size": self.batch_size,
                "momentum": self.momentum}

    def _forward(self, X, node_name="logits"):
        """Scores (or outputs) for ``X`` with the fitted params (NumPy evaluator)."""
        check_is_fitted(self, "params_")
        X = self._scale(self._check_X(X, reset=False))
        model, _ = compiled(self._spec(), self._build)
        return np.asarray(model.forward(self.params_, X, getattr(model, node_name)))


def lipschitz_lr(X, curvature, lam):
    """1 / L for full-batch gradient descent: L = curvature * max eig(X^T X / N) + 2 lam.

    ``curvature`` bounds the loss's second derivative in the scores (1/4 for the
    logistic loss, 1/2 for softmax, 2 for squared error); the bias is counted as a
    column of ones. Cheap: an eigenvalue of a D x D matrix.
    """
    Xb = np.hstack([X, np.ones((X.shape[0], 1))])
    top = float(np.linalg.eigvalsh(Xb.T @ Xb / max(len(X), 1))[-1])
    return 1.0 / (curvature * top + 2.0 * lam + 1e-12)

"""The estimators match scikit-learn's own at the same settings, in a Pipeline and in CV."""
import warnings

import numpy as np
import pytest
import sklearn.linear_model as sk_linear
import sklearn.neural_network as sk_nn
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from symgrad.estimators import LinearRegression, LogisticRegression, MLPClassifier

DATASETS = {"digits": load_digits, "iris": load_iris, "breast_cancer": load_breast_cancer}


def split(name):
    X, y = DATASETS[name](return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


def _scores(ours, theirs, name):
    Xtr, Xte, ytr, yte = split(name)
    scores = []
    for est in (ours, theirs):
        pipe = make_pipeline(StandardScaler(), est)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipe.fit(Xtr, ytr)
        scores.append(pipe.score(Xte, yte))
    return scores


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_logistic_regression_matches_sklearn(name):
    ours, theirs = _scores(LogisticRegression(C=1.0),
                                 sk_linear.LogisticRegression(C=1.0, max_iter=2000), name)
    assert ours >= theirs - 0.02, (ours, theirs)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_mlp_matches_sklearn(name):
    settings = dict(hidden_layer_sizes=(64,), batch_size=32, learning_rate_init=0.01,
                    max_iter=60, momentum=0.9, alpha=1e-4, random_state=0, solver="sgd")
    ours, theirs = _scores(
        MLPClassifier(**settings),
        sk_nn.MLPClassifier(nesterovs_momentum=False, **settings), name)
    assert ours >= theirs - 0.02, (ours, theirs)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_mlp_adam_matches_sklearn_adam(name):
    # both estimators' defaults: solver="adam", learning_rate_init=1e-3
    settings = dict(hidden_layer_sizes=(32,), batch_size=32, max_iter=30, random_state=0)
    assert MLPClassifier().solver == sk_nn.MLPClassifier().solver == "adam"
    ours, theirs = _scores(MLPClassifier(**settings), sk_nn.MLPClassifier(**settings), name)
    assert ours >= theirs - 0.03, (ours, theirs)


def _sklearn_objective(X, y, classes, coef, intercept, C=1.0):
    """scikit-learn's LogisticRegression objective, per row: mean log-loss + ||W||^2 / (2CN)."""
    n, Z = len(y), X @ coef.T + intercept
    if coef.shape[0] == 1:
        z = Z[:, 0]
        losses = np.logaddexp(0.0, z) - (y == classes[1]) * z
    else:
        losses = np.logaddexp.reduce(Z, axis=1) - Z[np.arange(n), np.searchsorted(classes, y)]
    return losses.mean() + (coef ** 2).sum() / (2.0 * C * n)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_lbfgs_reaches_sklearns_objective(name):
    X, y = DATASETS[name](return_X_y=True)
    X = StandardScaler().fit_transform(X)
    for tol in (1e-4, 1e-9):
        ours = LogisticRegression(C=0.5, tol=tol, max_iter=5000, standardize=False).fit(X, y)
        theirs = sk_linear.LogisticRegression(C=0.5, tol=tol, max_iter=5000).fit(X, y)
        f_ours, f_theirs = (_sklearn_objective(X, y, e.classes_, e.coef_, e.intercept_, C=0.5)
                            for e in (ours, theirs))
        assert f_ours <= f_theirs + (1e-6 if tol > 1e-6 else 1e-11), (tol, f_ours, f_theirs)
        assert ours.history_.stop_reason == "converged"
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-4, atol=1e-5)


def test_gradient_descent_solver_is_still_there():
    X, y = load_breast_cancer(return_X_y=True)
    gd = LogisticRegression(solver="gd", max_iter=300).fit(X, y)
    lbfgs = LogisticRegression().fit(X, y)
    assert gd.n_iter_ == 300 and lbfgs.n_iter_ < 100
    assert gd.score(X, y) == pytest.approx(lbfgs.score(X, y), abs=0.01)
    with pytest.raises(ValueError, match="solver must be 'lbfgs' or 'gd'"):
        LogisticRegression(solver="newton").fit(X, y)
    with pytest.raises(ValueError, match="solver='lbfgs' is full batch"):
        LogisticRegression(batch_size=32).fit(X, y)
    with pytest.raises(ValueError, match="solver must be 'adam' or 'sgd'"):
        MLPClassifier(solver="lbfgs").fit(X, y)


def test_linear_regression_matches_least_squares():
    X, y = load_diabetes(return_X_y=True)
    ref = sk_linear.LinearRegression().fit(X, y)
    gd = LinearRegression(solver="gd", max_iter=2000).fit(X, y)
    assert gd.score(X, y) == pytest.approx(ref.score(X, y), abs=1e-3)
    np.testing.assert_allclose(gd.predict(X[:5]), ref.predict(X[:5]), rtol=0.05)
    ours = LinearRegression().fit(X, y)     # L-BFGS: the least-squares solution itself
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-4)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-5)
    ridge = LinearRegression(alpha=10.0, tol=1e-10).fit(X, y)
    Xs = (X - X.mean(0)) / X.std(0)
    ref = sk_linear.Ridge(alpha=10.0).fit(Xs, y)
    np.testing.assert_allclose(ridge.coef_ * X.std(0), ref.coef_, rtol=1e-5)


def test_fitted_attributes():
    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(solver="gd", max_iter=50).fit(X, y)
    assert list(clf.classes_) == [0, 1, 2] and clf.coef_.shape == (3, 4)
    assert clf.n_iter_ == 50 and len(clf.loss_curve_) == 50
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0)
    mlp = MLPClassifier(hidden_layer_sizes=(7,), max_iter=5, random_state=0).fit(X, y)
    assert [W.shape for W in mlp.coefs_] == [(4, 7), (7, 3)]
    assert [b.shape for b in mlp.intercepts_] == [(7,), (3,)]
    assert mlp.n_iter_ == len(mlp.loss_curve_) <= 5


def test_string_labels_and_binary():
    X, y = load_breast_cancer(return_X_y=True)
    labels = np.where(y == 1, "benign", "malignant")
    clf = LogisticRegression().fit(X, labels)
    assert set(clf.predict(X[:20])) <= {"benign", "malignant"}
    assert clf.coef_.shape == (1, X.shape[1]) and clf.score(X, labels) > 0.95


def test_cross_val_score_and_clone():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=40,
                                                         solver="sgd", learning_rate_init=0.01,
                                                         random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.mean() > 0.85
    params = clone(pipe).get_params()
    assert params["mlpclassifier__hidden_layer_sizes"] == (16,)
    pipe.set_params(mlpclassifier__alpha=1e-3)
    assert pipe.get_params()["mlpclassifier__alpha"] == 1e-3

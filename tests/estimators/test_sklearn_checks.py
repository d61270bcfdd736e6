"""scikit-learn's own conformance checks for the symgrad estimators.

Small settings keep the checks fast; checks that do not apply are listed with the
reason in EXPECTED_FAILURES (scikit-learn marks them xfail).
"""
from sklearn.utils.estimator_checks import parametrize_with_checks

from symgrad.estimators import LinearRegression, LogisticRegression, MLPClassifier

ESTIMATORS = [
    LogisticRegression(max_iter=100),
    LinearRegression(max_iter=200),
    MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, learning_rate_init=0.05),
]

EXPECTED_FAILURES = {}


def expected_failed_checks(estimator):
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)

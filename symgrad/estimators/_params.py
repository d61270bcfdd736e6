"""The estimators' hyperparameters, checked by type and range when ``fit`` starts (as
scikit-learn does, with its own machinery): a wrong value raises scikit-learn's
``InvalidParameterError`` (a ValueError and a TypeError) naming the parameter, the
estimator and what it accepts, before any data is looked at.

Choices that an estimator's code resolves (solvers, MLP activations) are only required
to be strings here; the estimator's own check lists the names.
"""
from numbers import Integral, Real

from sklearn.utils._param_validation import (Interval, StrOptions,
                                             validate_parameter_constraints)

_POSITIVE = Interval(Real, 0, None, closed="neither")
_NON_NEGATIVE = Interval(Real, 0, None, closed="left")
_COUNT = Interval(Integral, 1, None, closed="left")
_FRACTION = Interval(Real, 0, 1, closed="left")      # momentum and Adam's betas: [0, 1)

_LINEAR = {
    "solver": [str],
    "tol": [_NON_NEGATIVE],
    "lr": [StrOptions({"auto"}), _POSITIVE],
    "max_iter": [None, _COUNT],
    "batch_size": [None, _COUNT],
    "momentum": [_FRACTION],
    "standardize": ["boolean"],
    "random_state": ["random_state"],
}

CONSTRAINTS = {
    "LogisticRegression": {"C": [_POSITIVE], **_LINEAR},
    "LinearRegression": {"alpha": [_NON_NEGATIVE], **_LINEAR},
    "MLPClassifier": {
        "hidden_layer_sizes": ["array-like", _COUNT],
        "activation": [str],
        "solver": [str],
        "alpha": [_NON_NEGATIVE],
        "batch_size": [StrOptions({"auto"}), _COUNT],
        "learning_rate_init": [_POSITIVE],
        "max_iter": [_COUNT],
        "momentum": [_FRACTION],
        "shuffle": ["boolean"],
        "tol": [_NON_NEGATIVE],
        "n_iter_no_change": [_COUNT],
        "beta_1": [_FRACTION],
        "beta_2": [_FRACTION],
        "epsilon": [_POSITIVE],
        "standardize": ["boolean"],
        "random_state": ["random_state"],
    },
}


def check_hyperparameters(estimator):
    """Check ``estimator.get_params()`` against its constraints (unknown names pass)."""
    name = type(estimator).__name__
    constraints = next((CONSTRAINTS[c.__name__] for c in type(estimator).__mro__
                        if c.__name__ in CONSTRAINTS), None)
    if constraints is not None:
        validate_parameter_constraints(constraints, estimator.get_params(deep=False),
                                       caller_name=name)

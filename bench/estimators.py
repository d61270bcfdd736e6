"""Fit times and accuracies: symgrad's estimators beside scikit-learn's, same settings.

Not a timed test: it prints a table. Each symgrad model is fitted once first so its
kernels are compiled (or loaded from the cache) before timing; times are the best of
``--repeats`` fits. Data: 70/30 stratified splits, standardized with the training rows.

    python -m bench.estimators [--repeats 3]
"""
import argparse
import time
import warnings

import numpy as np
import sklearn.linear_model as sk_linear
import sklearn.neural_network as sk_nn
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from symgrad.estimators import LogisticRegression, MLPClassifier

DATASETS = {"digits": load_digits, "iris": load_iris, "breast_cancer": load_breast_cancer}
MLP_SETTINGS = dict(hidden_layer_sizes=(64,), batch_size=32, learning_rate_init=0.01,
                    max_iter=60, momentum=0.9, alpha=1e-4, random_state=0)


def pairs():
    """(label, symgrad estimator, scikit-learn estimator) at the same settings."""
    yield ("LogisticRegression C=1", LogisticRegression(C=1.0),
           sk_linear.LogisticRegression(C=1.0, max_iter=2000))
    yield ("MLP 64 relu, SGD batch 32", MLPClassifier(**MLP_SETTINGS),
           sk_nn.MLPClassifier(solver="sgd", nesterovs_momentum=False, **MLP_SETTINGS))


def split(load):
    X, y = load(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    scaler = StandardScaler().fit(Xtr)
    return scaler.transform(Xtr), scaler.transform(Xte), ytr, yte


def best_fit_time(est, X, y, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        est.fit(X, y)
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    print("| data | model | symgrad acc | sklearn acc | symgrad fit | sklearn fit | "
          "first symgrad fit (compile or cache load) |")
    print("|---|---|---|---|---|---|---|")
    for name, load in DATASETS.items():
        Xtr, Xte, ytr, yte = split(load)
        for label, ours, theirs in pairs():
            t0 = time.perf_counter()
            ours.fit(Xtr, ytr)
            first = time.perf_counter() - t0
            t_ours = best_fit_time(ours, Xtr, ytr, args.repeats)
            t_theirs = best_fit_time(theirs, Xtr, ytr, args.repeats)
            print(f"| {name} | {label} | {ours.score(Xte, yte):.4f} | "
                  f"{theirs.score(Xte, yte):.4f} | {t_ours * 1e3:.1f} ms | "
                  f"{t_theirs * 1e3:.1f} ms | {first:.2f} s |", flush=True)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())

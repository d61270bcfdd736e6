"""Fit times and accuracies: symgrad's estimators beside scikit-learn's, same settings.

Not a timed test: it prints a table and writes JSON. Each symgrad model is fitted once
first so its kernels are compiled (or loaded from the cache) before timing; times are
the best of ``--repeats`` fits, symgrad's and scikit-learn's interleaved. Data: 70/30
stratified splits, standardized with the training rows. Pin to one core for stable
numbers (``taskset -c 1``).

    python -m bench.estimators [--repeats 3] [--json bench/results/estimators.json]
"""
import argparse
import json
import time
import warnings
from pathlib import Path

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
                    max_iter=60, momentum=0.9, alpha=1e-4, random_state=0, solver="sgd")
ADAM_SETTINGS = dict(hidden_layer_sizes=(64,), batch_size=32, max_iter=60, alpha=1e-4,
                     random_state=0, n_iter_no_change=1000)   # both run all 60 epochs
DEFAULT_JSON = Path(__file__).parent / "results" / "estimators.json"


def pairs():
    """(label, symgrad estimator, scikit-learn estimator) at the same settings."""
    yield ("LogisticRegression C=1, L-BFGS (both defaults)", LogisticRegression(C=1.0),
           sk_linear.LogisticRegression(C=1.0))
    yield ("LogisticRegression C=1, symgrad GD", LogisticRegression(C=1.0, solver="gd"),
           sk_linear.LogisticRegression(C=1.0))
    yield ("MLP 64 relu, Adam lr 1e-3 batch 32", MLPClassifier(**ADAM_SETTINGS),
           sk_nn.MLPClassifier(solver="adam", **ADAM_SETTINGS))
    yield ("MLP 64 relu, SGD batch 32", MLPClassifier(**MLP_SETTINGS),
           sk_nn.MLPClassifier(nesterovs_momentum=False, **MLP_SETTINGS))


def split(load):
    X, y = load(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    scaler = StandardScaler().fit(Xtr)
    return scaler.transform(Xtr), scaler.transform(Xte), ytr, yte


def fit_time(est, X, y):
    t0 = time.perf_counter()
    est.fit(X, y)
    return time.perf_counter() - t0


def best_fit_times(ours, theirs, X, y, repeats):
    """Best of ``repeats`` fits of each, interleaved (same machine conditions)."""
    times = [[], []]
    for _ in range(repeats):
        for k, est in enumerate((ours, theirs)):
            times[k].append(fit_time(est, X, y))
    return min(times[0]), min(times[1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=str(DEFAULT_JSON))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    print("| data | model | symgrad acc | sklearn acc | symgrad fit | sklearn fit | "
          "iterations (symgrad / sklearn) | first symgrad fit (compile or cache load) |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for name, load in DATASETS.items():
        Xtr, Xte, ytr, yte = split(load)
        for label, ours, theirs in pairs():
            first = fit_time(ours, Xtr, ytr)
            fit_time(theirs, Xtr, ytr)
            t_ours, t_theirs = best_fit_times(ours, theirs, Xtr, ytr, args.repeats)
            row = {"data": name, "model": label, "symgrad_acc": ours.score(Xte, yte),
                   "sklearn_acc": theirs.score(Xte, yte), "symgrad_fit_s": t_ours,
                   "sklearn_fit_s": t_theirs, "symgrad_iter": int(ours.n_iter_),
                   "sklearn_iter": int(np.max(theirs.n_iter_)), "first_fit_s": first}
            rows.append(row)
            print(f"| {name} | {label} | {row['symgrad_acc']:.4f} | {row['sklearn_acc']:.4f} | "
                  f"{t_ours * 1e3:.1f} ms | {t_theirs * 1e3:.1f} ms | "
                  f"{row['symgrad_iter']} / {row['sklearn_iter']} | {first:.2f} s |", flush=True)
    Path(args.json).write_text(json.dumps({"versions": _versions(), "repeats": args.repeats,
                                           "rows": rows}, indent=1))
    return 0


def _versions():
    from importlib.metadata import version
    return {name: version(name) for name in ("symgrad", "numba", "numpy", "scipy",
                                             "scikit-learn")}


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())

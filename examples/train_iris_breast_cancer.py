"""Compiled training on iris (3 classes) and breast cancer (binary), with validation data.

Softmax regression and an MLP on iris; logistic regression and an MLP on breast
cancer. fit tracks the validation loss per epoch; accuracy is measured at the end.
Run: python examples/train_iris_breast_cancer.py
"""
import numpy as np
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.model_selection import train_test_split

import symgrad as sg


def standardized_split(X, y):
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    mu, sd = Xtr.mean(axis=0), Xtr.std(axis=0)
    return (Xtr - mu) / sd, (Xte - mu) / sd, ytr, yte


def train(name, model, data, epochs, lr, batch_size):
    Xtr, Xte, ytr, yte = data
    hist = sg.fit(model, model.init_params(seed=0), data={"X": Xtr, "y": ytr}, lr=lr,
                  epochs=epochs, batch_size=batch_size, momentum=0.9,
                  validation_data={"X": Xte, "y": yte}, metrics=())
    acc = model.accuracy(hist.params, Xte, yte)
    print(f"{name:40s} test accuracy {acc:.3f}  val_loss {hist.metrics['val_loss'][-1]:.4f}  "
          f"train {hist.time:.3f} s")
    return acc


X, y = load_iris(return_X_y=True)
iris = standardized_split(X, y)
assert train("iris: softmax regression", sg.nn.softmax_regression(4, 3), iris, 100, 0.1, 16) > 0.85
assert train("iris: MLP 4-16-3 (tanh)", sg.nn.mlp([4, 16, 3], activation="tanh"), iris,
             100, 0.05, 16) > 0.85

X, y = load_breast_cancer(return_X_y=True)
cancer = standardized_split(X, y.astype(np.float64))
assert train("breast cancer: logistic regression", sg.nn.logistic_regression(30, l2=1e-3),
             cancer, 100, 0.05, 32) > 0.9
cancer_int = cancer[:2] + tuple(v.astype(np.int64) for v in cancer[2:])
assert train("breast cancer: MLP 30-16-2 (relu)", sg.nn.mlp([30, 16, 2]), cancer_int,
             60, 0.05, 32) > 0.9

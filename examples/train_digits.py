"""Softmax regression and MLPs on scikit-learn's digits: compiled, then trained with fit.

Prints test accuracy and training time for softmax regression and two MLPs
(64-32-10 and 64-64-10, relu), all mini-batch SGD, batch 32, lr 0.1.
Run: python examples/train_digits.py [epochs]
"""
import sys
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import symgrad as sg

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
X, y = load_digits(return_X_y=True)
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
mu, sd = Xtr.mean(axis=0), Xtr.std(axis=0)
sd[sd == 0] = 1.0
Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd

models = {
    "softmax regression": sg.nn.softmax_regression(64, 10, l2=1e-4),
    "MLP 64-32-10": sg.nn.mlp([64, 32, 10], activation="relu"),
    "MLP 64-64-10": sg.nn.mlp([64, 64, 10], activation="relu"),
}
for name, model in models.items():
    t0 = time.perf_counter()
    fn = sg.compile(model.loss, params=model.params)   # Numba; cached on disk
    compiled = time.perf_counter() - t0
    hist = sg.fit(fn, model.init_params(seed=0), data={"X": Xtr, "y": ytr}, lr=0.1,
                  epochs=epochs, batch_size=32, metrics=())
    acc = model.accuracy(hist.params, Xte, yte)
    print(f"{name:20s} test accuracy {acc:.3f}  loss {hist.loss[0]:.3f} -> {hist.loss[-1]:.3f}  "
          f"compile {compiled:.2f} s  train {hist.time:.3f} s for {epochs} epochs")
    assert acc > 0.85 and np.isfinite(hist.loss[-1])

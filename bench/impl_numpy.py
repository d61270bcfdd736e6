"""Hand-written NumPy baselines: a Python loop over steps, numpy ops inside.

``loss(workload, params)`` is also the reference full-dataset loss used to
cross-check every other implementation.
"""
from __future__ import annotations

import numpy as np

from .workloads import Workload


# ----------------------------------------------------------------- primitives
def sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    out = np.empty_like(z)
    pos = z >= 0.0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def mean_cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    return float(-log_softmax(logits)[np.arange(y.shape[0]), y].mean())


def ce_grad_logits(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d(mean CE)/d logits = (softmax - onehot) / B."""
    g = softmax(logits)
    g[np.arange(y.shape[0]), y] -= 1.0
    g /= y.shape[0]
    return g


# ----------------------------------------------------------------- losses
def sigmoid_sse_loss(X, t, w) -> float:
    r = t - sigmoid(X @ w)
    return float(r @ r)


def softmax_loss(X, y, W, b, l2) -> float:
    return mean_cross_entropy(X @ W + b, y) + l2 * float(np.sum(W * W))


def mlp_loss(X, y, W1, b1, W2, b2) -> float:
    h = np.maximum(X @ W1 + b1, 0.0)
    return mean_cross_entropy(h @ W2 + b2, y)


def loss(wl: Workload, p: dict[str, np.ndarray]) -> float:
    """Full-dataset loss of ``wl`` at parameters ``p`` (reference definition)."""
    if wl.model == "sigmoid_sse":
        return sigmoid_sse_loss(wl.X, wl.y, p["w"])
    if wl.model == "softmax":
        return softmax_loss(wl.X, wl.y, p["W"], p["b"], wl.l2)
    if wl.model == "mlp":
        return mlp_loss(wl.X, wl.y, p["W1"], p["b1"], p["W2"], p["b2"])
    raise ValueError(f"unknown model {wl.model!r}")


# ----------------------------------------------------------------- trainers
def train_sigmoid_sse(wl: Workload):
    X, t, lr = wl.X, wl.y, wl.lr
    w = wl.init_params()["w"]
    for _ in range(wl.steps):
        s = sigmoid(X @ w)
        dz = -2.0 * (t - s) * s * (1.0 - s)
        w -= lr * (X.T @ dz)
    p = {"w": w}
    return p, loss(wl, p)


def train_softmax(wl: Workload):
    X, y, lr, l2 = wl.X, wl.y, wl.lr, wl.l2
    p = wl.init_params()
    W, b = p["W"], p["b"]
    for idx in wl.batches():
        xb = X[idx]
        g = ce_grad_logits(xb @ W + b, y[idx])
        gW = xb.T @ g + (2.0 * l2) * W
        gb = g.sum(axis=0)
        W -= lr * gW
        b -= lr * gb
    return p, loss(wl, p)


def train_mlp(wl: Workload):
    X, y, lr = wl.X, wl.y, wl.lr
    p = wl.init_params()
    W1, b1, W2, b2 = p["W1"], p["b1"], p["W2"], p["b2"]
    for idx in wl.batches():
        xb = X[idx]
        h = np.maximum(xb @ W1 + b1, 0.0)
        g2 = ce_grad_logits(h @ W2 + b2, y[idx])
        gh = (g2 @ W2.T) * (h > 0.0)
        gW2, gb2 = h.T @ g2, g2.sum(axis=0)
        gW1, gb1 = xb.T @ gh, gh.sum(axis=0)
        W1 -= lr * gW1
        b1 -= lr * gb1
        W2 -= lr * gW2
        b2 -= lr * gb2
    return p, loss(wl, p)


TRAINERS = {"W1": train_sigmoid_sse, "W2": train_softmax,
            "W3": train_mlp, "W4": train_mlp}

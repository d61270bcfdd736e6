"""Hand-written Numba baselines: the speed reference for symgrad.

Each trainer is one ``@njit`` kernel over the whole run (steps x batches),
with buffers allocated once, BLAS through ``np.dot(a, b, out)`` and explicit
loops for the elementwise parts.  No fastmath, no parallel=True, no on-disk
cache (so the first call measures a real JIT compile). Buffers take the data's
dtype, so the same trainers run a float32 copy of a workload in float32
(``bench.workloads.as_float32``).  Every workload gets its
own top-level dispatcher so each one's first call includes its own compile;
the small shared helpers are compiled once, on first use.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .workloads import Workload


# ----------------------------------------------------------------- helpers
@njit
def _sigmoid(z):
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    ez = math.exp(z)
    return ez / (1.0 + ez)


@njit
def _gather_rows(X, idx, out):
    """out[r, :] = X[idx[r], :]"""
    d = X.shape[1]
    for r in range(idx.shape[0]):
        src_row = X[idx[r]]
        dst_row = out[r]
        for j in range(d):
            dst_row[j] = src_row[j]


@njit
def _add_bias(a, bias):
    for r in range(a.shape[0]):
        for j in range(a.shape[1]):
            a[r, j] += bias[j]


@njit
def _add_bias_relu(a, bias):
    for r in range(a.shape[0]):
        for j in range(a.shape[1]):
            v = a[r, j] + bias[j]
            a[r, j] = v if v > 0.0 else 0.0


@njit
def _relu_mask(g, h):
    """g *= (h > 0), as a select (keeps the loop vectorizable)."""
    for r in range(g.shape[0]):
        for j in range(g.shape[1]):
            g[r, j] = g[r, j] if h[r, j] > 0.0 else 0.0


@njit
def _ce_grad_inplace(z, y, idx):
    """z holds logits; overwrite with d(mean CE)/dz = (softmax - onehot)/B."""
    B, k = z.shape
    for r in range(B):
        m = z[r, 0]
        for j in range(1, k):
            if z[r, j] > m:
                m = z[r, j]
        total = 0.0
        for j in range(k):
            e = math.exp(z[r, j] - m)
            z[r, j] = e
            total += e
        for j in range(k):
            z[r, j] = z[r, j] / total
        z[r, y[idx[r]]] -= 1.0
        for j in range(k):
            z[r, j] /= B


@njit
def _mean_ce(z, y):
    """Mean cross-entropy of logits z (n, k) against labels y (n,)."""
    n, k = z.shape
    acc = 0.0
    for r in range(n):
        m = z[r, 0]
        for j in range(1, k):
            if z[r, j] > m:
                m = z[r, j]
        total = 0.0
        for j in range(k):
            total += math.exp(z[r, j] - m)
        acc += m + math.log(total) - z[r, y[r]]
    return acc / n


@njit
def _sgd_matrix(W, G, lr):
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            W[i, j] -= lr * G[i, j]


@njit
def _sgd_bias_colsum(b, G, lr, acc):
    """b -= lr * G.sum(axis=0); acc is a (k,) scratch buffer."""
    k = b.shape[0]
    for j in range(k):
        acc[j] = 0.0
    for r in range(G.shape[0]):
        row = G[r]
        for j in range(k):
            acc[j] += row[j]
    for j in range(k):
        b[j] -= lr * acc[j]


# ----------------------------------------------------------------- W1
@njit
def _sigmoid_sse_run(X, t, w, lr, steps):
    n, d = X.shape
    # One (d, n) C-contiguous copy: OpenBLAS gemv is ~25% faster on this
    # layout for both X @ w and X.T @ dz than on the (n, d) original.
    XT = np.ascontiguousarray(X.T)
    z = np.empty(n, X.dtype)
    dz = np.empty(n, X.dtype)
    g = np.empty(d, X.dtype)
    for _ in range(steps):
        np.dot(XT.T, w, z)
        for i in range(n):
            s = _sigmoid(z[i])
            dz[i] = -2.0 * (t[i] - s) * s * (1.0 - s)
        np.dot(XT, dz, g)
        for j in range(d):
            w[j] -= lr * g[j]


@njit
def _sigmoid_sse_loss(X, t, w):
    z = np.dot(X, w)
    acc = 0.0
    for i in range(z.shape[0]):
        r = t[i] - _sigmoid(z[i])
        acc += r * r
    return acc


# ----------------------------------------------------------------- W2
@njit
def _softmax_run(X, y, W, b, lr, l2, batches):
    steps, B = batches.shape
    d, k = W.shape
    xb = np.empty((B, d), X.dtype)
    z = np.empty((B, k), X.dtype)
    gW = np.empty((d, k), X.dtype)
    gb = np.empty(k, X.dtype)
    two_l2 = 2.0 * l2
    for s in range(steps):
        idx = batches[s]
        _gather_rows(X, idx, xb)
        np.dot(xb, W, z)
        _add_bias(z, b)
        _ce_grad_inplace(z, y, idx)
        np.dot(xb.T, z, gW)
        for i in range(d):
            for j in range(k):
                W[i, j] -= lr * (gW[i, j] + two_l2 * W[i, j])
        _sgd_bias_colsum(b, z, lr, gb)


@njit
def _softmax_loss(X, y, W, b, l2):
    z = np.dot(X, W)
    _add_bias(z, b)
    reg = 0.0
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            reg += W[i, j] * W[i, j]
    return _mean_ce(z, y) + l2 * reg


# ----------------------------------------------------------------- W3 / W4
def _mlp_run_py(X, y, W1, b1, W2, b2, lr, batches):
    steps, B = batches.shape
    d, H = W1.shape
    k = W2.shape[1]
    dt = X.dtype
    xb = np.empty((B, d), dt)
    h = np.empty((B, H), dt)
    z = np.empty((B, k), dt)
    gh = np.empty((B, H), dt)
    gW1 = np.empty((d, H), dt)
    gW2 = np.empty((H, k), dt)
    W2T = np.empty((k, H), dt)
    gb1 = np.empty(H, dt)
    gb2 = np.empty(k, dt)
    for s in range(steps):
        idx = batches[s]
        _gather_rows(X, idx, xb)
        np.dot(xb, W1, h)
        _add_bias_relu(h, b1)
        np.dot(h, W2, z)
        _add_bias(z, b2)
        _ce_grad_inplace(z, y, idx)
        np.dot(h.T, z, gW2)
        W2T[:, :] = W2.T
        np.dot(z, W2T, gh)
        _relu_mask(gh, h)
        np.dot(xb.T, gh, gW1)
        _sgd_matrix(W1, gW1, lr)
        _sgd_bias_colsum(b1, gh, lr, gb1)
        _sgd_matrix(W2, gW2, lr)
        _sgd_bias_colsum(b2, z, lr, gb2)


@njit
def _mlp_loss(X, y, W1, b1, W2, b2):
    h = np.dot(X, W1)
    _add_bias_relu(h, b1)
    z = np.dot(h, W2)
    _add_bias(z, b2)
    return _mean_ce(z, y)


_mlp_run_w3 = njit(_mlp_run_py)
_mlp_run_w4 = njit(_mlp_run_py)


# ----------------------------------------------------------------- trainers
def train_w1(wl: Workload):
    p = wl.init_params()
    _sigmoid_sse_run(wl.X, wl.y, p["w"], wl.lr, wl.steps)
    return p, float(_sigmoid_sse_loss(wl.X, wl.y, p["w"]))


def train_w2(wl: Workload):
    p = wl.init_params()
    _softmax_run(wl.X, wl.y, p["W"], p["b"], wl.lr, wl.l2, wl.batches())
    return p, float(_softmax_loss(wl.X, wl.y, p["W"], p["b"], wl.l2))


def _train_mlp(run, wl: Workload):
    p = wl.init_params()
    run(wl.X, wl.y, p["W1"], p["b1"], p["W2"], p["b2"], wl.lr, wl.batches())
    return p, float(_mlp_loss(wl.X, wl.y, p["W1"], p["b1"], p["W2"], p["b2"]))


def train_w3(wl: Workload):
    return _train_mlp(_mlp_run_w3, wl)


def train_w4(wl: Workload):
    return _train_mlp(_mlp_run_w4, wl)


TRAINERS = {"W1": train_w1, "W2": train_w2, "W3": train_w3, "W4": train_w4}

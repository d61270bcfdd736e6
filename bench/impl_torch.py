"""PyTorch eager baselines: float64, one thread, autograd + manual SGD.

Importing this module raises ImportError when torch is not installed;
``bench.baselines`` turns that into a "not installed" row.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .workloads import Workload

torch.set_num_threads(1)


def _tensors(wl: Workload):
    X = torch.tensor(wl.X)  # copies: the shared digits arrays are read-only
    y = torch.tensor(wl.y)
    params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
              for k, v in wl.params.items()}
    return X, y, params


def _to_numpy(params):
    return {k: v.detach().numpy().copy() for k, v in params.items()}


def _sgd_(params, lr: float) -> None:
    with torch.no_grad():
        for p in params.values():
            p -= lr * p.grad
            p.grad = None


# ----------------------------------------------------------------- losses
def sigmoid_sse_loss(X, t, p):
    r = t - torch.sigmoid(X @ p["w"])
    return (r * r).sum()


def softmax_loss(X, y, p, l2: float):
    W = p["W"]
    return F.cross_entropy(X @ W + p["b"], y) + l2 * (W * W).sum()


def mlp_loss(X, y, p):
    h = torch.relu(X @ p["W1"] + p["b1"])
    return F.cross_entropy(h @ p["W2"] + p["b2"], y)


def _loss_fn(wl: Workload):
    if wl.model == "sigmoid_sse":
        return sigmoid_sse_loss
    if wl.model == "softmax":
        return lambda X, y, p: softmax_loss(X, y, p, wl.l2)
    if wl.model == "mlp":
        return mlp_loss
    raise ValueError(f"unknown model {wl.model!r}")


# ----------------------------------------------------------------- trainer
def train(wl: Workload):
    """Generic eager loop: gather batch, forward, backward, SGD update."""
    X, y, params = _tensors(wl)
    loss_fn = _loss_fn(wl)
    if wl.full_batch:
        for _ in range(wl.steps):
            loss_fn(X, y, params).backward()
            _sgd_(params, wl.lr)
    else:
        for idx in torch.from_numpy(wl.batches()):
            loss_fn(X[idx], y[idx], params).backward()
            _sgd_(params, wl.lr)
    with torch.no_grad():
        final = float(loss_fn(X, y, params))
    return _to_numpy(params), final


TRAINERS = {"W1": train, "W2": train, "W3": train, "W4": train}

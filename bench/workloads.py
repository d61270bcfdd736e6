"""Benchmark workloads: data, initial parameters and the SGD schedule.

Everything is float64 and deterministic (numpy ``default_rng`` seeds), so every
implementation trains from the same initial parameters on the same batch order
and final losses agree to rounding.

Models (``Workload.model``):

* ``"sigmoid_sse"``: L = sum_i (t_i - sigmoid(x_i . w))^2, params {"w": (d,)}.
* ``"softmax"``: L = mean_i CE(softmax(x_i @ W + b), y_i) + l2 * sum(W^2),
  params {"W": (d, k), "b": (k,)}.
* ``"mlp"``: logits = relu(x @ W1 + b1) @ W2 + b2, L = mean CE,
  params {"W1", "b1", "W2", "b2"}.

Minibatch schedule: for epoch e and batch j the rows are
``orders[e, j*B:(j+1)*B]``; the last partial batch of each epoch is dropped.
``Workload.batches()`` flattens that into a (steps, B) index array.  Full-batch
workloads (W1) have ``orders=None``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class Workload:
    name: str
    model: str  # "sigmoid_sse" | "softmax" | "mlp"
    X: np.ndarray  # (n, d) float64, C-contiguous
    y: np.ndarray  # int64 labels (n,) or float64 targets (n,)
    params: dict[str, np.ndarray]  # initial parameters; never mutate
    lr: float
    epochs: int  # number of passes (full-batch: number of GD steps)
    batch_size: int
    orders: np.ndarray | None  # (epochs, n) int64 permutations, None = full batch
    description: str
    l2: float = 0.0  # coefficient of l2 * sum(W^2) (softmax only)
    n_classes: int = 0  # 0 for regression targets

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def full_batch(self) -> bool:
        return self.orders is None

    @property
    def batches_per_epoch(self) -> int:
        return 1 if self.full_batch else self.n // self.batch_size

    @property
    def steps(self) -> int:
        return self.epochs * self.batches_per_epoch

    def init_params(self) -> dict[str, np.ndarray]:
        """Fresh copies of the initial parameters (safe to update in place)."""
        return {k: v.copy() for k, v in self.params.items()}

    def batches(self) -> np.ndarray | None:
        """(steps, batch_size) int64 row indices in training order."""
        if self.full_batch:
            return None
        used = self.batches_per_epoch * self.batch_size
        idx = self.orders[:, :used].reshape(self.steps, self.batch_size)
        return np.ascontiguousarray(idx, dtype=np.int64)


def epoch_orders(n: int, epochs: int, seed: int) -> np.ndarray:
    """(epochs, n) int64 array; row e is the shuffle permutation of epoch e."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n) for _ in range(epochs)]).astype(np.int64)


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """sklearn digits (1797 x 64), standardized per feature (std 0 -> 1)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    X = np.asarray(data.data, dtype=np.float64)
    std = X.std(axis=0)
    std[std == 0.0] = 1.0
    X = (X - X.mean(axis=0)) / std
    y = np.asarray(data.target, dtype=np.int64)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def _he(rng, fan_in: int, fan_out: int) -> np.ndarray:
    return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)


def _glorot(rng, fan_in: int, fan_out: int) -> np.ndarray:
    return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / (fan_in + fan_out))


def _mlp_params(rng, d: int, h: int, k: int) -> dict[str, np.ndarray]:
    return {
        "W1": _he(rng, d, h),
        "b1": np.zeros(h),
        "W2": _glorot(rng, h, k),
        "b2": np.zeros(k),
    }


def make_w1(seed: int = 1) -> Workload:
    n, d, steps = 4096, 64, 300
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    teacher = rng.standard_normal(d)
    t = (X @ teacher > 0.0).astype(np.float64)
    w0 = 0.01 * rng.standard_normal(d)
    return Workload(
        name="W1", model="sigmoid_sse", X=X, y=t, params={"w": w0},
        lr=1e-3, epochs=steps, batch_size=n, orders=None,
        description="sigmoid perceptron, sum sq. error, N=4096 d=64, "
                    "full-batch GD lr=1e-3, 300 steps",
    )


def make_w2(seed: int = 2) -> Workload:
    X, y = _digits()
    d, k, epochs, bs = X.shape[1], 10, 20, 32
    rng = np.random.default_rng(seed)
    params = {"W": 0.01 * rng.standard_normal((d, k)), "b": np.zeros(k)}
    return Workload(
        name="W2", model="softmax", X=X, y=y, params=params,
        lr=0.1, epochs=epochs, batch_size=bs,
        orders=epoch_orders(X.shape[0], epochs, seed + 100),
        description="softmax regression on digits (1797x64), mean CE + "
                    "1e-4*sum(W^2), SGD batch 32 lr=0.1, 20 epochs",
        l2=1e-4, n_classes=k,
    )


def make_w3(seed: int = 3) -> Workload:
    X, y = _digits()
    epochs, bs = 20, 32
    rng = np.random.default_rng(seed)
    return Workload(
        name="W3", model="mlp", X=X, y=y, params=_mlp_params(rng, 64, 64, 10),
        lr=0.1, epochs=epochs, batch_size=bs,
        orders=epoch_orders(X.shape[0], epochs, seed + 100),
        description="MLP 64-64(relu)-10 on digits, mean CE, SGD batch 32 "
                    "lr=0.1, 20 epochs",
        n_classes=10,
    )


def make_w4(seed: int = 4) -> Workload:
    n, d, h, k, epochs, bs = 8192, 256, 256, 10, 10, 256
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    teacher = _mlp_params(rng, d, h, k)
    teacher["b1"] = 0.1 * rng.standard_normal(h)
    hidden = np.maximum(X @ teacher["W1"] + teacher["b1"], 0.0)
    logits = hidden @ teacher["W2"]
    logits -= logits.mean(axis=0)  # teacher b2: centre classes so labels are balanced
    y = np.argmax(logits, axis=1).astype(np.int64)
    return Workload(
        name="W4", model="mlp", X=X, y=y, params=_mlp_params(rng, d, h, k),
        lr=0.05, epochs=epochs, batch_size=bs,
        orders=epoch_orders(n, epochs, seed + 100),
        description="MLP 256-256(relu)-10, synthetic N=8192 (teacher-net "
                    "labels), SGD batch 256 lr=0.05, 10 epochs",
        n_classes=k,
    )


def as_float32(wl: Workload) -> Workload:
    """The same workload with float32 data and initial parameters (labels stay int64)."""
    y = wl.y if wl.y.dtype.kind == "i" else wl.y.astype(np.float32)
    return replace(wl, X=wl.X.astype(np.float32), y=y,
                   params={k: v.astype(np.float32) for k, v in wl.params.items()})


WORKLOADS = {"W1": make_w1, "W2": make_w2, "W3": make_w3, "W4": make_w4}

"""symgrad trainers for the benchmark workloads: declare, compile, run the fused loop.

The first call of each trainer declares the model and compiles it (code
generation plus Numba), so the benchmark's "first call" column is symgrad's
compile time; later calls reuse the compiled model, as a user's session would.
"""
from __future__ import annotations

import numpy as np

import symgrad as sg
from symgrad.codegen import compile as sg_compile

from .workloads import Workload

_COMPILED: dict = {}


def _model(wl: Workload):
    X = sg.tensor("X", ("N", "D"))
    if wl.model == "sigmoid_sse":
        t, w = sg.tensor("y", ("N",)), sg.param("w", ("D",))
        return sg.sum((t - sg.sigmoid(X @ w)) ** 2), [w]
    y = sg.tensor("y", ("N",), dtype=int)
    if wl.model == "softmax":
        W, b = sg.param("W", ("D", "C")), sg.param("b", ("C",))
        return sg.cross_entropy(X @ W + b, y) + wl.l2 * sg.l2(W), [W, b]
    W1, b1 = sg.param("W1", ("D", "H")), sg.param("b1", ("H",))
    W2, b2 = sg.param("W2", ("H", "C")), sg.param("b2", ("C",))
    h = sg.relu(X @ W1 + b1).named("h")
    return sg.cross_entropy(h @ W2 + b2, y), [W1, b1, W2, b2]


def compiled(wl: Workload):
    """The workload's model compiled for its data's float dtype (once per process)."""
    key = (wl.name, wl.X.dtype.str)
    if key not in _COMPILED:
        loss, params = _model(wl)
        _COMPILED[key] = sg_compile(loss, params=params, dtype=wl.X.dtype)
    return _COMPILED[key]


def train(wl: Workload):
    fn = compiled(wl)
    params = wl.init_params()
    data = {"X": wl.X, "y": wl.y}
    lrs = np.full(wl.epochs, wl.lr)
    batch = None if wl.full_batch else wl.batch_size
    fn.run_epochs(params, data, wl.orders, lrs, batch)
    return params, float(fn.loss(params, **data))


def train_fit(wl: Workload, progress=False):
    """The same run through ``sg.fit`` (metrics off; the progress bar as ``progress``):
    what the driver adds to ``run_epochs``. fit shuffles with its own generator, so the
    batch order (and the final loss, slightly) differs from the workload's."""
    fn = compiled(wl)
    data = {"X": wl.X, "y": wl.y}
    batch = None if wl.full_batch else wl.batch_size
    hist = sg.fit(fn, wl.init_params(), data=data, lr=wl.lr, epochs=wl.epochs,
                  batch_size=batch, seed=0, metrics=(), progress=progress)
    return hist.params, float(fn.loss(hist.params, **data))


def train_fit_bar(wl: Workload):
    """``train_fit`` with fit's progress bar on (SYMGRAD_PROGRESS lifted for the call, the
    bar drawn to a discarded stream): what the bar adds, as a user sees it by default."""
    import contextlib
    import io
    import os
    saved = os.environ.pop("SYMGRAD_PROGRESS", None)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            return train_fit(wl, progress=True)
    finally:
        if saved is not None:
            os.environ["SYMGRAD_PROGRESS"] = saved


TRAINERS = {name: train for name in ("W1", "W2", "W3", "W4")}
FIT_TRAINERS = {name: train_fit for name in ("W1", "W2", "W3", "W4")}
FIT_BAR_TRAINERS = {name: train_fit_bar for name in ("W1", "W2", "W3", "W4")}

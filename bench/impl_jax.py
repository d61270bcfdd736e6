"""JAX baselines (CPU, float64): a jitted step in a Python loop, and the whole
run as one jitted ``lax.scan`` with the minibatches gathered inside.

Importing this module raises ImportError when jax is not installed;
``bench.baselines`` turns that into a "not installed" row.  Thread pinning is
done through XLA_FLAGS (see ``bench.env``) before jax is imported.
"""
from __future__ import annotations

from functools import partial

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

from .workloads import Workload  # noqa: E402


# ----------------------------------------------------------------- losses
# All take (params, X, y, l2); l2 is only used by the softmax model.
def _mean_ce(logits, y):
    logp = jax.nn.log_softmax(logits, axis=1)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def sigmoid_sse_loss(p, X, t, l2):
    r = t - jax.nn.sigmoid(X @ p["w"])
    return jnp.sum(r * r)


def softmax_loss(p, X, y, l2):
    W = p["W"]
    return _mean_ce(X @ W + p["b"], y) + l2 * jnp.sum(W * W)


def mlp_loss(p, X, y, l2):
    h = jax.nn.relu(X @ p["W1"] + p["b1"])
    return _mean_ce(h @ p["W2"] + p["b2"], y)


LOSSES = {"sigmoid_sse": sigmoid_sse_loss, "softmax": softmax_loss, "mlp": mlp_loss}


def _sgd(model, params, xb, yb, lr, l2):
    grads = jax.grad(LOSSES[model])(params, xb, yb, l2)
    return jax.tree.map(lambda p, g: p - lr * g, params, grads)


# ----------------------------------------------------------------- jitted pieces
@partial(jax.jit, static_argnames="model")
def full_loss(params, X, y, l2, model):
    return LOSSES[model](params, X, y, l2)


@partial(jax.jit, static_argnames="model")
def gd_step(params, X, y, lr, l2, model):
    """One full-batch gradient step."""
    return _sgd(model, params, X, y, lr, l2)


@partial(jax.jit, static_argnames="model")
def sgd_step(params, X, y, idx, lr, l2, model):
    """One minibatch step; the batch rows ``idx`` are gathered on device."""
    return _sgd(model, params, X[idx], y[idx], lr, l2)


@partial(jax.jit, static_argnames=("model", "steps"))
def gd_scan(params, X, y, lr, l2, model, steps):
    def body(p, _):
        return _sgd(model, p, X, y, lr, l2), None

    return lax.scan(body, params, None, length=steps)[0]


@partial(jax.jit, static_argnames="model")
def sgd_scan(params, X, y, batches, lr, l2, model):
    def body(p, idx):
        return _sgd(model, p, X[idx], y[idx], lr, l2), None

    return lax.scan(body, params, batches)[0]


# ----------------------------------------------------------------- trainers
def _setup(wl: Workload):
    params = {k: jnp.asarray(v) for k, v in wl.params.items()}
    return params, jnp.asarray(wl.X), jnp.asarray(wl.y)


def _finish(wl: Workload, params, X, y):
    loss = float(full_loss(params, X, y, wl.l2, wl.model))
    return {k: np.asarray(v) for k, v in params.items()}, loss


def train_jit(wl: Workload):
    """Python loop calling one jitted step function per step."""
    params, X, y = _setup(wl)
    if wl.full_batch:
        for _ in range(wl.steps):
            params = gd_step(params, X, y, wl.lr, wl.l2, wl.model)
    else:
        for idx in wl.batches():
            params = sgd_step(params, X, y, idx, wl.lr, wl.l2, wl.model)
    return _finish(wl, params, X, y)


def train_scan(wl: Workload):
    """The whole run as one jitted lax.scan."""
    params, X, y = _setup(wl)
    if wl.full_batch:
        params = gd_scan(params, X, y, wl.lr, wl.l2, wl.model, wl.steps)
    else:
        batches = jnp.asarray(wl.batches())
        params = sgd_scan(params, X, y, batches, wl.lr, wl.l2, wl.model)
    return _finish(wl, params, X, y)


JIT_TRAINERS = {"W1": train_jit, "W2": train_jit, "W3": train_jit, "W4": train_jit}
SCAN_TRAINERS = {"W1": train_scan, "W2": train_scan, "W3": train_scan, "W4": train_scan}

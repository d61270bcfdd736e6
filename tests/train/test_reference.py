"""The NumPy reference run_epochs against hand-written SGD, and its contract details."""
import numpy as np
import pytest

import symgrad as sg
from symgrad.train import NumpyModel


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _hand_loss_grad(W, b, X, y, l2):
    """Mean cross-entropy + l2 * sum W^2 and its gradient, written out by hand."""
    z = X @ W + b
    p = _softmax(z)
    n = len(y)
    loss = -np.mean(np.log(p[np.arange(n), y])) + l2 * np.sum(W * W)
    g = p.copy()
    g[np.arange(n), y] -= 1.0
    g /= n
    return loss, X.T @ g + 2 * l2 * W, g.sum(axis=0)


def _hand_sgd(params, X, y, orders, lrs, batch_size, momentum, l2=0.01):
    W, b = params["W"].copy(), params["b"].copy()
    vW, vb = np.zeros_like(W), np.zeros_like(b)
    losses = []
    for order, lr in zip(orders, lrs):
        batch_losses = []
        for k in range(len(order) // batch_size):
            rows = order[k * batch_size:(k + 1) * batch_size]
            loss, gW, gb = _hand_loss_grad(W, b, X[rows], y[rows], l2)
            batch_losses.append(loss)
            vW, vb = momentum * vW - lr * gW, momentum * vb - lr * gb
            W, b = W + vW, b + vb
        losses.append(np.mean(batch_losses))
    return {"W": W, "b": b}, np.array(losses)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_run_epochs_matches_hand_written_sgd(momentum, make_softmax):
    L, params, data = make_softmax(n=50)
    model = NumpyModel(L)
    rng = np.random.default_rng(3)
    orders = np.stack([rng.permutation(50) for _ in range(4)])
    lrs = np.array([0.5, 0.4, 0.3, 0.2])
    want, want_losses = _hand_sgd(params, data["X"], data["y"], orders, lrs, 8, momentum)
    mine = {k: v.copy() for k, v in params.items()}
    velocity = {k: np.zeros_like(v) for k, v in params.items()} if momentum else None
    losses, done = model.run_epochs(mine, data, orders, lrs, 8, momentum, velocity)
    assert done == 4
    np.testing.assert_allclose(losses, want_losses, rtol=1e-12)
    for k in want:
        np.testing.assert_allclose(mine[k], want[k], rtol=1e-10, atol=1e-12)
    if momentum:
        assert np.any(velocity["W"] != 0)  # momentum buffers are updated in place


def test_full_batch_step_is_grad_step(make_softmax):
    L, params, data = make_softmax()
    model = NumpyModel(L)
    g = model.grad(params, **data)
    p = {k: v.copy() for k, v in params.items()}
    losses, done = model.run_epochs(p, data, None, np.array([0.1]), None)
    assert done == 1 and losses[0] == model.loss(params, **data)
    for k in p:
        np.testing.assert_array_equal(p[k], params[k] - 0.1 * g[k])


def test_last_partial_batch_is_dropped(make_softmax):
    # 10 rows in batches of 4: rows 8 and 9 (the identity order's tail) never train.
    L, params, data = make_softmax(n=10)
    model = NumpyModel(L)
    p1 = {k: v.copy() for k, v in params.items()}
    model.run_epochs(p1, data, None, np.array([0.1]), 4)
    p2 = {k: v.copy() for k, v in params.items()}
    model.run_epochs(p2, {k: v[:8] for k, v in data.items()}, None, np.array([0.1]), 4)
    for k in p1:
        np.testing.assert_array_equal(p1[k], p2[k])


def test_grad_matches_central_differences(make_softmax):
    L, params, data = make_softmax(n=20, l2=0.1)
    model = NumpyModel(L)
    g = model.grad(params, **data)
    eps = 1e-6
    for name, value in params.items():
        for idx in np.ndindex(value.shape):
            up = {k: v.copy() for k, v in params.items()}
            down = {k: v.copy() for k, v in params.items()}
            up[name][idx] += eps
            down[name][idx] -= eps
            numeric = (model.loss(up, **data) - model.loss(down, **data)) / (2 * eps)
            assert abs(numeric - g[name][idx]) < 1e-6


def test_divergence_stops_and_restores_the_epoch_start(make_softmax):
    L, params, data = make_softmax(n=40)
    model = NumpyModel(L)
    p = {k: v.copy() for k, v in params.items()}
    lrs = np.array([0.1, 0.1, 1e305, 0.1])  # epoch 2 overflows the params
    losses, done = model.run_epochs(p, data, None, lrs, 8)
    assert done == 2
    assert np.all(np.isfinite(losses[:2])) and not np.isfinite(losses[2]) and np.isnan(losses[3])
    q = {k: v.copy() for k, v in params.items()}
    model.run_epochs(q, data, None, lrs[:2], 8)
    for k in p:  # the params after the last finite epoch, bit for bit
        np.testing.assert_array_equal(p[k], q[k])


def test_output_by_name_and_node(make_softmax):
    L, params, data = make_softmax()
    model = NumpyModel(L)
    z = model.output("z", params, **data)
    np.testing.assert_allclose(z, data["X"] @ params["W"] + params["b"])
    with pytest.raises(sg.DeclarationError, match="no node named 'nope'"):
        model.output("nope", params, **data)


def test_non_leading_batch_dim_is_gathered():
    # The batch dim "N" is the second axis of Xt: minibatches take its columns.
    rng = np.random.default_rng(0)
    Xt, t, w = sg.tensor("Xt", ("D", "N")), sg.tensor("t", ("N",)), sg.param("w", ("D",))
    model = NumpyModel(sg.mse(w @ Xt, t))
    assert model.batch_dim == "N"
    X = rng.standard_normal((30, 4))
    data = {"Xt": X.T, "t": X @ np.arange(4.0)}
    p = {"w": np.zeros(4)}
    losses, done = model.run_epochs(p, data, None, np.full(30, 0.1), 5)
    assert done == 30 and losses[-1] < 1e-3 * losses[0]
    np.testing.assert_allclose(p["w"], np.arange(4.0), atol=1e-2)

"""run_epochs equals a NumPy loop of the same SGD steps; it stops on NaN; export trains."""
import importlib.util

import numpy as np
import pytest

from symgrad.codegen import compile
from symgrad.diff.reverse import backward
from symgrad.graph.evaluate import evaluate
from tests.cases import linear_regression, mlp, sigmoid_perceptron, softmax_regression


def numpy_sgd(loss, params, data, orders, lrs, batch_size, momentum=0.0):
    """The reference: the evaluator's loss and gradients, minibatch by minibatch."""
    grads, _ = backward(loss, params)
    names = {p.name for p in params}
    P = {p.name: np.array(data[p.name], np.float64) for p in params}
    V = {k: np.zeros_like(v) for k, v in P.items()}
    rows = {k: np.asarray(v) for k, v in data.items() if k not in names}
    n = len(next(iter(rows.values())))
    bs = batch_size or n
    losses = []
    for e, lr in enumerate(lrs):
        order = orders[e] if batch_size else np.arange(n)
        total = 0.0
        for b in range(n // bs):
            idx = order[b * bs:(b + 1) * bs]
            values = evaluate([loss] + [grads[p] for p in params],
                              {**{k: v[idx] for k, v in rows.items()}, **P})
            if not np.isfinite(values[0]):
                return P, losses + [values[0]]
            total += values[0]
            for p, g in zip(params, values[1:]):
                if momentum:
                    V[p.name] = momentum * V[p.name] - lr * g
                    P[p.name] += V[p.name]
                else:
                    P[p.name] -= lr * g
        losses.append(total / (n // bs))
    return P, losses


def run(fn, params, data, orders, lrs, batch_size, momentum=0.0):
    names = {p.name for p in params}
    P = {p.name: np.array(data[p.name], np.float64) for p in params}
    rows = {k: v for k, v in data.items() if k not in names}
    losses, done = fn.run_epochs(P, rows, orders, lrs, batch_size, momentum=momentum)
    return P, losses, done


@pytest.mark.parametrize("builder, batch_size, momentum", [
    (lambda: sigmoid_perceptron(n=40, d=3), None, 0.0),
    (lambda: softmax_regression(n=9), 4, 0.9),
    (lambda: mlp(2, "tanh", n=10), 3, 0.5),
])
def test_run_epochs_matches_numpy_loop(builder, batch_size, momentum):
    loss, params, data = builder()
    n = len(data["X" if "X" in data else "x"])
    rng = np.random.default_rng(7)
    epochs = 4
    orders = np.stack([rng.permutation(n) for _ in range(epochs)])
    lrs = np.array([0.1, 0.05, 0.05, 0.02])
    fn = compile(loss, params)
    got, losses, done = run(fn, params, data, orders, lrs, batch_size, momentum)
    want, want_losses = numpy_sgd(loss, params, data, orders, lrs, batch_size, momentum)
    assert done == epochs
    np.testing.assert_allclose(losses, want_losses, rtol=1e-10)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-10, atol=1e-12)


def test_run_epochs_stops_on_divergence_with_last_finite_params():
    loss, params, data = linear_regression(n=20, d=3)
    data = {**data, "x": data["x"] * 30.0}
    lrs = np.full(50, 0.5)
    fn = compile(loss, params)
    got, losses, done = run(fn, params, data, None, lrs, None)
    with np.errstate(over="ignore", invalid="ignore"):
        want, want_losses = numpy_sgd(loss, params, data, None, lrs, None)
    assert 1 < done < 50 and done == len(want_losses)
    assert not np.isfinite(losses[done - 1]) and np.all(np.isfinite(losses[:done - 1]))
    assert np.all(np.isnan(losses[done:]))
    assert np.all(np.isfinite(got["w"]))
    np.testing.assert_allclose(got["w"], want["w"], rtol=1e-10)


def test_run_epochs_validates_and_keeps_velocity(rng):
    loss, params, data = softmax_regression(n=9)
    fn = compile(loss, params)
    P = {p.name: np.array(data[p.name]) for p in params}
    rows = {"X": data["X"], "y": data["y"]}
    with pytest.raises(ValueError, match="batch_size"):
        fn.run_epochs(P, rows, None, np.ones(2), 10)
    vel = {k: np.zeros_like(v) for k, v in P.items()}
    fn.run_epochs(P, rows, None, np.full(1, 0.1), 3, momentum=0.9, velocity=vel)
    assert np.any(vel["W"] != 0)


def test_export_is_standalone_and_trains(tmp_path):
    loss, params, data = linear_regression(n=12, d=3)
    fn = compile(loss, params)
    path = fn.export(tmp_path / "linreg.py")
    spec = importlib.util.spec_from_file_location("linreg_export", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert "symgrad" not in open(path).read().split('"""', 2)[2].replace("symgrad generated", "")
    trained, losses = mod.train({"w": data["w"]}, {"x": data["x"], "y": data["y"]},
                                epochs=3, lr=0.01, batch_size=4, seed=3)
    rng = np.random.default_rng(3)
    orders = np.stack([rng.permutation(12) for _ in range(3)])
    want, want_losses = numpy_sgd(loss, params, data, orders, np.full(3, 0.01), 4)
    np.testing.assert_allclose(trained["w"], want["w"], rtol=1e-10)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-10)

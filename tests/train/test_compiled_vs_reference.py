"""The compiled training loop against the NumPy reference (skipped until codegen has compile).

Both implement the run_epochs contract documented in symgrad.train.reference.
"""
import functools

import numpy as np
import pytest

from symgrad import nn
from symgrad.train import NumpyModel, fit

codegen = pytest.importorskip("symgrad.codegen")
if not hasattr(codegen, "compile"):
    pytest.skip("symgrad.codegen.compile does not exist yet", allow_module_level=True)

MODELS = {
    "softmax": lambda: nn.softmax_regression(6, 3, l2=0.01),
    "mlp": lambda: nn.mlp([6, 5, 3], activation="tanh", l2=0.001),
    "logistic": lambda: nn.logistic_regression(6, l2=0.01),
}


def _data(kind, n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 6))
    y = rng.integers(0, 2 if kind == "logistic" else 3, n)
    return {"X": X, "y": y.astype(float) if kind == "logistic" else y}


@functools.lru_cache(maxsize=None)
def _both(kind):
    """(model, compiled, reference), compiled once per module run (compiling is slow)."""
    model = MODELS[kind]()
    return model, codegen.compile(model.loss, params=model.params), NumpyModel(model.loss,
                                                                               model.params)


@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("batch_size, momentum", [(None, 0.0), (8, 0.0), (8, 0.9), (40, 0.5)])
def test_run_epochs_agrees(kind, batch_size, momentum):
    model, compiled, ref = _both(kind)
    data = _data(kind)
    rng = np.random.default_rng(1)
    orders = np.stack([rng.permutation(40) for _ in range(3)]).astype(np.int64)
    lrs = np.array([0.3, 0.2, 0.1])
    results = []
    for m in (compiled, ref):
        p = model.init_params(0)
        v = {k: np.zeros_like(a) for k, a in p.items()}
        losses, done = m.run_epochs(p, data, orders, lrs, batch_size, momentum, v)
        results.append((np.asarray(losses)[:int(done)], int(done), p, v))
    (lc, dc, pc, vc), (lr_, dr, pr, vr) = results
    assert dc == dr == 3
    np.testing.assert_allclose(lc, lr_, rtol=1e-10)
    for k in pr:
        np.testing.assert_allclose(pc[k], pr[k], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(vc[k], vr[k], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_loss_and_grad_agree(kind):
    model, compiled, ref = _both(kind)
    data, p = _data(kind), model.init_params(2)
    assert compiled.loss(p, **data) == pytest.approx(ref.loss(p, **data), rel=1e-12)
    gc, gr = compiled.grad(p, **data), ref.grad(p, **data)
    for k in gr:
        np.testing.assert_allclose(gc[k], gr[k], rtol=1e-10, atol=1e-13)


def test_divergence_is_found_at_the_same_step():
    model, compiled, ref = _both("softmax")
    data = _data("softmax")
    lrs = np.array([0.1, 0.1, 1e305, 0.1])
    runs = []
    for m in (compiled, ref):
        losses, done = m.run_epochs(model.init_params(0), data, None, lrs, 8)
        runs.append(np.asarray(losses))
    # Both stop in epoch 2 (0-based) and agree on the finite epochs before it. (Whether
    # `done` counts the diverging epoch, and where params stop, may differ: fit rewinds.)
    for losses in runs:
        assert np.all(np.isfinite(losses[:2])) and not np.isfinite(losses[2])
    np.testing.assert_allclose(runs[0][:2], runs[1][:2], rtol=1e-12)


def test_fit_divergence_agrees():
    model, compiled, ref = _both("softmax")
    data = _data("softmax")
    lrs = [0.1, 0.1, 1e305, 0.1]
    hists = [fit(m, model.init_params(0), data, schedule=lambda e: lrs[e], epochs=4,
                 batch_size=8, on_divergence="stop", metrics=(), progress=False)
             for m in (compiled, ref)]
    for h in hists:
        assert h.diverged and h.stopped_epoch == 3 and len(h.loss) == 2
    for k in hists[1].params:  # both: the params after epoch 2, the last finite one
        np.testing.assert_allclose(hists[0].params[k], hists[1].params[k], rtol=1e-10)

"""fit: determinism, copying, divergence, early stopping, chunking, metrics, progress."""
import numpy as np
import pytest

import symgrad as sg
from symgrad.train import EarlyStopping, NumpyModel, fit
from symgrad.train.driver import progress_enabled


def _same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_same_seed_same_params_bit_for_bit(softmax_small):
    model, params, data = softmax_small
    kw = dict(lr=0.3, epochs=5, batch_size=7, seed=11, momentum=0.5, progress=False)
    h1, h2 = fit(model, params, data, **kw), fit(model, params, data, **kw)
    assert _same(h1.params, h2.params) and h1.loss == h2.loss
    h3 = fit(model, params, data, **{**kw, "seed": 12})
    assert not _same(h1.params, h3.params)


def test_chunking_does_not_change_the_result(softmax_small):
    model, params, data = softmax_small
    kw = dict(lr=0.3, epochs=7, batch_size=8, seed=1, metrics=(), progress=False)
    one = fit(model, params, data, chunk_epochs=1, **kw)
    three = fit(model, params, data, chunk_epochs=3, **kw)
    assert _same(one.params, three.params) and one.loss == three.loss


def test_user_arrays_are_never_modified(softmax_small):
    model, params, data = softmax_small
    before = {k: v.copy() for k, v in params.items()}
    for v in data.values():
        v.setflags(write=False)  # read-only data must be accepted, and is never written
    hist = fit(model, params, data, lr=0.5, epochs=3, batch_size=10, progress=False)
    assert _same(params, before)
    assert all(hist.params[k] is not params[k] for k in params)
    assert not _same(hist.params, before)


def test_no_shuffle_uses_the_identity_order(softmax_small):
    model, params, data = softmax_small
    hist = fit(model, params, data, lr=0.2, epochs=2, batch_size=6, shuffle=False,
               progress=False)
    p = {k: v.copy() for k, v in params.items()}
    model.run_epochs(p, data, None, np.array([0.2, 0.2]), 6)
    assert _same(hist.params, p)


def test_fit_accepts_a_loss_node(make_softmax):
    # fit compiles the loss itself (or uses the reference). The graph is the digits
    # test's softmax regression, so a compiled module is shared through the cache.
    from symgrad import nn
    _, params, data = make_softmax(d=5, c=3)
    L = nn.softmax_regression(5, 3, l2=1e-4).loss
    hist = fit(L, params, data, lr=0.5, epochs=4, metrics=(), progress=False)
    assert len(hist) == 4 and hist.loss[-1] < hist.loss[0]


def test_momentum_speeds_up_full_batch_descent(softmax_small):
    model, params, data = softmax_small
    plain = fit(model, params, data, lr=0.05, epochs=30, progress=False)
    heavy = fit(model, params, data, lr=0.05, epochs=30, momentum=0.9, progress=False)
    assert heavy.loss[-1] < plain.loss[-1]


# -- divergence -------------------------------------------------------------------------
def test_huge_lr_raises_divergence_error_with_last_finite_params(softmax_small):
    model, params, data = softmax_small
    with pytest.raises(sg.DivergenceError) as info:
        fit(model, params, data, lr=1e306, epochs=5, batch_size=10, progress=False)
    err = info.value
    assert "epoch 1" in str(err) and "1e+306" in str(err)
    assert err.epoch == 1 and err.lr == 1e306
    assert err.history.diverged and err.history.stopped_epoch == 1
    assert _same(err.history.params, params)  # epoch 1 diverged: the initial params


def test_divergence_mid_run_keeps_the_last_finite_epoch(softmax_small):
    model, params, data = softmax_small
    lrs = [0.1, 0.1, 0.1, 1e306, 0.1]
    hist = fit(model, params, data, schedule=lambda e: lrs[e], epochs=5, batch_size=10,
               on_divergence="stop", progress=False)
    assert hist.diverged and hist.stopped_epoch == 4 and hist.stop_reason == "diverged"
    assert len(hist.loss) == 3 and all(np.isfinite(hist.loss))
    ok = fit(model, params, data, schedule=lambda e: lrs[e], epochs=3, batch_size=10,
             progress=False)
    assert _same(hist.params, ok.params)
    assert "DIVERGED at epoch 4" in repr(hist)


# -- early stopping -----------------------------------------------------------------------
def test_early_stopping_stops_and_restores_the_best_epoch(softmax_small):
    # With an unreachable min_delta no epoch after the first improves: stop after patience.
    model, params, data = softmax_small
    kw = dict(lr=0.3, batch_size=10, seed=4, progress=False)
    hist = fit(model, params, data, epochs=50, **kw,
               early_stopping=EarlyStopping(patience=3, min_delta=1e9))
    assert hist.stop_reason == "early_stopping" and hist.stopped_epoch == 4
    assert len(hist) == 4 and hist.best_epoch == 1
    one = fit(model, params, data, epochs=1, **kw)
    assert _same(hist.params, one.params)


def test_early_stopping_on_validation_loss_without_restore(softmax_small, make_softmax):
    model, params, data = softmax_small
    _, _, val = make_softmax(n=30, seed=9)
    kw = dict(lr=0.3, batch_size=10, seed=4, progress=False, validation_data=val)
    hist = fit(model, params, data, epochs=50, **kw,
               early_stopping={"patience": 2, "min_delta": 1e9, "restore_best": False})
    assert hist.stopped_epoch == 3 and len(hist.metrics["val_loss"]) == 3
    three = fit(model, params, data, epochs=3, **kw)
    assert _same(hist.params, three.params)


def test_early_stopping_patience_int_means_patience(softmax_small):
    model, params, data = softmax_small
    hist = fit(model, params, data, lr=0.3, epochs=200, early_stopping=5, progress=False)
    assert len(hist) <= 200  # smooth full-batch descent: runs until improvements stop
    assert hist.best_epoch is not None


# -- metrics and validation ------------------------------------------------------------
def test_accuracy_and_validation_metrics_are_recorded(softmax_small, make_softmax):
    model, params, data = softmax_small
    _, _, val = make_softmax(n=30, seed=9)
    hist = fit(model, params, data, lr=0.5, epochs=3, validation_data=val, progress=False)
    assert set(hist.metrics) == {"accuracy", "val_loss", "val_accuracy"}
    z = model.output("z", hist.params, **data)
    assert hist.metrics["accuracy"][-1] == np.mean(np.argmax(z, 1) == data["y"])
    assert hist.metrics["val_loss"][-1] == model.loss(hist.params, **val)


def test_custom_metric_callable(softmax_small):
    model, params, data = softmax_small

    def w_norm(p, d):
        return float(np.linalg.norm(p["W"]))
    hist = fit(model, params, data, lr=0.5, epochs=2, metrics=("accuracy", w_norm),
               progress=False)
    assert hist.metrics["w_norm"][-1] == np.linalg.norm(hist.params["W"])


def test_accuracy_of_a_declared_hinge_classifier():
    # No cross-entropy to detect the head from: output= and labels= name it.
    rng = np.random.default_rng(0)
    X, t, w = sg.tensor("X", ("N", "D")), sg.tensor("t", ("N",)), sg.param("w", ("D",))
    s = (X @ w).named("s")
    model = NumpyModel(sg.hinge(s, t))
    Xd = rng.standard_normal((50, 3))
    td = np.where(Xd @ np.array([1.0, -1.0, 0.5]) > 0, 1.0, -1.0)
    hist = fit(model, {"w": np.zeros(3)}, {"X": Xd, "t": td}, lr=0.5, epochs=30,
               output="s", labels="t", progress=False)
    want = np.mean(np.where(Xd @ hist.params["w"] > 0, 1.0, -1.0) == td)
    assert hist.metrics["accuracy"][-1] == want and want > 0.9


def test_regression_has_no_default_accuracy():
    rng = np.random.default_rng(0)
    X, t, w = sg.tensor("X", ("N", "D")), sg.tensor("t", ("N",)), sg.param("w", ("D",))
    model = NumpyModel(sg.mse(X @ w, t))
    data = {"X": rng.standard_normal((20, 3)), "t": rng.standard_normal(20)}
    hist = fit(model, {"w": np.zeros(3)}, data, lr=0.1, epochs=2, progress=False)
    assert hist.metrics == {}
    with pytest.raises(ValueError, match="accuracy"):
        fit(model, {"w": np.zeros(3)}, data, lr=0.1, epochs=2, metrics=("accuracy",))


def test_ctrl_c_ends_training_and_keeps_the_history(softmax_small):
    model, params, data = softmax_small

    def interrupt_after_two(p, d, calls=[]):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return 0.0
    hist = fit(model, params, data, lr=0.1, epochs=10, metrics=(interrupt_after_two,),
               progress=False)
    assert hist.stop_reason == "interrupted" and len(hist) == 3
    assert "interrupted" in repr(hist) and all(np.isfinite(hist.params["W"]).ravel())


# -- progress bar ---------------------------------------------------------------------------
def test_progress_env_var_switches_bars_off(monkeypatch):
    monkeypatch.setenv("SYMGRAD_PROGRESS", "0")
    assert not progress_enabled(True)
    monkeypatch.setenv("SYMGRAD_PROGRESS", "1")
    assert progress_enabled(True) and not progress_enabled(False)


def test_progress_bar_is_drawn(softmax_small, monkeypatch, capsys):
    monkeypatch.delenv("SYMGRAD_PROGRESS")
    model, params, data = softmax_small
    fit(model, params, data, lr=0.1, epochs=3)
    assert "3/3" in capsys.readouterr().err
    fit(model, params, data, lr=0.1, epochs=3, progress=False)
    assert capsys.readouterr().err == ""


def test_a_progress_bar_sizes_chunks_by_time_and_changes_nothing(softmax_small, monkeypatch):
    # 200 fast epochs: one call of one epoch to time it, then the rest in ~0.1 s calls
    # (not 100 calls of 2 epochs); the numbers are those of a run without the bar
    from symgrad.train import driver
    monkeypatch.delenv("SYMGRAD_PROGRESS", raising=False)
    model, params, data = softmax_small
    calls, real = [], driver._Trainer._call

    def counting(self, *args):
        calls.append(len(args[-1]))
        return real(self, *args)
    kw = dict(lr=0.3, epochs=200, batch_size=8, seed=1, metrics=())
    plain = fit(model, params, data, progress=False, **kw)
    monkeypatch.setattr(driver._Trainer, "_call", counting)
    monkeypatch.setattr(driver, "_EPOCH_SECONDS", driver.weakref.WeakKeyDictionary())
    barred = fit(model, params, data, progress=True, **kw)
    assert _same(plain.params, barred.params) and plain.loss == barred.loss
    assert calls[0] == 2 and sum(calls) == 200 and len(calls) < 20
    # the next fit of this model on these batches knows its speed: its first call is
    # already sized by time (a run shorter than BAR_SECONDS is a single call)
    per_epoch = driver._EPOCH_SECONDS[model][(8, len(data["X"]))]
    calls.clear()
    again = fit(model, params, data, progress=True, **kw)
    assert _same(plain.params, again.params) and sum(calls) == 200
    assert calls[0] == min(200, driver._bar_chunk(2, per_epoch)) > 2


def test_full_batch_data_is_aligned_once_and_minibatch_data_left_as_given():
    """Full batch reads all the data every step: fit copies its float matrices once to a
    64-byte line (NumPy's 16-byte alignment makes vector loads straddle cache lines),
    not its label vectors; minibatches are gathered into aligned buffers anyway, so
    their data is used as given."""
    from symgrad.train.driver import trainer_for
    X, t, w = sg.tensor("X", ("N", "D")), sg.tensor("t", ("N",)), sg.param("w", ("D",))
    loss = sg.sum((t - sg.sigmoid(X @ w)) ** 2)
    rng = np.random.default_rng(0)
    raw = np.empty(200 * 8 + 8)
    start = (-raw.ctypes.data % 64 + 16) // 8
    Xd = raw[start:start + 1600].reshape(200, 8)
    Xd[...] = rng.standard_normal((200, 8))
    assert Xd.ctypes.data % 64 == 16
    data, params = {"X": Xd, "t": (rng.random(200) > 0.5) * 1.0}, {"w": np.zeros(8)}
    model = NumpyModel(loss)
    full = trainer_for(model, params, data, lr=0.01, epochs=2, progress=False)
    assert full.data["X"].ctypes.data % 64 == 0 and np.array_equal(full.data["X"], Xd)
    assert full.data["t"] is data["t"] or full.data["t"].ctypes.data == data["t"].ctypes.data
    mini = trainer_for(model, params, data, lr=0.01, epochs=2, batch_size=20, progress=False)
    assert mini.data["X"].ctypes.data == Xd.ctypes.data
    assert np.array_equal(fit(model, params, data, lr=0.01, epochs=3, progress=False).params["w"],
                          fit(model, params, {**data, "X": Xd.copy()}, lr=0.01, epochs=3,
                              progress=False).params["w"])

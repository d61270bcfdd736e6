"""fit's optimizers: each equals its textbook update (hand-written NumPy, closed-form
gradient), the compiled loop equals the NumPy reference, state survives chunking,
and torch.optim agrees where torch is installed."""
import functools
import math

import numpy as np
import pytest

import symgrad as sg
from symgrad.train import NumpyModel, fit
from symgrad.train.optimizers import NAMES, Optimizer, OptimizerState

codegen = pytest.importorskip("symgrad.codegen")

N, D = 24, 3
FUSED = ["sgd", "nesterov", "adam", "adamw", "rmsprop"]
# (optimizer, fit keywords) covering every branch of the update rules
CASES = [("sgd", {}), ("sgd", {"momentum": 0.8}), ("sgd", {"momentum": 0.5, "weight_decay": 0.1}),
         ("nesterov", {}), ("nesterov", {"momentum": 0.7, "weight_decay": 0.05}),
         ("adam", {}), ("adam", {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
         ("adamw", {}), ("adamw", {"weight_decay": 0.3, "betas": (0.5, 0.9)}),
         ("rmsprop", {}), ("rmsprop", {"alpha": 0.9, "momentum": 0.6, "weight_decay": 0.1})]


def _problem():
    """Least squares L = sum_i (x_i . w + b - t_i)^2: gradient 2 X^T r, 2 sum r."""
    X, t = sg.tensor("X", ("N", "D")), sg.tensor("t", ("N",))
    w, b = sg.param("w", ("D",)), sg.param("b", ())
    return sg.sum((X @ w + b - t) ** 2), [w, b]


@functools.lru_cache(maxsize=None)
def _compiled():
    L, params = _problem()
    return codegen.compile(L, params=params)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D))
    return {"X": X, "t": X @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.1 * rng.standard_normal(N)}


def _init():
    return {"w": np.array([0.2, -0.1, 0.4]), "b": np.array(0.1)}


def _textbook(name, kw, lr, steps, batch):
    """The optimizer's update written out as in its paper / torch.optim's docs."""
    data, p = _data(), _init()
    mu = kw.get("momentum", 0.9 if name == "nesterov" else 0.0)
    b1, b2 = kw.get("betas", (0.9, 0.999))
    eps, alpha = kw.get("eps", 1e-8), kw.get("alpha", 0.99)
    wd = kw.get("weight_decay", 1e-2 if name == "adamw" else 0.0)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    s = {k: np.zeros_like(v) for k, v in p.items()}
    for t in range(1, steps + 1):
        rows = slice(((t - 1) * batch) % N, ((t - 1) * batch) % N + batch)
        X, y = data["X"][rows], data["t"][rows]
        r = X @ p["w"] + p["b"] - y
        grads = {"w": 2 * X.T @ r, "b": np.array(2 * r.sum())}
        for k in p:
            g = grads[k] + (wd * p[k] if name != "adamw" else 0.0)
            if name == "sgd":
                m[k] = mu * m[k] - lr * g
                p[k] = p[k] + m[k]
            elif name == "nesterov":
                m[k] = mu * m[k] + g
                p[k] = p[k] - lr * (g + mu * m[k])
            elif name in ("adam", "adamw"):
                p[k] = p[k] * (1 - lr * wd) if name == "adamw" else p[k]
                m[k] = b1 * m[k] + (1 - b1) * g
                s[k] = b2 * s[k] + (1 - b2) * g ** 2
                m_hat, s_hat = m[k] / (1 - b1 ** t), s[k] / (1 - b2 ** t)
                p[k] = p[k] - lr * m_hat / (np.sqrt(s_hat) + eps)
            else:
                s[k] = alpha * s[k] + (1 - alpha) * g ** 2
                m[k] = mu * m[k] + g / (np.sqrt(s[k]) + eps)
                p[k] = p[k] - lr * m[k]
    return p


def _fit(model, name, kw, lr, epochs, batch, **more):
    more = {"shuffle": False, "progress": False, "metrics": (), **more}
    return fit(model, _init(), data=_data(), lr=lr, epochs=epochs, batch_size=batch,
               optimizer=name, **kw, **more)


@pytest.mark.parametrize("name, kw", CASES)
@pytest.mark.parametrize("batch", [None, 8])
def test_every_optimizer_is_its_textbook_update(name, kw, batch):
    epochs, lr = 4, 0.01
    steps = epochs * (1 if batch is None else N // batch)
    want = _textbook(name, kw, lr, steps, batch or N)
    for model in (_compiled(), NumpyModel(*_problem())):
        got = _fit(model, name, kw, lr, epochs, batch).params
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-10, atol=1e-12,
                                       err_msg=f"{name} {kw} {type(model).__name__} {k}")


@pytest.mark.parametrize("name, kw", CASES)
def test_compiled_loop_equals_the_reference_with_shuffling(name, kw):
    runs = [_fit(m, name, kw, 0.02, 3, 5, seed=3, shuffle=True) for m in (_compiled(),
                                                            NumpyModel(*_problem()))]
    np.testing.assert_allclose(runs[0].loss, runs[1].loss, rtol=1e-12)
    for k in runs[0].params:
        np.testing.assert_allclose(runs[0].params[k], runs[1].params[k], rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("name", FUSED)
def test_state_survives_chunks_bit_for_bit(name, monkeypatch):
    # Adam's moments and step count, momentum buffers: one call, one call per epoch
    # (what early stopping and metrics force) or progress-bar chunks give the same bits.
    def run(**more):
        return _fit(_compiled(), name, {}, 0.01, 6, 6, seed=2, shuffle=True, **more)
    base = run()
    chunked = run(chunk_epochs=1)
    monitored = run(early_stopping={"patience": 100, "restore_best": False}, metrics="auto",
                    validation_data=_data(1))
    monkeypatch.setenv("SYMGRAD_PROGRESS", "1")
    barred = run(progress=True)
    for other in (chunked, monitored, barred):
        assert other.loss == base.loss
        assert all(np.array_equal(other.params[k], base.params[k]) for k in base.params)


def test_adam_divergence_rewinds_the_state_too():
    # A huge rate in epoch 3 diverges; fit restores the chunk's start and replays the
    # finite epochs. The params equal a clean 2-epoch run only if the moments and the
    # step count were rewound with them.
    sched = lambda e: 1e-3 if e < 2 else 1e300  # noqa: E731
    for model in (_compiled(), NumpyModel(*_problem())):
        kw = dict(data=_data(), schedule=sched, batch_size=6, optimizer="adam",
                  progress=False, metrics=(), seed=1)
        hist = fit(model, _init(), epochs=4, on_divergence="stop", chunk_epochs=4, **kw)
        two = fit(model, _init(), epochs=2, **kw)
        assert hist.diverged and len(hist) == 2 and hist.stopped_epoch == 3
        assert all(np.array_equal(hist.params[k], two.params[k]) for k in two.params)


def test_reference_state_object_round_trips():
    p = _init()
    state = OptimizerState(p)
    state.step, state.m["w"][:] = 3, 1.0
    saved = state.copy()
    state.m["w"][:], state.step = 7.0, 9
    state.restore(saved)
    assert state.step == 3 and np.all(state.m["w"] == 1.0)
    assert set(NAMES) == set(FUSED) | {"lbfgs"}
    assert "betas" in repr(Optimizer("adam"))


def test_adam_defaults_are_torch_defaults():
    hist = _fit(_compiled(), "adam", {}, None, 2, 8)      # lr defaults to 1e-3
    assert hist.lr == [1e-3, 1e-3]
    want = _textbook("adam", {}, 1e-3, 6, 8)
    np.testing.assert_allclose(hist.params["w"], want["w"], rtol=1e-10)


@pytest.mark.parametrize("name, kw", CASES)
def test_equals_torch_optim(name, kw):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    data, lr, batch, epochs = _data(), 0.01, 8, 3
    X, y = torch.tensor(data["X"]), torch.tensor(data["t"])
    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in _init().items()}
    opts = {"sgd": torch.optim.SGD, "nesterov": torch.optim.SGD, "adam": torch.optim.Adam,
            "adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop}
    args = {k: v for k, v in kw.items()}
    if name == "nesterov":
        args.update(nesterov=True, momentum=kw.get("momentum", 0.9))
    opt = opts[name](list(tp.values()), lr=lr, **args)
    for _ in range(epochs):
        for k in range(N // batch):
            rows = slice(k * batch, (k + 1) * batch)
            opt.zero_grad()
            (((X[rows] @ tp["w"] + tp["b"] - y[rows]) ** 2).sum()).backward()
            opt.step()
    got = _fit(_compiled(), name, kw, lr, epochs, batch).params
    # torch's SGD momentum is b = mu b + g; p -= lr b: the same as symgrad's velocity
    # form for a constant lr, up to rounding.
    for k in got:
        np.testing.assert_allclose(got[k], tp[k].detach().numpy(), rtol=1e-9, atol=1e-12)


# -- L-BFGS ---------------------------------------------------------------------------------
def test_lbfgs_reaches_the_least_squares_solution():
    data = _data()
    hist = fit(_compiled(), _init(), data=data, optimizer="lbfgs", epochs=100, tol=1e-10,
               progress=False)
    A = np.column_stack([data["X"], np.ones(N)])
    exact = np.linalg.lstsq(A, data["t"], rcond=None)[0]
    np.testing.assert_allclose(hist.params["w"], exact[:3], rtol=1e-8)
    np.testing.assert_allclose(hist.params["b"], exact[3], rtol=1e-8)
    assert hist.stop_reason == "converged" and 1 < len(hist) < 100
    assert hist.n_evals >= len(hist) and np.isnan(hist.lr).all()
    assert hist.loss[-1] < hist.loss[0] and all(np.diff(hist.loss) <= 1e-12)
    ref = fit(NumpyModel(*_problem()), _init(), data=data, optimizer="lbfgs", epochs=100,
              tol=1e-10, progress=False)
    np.testing.assert_allclose(ref.params["w"], exact[:3], rtol=1e-8)


def test_lbfgs_rows_are_iterations_and_epochs_limit_them():
    hist = fit(_compiled(), _init(), data=_data(), optimizer="lbfgs", epochs=2, tol=0.0,
               progress=False)
    assert len(hist) == 2 and hist.epochs == [1, 2] and hist.stop_reason == "completed"
    assert "converged" in fit(_compiled(), _init(), data=_data(), optimizer="lbfgs",
                              epochs=50, progress=False).summary()


def test_lbfgs_with_validation_and_early_stopping():
    data = _data()
    hist = fit(_compiled(), _init(), data=data, optimizer="lbfgs", epochs=50,
               validation_data=_data(5), early_stopping=1, progress=False)
    assert "val_loss" in hist.metrics and len(hist.metrics["val_loss"]) == len(hist)


# -- bad combinations fail before any work ----------------------------------------------------
@pytest.mark.parametrize("kw, message", [
    ({"optimizer": "adagrad"}, r"unknown optimizer 'adagrad'; choose one of \['sgd'"),
    ({"optimizer": 3}, "unknown optimizer 3"),
    ({"optimizer": "lbfgs", "lr": None, "batch_size": 8}, "'lbfgs' is full batch"),
    ({"optimizer": "lbfgs"}, "drop lr="),
    ({"optimizer": "lbfgs", "lr": None, "momentum": 0.9}, "L-BFGS takes no momentum"),
    ({"optimizer": "lbfgs", "lr": None, "weight_decay": 0.1}, "add sg.l2 to the loss"),
    ({"optimizer": "lbfgs", "lr": None, "tol": -1.0}, "tol must be >= 0"),
    ({"optimizer": "adam", "momentum": 0.9}, r"momentum is betas\[0\]"),
    ({"optimizer": "adam", "alpha": 0.9}, "alpha .* is RMSprop's"),
    ({"optimizer": "sgd", "betas": (0.9, 0.99)}, "betas are Adam's"),
    ({"optimizer": "sgd", "eps": 1e-8}, "eps is Adam's and RMSprop's"),
    ({"optimizer": "sgd", "tol": 1e-3}, "tol is L-BFGS's"),
    ({"optimizer": "adam", "betas": (-0.1, 0.999)}, r"betas\[0\] must be in \[0, 1\)"),
    ({"optimizer": "adam", "betas": (0.9, 1.0)}, r"betas\[1\] must be in \[0, 1\)"),
    ({"optimizer": "adam", "betas": 0.9}, "betas must be a pair"),
    ({"optimizer": "adam", "eps": 0.0}, "eps must be > 0"),
    ({"optimizer": "adamw", "weight_decay": -1}, "weight_decay must be >= 0"),
    ({"optimizer": "rmsprop", "alpha": 1.5}, r"alpha must be in \[0, 1\)"),
    ({"optimizer": "nesterov", "momentum": 0.0}, "'nesterov' needs momentum > 0"),
])
def test_bad_combinations_fail_before_any_work(kw, message):
    class NoWork(NumpyModel):
        def run_epochs_with(self, *args, **kwargs):
            raise AssertionError("fit started training before rejecting its arguments")

        def loss_and_grad(self, *args, **kwargs):
            raise AssertionError("fit started training before rejecting its arguments")
    settings = {"lr": 0.1, **kw}
    with pytest.raises(ValueError, match=message):
        fit(NoWork(*_problem()), _init(), data=_data(), epochs=2, progress=False, **settings)


def test_momentum_zero_is_accepted_by_every_optimizer():
    # a sweep grid may set momentum=0.0 for every run
    for name in ("adam", "adamw"):
        assert len(_fit(NumpyModel(*_problem()), name, {"momentum": 0.0}, 0.01, 1, 8)) == 1


# -- 0-d data tensors (hyperparameters) -------------------------------------------------------
def test_a_0d_data_tensor_binds_from_a_float_or_a_0d_array():
    X, t = sg.tensor("X", ("N", "D")), sg.tensor("t", ("N",))
    w, lam = sg.param("w", ("D",)), sg.tensor("lam", ())
    L = sg.sum((X @ w - t) ** 2) + lam * sg.sum(w ** 2)
    data = _data()
    runs = []
    for model in (codegen.compile(L, params=[w]), NumpyModel(L, [w])):
        for value in (0.5, np.array(0.5), np.float64(0.5)):
            for batch in (None, 6):
                h = fit(model, {"w": np.zeros(D)}, data={**data, "lam": value}, lr=0.005,
                        epochs=3, batch_size=batch, shuffle=False, progress=False)
                runs.append((batch, h.params["w"]))
        h = fit(model, {"w": np.zeros(D)}, data={**data, "lam": 0.5}, epochs=30,
                optimizer="lbfgs", tol=1e-12, progress=False)
        A = data["X"]
        exact = np.linalg.solve(A.T @ A + 0.5 * np.eye(D), A.T @ data["t"])
        np.testing.assert_allclose(h.params["w"], exact, rtol=1e-8)
    for batch in (None, 6):
        same = [p for b, p in runs if b == batch]
        for p in same[1:]:
            np.testing.assert_allclose(p, same[0], rtol=1e-12)
    # ridge step by hand: the penalty's gradient is 2 lam w
    p = np.zeros(D)
    for _ in range(3):
        p = p - 0.005 * (2 * data["X"].T @ (data["X"] @ p - data["t"]) + 2 * 0.5 * p)
    np.testing.assert_allclose(runs[0][1], p, rtol=1e-12)
    assert not math.isclose(float(runs[1][1][0]), float(p[0]))   # minibatches differ


def test_the_generated_update_reads_like_the_rules():
    source = _compiled().source
    assert "def run_epochs_with(" in source and "def run_epochs(" in source
    for line in ("m[j] = mu * m[j] + (1.0 - mu) * g[j]  # first moment: m <- b1 m + (1 - b1) g",
                 "p[j] *= 1.0 - lr * wd  # AdamW: p <- p (1 - lr wd), decoupled weight decay",
                 "p[j] -= lr * (g[j] + mu * m[j])  # Nesterov: p <- p - lr (g + mu b)"):
        assert line in source


def test_the_exported_trainer_runs_every_optimizer(tmp_path):
    # the standalone module (NumPy + Numba only) trains as fit does, bit for bit
    import importlib.util
    path = _compiled().export(tmp_path / "trainer.py")
    spec = importlib.util.spec_from_file_location("trainer", path)
    trainer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(trainer)
    for name, kw in [("adam", {"betas": (0.8, 0.99)}), ("rmsprop", {"momentum": 0.5}),
                     ("sgd", {"momentum": 0.9})]:
        params, losses = trainer.train(_init(), _data(), epochs=3, lr=0.01, batch_size=6,
                                       seed=4, optimizer=name, **kw)
        hist = _fit(_compiled(), name, kw, 0.01, 3, 6, seed=4, shuffle=True)
        assert list(losses) == hist.loss
        assert all(np.array_equal(params[k], hist.params[k]) for k in params)


def test_lbfgs_interrupted_keeps_the_last_iterate(monkeypatch):
    # Ctrl-C inside SciPy (here: at the 5th loss evaluation, in some line search) ends
    # training with the params of the last accepted iteration, not a trial point.
    from symgrad.train import lbfgs
    real = lbfgs.flat_objective

    def interrupting(model, params, data):
        f, x0, unflatten = real(model, params, data)
        calls = []

        def g(x):
            calls.append(1)
            if len(calls) == 5:
                raise KeyboardInterrupt
            return f(x)
        return g, x0, unflatten
    monkeypatch.setattr(lbfgs, "flat_objective", interrupting)
    hist = fit(_compiled(), _init(), data=_data(), optimizer="lbfgs", epochs=50,
               progress=False, metrics=())
    assert hist.stop_reason == "interrupted" and len(hist) >= 1
    loss = _compiled().loss(hist.params, **_data())
    assert loss == pytest.approx(hist.loss[-1], rel=1e-12)

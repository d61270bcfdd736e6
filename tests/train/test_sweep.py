"""sweep: every run equals its single fit bitwise, in-process and in worker processes;
divergence and failures stay per run; arguments are checked before any work."""
import pickle

import numpy as np
import pytest

import symgrad as sg
from symgrad.errors import DataError, DivergenceError
from symgrad.train import sweep_run
from symgrad.train.sweep_result import FailedRun, SweepResult

pytestmark = pytest.mark.uses("sweep")


def _softmax(seed=0, n=80, d=4, c=3):
    """Softmax regression with a 0-d hyperparameter ``lam`` scaling an L2 penalty.
    (test_sweep_dask.py declares the same graph, so both share one compiled module.)"""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.integers(0, c, n)
    Xn, yn = sg.tensor("X", ("N", "D")), sg.tensor("y", ("N",), dtype=int)
    W, b = sg.param("W", ("D", "C")), sg.param("b", ("C",))
    lam = sg.tensor("lam", ())
    L = sg.cross_entropy((Xn @ W + b).named("z"), yn) + lam * sg.l2(W)
    return L, {"X": X, "y": y}, (d, c)


def _init(shape):
    d, c = shape
    return lambda seed: {"W": 0.1 * np.random.default_rng(seed).standard_normal((d, c)),
                         "b": np.zeros(c)}


@pytest.fixture(scope="module")
def problem():
    L, data, shape = _softmax()
    return _compiled(L), data, _init(shape)


def _compiled(L):
    """L compiled with its logits as an output, as sweep compiles a loss node: metrics
    then need no second module."""
    from symgrad.train.metrics import head_from
    return sg.compile(L, params=_params_of(L), outputs=[head_from(L, None, None).scores])


def _params_of(L):
    from symgrad.graph.traverse import leaves
    return leaves(L, "param")


def _same_run(a, b):
    assert a.loss == b.loss                       # the per-epoch loss history, exactly
    assert a.metrics.keys() == b.metrics.keys()
    for k in a.metrics:
        assert np.array_equal(a.metrics[k], b.metrics[k], equal_nan=True)
    assert a.params.keys() == b.params.keys()
    for k in a.params:
        assert np.array_equal(a.params[k], b.params[k]) and a.params[k].dtype == b.params[k].dtype
    assert (a.diverged, a.stop_reason, a.stopped_epoch) == (b.diverged, b.stop_reason,
                                                             b.stopped_epoch)


def _single_fit(fn, init, data, settings, hyper=(), **kw):
    """The sg.fit call a grid point describes."""
    fit_args = {k: v for k, v in settings.items() if k not in hyper}
    extra = {k: settings[k] for k in hyper}
    if kw.get("validation_data") is not None:
        kw["validation_data"] = {**kw["validation_data"], **extra}
    seed = settings.get("seed", kw.get("seed", 0))
    return sg.fit(fn, init(seed), data={**data, **extra}, progress=False, **kw, **fit_args)


BASE = dict(epochs=4, batch_size=16)


def test_runs_equal_single_fits_over_lr_seed_momentum(problem):
    fn, data, init = problem
    data = {**data, "lam": 0.01}
    grid = {"lr": [0.05, 0.5], "seed": [0, 3], "momentum": [0.0, 0.9]}
    res = sg.sweep(fn, init, data, grid, n_jobs=1, **BASE)
    assert isinstance(res, SweepResult) and len(res) == 8
    assert [r.settings for r in res] == [
        {"lr": lr, "seed": s, "momentum": m} for lr in (0.05, 0.5) for s in (0, 3)
        for m in (0.0, 0.9)]
    for run in res:
        _same_run(run, _single_fit(fn, init, data, run.settings, **BASE))
    assert len({tuple(r.loss) for r in res}) == 8   # the settings really changed the runs


def test_a_hyperparameter_tensor_is_a_grid_key(problem):
    fn, data, init = problem
    val = {"X": data["X"][:30], "y": data["y"][:30]}
    res = sg.sweep(fn, init, data, {"lam": [0.0, 0.1, 1.0]}, lr=0.3, n_jobs=1,
                   validation_data=val, **BASE)
    for run in res:
        _same_run(run, _single_fit(fn, init, data, run.settings, hyper=("lam",), lr=0.3,
                                   validation_data=val, **BASE))
    norms = [np.sum(r.params["W"] ** 2) for r in res]
    assert norms[0] > norms[1] > norms[2]         # a stronger penalty, smaller weights


def test_sympy_symbol_hyperparameter_by_symbol_or_name():
    sp = pytest.importorskip("sympy")
    lam = sp.Symbol("lambda", positive=True)
    X, t, w = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",)), sg.param("w", ("d",))
    try:
        L = sg.mse(X @ w, t) + lam * sg.l2(w)
    except TypeError:
        pytest.skip("SymPy hyperparameter symbols are not in the graph yet")
    rng = np.random.default_rng(2)
    data = {"X": rng.standard_normal((40, 3)), "t": rng.standard_normal(40)}
    fn = sg.compile(L, params=[w])
    res = sg.sweep(fn, {"w": np.zeros(3)}, data, {lam: [0.0, 0.5]}, lr=0.05, epochs=5, n_jobs=1)
    assert [r.settings for r in res] == [{"lambda": 0.0}, {"lambda": 0.5}]
    for run in res:
        ref = sg.fit(fn, {"w": np.zeros(3)}, data={**data, **run.settings}, lr=0.05, epochs=5,
                     progress=False)
        _same_run(run, ref)


def test_optimizer_grid_if_fit_has_optimizers(problem):
    import inspect
    if "optimizer" not in inspect.signature(sg.fit).parameters:
        pytest.skip("fit has no optimizer= yet")
    fn, data, init = problem
    data = {**data, "lam": 0.01}
    res = sg.sweep(fn, init, data, {"optimizer": ["sgd", "adam"], "lr": [0.01, 0.1]}, n_jobs=1,
                   **BASE)
    for run in res:
        _same_run(run, _single_fit(fn, init, data, run.settings, **BASE))
    assert res[0].loss != res[2].loss


@pytest.mark.slow   # compiles a model of its own and starts two worker processes
def test_worker_processes_give_the_same_histories():
    L, data, shape = _softmax(seed=4, d=3)
    L = L + 0.5 * sg.l1(_params_of(L)[1])     # a module no other test trains in this process
    fn, init, data = _compiled(L), _init(shape), {**data, "lam": 0.01}

    def compiled_loops():
        return [getattr(getattr(fn.module, n, None), "signatures", None)
                for n in ("run_epochs", "run_epochs_with")]
    assert not any(compiled_loops())
    grid = {"lr": [0.1, 0.4], "seed": [0, 1, 2]}
    there = sg.sweep(fn, init, data, grid, n_jobs=2, **BASE)
    # The first run trained here, so Numba compiled once and the workers loaded its cache.
    assert any(compiled_loops())
    here = sg.sweep(fn, init, data, grid, n_jobs=1, **BASE)
    assert there.where == "2 processes"
    assert [r.settings for r in there] == [r.settings for r in here]
    for a, b in zip(here, there):
        _same_run(a, b)


def test_a_dead_worker_process_costs_a_retry_not_the_sweep(problem, tmp_path):
    import os
    fn, data, init = problem
    marker, me = str(tmp_path / "killed"), os.getpid()

    def kill_once(params, data):
        """A metric that kills its worker process the first time it runs in one."""
        if os.getpid() != me and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return 0.0

    kw = dict(metrics=(kill_once,), **BASE)
    data = {**data, "lam": 0.01}
    grid = {"lr": [0.1, 0.4], "seed": [0, 1]}
    there = sg.sweep(fn, init, data, grid, n_jobs=2, **kw)
    assert os.path.exists(marker) and not there.failed
    for a, b in zip(sg.sweep(fn, init, data, grid, n_jobs=1, **kw), there):
        _same_run(a, b)


def test_compiled_model_pickles_by_its_source(problem):
    fn, data, init = problem
    copy = pickle.loads(pickle.dumps(fn))
    assert copy.source == fn.source and copy.path == fn.path and copy.module is fn.module
    p = init(0)
    assert copy.loss(p, **data, lam=0.1) == fn.loss(p, **data, lam=0.1)


@pytest.mark.slow   # a fresh process compiles the unpickled model into an empty cache
def test_an_unpickled_model_writes_its_module_where_the_cache_is_empty(problem, tmp_path):
    import os
    import subprocess
    import sys
    fn, data, init = problem
    blob = tmp_path / "model.pkl"
    blob.write_bytes(pickle.dumps((fn, init(0), data)))
    code = ("import pickle, sys; fn, p, data = pickle.load(open(sys.argv[1], 'rb')); "
            "print(repr(fn.loss(p, **data, lam=0.1)), fn.path)")
    cache = tmp_path / "elsewhere"
    env = {**os.environ, "SYMGRAD_CACHE_DIR": str(cache)}
    out = subprocess.run([sys.executable, "-c", code, str(blob)], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert float(out[0]) == fn.loss(init(0), **data, lam=0.1)
    assert out[1] == str(cache / os.path.basename(fn.path))
    assert (cache / os.path.basename(fn.path)).read_text() == fn.source


# -- divergence and failures ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def regression():
    X, t, w = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",)), sg.param("w", ("d",))
    rng = np.random.default_rng(5)
    data = {"X": 3 * rng.standard_normal((50, 3)), "t": rng.standard_normal(50)}
    return sg.compile(sg.mse(X @ w, t), params=[w]), data


def test_a_diverging_grid_point_does_not_stop_the_others(regression):
    fn, data = regression
    init = {"w": np.zeros(3)}
    res = sg.sweep(fn, init, data, {"lr": [0.01, 1e4, 0.02]}, epochs=60, n_jobs=1)
    assert [r.diverged for r in res] == [False, True, False]
    assert res.diverged == [res[1]] and res[1].stop_reason == "diverged"
    assert len(res[2]) == 60 and res.best("loss") is res[2]      # diverged runs never win
    _same_run(res[1], sg.fit(fn, init, data, lr=1e4, epochs=60, progress=False,
                             on_divergence="stop"))
    rows = res.table()
    assert [r["status"] for r in rows] == ["completed", "diverged", "completed"]
    assert "non-finite in epoch" in rows[1]["error"] and "error" not in rows[0]
    with pytest.raises(DivergenceError, match=r"1 of 2 sweep runs diverged \(lr=1e\+04\)") as err:
        sg.sweep(fn, init, data, {"lr": [0.01, 1e4]}, epochs=60, n_jobs=1,
                 on_divergence="raise")
    assert len(err.value.result) == 2 and not err.value.result[0].diverged


def test_a_run_that_raises_is_reported_and_the_others_go_on(regression):
    fn, data = regression

    def picky(params, data):   # a metric that fails only for large weights
        if np.abs(params["w"]).max() > 0.05:
            raise ArithmeticError("weights too large for this metric")
        return 0.0

    res = sg.sweep(fn, {"w": np.zeros(3)}, data, {"lr": [1e-4, 0.1]}, epochs=5, n_jobs=1,
                   metrics=(picky,))
    assert not isinstance(res[0], FailedRun) and len(res[0]) == 5
    assert isinstance(res[1], FailedRun) and "ArithmeticError" in res[1].error
    assert res.failed == [res[1]] and res.table()[1]["status"] == "failed"
    assert res.best("loss") is res[0]


def _interrupt_on_third_call():
    """A metric that presses Ctrl-C the third time it is called."""
    calls = []

    def metric(params, data):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return 0.0
    return metric


def test_ctrl_c_ends_the_sweep_and_keeps_the_finished_runs(regression):
    fn, data = regression
    res = sg.sweep(fn, {"w": np.zeros(3)}, data, {"lr": [0.01, 0.02, 0.03]}, epochs=2,
                   n_jobs=1, metrics=(_interrupt_on_third_call(),), fuse=False)
    assert [r.stop_reason for r in res] == ["completed", "interrupted", "failed"]
    assert "interrupted" in res[2].error and len(res[0]) == 2


def test_ctrl_c_in_a_fused_group_keeps_every_run_as_far_as_it_got(regression):
    # fused, the three runs train in lockstep: the third metric call is run 3's first epoch
    fn, data = regression
    res = sg.sweep(fn, {"w": np.zeros(3)}, data, {"lr": [0.01, 0.02, 0.03]}, epochs=2,
                   n_jobs=1, metrics=(_interrupt_on_third_call(),))
    assert [r.stop_reason for r in res] == ["interrupted"] * 3
    assert [len(r) for r in res] == [1, 1, 1]


def test_a_list_of_grids_joins_their_products(regression):
    fn, data = regression
    grid = [{"lr": [0.01, 0.02]}, {"lr": [0.05], "momentum": [0.5, 0.9]}]
    res = sg.sweep(fn, {"w": np.zeros(3)}, data, grid, epochs=3, n_jobs=1)
    assert [r.settings for r in res] == [{"lr": 0.01}, {"lr": 0.02},
                                         {"lr": 0.05, "momentum": 0.5},
                                         {"lr": 0.05, "momentum": 0.9}]
    _same_run(res[3], sg.fit(fn, {"w": np.zeros(3)}, data, lr=0.05, momentum=0.9, epochs=3,
                             progress=False))
    assert "momentum" not in res.table()[0] and res.table()[3]["momentum"] == 0.9


def test_the_progress_bar_counts_runs(regression, monkeypatch, capsys):
    pytest.importorskip("tqdm")
    monkeypatch.setenv("SYMGRAD_PROGRESS", "1")
    fn, data = regression
    sg.sweep(fn, {"w": np.zeros(3)}, data, {"lr": [0.01, 0.02, 0.03]}, epochs=2, n_jobs=1)
    err = capsys.readouterr().err
    assert "sweep" in err and "3/3" in err and "run" in err


# -- the result object --------------------------------------------------------------------------
def test_result_lists_picks_tabulates_and_plots(problem):
    fn, data, init = problem
    val = {"X": data["X"][:30], "y": data["y"][:30], "lam": 0.0}
    res = sg.sweep(fn, init, {**data, "lam": 0.0}, {"lr": [0.01, 0.3, 1.0]}, n_jobs=1,
                   validation_data=val, **BASE)
    assert list(res) == res.runs and res[-1] is res.runs[2] and res[:2] == res.runs[:2]
    finals = [r.metrics["val_loss"][-1] for r in res]
    assert res.best("val_loss") is res[int(np.argmin(finals))] is res.best()
    accs = [r.metrics["val_accuracy"][-1] for r in res]
    assert res.best("val_accuracy").metrics["val_accuracy"][-1] == max(accs)   # maximised
    assert res.best("loss", mode="max") is res[int(np.argmax([r.loss[-1] for r in res]))]
    rows = res.table()
    assert [r["lr"] for r in rows] == [0.01, 0.3, 1.0]
    assert rows[1]["val_loss"] == finals[1] and rows[1]["epochs"] == 4
    assert "SweepResult: 3 runs" in repr(res) and "<table>" in res._repr_html_()
    fig = res.plot()
    assert len(fig.axes[0].lines) == 3
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()][0] == "lr=0.01"
    with pytest.raises(ValueError, match="no finished run has a value for metric 'f1'"):
        res.best("f1")
    pd = pytest.importorskip("pandas")
    frame = res.to_pandas()
    assert isinstance(frame, pd.DataFrame) and list(frame["lr"]) == [0.01, 0.3, 1.0]


def test_early_stopping_per_run_and_best_uses_the_restored_epoch(regression):
    fn, data = regression
    val = {"X": data["X"][:10], "t": data["t"][:10] + 5.0}   # shifted: val_loss turns up
    res = sg.sweep(fn, {"w": np.zeros(3)}, data, {"lr": [0.001, 0.05]}, epochs=40, n_jobs=1,
                   validation_data=val, early_stopping=3)
    for run in res:
        ref = sg.fit(fn, {"w": np.zeros(3)}, data, lr=run.settings["lr"], epochs=40,
                     validation_data=val, early_stopping=3, progress=False)
        _same_run(run, ref)
    stopped = [r for r in res if r.stop_reason == "early_stopping"]
    assert stopped
    row = res.table()[res.runs.index(stopped[0])]
    run = stopped[0]
    assert row["val_loss"] == run.metrics["val_loss"][run.best_epoch - 1]


# -- arguments checked before any work -----------------------------------------------------------
@pytest.fixture
def no_runs(monkeypatch):
    def fail(*args):
        raise AssertionError("a run started before the arguments were checked")
    monkeypatch.setattr("symgrad.train.sweeps.run_fused", fail)


@pytest.mark.parametrize("grid, kwargs, error, match", [
    ({"lr": [0.1], "learning_rate": [1]}, {}, ValueError, "unknown grid key 'learning_rate'"),
    ({"lr": []}, {}, ValueError, r"grid\['lr'\] is an empty list"),
    ({}, {}, ValueError, "grid has no keys"),
    ([], {}, ValueError, "grid is an empty list"),
    ({"lr": 0.1}, {}, TypeError, r"grid\['lr'\] must be a list of values"),
    ("lr", {}, TypeError, "grid must be a dict"),
    ({"lr": [0.1]}, {"lr": 0.2}, ValueError, "'lr' is both a grid key and a fit argument"),
    ({"lr": [0.1]}, {"n_jobs": 0}, ValueError, "n_jobs must be None, -1"),
    ({"lr": [0.1]}, {"n_jobs": 1.5}, ValueError, "n_jobs must be"),
    ({"lr": [0.1]}, {"client": object()}, TypeError, "client must be a distributed.Client"),
    ({"lr": [0.1]}, {"learning_rate": 1}, TypeError, "unknown fit arguments"),
    ({"lr": [0.1]}, {"on_divergence": "ignore"}, ValueError, "on_divergence must be"),
    ({"lr": [0.1, -1.0]}, {}, ValueError, r"grid point \{lr=-1\}: .*lr"),
    ({"momentum": [0.5, 1.5]}, {"lr": 0.1}, ValueError, r"grid point \{momentum=1.5\}"),
    ({"batch_size": [8, 10 ** 6]}, {"lr": 0.1}, ValueError, r"batch_size=1000000"),
    ({"lam": [0.1]}, {"lr": 0.1, "data_lam": True}, ValueError,
     "'lam' is both a grid key and in data"),
])
def test_bad_arguments_fail_before_any_run(problem, no_runs, grid, kwargs, error, match):
    fn, data, init = problem
    data = {**data, "lam": 0.01} if kwargs.pop("data_lam", False) or "lam" not in str(grid) \
        else data
    with pytest.raises(error, match=match):
        sg.sweep(fn, init, data, grid, epochs=2, **{"n_jobs": 1, **kwargs})


def test_an_argument_that_cannot_travel_fails_before_any_run(problem, no_runs):
    import threading
    fn, data, init = problem
    lock = threading.Lock()

    def locked_metric(params, data):
        with lock:
            return 0.0

    with pytest.raises(TypeError, match="cannot send its model, data or fit arguments"):
        sg.sweep(fn, init, {**data, "lam": 0.0}, {"lr": [0.1, 0.2]}, n_jobs=2, epochs=2,
                 metrics=(locked_metric,))


def test_bad_init_and_missing_data_fail_before_any_run(problem, no_runs):
    fn, data, init = problem
    with pytest.raises(TypeError, match="data must be a dict"):
        sg.sweep(fn, init, [data["X"]], {"lr": [0.1]}, n_jobs=1)
    with pytest.raises(TypeError, match="init must be a dict"):
        sg.sweep(fn, [1, 2], data, {"lr": [0.1]}, n_jobs=1)
    with pytest.raises(TypeError, match=r"init\(0\) must return a dict"):
        sg.sweep(fn, lambda seed: None, data, {"lr": [0.1]}, n_jobs=1)
    with pytest.raises(DataError, match="lam"):     # the hyperparameter has no value
        sg.sweep(fn, init, data, {"lr": [0.1]}, n_jobs=1)


def test_a_loss_node_is_compiled_once_after_the_checks():
    L, data, shape = _softmax(seed=1)
    res = sg.sweep(L, _init(shape), {**data, "lam": 0.0}, {"lr": [0.1, 0.2]}, n_jobs=1, **BASE)
    fn = _compiled(L)
    for run in res:
        _same_run(run, _single_fit(fn, _init(shape), {**data, "lam": 0.0}, run.settings, **BASE))


def test_payload_travels_once_per_process():
    token, blob = sweep_run.dumps({"model": None, "data": {"x": np.arange(3)}, "fit_kwargs": {}})
    first = sweep_run.payload_of(token, blob)
    assert sweep_run.payload_of(token, b"not unpickled again") is first


@pytest.mark.slow   # a fresh process compiles the model and starts two workers
def test_the_readme_sweep_prints_what_the_readme_shows(capsys):
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.split("## Sweeps", 1)[1].split("\n## ", 1)[0]
    code, shown = re.findall(r"```(?:python|text)\n(.+?)\n```", section, re.S)[:2]
    exec(compile(code, "README.md", "exec"), {})     # the README's own example, as written
    assert capsys.readouterr().out.strip() == shown.strip()

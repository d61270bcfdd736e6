"""sweep on a Dask cluster: a 2-worker LocalCluster (processes) started here gives the
same Histories as the local sweep, survives a lost worker, and the estimators run
under GridSearchCV with joblib's dask backend."""
import os

import numpy as np
import pytest

import symgrad as sg

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.uses("sweep")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def problem():
    """test_sweep.py's softmax regression (the same graph, so the same compiled module)."""
    from symgrad.train.metrics import head_from
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 4))
    y = rng.integers(0, 3, 80)
    Xn, yn = sg.tensor("X", ("N", "D")), sg.tensor("y", ("N",), dtype=int)
    W, b = sg.param("W", ("D", "C")), sg.param("b", ("C",))
    lam = sg.tensor("lam", ())
    L = sg.cross_entropy((Xn @ W + b).named("z"), yn) + lam * sg.l2(W)
    fn = sg.compile(L, params=[W, b], outputs=[head_from(L, None, None).scores])

    def init(seed):
        return {"W": 0.1 * np.random.default_rng(seed).standard_normal((4, 3)),
                "b": np.zeros(3)}
    return fn, init, {"X": X, "y": y, "lam": 1e-3}


def _same(a, b):
    assert a.settings == b.settings and a.loss == b.loss
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert all(np.array_equal(a.metrics[k], b.metrics[k], equal_nan=True) for k in a.metrics)


GRID = {"lr": [0.05, 0.5, 1e4], "seed": [0, 1]}


def test_dask_runs_equal_local_runs(client, problem):
    fn, init, data = problem
    kw = dict(epochs=4, batch_size=16, validation_data={"X": data["X"][:20],
                                                        "y": data["y"][:20], "lam": 1e-3})
    local = sg.sweep(fn, init, data, GRID, n_jobs=1, **kw)
    remote = sg.sweep(fn, init, data, GRID, client=client, **kw)
    assert remote.where == "dask" and len(remote) == 6
    for a, b in zip(local, remote):
        _same(a, b)


def test_a_lost_worker_costs_only_a_retry(client, problem, tmp_path):
    fn, init, data = problem
    marker, me = str(tmp_path / "killed"), os.getpid()

    def kill_once(params, data):
        """A metric that kills its worker process the first time it runs in one."""
        if os.getpid() != me and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return 0.0

    kw = dict(epochs=3, batch_size=16, metrics=(kill_once,))
    remote = sg.sweep(fn, init, data, GRID, client=client, **kw)
    assert os.path.exists(marker)                  # a worker really died mid-sweep
    assert not remote.failed
    local = sg.sweep(fn, init, data, GRID, n_jobs=1, **kw)
    for a, b in zip(local, remote):
        _same(a, b)


def test_groups_are_sent_again_when_the_payload_is_lost(client, problem, monkeypatch):
    fn, init, data = problem
    scatters, real_scatter = [], client.scatter

    def losing_the_first(values, **kwargs):
        """As if the worker holding the first scattered payload died at once."""
        futures = real_scatter(values, **kwargs)
        scatters.append(futures)
        if len(scatters) == 1:
            client.cancel(futures)
        return futures

    monkeypatch.setattr(client, "scatter", losing_the_first)
    kw = dict(epochs=3, batch_size=16)
    remote = sg.sweep(fn, init, data, GRID, client=client, **kw)
    assert len(scatters) == 2 and not remote.failed
    for a, b in zip(sg.sweep(fn, init, data, GRID, n_jobs=1, **kw), remote):
        _same(a, b)


@pytest.mark.slow   # cold cache: the estimator compiles here first (about 10 s in all)
def test_grid_search_cv_on_the_dask_backend(client):
    joblib = pytest.importorskip("joblib")
    from sklearn.datasets import make_classification
    from sklearn.model_selection import GridSearchCV

    from symgrad.estimators import LogisticRegression
    X, y = make_classification(n_samples=120, n_features=5, random_state=0)
    grid = {"C": [0.1, 10.0]}
    est = LogisticRegression(max_iter=30, random_state=0)
    here = GridSearchCV(est, grid, cv=2, n_jobs=1).fit(X, y)   # compiles into the cache
    with joblib.parallel_backend("dask"):                     # the workers load it from there
        on_dask = GridSearchCV(est, grid, cv=2, n_jobs=2).fit(X, y)
    assert on_dask.best_params_ == here.best_params_
    assert np.array_equal(on_dask.cv_results_["mean_test_score"],
                          here.cv_results_["mean_test_score"])

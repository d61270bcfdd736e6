"""fit_together: runs that share the data order train in one compiled call
(run_group_with), and every run is bitwise its own fit: params, loss history, metrics,
divergence, early stopping. Runs that cannot share a call still give their fit."""
import pytest

import symgrad as sg
from symgrad.codegen import grouploop
from symgrad.errors import DivergenceError
from symgrad.train.together import fit_together

from tests.train.test_sweep import _compiled, _init, _same_run, _softmax

pytestmark = pytest.mark.uses("sweep")


@pytest.fixture(scope="module")
def problem():
    L, data, shape = _softmax()
    return _compiled(L), data, _init(shape)


@pytest.fixture
def calls(monkeypatch):
    """How many runs each run_group_with call trained."""
    seen, real = [], grouploop.call_run_group_with

    def counting(model, runs, orders, batch_size):
        seen.append(len(runs))
        return real(model, runs, orders, batch_size)
    monkeypatch.setattr(grouploop, "call_run_group_with", counting)
    return seen


def _check(fn, init, data, settings, **common):
    """fit_together of one run per settings dict == fit of each, bitwise."""
    fits = [(fn, init(s.get("seed", 0)), {**data, "lam": s.get("lam", 0.0)},
             {**common, **{k: v for k, v in s.items() if k != "lam"}}) for s in settings]
    together = fit_together(fits)
    for (f, p, d, kw), got in zip(fits, together):
        try:
            alone = sg.fit(f, p, data=d, progress=False, **kw)
        except DivergenceError as err:
            assert isinstance(got, DivergenceError)
            alone, got = err.history, got.history
        _same_run(got, alone)
    return together


OPTIMIZERS = [{"optimizer": "sgd", "lr": 0.1}, {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9},
              {"optimizer": "nesterov", "lr": 0.05}, {"optimizer": "adam", "lr": 0.01},
              {"optimizer": "adamw", "lr": 0.01, "weight_decay": 0.1},
              {"optimizer": "rmsprop", "lr": 0.01, "momentum": 0.5}]


def test_different_optimizers_and_hyperparameters_share_one_call(problem, calls):
    fn, data, init = problem
    settings = [{**o, "lam": lam} for o in OPTIMIZERS for lam in (0.0, 1e-2)]
    _check(fn, init, data, settings, epochs=4, batch_size=16, seed=3, metrics=())
    assert calls == [len(settings)]


def test_schedules_full_batch_and_metrics(problem, calls):
    fn, data, init = problem
    settings = [{"lr": lr, "schedule": sch} for lr in (0.1, 0.5) for sch in (None, "cosine")]
    _check(fn, init, data, settings, epochs=5, batch_size=None, metrics=())
    _check(fn, init, data, settings, epochs=3, batch_size=20, metrics="auto",
           validation_data={**data, "lam": 0.0})
    assert calls == [4, 4, 4, 4]      # with metrics: one call per epoch


def test_runs_with_other_seeds_or_batch_sizes_are_separate_groups(problem, calls):
    fn, data, init = problem
    settings = [{"lr": 0.1, "seed": s, "batch_size": b} for s in (0, 1) for b in (8, 16)]
    settings += [dict(x, lr=0.2) for x in settings]
    _check(fn, init, data, settings, epochs=3, metrics=())
    assert sorted(calls) == [2, 2, 2, 2]


def test_a_diverging_run_stops_alone_and_is_rewound_as_fit_does(problem, calls):
    fn, data, init = problem
    # a negative penalty has no minimum: that run's weights grow until the loss is -inf
    settings = [{"lr": 0.1}, {"lr": 1.0, "lam": -1e3}, {"lr": 0.2}]
    out = _check(fn, init, data, settings, epochs=6, batch_size=8, on_divergence="stop")
    assert [h.diverged for h in out] == [False, True, False]
    assert len(out[0]) == 6 and len(out[1]) < 6
    # raising instead: the diverged run's exception holds the same history
    out = _check(fn, init, data, settings, epochs=6, batch_size=8)
    assert isinstance(out[1], DivergenceError) and not isinstance(out[0], Exception)


def test_early_stopping_per_run(problem):
    fn, data, init = problem
    settings = [{"lr": lr} for lr in (1e-3, 0.3, 3.0)]
    out = _check(fn, init, data, settings, epochs=30, batch_size=16, early_stopping=2,
                 validation_data={**data, "lam": 0.0})
    assert len({len(h) for h in out}) > 1      # the runs stopped at different epochs


def test_runs_on_other_data_arrays_are_not_grouped(problem, calls):
    fn, data, init = problem
    other = {**data, "X": data["X"][::-1].copy()}        # same shape, other rows
    fits = [(fn, init(0), {**d, "lam": 0.0}, {"lr": 0.1, "epochs": 2, "metrics": ()})
            for d in (data, other, data)]
    out = fit_together(fits)
    for (f, p, d, kw), got in zip(fits, out):
        _same_run(got, sg.fit(f, p, data=d, progress=False, **kw))
    assert calls == [2]                 # the two runs on `data` together, `other` alone


def test_bad_arguments_fail_their_run_only(problem):
    fn, data, init = problem
    fits = [(fn, init(0), {**data, "lam": 0.0}, {"lr": 0.1, "epochs": 2}),
            (fn, init(0), {**data, "lam": 0.0}, {"lr": -1.0, "epochs": 2})]
    ok, bad = fit_together(fits)
    assert len(ok) == 2 and isinstance(bad, ValueError) and "lr" in str(bad)


def test_the_group_loop_is_in_the_module_and_reads_like_the_step(problem):
    fn, _, _ = problem
    text = fn.source[fn.source.index("def run_group_with("):]
    text = text[:text.index("\n\n\n")]
    assert "lam_runs" in text and "W_runs" in text and "X_all" in text
    assert "W = W_runs[r]" in text and "_sg_gemm(X, W" in text
    step = fn.source[fn.source.index("def run_epochs_with("):]
    assert step.count("# dL/dW") >= 1 and text.count("# dL/dW") == 1

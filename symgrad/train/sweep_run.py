"""Running sweep tasks: the same code in-process, in worker processes and on Dask workers.

A *payload* is what every run of a sweep shares (the compiled model, the data, the fit
arguments). It travels once per worker as bytes (cloudpickle, or joblib's copy of it, so
callables such as metric functions and lambdas travel too) and is unpickled once per worker
process, kept under its token; a :class:`~symgrad.codegen.CompiledModel` unpickles by
loading its module from the cache directory (see ``CompiledModel.__setstate__``).

A *task* is one run: ``(index, settings, fit settings, hyperparameter values, initial
params)``; ``settings`` is the grid point as the user wrote it.
"""
import hashlib
import pickle
import threading
from collections import OrderedDict

from symgrad.errors import DivergenceError
from symgrad.train.driver import fit
from symgrad.train.sweep_result import FailedRun
from symgrad.train.together import fit_together

_PAYLOADS = OrderedDict()   # token -> unpickled payload, per worker process
_KEEP = 4                    # payloads kept per worker (the last few sweeps)
_LOCK = threading.Lock()     # Dask workers may run several tasks in threads of one process


def _cloudpickle():
    try:
        import cloudpickle
    except ImportError:     # joblib (a scikit-learn dependency) vendors it
        from joblib.externals import cloudpickle
    return cloudpickle


def dumps(payload):
    """``(token, bytes)`` of a payload; TypeError naming what cannot travel."""
    try:
        blob = _cloudpickle().dumps(payload)
    except Exception as err:
        raise TypeError(f"sweep cannot send its model, data or fit arguments to worker "
                        f"processes ({type(err).__name__}: {err}); run in-process with "
                        "n_jobs=1") from None
    return hashlib.sha256(blob).hexdigest()[:24], blob


def payload_of(token, blob):
    """The unpickled payload for ``token`` (unpickled once per process)."""
    with _LOCK:
        if token not in _PAYLOADS:
            _PAYLOADS[token] = pickle.loads(blob)
            while len(_PAYLOADS) > _KEEP:
                _PAYLOADS.popitem(last=False)
        _PAYLOADS.move_to_end(token)
        return _PAYLOADS[token]


def fit_args(payload, task):
    """``(model, params, data, fit kwargs)`` of one task: the shared data and fit arguments
    with the grid point's hyperparameter values and fit settings."""
    index, settings, fit_settings, hyper, params = task
    data = {**payload["data"], **hyper}
    kwargs = {**payload["fit_kwargs"], **fit_settings}
    if hyper and kwargs.get("validation_data") is not None:
        kwargs["validation_data"] = {**kwargs["validation_data"], **hyper}
    return payload["model"], params, data, kwargs


def _as_run(settings, outcome):
    """A History with ``.settings`` from what fit returned or raised (a FailedRun if it
    raised anything but a divergence: one bad run must not end the sweep)."""
    if isinstance(outcome, DivergenceError):     # only if a caller asked fit to raise
        outcome = outcome.history
    elif isinstance(outcome, Exception):
        return FailedRun(settings, f"{type(outcome).__name__}: {outcome}")
    outcome.settings = settings
    return outcome


def run_one(payload, task):
    """Train one grid point alone; ``(index, History)`` (a FailedRun if it raised)."""
    model, params, data, kwargs = fit_args(payload, task)
    try:
        outcome = fit(model, params, data=data, progress=False, **kwargs)
    except Exception as err:
        outcome = err
    return task[0], _as_run(task[1], outcome)


def run_fused(payload, tasks):
    """Train ``tasks``, those that share the data order together (``fit_together``);
    ``[(index, History), ...]``, each bitwise the run's own ``fit``."""
    if not payload.get("fuse", True):
        done = []
        for task in tasks:
            done.append(run_one(payload, task))
            if getattr(done[-1][1], "stop_reason", None) == "interrupted":
                break                              # fit caught a Ctrl-C: run no more
        return done
    outcomes = fit_together([fit_args(payload, task) for task in tasks])
    return [(task[0], _as_run(task[1], o)) for task, o in zip(tasks, outcomes)]


def run_tasks(token, blob, tasks):
    """Run a group of tasks in this process; ``[(index, History), ...]``."""
    return run_fused(payload_of(token, blob), tasks)


def not_run(task, reason="not run: the sweep was interrupted"):
    """The FailedRun standing for a task that never ran."""
    return FailedRun(task[1], reason)

"""``sweep``: train one model over a grid of settings, one ``fit`` per grid point.

Every run is exactly the ``sg.fit`` call its grid point describes (same compiled code,
same shuffle orders, so params and losses are equal to the last bit); runs are
independent, so they go to worker processes (``n_jobs``) or to a Dask cluster
(``client=``). Everything is checked before any run starts: the grid, the fit
arguments and, through ``fit``'s own checks, every grid point.
"""
import itertools
import numbers
import os
import time

from symgrad.errors import DivergenceError
from symgrad.graph.node import Node
from symgrad.graph.traverse import leaves
from symgrad.train.checks import compile_loss, resolve_model
from symgrad.train.driver import fit_signature, progress_enabled, trainer_for
from symgrad.train.metrics import head_from
from symgrad.train.sweep_result import SweepResult, label
from symgrad.train.sweep_run import dumps, fit_args, not_run, run_fused

# fit arguments a sweep sets itself, never from the grid or **fit_kwargs
_OWN = ("fn", "params", "data", "progress")


def sweep(fn, init, data=None, grid=None, *, client=None, n_jobs=None, progress=True,
          fuse=True, **fit_kwargs):
    """Train ``fn`` once per point of the cartesian product of ``grid``; a :class:`SweepResult`.

    ``fn``: as for ``fit`` (a compiled model, a loss node, an ``nn`` model; compiled once
    here). ``init``: the initial params (a dict), or a callable ``seed -> params`` called
    with each run's ``seed``. ``data``: name -> array, shared by all runs. ``grid``: name ->
    list of values, or a list of such dicts (their products joined); names are ``fit``
    arguments (``lr``, ``seed``, ``momentum``, ``batch_size``, ...) or hyperparameters of
    the graph (0-d data tensors, e.g. ``sg.tensor("lam", ())``, given by name; their value
    is added to ``data`` and ``validation_data``). ``**fit_kwargs``: the other ``fit``
    arguments, the same for every run.

    ``n_jobs``: worker processes (default: the cores of this machine; 1 runs
    in-process). ``client``: a ``distributed.Client``; the runs become tasks on its
    cluster. ``fuse``: runs that share the data order (the same seed, batch size and
    epochs) train together, one compiled call per group gathering each minibatch once
    (``symgrad.train.together``); bitwise the same results as ``fuse=False``. A run
    that diverges is flagged in its History (``on_divergence="stop"``) and the others
    go on; with ``on_divergence="raise"`` the sweep raises
    :class:`~symgrad.errors.DivergenceError` after all runs, ``err.result`` holding them.
    """
    started = time.perf_counter()
    keys, points = expand_grid(grid)
    workers = check_n_jobs(n_jobs)
    check_client(client)
    raise_on_divergence = _on_divergence(fit_kwargs)
    check_fit_kwargs(fit_kwargs)
    model, loss, param_nodes = resolve_model(fn)
    if data is not None and not isinstance(data, dict):
        raise TypeError(f"data must be a dict of name -> array, got {type(data).__name__}")
    fit_keys, _ = split_keys(keys, loss, fit_kwargs, data)
    tasks = [_task(k, point, fit_keys, init, fit_kwargs) for k, point in enumerate(points)]
    data = {} if data is None else data
    checker = stand_in(model, loss, param_nodes)
    for task in tasks:
        _check_point(checker, data, fit_kwargs, task)
    if model is None:  # compile once, after every check has passed
        model = _compile(loss, param_nodes, fit_kwargs)
    if not isinstance(fuse, bool):
        raise TypeError(f"fuse must be True or False, got {fuse!r}")
    payload = {"model": model, "data": data, "fit_kwargs": fit_kwargs, "fuse": fuse}
    workers = min(workers, len(tasks))
    # Serialised before any run, so a fit argument that cannot travel fails first.
    blob = dumps(payload) if client is not None or workers > 1 else None
    runs, where = _dispatch(payload, blob, tasks, client, workers, _bar(progress, len(tasks)))
    result = SweepResult(runs, keys, time.perf_counter() - started, where)
    if raise_on_divergence and result.diverged:
        bad = "; ".join(label(run.settings) for run in result.diverged)
        err = DivergenceError(f"{len(result.diverged)} of {len(result)} sweep runs diverged "
                              f"({bad}); err.result holds every run")
        err.result = result
        raise err
    return result


# -- the grid ---------------------------------------------------------------------------
def expand_grid(grid):
    """``(keys in first-seen order, [grid point dict, ...])`` of a dict or list of dicts."""
    if isinstance(grid, dict):
        grids = [grid]
    elif isinstance(grid, (list, tuple)) and all(isinstance(g, dict) for g in grid):
        grids = list(grid)
    else:
        raise TypeError("grid must be a dict of name -> list of values (e.g. {'lr': [0.01, "
                        f"0.1]}}) or a list of such dicts, got {type(grid).__name__}")
    if not grids:
        raise ValueError("grid is an empty list: the sweep would have no runs")
    keys, points = {}, []
    for g in grids:
        if not g:
            raise ValueError("grid has no keys; give e.g. grid={'lr': [0.01, 0.1]}")
        names = [_key_name(k) for k in g]
        values = [_values(name, v) for name, v in zip(names, g.values())]
        if len(set(names)) < len(names):
            raise ValueError(f"grid names a key twice: {names}")
        keys.update(dict.fromkeys(names))
        points += [dict(zip(names, combo)) for combo in itertools.product(*values)]
    return list(keys), points


def _key_name(key):
    name = key.name if isinstance(key, Node) or hasattr(key, "is_Symbol") else key
    if not isinstance(name, str) or not name:
        raise TypeError(f"grid keys must be names (str), tensors or SymPy symbols, got {key!r}")
    return name


def _values(name, values):
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        raise TypeError(f"grid[{name!r}] must be a list of values to try, got {values!r}; "
                        f"write [{values!r}] for a single value")
    values = list(values)
    if not values:
        raise ValueError(f"grid[{name!r}] is an empty list: the grid would have no runs")
    return values


def fit_arguments():
    """The names of ``fit``'s arguments a grid or ``**fit_kwargs`` may set."""
    return [n for n in fit_signature().parameters if n not in _OWN]


def hyperparameters(loss):
    """Names of the graph's 0-d data tensors: the hyperparameters a grid may vary."""
    return [n.name for n in leaves(loss, "input") if not n.dims]


def split_keys(keys, loss, fit_kwargs, data):
    """``(fit argument keys, hyperparameter keys)``; errors name the key at fault."""
    fit_names, hyper_names = fit_arguments(), hyperparameters(loss)
    fit_keys, hyper_keys = [], []
    for key in keys:
        if key in fit_names:
            if key in fit_kwargs:
                raise ValueError(f"{key!r} is both a grid key and a fit argument "
                                 f"({key}={fit_kwargs[key]!r}); give it in one place")
            fit_keys.append(key)
        elif key in hyper_names:
            if data is not None and key in data:
                raise ValueError(f"hyperparameter {key!r} is both a grid key and in data; "
                                 "give it in one place")
            hyper_keys.append(key)
        else:
            raise ValueError(f"unknown grid key {key!r}: not a fit argument "
                             f"({', '.join(fit_names)}) nor a hyperparameter of the graph "
                             f"(0-d data tensors: {hyper_names or 'none'})")
    return fit_keys, hyper_keys


def check_fit_kwargs(fit_kwargs):
    unknown = [k for k in fit_kwargs if k not in fit_arguments()]
    if unknown:
        raise TypeError(f"sweep got unknown fit arguments {unknown}; fit takes "
                        f"{fit_arguments()}")


def check_n_jobs(n_jobs):
    """The number of worker processes: None = every core, -1 too (as in joblib)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if n_jobs is None or (n_jobs == -1 and not isinstance(n_jobs, bool)):
        return max(1, cores or 1)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs < 1:
        raise ValueError(f"n_jobs must be None, -1 (every core) or an int >= 1, got {n_jobs!r}")
    return int(n_jobs)


def check_client(client):
    if client is None:
        return
    if not all(callable(getattr(client, m, None)) for m in ("scatter", "map", "gather")):
        raise TypeError(f"client must be a distributed.Client (dask), got "
                        f"{type(client).__name__}")


def _on_divergence(fit_kwargs):
    """Runs always stop at divergence (so the others go on); True if the caller wants the
    sweep to raise at the end."""
    mode = fit_kwargs.pop("on_divergence", "stop")
    if mode not in ("stop", "raise"):
        raise ValueError(f"on_divergence must be 'stop' or 'raise', got {mode!r}")
    fit_kwargs["on_divergence"] = "stop"
    return mode == "raise"


# -- the runs -------------------------------------------------------------------------------
def _task(index, point, fit_keys, init, fit_kwargs):
    fit_settings = {k: v for k, v in point.items() if k in fit_keys}
    hyper = {k: v for k, v in point.items() if k not in fit_keys}
    return index, point, fit_settings, hyper, _init_params(init, fit_settings, fit_kwargs)


def _init_params(init, fit_settings, fit_kwargs):
    if isinstance(init, dict):
        return init
    if not callable(init):
        raise TypeError(f"init must be a dict of initial params or a callable seed -> params, "
                        f"got {type(init).__name__}")
    default = fit_signature().parameters["seed"].default
    seed = fit_settings.get("seed", fit_kwargs.get("seed", default))
    params = init(seed)
    if not isinstance(params, dict):
        raise TypeError(f"init({seed!r}) must return a dict of name -> array, got "
                        f"{type(params).__name__}")
    return params


class _Checked(BaseException):
    """Raised by the stand-in model at fit's first call to it: every check has passed.
    (A BaseException, so no ``except Exception`` on the way can swallow it.)"""


def _stop(*args, **kwargs):
    raise _Checked()


def _stop_at_calls(self, name):
    """``__getattribute__`` of a stand-in: data attributes as they are, methods stop."""
    value = object.__getattribute__(self, name)
    if callable(value) and not name.startswith("__") and not isinstance(value, type):
        return _stop
    return value


_STAND_IN_TYPES = {}


def stand_in(model, loss, param_nodes):
    """A copy of ``model`` whose every method call raises ``_Checked``: ``fit`` validates
    all its arguments before it first calls the model, so that call ends the check. It is
    an instance of a subclass of the model's type, so fit's type checks see the real kind
    of model; a loss node (compiled only later) is stood in for by its NumPy reference."""
    if model is None:
        from symgrad.train.reference import NumpyModel
        model = NumpyModel(loss, param_nodes)
    cls = type(model)
    if cls not in _STAND_IN_TYPES:
        _STAND_IN_TYPES[cls] = type(f"ChecksOnly{cls.__name__}", (cls,),
                                    {"__getattribute__": _stop_at_calls})
    copy = object.__new__(_STAND_IN_TYPES[cls])
    copy.__dict__.update(model.__dict__)   # shallow: nothing is ever written through it
    return copy


def _check_point(checker, data, fit_kwargs, task):
    """Run ``fit``'s checks on one grid point, without training or compiling: its set-up
    (``trainer_for``) checks every argument; L-BFGS and Newton check more when they start,
    up to their first call of the (stand-in) model."""
    _, params, data, kwargs = fit_args({"model": checker, "data": data, "fit_kwargs": fit_kwargs},
                                       task)
    try:
        trainer = trainer_for(checker, params, data=data, progress=False, **kwargs)
        if trainer.opt.name != "lbfgs":
            return
        trainer.train()
    except _Checked:
        return
    except Exception as err:
        raise _at_point(err, task[1]) from None
    raise RuntimeError("sweep's check of a grid point trained instead of stopping")


def _at_point(err, point):
    """The same error, its message naming the grid point."""
    try:
        return type(err)(f"sweep grid point {{{label(point)}}}: {err}")
    except Exception:
        return err


def _compile(loss, param_nodes, fit_kwargs):
    """Compile as ``fit`` would, with the score node for metrics in the same module."""
    head = head_from(loss, fit_kwargs.get("output"), fit_kwargs.get("labels"))
    return compile_loss(loss, param_nodes, outputs=[head.scores] if head is not None else None)


def _dispatch(payload, blob, tasks, client, workers, bar):
    """``(runs in task order, where they ran)``: on Dask, in worker processes or here."""
    if blob is None:
        return _run_here(payload, tasks, bar), "in-process"
    if client is not None:
        from symgrad.train.sweep_dask import on_this_machine, run_on_dask
        # Workers elsewhere have their own cache directory: warming up here would not help.
        first = _warm_up(payload, tasks, bar) if on_this_machine(client) else []
        return first + run_on_dask(client, *blob, tasks[len(first):], bar), "dask"
    from symgrad.train.sweep_pool import run_in_pool
    first = _warm_up(payload, tasks, bar)
    return first + run_in_pool(workers, *blob, tasks[len(first):], bar), f"{workers} processes"


def _warm_up(payload, tasks, bar):
    """Run the first runs here if this process has not compiled the model's training loop
    yet: Numba compiles lazily, so otherwise every worker would compile the same functions
    at once; after these runs they are in the cache directory and workers load them. Two
    runs when fusing, so the loop that trains runs together is compiled too."""
    module = getattr(payload["model"], "module", None)
    name = "run_group_with" if payload.get("fuse", True) else "run_epochs_with"
    if module is None or len(tasks) < 3 or getattr(getattr(module, name, None), "signatures", None):
        return []
    first = [run for _, run in run_fused(payload, tasks[:2])]
    if bar is not None:
        bar.update(len(first))
    return first


RUNS_PER_CALL = 16    # in-process: runs per fused call, so the progress bar moves


def _run_here(payload, tasks, bar):
    """The runs here, fused in parts; Ctrl-C ends the sweep, keeping the runs finished."""
    runs = []
    try:
        for start in range(0, len(tasks), RUNS_PER_CALL):
            part = [run for _, run in run_fused(payload, tasks[start:start + RUNS_PER_CALL])]
            runs += part
            if bar is not None:
                bar.update(len(part))
            if any(getattr(r, "stop_reason", None) == "interrupted" for r in part):
                break                              # fit caught the Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        if bar is not None:
            bar.close()
    return runs + [not_run(task) for task in tasks[len(runs):]]


def _bar(progress, total):
    """A progress bar over runs, or None (SYMGRAD_PROGRESS=0, progress=False, no tqdm)."""
    if not progress_enabled(progress):
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="run", desc="sweep")

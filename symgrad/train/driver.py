"""``fit``: the gradient-descent driver around a model's ``run_epochs`` loop.

Compiled code cannot call Python (progress bars, validation, early stopping), so the
driver checks everything first, precomputes what the loop needs as data (the shuffle
orders and the per-epoch learning rates), then calls ``run_epochs`` in chunks of
epochs and does the Python-side work between chunks.
"""
import functools
import inspect
import math
import os
import time
import warnings
import weakref

import numpy as np

from symgrad.errors import DivergenceError
from symgrad.train.checks import (aligned, batch_size_for, check_fit_options, check_int,
                                  check_momentum, check_params_and_data, check_validation_data,
                                  compile_loss, resolve_model)
from symgrad.train.history import History
from symgrad.train.metrics import head_from
from symgrad.train.newton import check_newton_model, minimize_newton, newton_options
from symgrad.train.optimizers import OptimizerState, check_optimizer, default_lr
from symgrad.train.reference import NumpyModel, copy_arrays, infer_batch_dim, restore_arrays
from symgrad.train.schedules import learning_rates
from symgrad.train.shuffle import epoch_orders, seeded_rng

ON_DIVERGENCE = ("raise", "stop")
BAR_SECONDS = 0.1    # with a progress bar, each compiled call runs about this long


class EarlyStopping:
    """Stop when the monitored loss has not improved by ``min_delta`` for ``patience`` epochs.

    ``monitor`` defaults to ``"val_loss"`` when validation data is given, else ``"loss"``.
    With ``restore_best`` the returned params are those of the best epoch (Keras'
    ``restore_best_weights``).
    """

    def __init__(self, patience=5, min_delta=0.0, restore_best=True, monitor=None):
        self.patience = check_int(patience, "early_stopping patience", 1)
        if not isinstance(min_delta, (int, float)) or not min_delta >= 0:
            raise ValueError(f"early_stopping min_delta must be a number >= 0, got {min_delta!r}")
        self.min_delta = float(min_delta)
        self.restore_best = bool(restore_best)
        self.monitor = monitor
        self.best, self.best_epoch, self.best_params = math.inf, None, None

    def __repr__(self):
        return (f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, "
                f"restore_best={self.restore_best}, monitor={self.monitor!r})")

    def update(self, epoch, value, params):
        """Record the value of ``epoch``; True when training should stop."""
        if value < self.best - self.min_delta:
            self.best, self.best_epoch = value, epoch
            if self.restore_best:
                self.best_params = {k: v.copy() for k, v in params.items()}
            return False
        return self.best_epoch is not None and epoch - self.best_epoch >= self.patience


def _early_stopping(arg, has_validation):
    if arg is None or arg is False:
        return None
    if isinstance(arg, EarlyStopping):
        stopper = EarlyStopping(arg.patience, arg.min_delta, arg.restore_best, arg.monitor)
    elif isinstance(arg, dict):
        stopper = EarlyStopping(**arg)
    elif isinstance(arg, int) and not isinstance(arg, bool):
        stopper = EarlyStopping(patience=arg)
    else:
        raise TypeError(f"early_stopping must be None, a patience int, a dict or an "
                        f"EarlyStopping, got {arg!r}")
    stopper.monitor = stopper.monitor or ("val_loss" if has_validation else "loss")
    if stopper.monitor not in ("loss", "val_loss"):
        raise ValueError("early_stopping monitor must be 'loss' or 'val_loss', "
                         f"got {stopper.monitor!r}")
    if stopper.monitor == "val_loss" and not has_validation:
        raise ValueError("early_stopping monitors 'val_loss' but no validation_data was given")
    return stopper


def progress_enabled(progress):
    """``progress`` unless the environment says SYMGRAD_PROGRESS=0 (for CI and batch jobs)."""
    if os.environ.get("SYMGRAD_PROGRESS", "").strip().lower() in ("0", "false", "no", "off"):
        return False
    return bool(progress)


def _progress_bar(enabled, total):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is a convenience, never a reason to fail
        return None
    return tqdm(total=total, unit="epoch", desc="fit")


def fit(fn, params, data=None, lr=None, epochs=10, batch_size=None, shuffle=True, seed=0,
        momentum=None, schedule=None, early_stopping=None, validation_data=None,
        metrics="auto", progress=True, on_divergence="raise", chunk_epochs=None,
        output=None, labels=None, optimizer="sgd", betas=None, eps=None, weight_decay=None,
        alpha=None, tol=None):
    """Train ``params`` of ``fn`` by (mini-batch) gradient descent; returns a :class:`History`.

    ``fn``: a compiled model, a ``NumpyModel``, a scalar loss node (compiled here), or a
    ``symgrad.nn`` model. ``params``: name -> initial array (copied, never modified).
    ``data``/``validation_data``: name -> array. ``lr`` > 0 with an optional ``schedule``
    (a name, a :class:`~symgrad.train.schedules.Schedule` scaling ``lr``, or a callable
    epoch -> lr given instead of ``lr``). ``batch_size`` None = full batch; the last
    partial batch is dropped; rows are shuffled each epoch with
    ``np.random.default_rng(seed)`` when ``shuffle``. ``early_stopping``: a patience int,
    a dict or an :class:`EarlyStopping`. ``metrics``: "auto" (accuracy when the loss has
    a classification head), or a tuple of "accuracy" and callables ``f(params, data)``;
    ``output``/``labels`` name the score node and labels tensor if detection is not
    wanted. NaN/inf losses raise :class:`~symgrad.errors.DivergenceError` (its
    ``.history`` holds the last finite params) or, with ``on_divergence="stop"``, end
    training with ``history.diverged`` set.

    ``optimizer``: "sgd" (default; ``momentum``), "nesterov" (``momentum``, default 0.9),
    "adam" and "adamw" (``betas`` (0.9, 0.999), ``eps`` 1e-8, ``weight_decay``: L2 for
    Adam, decoupled for AdamW, default 1e-2), "rmsprop" (``alpha`` 0.99, ``eps`` 1e-8,
    ``momentum``), with torch.optim's update rules and defaults (lr defaults to 1e-3 for
    Adam/AdamW, 1e-2 for RMSprop); ``weight_decay`` (default 0) adds ``wd * p`` to the
    gradient for sgd, nesterov, adam and rmsprop. Each runs inside the compiled epoch
    loop; its state (moments, step count) carries over between the loop's calls. "lbfgs":
    SciPy's L-BFGS-B on the full batch, one history row per iteration, at most
    ``epochs`` iterations, stopping when the largest gradient component is <= ``tol``
    (default 1e-5); no lr, schedule or batch_size. See ``symgrad.train.optimizers``.
    """
    return _trainer_from(dict(locals())).train()


@functools.lru_cache(maxsize=1)
def fit_signature():
    """``inspect.signature(fit)``, made once (it costs ~0.2 ms, sweeps ask per run)."""
    return inspect.signature(fit)


def trainer_for(fn, params, data=None, **kwargs):
    """What ``fit(fn, params, data, **kwargs)`` trains, checked and set up but not run
    (``.train()`` runs it; ``symgrad.train.together`` runs several in one call)."""
    bound = fit_signature().bind(fn, params, data, **kwargs)
    bound.apply_defaults()
    return _trainer_from(bound.arguments)


def _trainer_from(a):
    """The :class:`_Trainer` of one ``fit`` call from its arguments (a dict by name)."""
    check_fit_options(a["shuffle"], a["seed"], a["progress"], a["metrics"], a["on_divergence"],
                      a["output"], a["labels"])
    optimizer = {k: a[k] for k in ("optimizer", "betas", "eps", "weight_decay", "alpha", "tol")}
    return _Trainer(a["fn"], a["params"], {} if a["data"] is None else a["data"], a["lr"],
                    a["epochs"], a["batch_size"], a["shuffle"], a["seed"], a["momentum"],
                    a["schedule"], a["early_stopping"], a["validation_data"], a["metrics"],
                    a["progress"], a["on_divergence"], a["chunk_epochs"], a["output"],
                    a["labels"], optimizer)


class _Trainer:
    """One run of ``fit``: checked inputs, loop state and the history being written."""

    def __init__(self, fn, params, data, lr, epochs, batch_size, shuffle, seed, momentum,
                 schedule, early_stopping, validation_data, metrics, progress, on_divergence,
                 chunk_epochs, output, labels, optimizer):
        # Every check runs before any compilation or training work.
        self.epochs = check_int(epochs, "epochs", 1)
        if momentum is not None:
            momentum = check_momentum(momentum)
        # "newton" (symgrad/train/newton.py) is checked there, then set up as full batch
        self.newton = newton_options(optimizer, lr, batch_size, schedule, momentum)
        optimizer = self.newton.as_lbfgs if self.newton else optimizer
        self.opt = check_optimizer(lr=lr, momentum=momentum, batch_size=batch_size,
                                   schedule=schedule, **optimizer)
        lr = default_lr(self.opt, lr, schedule)
        self.lrs = (np.full(self.epochs, np.nan) if self.opt.name == "lbfgs" else
                    learning_rates(lr, schedule, self.epochs))
        self.momentum = self.opt.momentum
        if on_divergence not in ON_DIVERGENCE:
            raise ValueError(f"on_divergence must be one of {ON_DIVERGENCE}, got {on_divergence!r}")
        self.on_divergence = on_divergence
        model, loss, param_nodes = resolve_model(fn)
        if self.newton:
            check_newton_model(model)
        dtype = np.dtype(getattr(model, "dtype", np.float64)).type
        # a compiled model's faster data check, from its class: sweeps check arguments on a
        # stand-in model whose every method call ends the check (sweeps.stand_in)
        finite = getattr(type(model), "all_finite", None)
        self.params, self.data, sizes = check_params_and_data(loss, param_nodes, params, data,
                                                              dtype, all_finite=finite)
        self.val = check_validation_data(loss, param_nodes, params, validation_data, dtype,
                                         finite)
        self.data, self.val = _keep_scalars(loss, self.data), _keep_scalars(loss, self.val)
        self.batch_dim = getattr(model, "batch_dim", None) or infer_batch_dim(loss)
        self.batch_size = batch_size_for(batch_size, sizes, self.batch_dim, param_nodes)
        if self.batch_size is None:     # every step reads all of it: once, aligned
            self.data = {k: aligned(v) for k, v in self.data.items()}
        self.n_rows = sizes.get(self.batch_dim)
        self.rng = seeded_rng(seed) if shuffle and self.batch_size else None
        self.seed = seed if self.rng is not None else None    # runs that share it share orders
        self.state = OptimizerState(self.params)   # kept across chunks
        self.metric_fns = self._metric_fns(loss, metrics, output, labels)
        self.stopper = _early_stopping(early_stopping, self.val is not None)
        per_epoch = bool(self.metric_fns) or self.val is not None or self.stopper is not None
        self.show_progress = progress_enabled(progress)
        self.chunk = self._chunk_size(chunk_epochs, per_epoch)
        # only for the bar: later chunks sized by time (see _chunks)
        self.bar_chunks = self.show_progress and chunk_epochs is None and not per_epoch
        self.history = History()
        if model is None:  # compile last: every check above has passed
            outputs = [self.head.scores] if self.metric_fns and self.head else None
            model = compile_loss(loss, param_nodes, dtype, outputs)
        self.model = model
        self.runner = _runner(model, self.opt)
        self.loss, self.param_nodes, self.dtype = loss, param_nodes, dtype
        self.output_fallback = None

    def _metric_fns(self, loss, metrics, output, labels):
        """name -> f(params, data) for each metric (measured on training and validation data)."""
        if not metrics and output is None and labels is None:
            self.head = None     # no metric reads it: not looked for (a graph walk a call)
            return {}
        head = self.head = head_from(loss, output, labels)
        if metrics == "auto":
            metrics = ("accuracy",) if head is not None else ()
        if isinstance(metrics, str) or callable(metrics):
            metrics = (metrics,)
        fns = {}
        for m in metrics or ():
            if m == "accuracy":
                if head is None:
                    raise ValueError("metrics asks for 'accuracy' but the loss has no "
                                     "classification head; pass output= and labels=")
                fns["accuracy"] = lambda p, d, h=head: self._accuracy(h, p, d)
            elif callable(m):
                fns[getattr(m, "__name__", "metric")] = m
            else:
                raise ValueError(f"unknown metric {m!r}; use 'accuracy' or a callable "
                                 "f(params, data) -> float")
        return fns

    def _accuracy(self, head, params, data):
        needed = {k: data[k] for k in (n.name for n in _input_leaves(head.scores))}
        return head.accuracy(self._scores(head.scores, params, needed), data[head.labels.name])

    def _scores(self, node, params, data):
        """The score node's value from the model; from the NumPy evaluator if it cannot."""
        if self.output_fallback is None:
            try:
                return self.model.output(node, params, **data)
            except Exception as err:  # a metric must not end a training run
                warnings.warn(f"{type(self.model).__name__}.output failed ({type(err).__name__}: "
                              f"{str(err)[:200]}); metrics use the NumPy evaluator instead",
                              RuntimeWarning, stacklevel=2)
                self.output_fallback = NumpyModel(self.loss, self.param_nodes, self.dtype)
        return self.output_fallback.output(node, params, **data)

    def _chunk_size(self, chunk_epochs, per_epoch):
        if chunk_epochs is not None:
            return check_int(chunk_epochs, "chunk_epochs", 1)
        if per_epoch:
            return 1  # metrics, validation and early stopping are per epoch
        # Otherwise as few calls as possible, but enough for a live progress bar.
        return max(1, math.ceil(self.epochs / 100)) if self.show_progress else self.epochs

    # -- the loop ---------------------------------------------------------------------------
    def train(self):
        bar = _progress_bar(self.show_progress, self.epochs)
        start = time.perf_counter()
        try:
            if self.opt.name == "lbfgs":
                self._lbfgs(bar)
            else:
                self._chunks(bar)
        except KeyboardInterrupt:
            # As skorch: Ctrl-C in a notebook ends training and keeps what was learnt.
            self.history.stop_reason = "interrupted"
            self.history.stopped_epoch = len(self.history) + 1
        finally:
            if bar is not None:
                bar.close()
            self.history.time = time.perf_counter() - start
        return self._finish()

    def _chunks(self, bar):
        """The epochs, in calls of the compiled loop of ``self.chunk`` epochs each; for a
        progress bar alone, as many epochs per call as fill ~BAR_SECONDS (the bar then
        moves ~10 times a second, and a fast model is not cut into 100 calls). The first
        call is timed, unless an earlier fit of this model on as many rows per batch
        and epoch was: its speed sizes the first call too (a short run is one call)."""
        done, chunk = 0, self.chunk
        speed_key = (self.batch_size, self.n_rows)
        known = _known_speed(self.model, speed_key) if self.bar_chunks else None
        if known is not None:
            chunk = _bar_chunk(self.chunk, known)
        while done < self.epochs:
            k = min(chunk, self.epochs - done)
            tic = time.perf_counter()
            finished, stop = self._run_chunk(done, k)
            if self.bar_chunks and finished:
                per_epoch = (time.perf_counter() - tic) / finished
                chunk = _bar_chunk(self.chunk, per_epoch)
                _remember_speed(self.model, speed_key, per_epoch)
            done += finished
            if bar is not None:
                bar.update(finished)
                bar.set_postfix(self._postfix(), refresh=False)
            if stop or finished < k:
                break

    def _run_chunk(self, first, k):
        """Run epochs first .. first+k-1; returns (epochs finished, early stop wanted)."""
        t0 = time.perf_counter()
        orders, saved = self.draw_orders(k), self.save()
        losses, done = self._call(self.params, self.state, orders, self.lrs[first:first + k])
        return self.after_chunk(first, k, orders, saved, losses, done, time.perf_counter() - t0)

    def draw_orders(self, k):
        """The row orders of the next ``k`` epochs (None without shuffling): drawn epoch by
        epoch, so chunking never changes them."""
        if self.rng is None:
            return None
        return epoch_orders(self.rng, self.n_rows, k)

    def save(self):
        """Params and optimizer state before a chunk (to rewind a diverged one)."""
        return copy_arrays(self.params), self.state.copy()

    def after_chunk(self, first, k, orders, saved, losses, done, seconds):
        """Record a chunk's ``losses`` (``done`` epochs run in ``seconds``); rewind and flag
        a divergence, then metrics and early stopping. (epochs finished, stop wanted)."""
        lrs = self.lrs[first:first + k]
        finished = _finite_prefix(losses, done)
        dur = seconds / max(finished, 1)
        self.history.record_epochs(first + 1, losses[:finished], lrs[:finished], dur)
        if finished < k:
            bad = losses[finished] if len(losses) > finished else math.nan
            self._rewind(saved, orders, lrs, finished)
            self._diverged(first + finished + 1, lrs[finished], bad)
            return finished, True
        return finished, self._measure(first + k)

    def _call(self, params, state, orders, lrs):
        if self.runner is not None:
            losses, done = self.runner(params, self.data, orders, lrs, self.batch_size,
                                       self.opt, state)
        else:  # a model with only the SGD loop (checked in _runner)
            losses, done = self.model.run_epochs(params, self.data, orders, lrs,
                                                 self.batch_size, self.momentum,
                                                 state.m if self.momentum else None)
        return np.asarray(losses, dtype=np.float64), int(done)

    def _lbfgs(self, bar):
        """Full-batch L-BFGS-B (SciPy) on the model's loss and gradient; a history row
        (and metrics, validation, early stopping) per iteration."""
        from symgrad.train.lbfgs import minimize_lbfgs
        if self.newton:
            return minimize_newton(self, bar)
        minimize_lbfgs(self, bar)

    def _rewind(self, saved, orders, lrs, finished):
        """Leave the params as after the last finite epoch, whatever the model's loop did.

        A loop may stop mid-epoch (params then hold the huge values that overflowed), so
        restore the chunk's starting point and replay its finite epochs: same orders and
        rates, so the same result.
        """
        restore_arrays(self.params, saved[0])
        self.state.restore(saved[1])
        if finished:
            self._call(self.params, self.state, None if orders is None else orders[:finished],
                       lrs[:finished])

    def _measure(self, epoch):
        """Metrics and validation after ``epoch``; returns True if early stopping says stop."""
        values = {name: f(self.params, self.data) for name, f in self.metric_fns.items()}
        if self.val is not None:
            values["val_loss"] = self.model.loss(self.params, **self.val)
            for name, f in self.metric_fns.items():
                values["val_" + name] = f(self.params, self.val)
        self.history.set_metrics(values)
        if self.stopper is None:
            return False
        monitored = self.history.loss[-1] if self.stopper.monitor == "loss" else values["val_loss"]
        if not np.isfinite(monitored):
            return False
        stop = self.stopper.update(epoch, monitored, self.params)
        if stop:
            self.history.stopped_epoch = epoch
            self.history.stop_reason = "early_stopping"
        return stop

    def _diverged(self, epoch, lr, bad_loss):
        h = self.history
        h.diverged, h.stopped_epoch, h.stop_reason = True, epoch, "diverged"
        self.divergence = (
            f"training diverged at epoch {epoch} of {self.epochs} with learning rate {lr:g}: "
            f"the loss became {bad_loss!r}. The params after epoch {epoch - 1} (the last "
            f"finite ones) are in err.history.params; try a smaller lr, e.g. {lr / 10:g}")

    def _postfix(self):
        out = {"loss": f"{self.history.loss[-1]:.4g}"} if self.history.loss else {}
        for key in ("accuracy", "val_loss", "val_accuracy"):
            column = self.history.metrics.get(key)
            if column and not math.isnan(column[-1]):
                out[key] = f"{column[-1]:.4g}"
        return out

    def _finish(self):
        h = self.history
        if self.stopper is not None:
            h.best_epoch = self.stopper.best_epoch
            if self.stopper.best_params is not None and not h.diverged:
                for name, best in self.stopper.best_params.items():
                    self.params[name][...] = best
        h.params = self.params
        if h.diverged and self.on_divergence == "raise":
            err = DivergenceError(self.divergence)
            err.history, err.params = h, h.params
            err.epoch, err.lr = h.stopped_epoch, float(self.lrs[h.stopped_epoch - 1])
            raise err
        return h


# model -> {(batch size, rows): seconds per epoch} of its last fit with a progress bar
_EPOCH_SECONDS = weakref.WeakKeyDictionary()


def _bar_chunk(smallest, per_epoch):
    """Epochs per compiled call that take ~BAR_SECONDS at ``per_epoch`` seconds each."""
    return max(smallest, int(BAR_SECONDS / max(per_epoch, 1e-9)))


def _known_speed(model, key):
    try:
        return _EPOCH_SECONDS.get(model, {}).get(key)
    except TypeError:    # a model that cannot be weakly referenced is timed every time
        return None


def _remember_speed(model, key, per_epoch):
    try:
        _EPOCH_SECONDS.setdefault(model, {})[key] = per_epoch
    except TypeError:
        pass


def _finite_prefix(losses, done):
    """Epochs run before the first non-finite loss (models may or may not count the
    diverging epoch in ``done``)."""
    ok = np.isfinite(losses[:done])
    return int(done if ok.all() else np.argmin(ok))


def _runner(model, opt):
    """``f(params, data, orders, lrs, batch_size, optimizer, state)`` running the model's
    fused loop with ``opt``; None when the model's plain ``run_epochs`` (SGD) will do."""
    if callable(getattr(model, "run_epochs_with", None)):   # NumpyModel
        return model.run_epochs_with
    try:
        from symgrad.codegen.model import CompiledModel
        from symgrad.codegen.trainloop import call_run_epochs_with
    except ImportError:
        CompiledModel = None
    if CompiledModel is not None and isinstance(model, CompiledModel):
        def run(params, data, orders, lrs, batch_size, optimizer, state):
            return call_run_epochs_with(model, params, data, orders, lrs, batch_size,
                                        optimizer.name, optimizer.hyper(), state, checked=True)
        return run
    if opt.name == "lbfgs" or (opt.name == "sgd" and not opt.weight_decay):
        return None
    raise TypeError(f"{type(model).__name__} has only an SGD training loop (run_epochs); "
                    f"optimizer {opt.name!r} needs a compiled model or a NumpyModel")


def _keep_scalars(loss, arrays):
    """0-d data tensors (hyperparameters such as lambda) stay 0-d: never sliced into
    minibatches, bound from a float or a 0-d array."""
    if arrays is None:
        return None
    scalars = {n.name for n in _input_leaves(loss) if not n.dims}
    return {k: (np.asarray(v).reshape(()) if k in scalars and np.size(v) == 1 else v)
            for k, v in arrays.items()}


def _input_leaves(node):
    from symgrad.graph.traverse import leaves
    return leaves(node, "input")

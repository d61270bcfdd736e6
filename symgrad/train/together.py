"""Several ``fit`` runs of one compiled model trained together, bitwise as one by one.

Runs that share the model, the data rows, the row order (the same seed, shuffle and batch
size), the number of epochs and the chunking are trained in lockstep: per chunk one call
of the generated ``run_group_with`` (``symgrad.codegen.grouploop``) trains all live runs,
gathering each minibatch once; then each run's own ``_Trainer`` records its losses,
rewinds a divergence, measures metrics and decides on early stopping, exactly as
``fit`` does after its own call. Learning rates, schedules, optimizers, momentum and
hyperparameter values may differ between the runs.
"""
import time

import numpy as np

from symgrad.train.driver import trainer_for

GROUP_LIMIT = 64      # runs per compiled call (the stacked params are copies)


def group_key(trainer):
    """Runs with the same key can train together; None: this run trains alone."""
    model = trainer.model
    if trainer.opt.name == "lbfgs" or trainer.newton or trainer.show_progress:
        return None
    if not callable(getattr(getattr(model, "module", None), "run_group_with", None)):
        return None
    # the arrays the runs share are taken from the first run: the same objects only;
    # 0-d values (hyperparameters) and params are stacked: the same shapes only
    shared = tuple((k, id(v)) for k, v in sorted(trainer.data.items()) if np.ndim(v))
    shapes = tuple((k, np.shape(v)) for k, v in sorted({**trainer.params,
                                                       **trainer.data}.items()))
    return (id(model), trainer.seed, trainer.batch_size, trainer.n_rows, trainer.epochs,
            trainer.chunk, shared, shapes)


def fit_together(fits):
    """``[History or exception, ...]`` of ``fits``, each ``(fn, params, data, fit kwargs)``;
    equal to ``fit(fn, params, data, **kwargs)`` run one by one. A run whose arguments or
    training raise gives that exception in its place; the others go on."""
    out, groups = [None] * len(fits), {}
    for k, (fn, params, data, kwargs) in enumerate(fits):
        try:
            trainer = trainer_for(fn, params, data, progress=False, **kwargs)
        except Exception as err:
            out[k] = err
            continue
        key = group_key(trainer)
        groups.setdefault(key if key is not None else ("alone", k), []).append((k, trainer))
    for members in groups.values():
        for start in range(0, len(members), GROUP_LIMIT):
            part = members[start:start + GROUP_LIMIT]
            ran = train_together([t for _, t in part]) if len(part) > 1 else \
                [_finished(part[0][1], part[0][1].train)]
            for (k, _), result in zip(part, ran):
                out[k] = result
    return out


def _finished(trainer, train):
    """The History of ``train()``, or the exception it raised (a DivergenceError keeps it)."""
    try:
        return train()
    except Exception as err:
        return err


def train_together(trainers):
    """Train ``trainers`` (one :func:`group_key`) in lockstep; their results in order."""
    from symgrad.codegen.grouploop import call_run_group_with
    first, start = trainers[0], time.perf_counter()
    for t in trainers[1:]:     # one generator: the same seed draws the same orders for all
        t.rng = first.rng
    live, done, failed = list(trainers), 0, {}
    try:
        while live and done < first.epochs:
            k = min(first.chunk, first.epochs - done)
            orders, saved = live[0].draw_orders(k), [t.save() for t in live]
            tic = time.perf_counter()
            results = call_run_group_with(first.model, [_run(t, done, k) for t in live],
                                          orders, first.batch_size)
            seconds = (time.perf_counter() - tic) / len(live)
            still = []
            for t, s, (losses, ran) in zip(live, saved, results):
                try:
                    finished, stop = t.after_chunk(done, k, orders, s, losses, ran, seconds)
                except Exception as err:    # e.g. a metric that raises: as fit would
                    failed[id(t)] = err
                    continue
                if not stop and finished == k:
                    still.append(t)
            live, done = still, done + k
    except KeyboardInterrupt:      # as fit: Ctrl-C ends training, keeping what was learnt
        for t in live:
            t.history.stop_reason = "interrupted"
            t.history.stopped_epoch = len(t.history) + 1
    share = (time.perf_counter() - start) / len(trainers)
    for t in trainers:
        t.history.time = share
    return [failed.get(id(t)) or _finished(t, t._finish) for t in trainers]


def _run(trainer, first, k):
    return {"params": trainer.params, "data": trainer.data, "lrs": trainer.lrs[first:first + k],
            "rule": trainer.opt.name, "hyper": trainer.opt.hyper(), "state": trainer.state}


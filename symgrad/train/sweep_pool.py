"""Sweep runs in worker processes on this machine.

Workers are loky's (joblib's) reusable processes: fresh interpreters, not forks of a
process whose other threads may hold locks; they never re-run the caller's script (no
``if __name__ == "__main__"`` guard needed) and stay up between sweeps (loky stops them
after 300 s idle). Each keeps the last few payloads it unpickled, so a second sweep of
the same model and data loads nothing again.

The model reaches the workers by its source: unpickling a ``CompiledModel`` loads its
module from the cache directory (``$SYMGRAD_CACHE_DIR``), where Numba finds the machine
code the parent compiled.
"""
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool

from symgrad.train.sweep_result import FailedRun
from symgrad.train.sweep_run import not_run, run_tasks

GROUPS_PER_WORKER = 2   # groups of runs per worker: balance against sending the payload


def executor(workers):
    """loky's reusable process pool (what scikit-learn's ``n_jobs`` uses): workers are
    started once, kept between sweeps, and never re-run the caller's ``__main__``."""
    from joblib.externals.loky import get_reusable_executor
    return get_reusable_executor(max_workers=workers, reuse=True)


def groups(tasks, n_groups):
    """``tasks`` dealt round-robin into ``n_groups`` non-empty groups."""
    n_groups = max(1, min(n_groups, len(tasks)))
    return [tasks[k::n_groups] for k in range(n_groups)]


def run_in_pool(workers, token, blob, tasks, bar, retries=1):
    """Histories of ``tasks`` (in task order), run by ``workers`` processes.

    A worker that dies (killed, out of memory, a crash in native code) breaks loky's
    pool and every group still running in it; those groups run again in a fresh pool,
    up to ``retries`` times, then become :class:`FailedRun` entries.
    """
    pending, runs = groups(tasks, workers * GROUPS_PER_WORKER), {}
    for attempt in range(retries + 1):
        pool = executor(workers)
        futures = {pool.submit(run_tasks, token, blob, group): group for group in pending}
        pending = []
        for future in _until_interrupted(as_completed(futures), pool, futures):
            try:
                done = future.result()
            except BrokenProcessPool as err:
                if attempt < retries:
                    pending.append(futures[future])
                    continue
                done = _failed(futures[future], f"worker process died: {err}")
            except Exception as err:   # e.g. the payload did not unpickle in the worker
                done = _failed(futures[future], f"{type(err).__name__}: {err}")
            runs.update(done)
            if bar is not None:
                bar.update(len(done))
        if not pending:
            break
    if bar is not None:
        bar.close()
    return [runs[t[0]] if t[0] in runs else not_run(t) for t in tasks]


def _until_interrupted(finished, pool, futures):
    """The finished futures; on Ctrl-C, cancel the rest and stop the workers running them."""
    try:
        yield from finished
    except KeyboardInterrupt:
        for future in futures:
            future.cancel()
        pool.shutdown(wait=False, kill_workers=True)


def _failed(group, reason):
    return [(t[0], FailedRun(t[1], reason)) for t in group]

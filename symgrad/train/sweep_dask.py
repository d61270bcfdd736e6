"""Sweep runs as tasks on a Dask cluster (``sweep(..., client=distributed.Client(...))``).

The payload (compiled model, data, fit arguments) is scattered once; each task is a
group of runs that names it, so every worker receives it at most once and unpickles it
once per process (``sweep_run.payload_of``). The model travels by its source: a worker
writes the module into its own cache directory if it is not there (a worker on another
machine compiles it once, a worker on this machine loads the parent's machine code).

A worker lost mid-sweep costs only the groups it was running: the scheduler runs them
again elsewhere, an exception in a task is retried ``RETRIES`` times, and a group
that still fails (e.g. the worker holding the payload died) is sent again once with the
payload scattered anew; only then do its runs become :class:`FailedRun` entries.
"""
from symgrad.train.sweep_pool import GROUPS_PER_WORKER, groups
from symgrad.train.sweep_result import FailedRun
from symgrad.train.sweep_run import not_run, run_tasks

RETRIES = 2


def n_workers(client):
    """The cluster's worker count now (at least 1, so a cluster still scaling up works)."""
    try:
        return max(1, len(client.scheduler_info().get("workers", {})))
    except Exception:
        return 1


def on_this_machine(client):
    """True if every worker runs on this host (so they share its cache directory)."""
    import socket
    from urllib.parse import urlparse
    here = {"127.0.0.1", "localhost", "::1"}
    try:
        here.add(socket.gethostbyname(socket.gethostname()))
        workers = client.scheduler_info().get("workers", {})
    except Exception:
        return False
    hosts = {urlparse(address).hostname for address in workers}
    return bool(hosts) and hosts <= here


def run_on_dask(client, token, blob, tasks, bar, resubmits=1):
    """Histories of ``tasks`` (in task order), computed on ``client``'s cluster.

    A group whose task failed for good (Dask's ``retries`` spent, or cancelled because
    the worker holding the payload died: a scattered value has no task to recompute it
    from, and Dask keeps one replica) is sent again with the payload scattered anew, up
    to ``resubmits`` times; then its runs become :class:`FailedRun` entries.
    """
    pending, runs = groups(tasks, n_workers(client) * GROUPS_PER_WORKER), {}
    try:
        for attempt in range(resubmits + 1):
            pending = _submit_and_collect(client, token, blob, pending, runs, bar,
                                          last=attempt == resubmits)
            if not pending:
                break
    except KeyboardInterrupt:   # the futures were cancelled; keep what is done
        pass
    finally:
        if bar is not None:
            bar.close()
    return [runs[t[0]] if t[0] in runs else not_run(t) for t in tasks]


def _submit_and_collect(client, token, blob, work, runs, bar, last):
    """Run ``work`` (groups of tasks) once; put results in ``runs``; the failed groups."""
    from distributed import as_completed
    [payload] = client.scatter([blob])       # once per attempt; workers fetch it as needed
    futures = client.map(run_tasks, [token] * len(work), [payload] * len(work), work,
                         retries=RETRIES, pure=False)
    group_of, failed = {f.key: g for f, g in zip(futures, work)}, []
    try:
        for future in as_completed(futures):
            try:
                done = future.result()
            except Exception as err:
                if not last:
                    failed.append(group_of[future.key])
                    continue
                done = [(t[0], FailedRun(t[1], f"dask task failed: {type(err).__name__}: "
                                               f"{err}")) for t in group_of[future.key]]
            runs.update(done)
            if bar is not None:
                bar.update(len(done))
    except KeyboardInterrupt:
        client.cancel(futures + [payload])
        raise
    return failed

"""Two cores: the same trainers with BLAS on one thread and on two, interleaved.

    python -m bench.threads [--workloads W2,W4] [--repeats 5]

Runs in its own process (``run`` starts it): the main benchmark process is pinned
to one core with single-threaded libraries. Here the process may use two cores, and
each call sets OpenBLAS's thread count (NumPy's and SciPy's copies, which Numba's
matrix products use) with threadpoolctl. Elementwise loops stay single-threaded in
both symgrad and the hand-written Numba trainer. Each trainer runs twice with two
threads and the parameters are compared bit for bit (threaded BLAS splits the output,
not the sums, so the results do not depend on timing).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _limited(fn, threads):
    from threadpoolctl import threadpool_limits

    def run(wl):
        with threadpool_limits(limits=threads, user_api="blas"):
            return fn(wl)
    return run


def measure(workloads, repeats):
    import numpy as np

    from . import impl_numba, impl_symgrad
    from .timing import time_trainers
    from .workloads import WORKLOADS
    rows = []
    for name in workloads:
        wl = WORKLOADS[name]()
        trainers = {}
        for impl, table in (("numba", impl_numba.TRAINERS), ("symgrad", impl_symgrad.TRAINERS)):
            for t in (1, 2):
                trainers[f"{impl} {t}T"] = _limited(table[name], t)
        # short runs get more rounds (as the main table): W2's best of 5 moved 0.9-1.2x
        res = time_trainers(trainers, wl, repeats=repeats, min_seconds=0.5)
        for impl in ("numba", "symgrad"):
            one, two = res[f"{impl} 1T"], res[f"{impl} 2T"]
            again, _ = trainers[f"{impl} 2T"](wl)
            same = all(np.array_equal(again[k], two.params[k]) for k in again)
            # the same round's one-thread time / two-thread time: a slow phase of the host
            # hits both calls
            per_round = float(np.median(np.array(one.times_s) / np.array(two.times_s)))
            rows.append({"workload": name, "impl": impl, "one_thread_s": one.train_s,
                         "two_threads_s": two.train_s, "speedup": one.train_s / two.train_s,
                         "speedup_per_round": per_round, "rounds": len(two.times_s),
                         "cpu_over_wall_2T": two.cpu_over_wall, "deterministic": same})
    return rows


def run(workloads=("W2", "W4"), repeats=5, log=print):
    """Start the measuring process (two cores, two BLAS threads allowed); return its rows."""
    if not workloads:
        return []           # none of the thread workloads (W2, W4) was asked for
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2",
           "MKL_NUM_THREADS": "2", "NUMBA_NUM_THREADS": "2",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "bench.threads", "--workloads", ",".join(workloads),
           "--repeats", str(repeats), "--child"]
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        log(f"  threads: failed: {out.stderr[-800:]}")
        return []
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    for r in rows:
        log(f"  threads {r['workload']} {r['impl']}: {r['speedup']:.2f}x with 2 threads "
            f"({r['speedup_per_round']:.2f}x per round)")
    return rows


def markdown(rows):
    out = ["| threads | impl | 1 thread | 2 threads | speedup | per round (median) "
           "| CPU/wall (2T) | bit-identical |",
           "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        per_round = r.get("speedup_per_round")
        out.append(f"| {r['workload']} | {r['impl']} | {r['one_thread_s'] * 1e3:.1f} ms "
                   f"| {r['two_threads_s'] * 1e3:.1f} ms | {r['speedup']:.2f}x "
                   f"| {'' if per_round is None else f'{per_round:.2f}x'} "
                   f"| {r['cpu_over_wall_2T']:.2f} | {'yes' if r['deterministic'] else 'NO'} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="W2,W4")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    names = args.workloads.split(",")
    if args.child:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        print(json.dumps(measure(names, args.repeats)))
        return
    print(markdown(run(names, args.repeats)))


if __name__ == "__main__":
    main()

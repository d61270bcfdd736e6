"""Single-threaded environment for fair timings.

``set_single_thread_env`` must run before numpy / numba / torch / jax are
imported (``import bench`` does it).  The thread-count variables are not
enough for JAX: XLA's CPU client (jaxlib 0.10) ignores
``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1`` and
still runs its Eigen pool on every core (measured: CPU time = 2x wall time on
2 cores).  ``pin_to_one_cpu`` restricts the whole process to one core, which
makes every library effectively single-threaded; the timing helper records
CPU time / wall time so any leftover parallelism shows up.
"""
from __future__ import annotations

import os

SINGLE_THREAD_ENV = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}


def set_single_thread_env() -> None:
    """Set thread-count variables unless the caller already chose values."""
    for key, value in SINGLE_THREAD_ENV.items():
        os.environ.setdefault(key, value)


def pin_to_one_cpu(cpu: int | None = None) -> int | None:
    """Restrict this process to one CPU (default: the highest allowed one).

    Call before the first JAX computation (XLA sizes its thread pool from the
    CPUs it may use).  Returns the CPU used, or None where affinity is not
    supported.
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    if cpu is None:
        cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def thread_env_snapshot() -> dict[str, str | None]:
    """The thread-related settings in force (for the results metadata)."""
    snap = {k: os.environ.get(k) for k in SINGLE_THREAD_ENV}
    if hasattr(os, "sched_getaffinity"):
        snap["cpu_affinity"] = ",".join(map(str, sorted(os.sched_getaffinity(0))))
    return snap


def versions() -> dict[str, str]:
    """Versions of Python, NumPy and the packages the benchmarks compare."""
    import platform
    from importlib.metadata import version

    import numpy as np
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for name in ("symgrad", "numba", "torch", "jax", "jaxlib"):
        try:
            out[name] = version(name)
        except Exception:
            out[name] = "not installed"
    return out

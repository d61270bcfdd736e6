"""Single-threaded environment for fair timings (must run before imports)."""
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

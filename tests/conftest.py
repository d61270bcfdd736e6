"""Shared test set-up: one compile cache per run, no progress bars, seeded data."""
import os
import tempfile

import numpy as np
import pytest

# Compiled kernels are shared by every test in the run (and by subprocesses it starts).
os.environ.setdefault("SYMGRAD_CACHE_DIR", os.path.join(tempfile.gettempdir(), "symgrad-test-cache"))
os.environ.setdefault("SYMGRAD_PROGRESS", "0")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (pyproject's addopts) and ``-n logical``: one worker per CPU this
    process may run on, at most four (PYTEST_XDIST_AUTO_NUM_WORKERS overrides it). xdist's
    own count is psutil's physical cores, which a two-vCPU VM can report as one."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None                                     # xdist's own override wins
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, cpus or 1))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)

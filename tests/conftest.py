"""Shared test set-up: one compile cache per run, no progress bars, seeded data."""
import os
import tempfile

import numpy as np
import pytest

# Compiled kernels are shared by every test in the run (and by subprocesses it starts).
os.environ.setdefault("SYMGRAD_CACHE_DIR", os.path.join(tempfile.gettempdir(), "symgrad-test-cache"))
os.environ.setdefault("SYMGRAD_PROGRESS", "0")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)

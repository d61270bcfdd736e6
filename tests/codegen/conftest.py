"""One compile cache for the whole codegen test session (kernels compile once)."""
import os
import tempfile

import pytest


@pytest.fixture(scope="session", autouse=True)
def cache_dir():
    """The cache every compile in this session uses; the root conftest may have chosen it."""
    path = os.environ.setdefault("SYMGRAD_CACHE_DIR",
                                 os.path.join(tempfile.gettempdir(), "symgrad-test-cache"))
    os.makedirs(path, exist_ok=True)
    return path

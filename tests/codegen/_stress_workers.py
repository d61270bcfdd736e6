"""Code the cache stress tests run in other processes: a tiny model per round (one compile
takes ~0.1 s once Numba is warm) and the numbers it must give, worked out by hand."""
import json
import os
import sys
import warnings

import numpy as np

X_DATA = np.array([0.25, -1.5, 2.0, 0.75])
W0 = 0.5


def model(round_no):
    """``(r + 1) * sum((x - w)^2)``: a new module text (so a cold cache) for every round."""
    import symgrad as sg
    w, x = sg.param("w"), sg.tensor("x", ("N",))
    return sg.sum((x - w) ** 2) * float(round_no + 1), [w]


def expected(round_no):
    """Loss and d/dw of :func:`model` at ``W0`` on ``X_DATA``, by hand."""
    k = round_no + 1
    return k * float(np.sum((X_DATA - W0) ** 2)), -2.0 * k * float(np.sum(X_DATA - W0))


def compile_and_run(round_no):
    """Compile the round's model in ``$SYMGRAD_CACHE_DIR``; its numbers, warnings and
    Numba cache hits/misses."""
    import time
    from symgrad.codegen import compile
    cpu = time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss, params = model(round_no)
        fn = compile(loss, params)
        value, grads = fn.loss_and_grad({"w": W0}, x=X_DATA)
    stats = fn.module.loss_and_grad.stats
    return {"round": round_no, "pid": os.getpid(), "value": value, "grad": float(grads["w"]),
            "path": fn.path, "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
            "hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values()),
            "cpu": time.process_time() - cpu}


def racer(barrier, results, base, rounds):
    """One of the racing processes: each round, wait until every racer is ready, then
    compile the same new model in the same empty dir at once."""
    try:
        compile_and_run(-1)      # warm Numba up (its own first-use cost) outside the race
        for r in range(rounds):
            os.environ["SYMGRAD_CACHE_DIR"] = os.path.join(base, f"round{r}")
            barrier.wait(timeout=120)
            results.put(compile_and_run(r))
    except BaseException as err:   # reported, not lost with the process
        results.put({"error": f"{type(err).__name__}: {err}", "pid": os.getpid()})


# -- killed in the middle of writing ------------------------------------------------------
def _kill_self():
    import signal
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class _HalfThenDie:
    """A file whose first write writes half its bytes, then the process is killed."""

    def __init__(self, f):
        self.f = f

    def write(self, data):
        self.f.write(data[:len(data) // 2])
        self.f.flush()
        os.fsync(self.f.fileno())
        _kill_self()

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.f.__exit__(*exc)


def inject(point):
    """Arrange for this process to be SIGKILLed at ``point`` of writing the cache."""
    import contextlib
    from numba.core import caching
    from symgrad.codegen import cache
    if point == "module-before-rename":            # the temp file is whole, not yet renamed
        cache.os = _Patched(os, replace=lambda *a: _kill_self())
    elif point == "module-mid-write":              # half the module text is on disk
        real = os.fdopen
        cache.os = _Patched(os, fdopen=lambda *a, **k: _HalfThenDie(real(*a, **k)))
    elif point.startswith("numba-"):
        # Numba saves a function's index first, then its object file; "numba-index"
        # dies half-way through the first write, "numba-object" through the second.
        target = 0 if point == "numba-index" else 1
        real = caching.IndexDataCacheFile._open_for_write
        calls = []

        @contextlib.contextmanager
        def open_for_write(self, filepath):
            with real(self, filepath) as f:
                calls.append(filepath)
                yield _HalfThenDie(f) if len(calls) - 1 == target else f
        caching.IndexDataCacheFile._open_for_write = open_for_write
    elif point != "none":
        raise ValueError(point)


class _Patched:
    """``os`` with a few functions replaced (for this module's ``cache.os`` only)."""

    def __init__(self, module, **replace):
        self._module, self._replace = module, replace

    def __getattr__(self, name):
        return self._replace.get(name) or getattr(self._module, name)


if __name__ == "__main__":      # python -m tests.codegen._stress_workers POINT ROUND
    inject(sys.argv[1])
    print(json.dumps(compile_and_run(int(sys.argv[2]))))

"""The compile cache under stress: many processes racing on one empty cache dir, processes
SIGKILLed in the middle of writing a module or Numba's files, damaged files, and one
compiled model used from two threads at once.

The promise: every process gets the right numbers; after a kill the next process
recovers with the right answer and at most one warning; the cache ends valid (one module
file per model, and a later process loads every function from it without compiling).
"""
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

from symgrad.codegen import cache, compile
from tests.codegen import _stress_workers as workers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROCESSES, ROUNDS = 8, 20


def _exact(result, round_no):
    value, grad = workers.expected(round_no)
    assert result["value"] == pytest.approx(value, rel=1e-14), result
    assert result["grad"] == pytest.approx(grad, rel=1e-14), result


def _run(point, round_no, cache_dir):
    """A fresh process compiling the round's model in ``cache_dir``, killed at ``point``."""
    env = {**os.environ, cache.ENV_VAR: str(cache_dir)}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-m", "tests.codegen._stress_workers", point,
                          str(round_no)], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    return out


def _result(out):
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _modules(directory):
    return sorted(f for f in os.listdir(directory) if f.startswith("sg_") and f.endswith(".py"))


def _check_valid(directory, round_no, killed=False):
    """One module, the right text; loading it afresh (as a new process would) compiles
    nothing, warns nothing and gives the right numbers. (A killed writer may leave a temp
    file: it is never read, and swept once stale.)"""
    for name in _modules(directory):            # each file is whole: its name is its hash
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            assert cache.module_name(f.read()) + ".py" == name
    before = os.environ.get(cache.ENV_VAR)
    os.environ[cache.ENV_VAR] = str(directory)
    try:
        again = workers.compile_and_run(round_no)
    finally:
        if before is None:
            os.environ.pop(cache.ENV_VAR)
        else:
            os.environ[cache.ENV_VAR] = before
    assert _modules(directory) == [os.path.basename(again["path"])]
    if not killed:
        assert not [f for f in os.listdir(directory) if f.startswith(".tmp-")]
    _exact(again, round_no)
    assert again["misses"] == 0 and again["hits"] >= 1 and again["warnings"] == [], \
        (again, _listing(directory, again["path"]))


def _listing(directory, module_path):
    """What is on disk, for a failure message."""
    where = [str(directory), cache.numba_cache_path(module_path)]
    return {w: sorted((f, os.path.getsize(os.path.join(w, f))) for f in os.listdir(w))
            for w in where if os.path.isdir(w)}


@pytest.mark.slow
def test_eight_processes_race_on_an_empty_cache_for_twenty_rounds(tmp_path):
    """8 processes, started once and lined up at a barrier before each round, compile the
    same new model into the same empty dir at the same moment, 20 times."""
    # Racers fork from a clean server that has imported symgrad once (8 cold imports
    # would cost more than the 160 compiles being tested).
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.codegen._stress_workers", "symgrad.codegen"])
    barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
    env_before = os.environ.get(cache.ENV_VAR)
    procs = [ctx.Process(target=workers.racer, args=(barrier, results, str(tmp_path), ROUNDS))
             for _ in range(PROCESSES)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    got = [results.get(timeout=300) for _ in range(PROCESSES * ROUNDS)]
    for p in procs:
        p.join(timeout=60)
    seconds = time.perf_counter() - start
    assert os.environ.get(cache.ENV_VAR) == env_before
    errors = [g for g in got if "error" in g]
    assert not errors, errors
    assert all(p.exitcode == 0 for p in procs)
    by_round = {}
    for g in got:
        by_round.setdefault(g["round"], []).append(g)
    assert sorted(by_round) == list(range(ROUNDS))
    for r, runs in by_round.items():
        assert len({g["pid"] for g in runs}) == PROCESSES
        assert len({g["path"] for g in runs}) == 1
        for g in runs:
            _exact(g, r)
            assert g["warnings"] == [], g
    for r in range(ROUNDS):                     # what the race wrote loads without compiling
        _check_valid(tmp_path / f"round{r}", r)
    cpu = sum(g["cpu"] for g in got)
    print(f"{PROCESSES} processes x {ROUNDS} rounds: {seconds:.1f} s wall, {cpu:.1f} s CPU "
          "in the rounds")


KILL_POINTS = ["module-mid-write", "module-before-rename", "numba-index", "numba-object"]


@pytest.mark.slow
@pytest.mark.parametrize("point", KILL_POINTS)
def test_process_killed_while_writing_the_cache_is_recovered(tmp_path, point):
    killed = _run(point, 0, tmp_path)
    assert killed.returncode == -9, (killed.returncode, killed.stderr[-2000:])
    after = _result(_run("none", 0, tmp_path))
    _exact(after, 0)
    assert len(after["warnings"]) <= 1, after
    assert all("damaged Numba cache" in w for w in after["warnings"]), after
    _check_valid(tmp_path, 0, killed=True)


@pytest.mark.slow
def test_process_killed_at_any_moment_of_a_cold_compile_is_recovered(tmp_path):
    """SIGKILL at fixed fractions of a cold run (imports, code generation, Numba's
    compile and cache write): each time, the next process is right, and the cache ends
    valid."""
    begin = time.perf_counter()
    _result(_run("none", 1, tmp_path / "timing"))
    cold = time.perf_counter() - begin
    for k, fraction in enumerate((0.5, 0.7, 0.8, 0.9, 0.95, 1.0)):
        directory = tmp_path / f"kill{k}"
        env = {**os.environ, cache.ENV_VAR: str(directory)}
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        proc = subprocess.Popen([sys.executable, "-m", "tests.codegen._stress_workers", "none",
                                 "1"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(cold * fraction)
        proc.kill()
        proc.wait(timeout=60)
        after = _result(_run("none", 1, directory))
        _exact(after, 1)
        assert len(after["warnings"]) <= 1, after
        _check_valid(directory, 1, killed=True)


def _module_files(path):
    """Every file Numba and symgrad keep for the module's Numba cache (markers too)."""
    where, stem = cache.numba_cache_path(path), os.path.basename(path)[:-3] + "."
    return sorted(os.path.join(where, n) for n in os.listdir(where) if n.startswith(stem))


def test_damaged_numba_files_of_any_kind_are_a_miss(tmp_path, monkeypatch):
    """Truncated, emptied, zeroed or bit-flipped index and object files (one flipped byte
    in the object code can crash the process inside LLVM, so content is checked against
    the SHA-256 recorded when it was written): one warning, then the right answer."""
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path))
    loss, params = workers.model(2)
    fn = compile(loss, params)
    want = fn.loss_and_grad({"w": workers.W0}, x=workers.X_DATA)
    pristine = {f: open(f, "rb").read() for f in _module_files(fn.path)}
    assert any(f.endswith(".nbc") for f in pristine) and any(f.endswith(".nbi") for f in pristine)
    assert any(f.endswith(cache.MARK) for f in pristine)
    middle = lambda b: len(b) // 2   # noqa: E731
    damage = {"truncated": lambda b: b[:middle(b)], "empty": lambda b: b"",
              "zeroed": lambda b: bytes(len(b)),
              "flipped": lambda b: b[:middle(b)] + bytes([b[middle(b)] ^ 0xFF]) + b[middle(b) + 1:]}
    found_later = time.time() - 3600                  # damage found on a later day
    for kind, spoil in damage.items():
        for suffix in (".nbi", ".nbc"):
            cache.purge(fn.path)
            for name, data in pristine.items():
                with open(name, "wb") as f:
                    f.write(spoil(data) if name.endswith(suffix) else data)
                os.utime(name, (found_later, found_later))
            cache._loaded.pop(fn.path)                 # import afresh, as a new process would
            with warnings.catch_warnings(record=True) as record:
                warnings.simplefilter("always")
                got = compile(loss, params).loss_and_grad({"w": workers.W0}, x=workers.X_DATA)
            damaged = [w for w in record if "damaged Numba cache" in str(w.message)]
            assert len(record) == len(damaged) == 1, (kind, suffix, [str(w.message) for w in record])
            assert got[0] == want[0] and got[1]["w"] == want[1]["w"], (kind, suffix)
    cache._loaded.pop(fn.path)                         # and the repaired cache loads clean
    again = compile(loss, params).module
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again.loss_and_grad(workers.X_DATA, np.array([workers.W0]))
    assert sum(again.loss_and_grad.stats.cache_hits.values()) == 1


def test_a_freshly_rewritten_file_is_a_silent_miss(tmp_path, monkeypatch):
    """Content no marker vouches for, written moments ago (another process mid-write of its
    own marker): removed and compiled again, without a warning."""
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path))
    loss, params = workers.model(4)
    fn = compile(loss, params)
    fn.loss_and_grad({"w": workers.W0}, x=workers.X_DATA)
    for name in cache.numba_files(fn.path):
        if name.endswith(".nbc"):
            with open(name, "ab") as f:
                f.write(b"\0")
    cache._loaded.pop(fn.path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grads = compile(loss, params).loss_and_grad({"w": workers.W0}, x=workers.X_DATA)
    _exact({"value": value, "grad": float(grads["w"])}, 4)


def test_a_module_that_fails_to_import_leaves_nothing_behind(tmp_path):
    path = cache.store("raise ImportError('half a module')\n", str(tmp_path))
    with pytest.raises(ImportError):
        cache.load(path)
    name = "symgrad_generated." + os.path.basename(path)[:-3]
    assert name not in sys.modules and path not in cache._loaded


@pytest.mark.slow
def test_one_compiled_model_from_two_threads(tmp_path, monkeypatch):
    """Two threads first-compile one new model at once, then share it: loss, gradients
    and whole training runs equal the same calls made one after another."""
    from tests.reliability._support import reg_data, regression, split
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path))
    loss, params = regression()
    loss = loss * 1.25                              # a model no other test compiled
    datasets = [split(reg_data(seed), params) for seed in range(4)]
    models, barrier = [None, None], threading.Barrier(2)

    def first_compile(k):
        barrier.wait()
        models[k] = compile(loss, params)
    threads = [threading.Thread(target=first_compile, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert models[0].module is models[1].module     # imported once in this process
    fn = models[0]

    def work(p, d):
        value, grads = fn.loss_and_grad(p, **d)
        work_p = {k: np.array(v, np.float64) for k, v in p.items()}
        losses, done = fn.run_epochs(work_p, d, None, np.full(20, 0.05), None)
        return value, grads, losses[:done], work_p

    want = [work(p, d) for p, d in datasets]
    got = [[None] * len(datasets) for _ in range(2)]

    def hammer(k):
        barrier.wait()
        for _ in range(25):
            for j, (p, d) in enumerate(datasets):
                result = work(p, d)
                if got[k][j] is None or _differs(result, want[j]):
                    got[k][j] = result      # the first result, or any that differs
    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(2):
        for j in range(len(datasets)):
            _same(got[k][j], want[j])


def _differs(a, b):
    try:
        _same(a, b)
    except AssertionError:
        return True
    return False


def _same(a, b):
    assert a[0] == b[0]
    for k in b[1]:
        np.testing.assert_array_equal(a[1][k], b[1][k])
    np.testing.assert_array_equal(a[2], b[2])
    for k in b[3]:
        np.testing.assert_array_equal(a[3][k], b[3][k])


def test_stale_temp_files_of_killed_writers_are_swept(tmp_path):
    old, fresh = tmp_path / ".tmp-abc.py", tmp_path / ".tmp-def.py"
    numba_tmp = tmp_path / "sg_0123.loss-12.py311.nbi.tmp.0a1b2c"
    for f in (old, fresh, numba_tmp):
        f.write_text("half")
    stale = time.time() - cache.STALE_SECONDS - 5
    os.utime(old, (stale, stale))
    os.utime(numba_tmp, (stale, stale))
    cache.sweep_stale_temps([str(tmp_path)])
    assert not old.exists() and not numba_tmp.exists()
    assert fresh.exists()            # a live writer may still own it


EAGER = '''from numba import njit


@njit("float64(float64)", cache=True)
def twice(x):
    return 2.0 * x
'''


def test_damaged_cache_of_an_eagerly_compiled_helper_is_a_miss(tmp_path):
    """A function with a signature compiles (and loads its cache) at import: damage there
    is a miss too, and an error of the module's own is still raised."""
    path = cache.store(EAGER + "# eager helper test\n", str(tmp_path))
    assert cache.load(path).twice(2.0) == 4.0
    for name in cache.numba_files(path):
        with open(name, "r+b") as f:
            f.truncate(7)
    cache._loaded.pop(path)
    with pytest.warns(RuntimeWarning, match="damaged Numba cache"):
        assert cache.load(path).twice(3.0) == 6.0
    broken = cache.store(EAGER + "missing_name\n", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # not mistaken for cache damage
        with pytest.raises(NameError):
            cache.load(broken)


def test_a_cache_that_cannot_be_written_only_warns(tmp_path, monkeypatch):
    from numba.core import caching

    def full_disk(self, key, data):
        raise OSError(28, "No space left on device")
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path))
    monkeypatch.setattr(caching.IndexDataCacheFile, "save", full_disk)
    loss, params = workers.model(3)
    with pytest.warns(RuntimeWarning, match="could not write Numba's cache .*No space left"):
        value, grads = compile(loss, params).loss_and_grad({"w": workers.W0}, x=workers.X_DATA)
    _exact({"value": value, "grad": float(grads["w"])}, 3)

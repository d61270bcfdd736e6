"""The generated module and Numba's compiled code are reused by a second process.

Numba's files are found with Numba's own locator rules (:func:`cache.numba_files`), so
these tests pass wherever ``NUMBA_CACHE_DIR`` (or its absence) puts them; the last test
runs the others again in a subprocess with ``NUMBA_CACHE_DIR`` set to a fresh dir.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from symgrad.codegen import cache, compile
from tests.cases import sigmoid_perceptron

SCRIPT = """
import json, time
import numpy as np
from tests.cases import sigmoid_perceptron
from symgrad.codegen import cache, compile
loss, params, data = sigmoid_perceptron(n=30)
t0 = time.perf_counter()
fn = compile(loss, params)
value, grads = fn.loss_and_grad({"w": data["w"]}, x=data["x"], y=data["y"])
seconds = time.perf_counter() - t0
stats = fn.module.loss_and_grad.stats
print(json.dumps({"path": fn.path, "value": value, "seconds": seconds,
                  "numba_files": cache.numba_files(fn.path),
                  "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values())}))
"""


def run_process(cache_dir):
    env = {**os.environ, cache.ENV_VAR: str(cache_dir)}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, check=True, cwd=root)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_loads_from_cache(tmp_path):
    first = run_process(tmp_path)
    assert first["misses"] >= 1 and first["hits"] == 0
    files = first["numba_files"]
    assert files == cache.numba_files(first["path"])   # this process finds them too
    import numba
    if numba.config.CACHE_DIR:                          # NUMBA_CACHE_DIR is honoured
        assert all(f.startswith(os.path.abspath(numba.config.CACHE_DIR)) for f in files)
    assert any(f.endswith(".nbi") for f in files) and any(f.endswith(".nbc") for f in files)
    second = run_process(tmp_path)
    assert second["path"] == first["path"] and second["value"] == first["value"]
    assert second["hits"] >= 1 and second["misses"] == 0       # nothing recompiled
    # (no timing assertion: hits and misses prove the load; seconds drift under load)


def test_module_file_is_named_by_content_and_rewritten_if_damaged(tmp_path):
    src = "x = 1\n"
    path = cache.store(src, str(tmp_path))
    assert os.path.basename(path) == cache.module_name(src) + ".py"
    with open(path, "w") as f:
        f.write("x = 2  # damaged\n")
    assert cache.store(src, str(tmp_path)) == path and open(path).read() == src


def test_unwritable_cache_dir_falls_back_with_warning(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv(cache.ENV_VAR, str(blocked / "sub"))
    import pytest
    with pytest.warns(RuntimeWarning, match="not writable"):
        path = cache.cache_dir()
    assert os.path.isdir(path)


def test_float_dtype_is_part_of_the_module():
    loss, params, data = sigmoid_perceptron()
    f64, f32 = compile(loss, params), compile(loss, params, dtype=np.float32)
    assert f64.path != f32.path and "np.float32" in f32.source


def test_damaged_numba_cache_is_a_miss(tmp_path, monkeypatch):
    import pytest
    from tests.cases import linear_regression
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path))
    loss, params, data = linear_regression()
    args = ({"w": data["w"]},), {"x": data["x"], "y": data["y"]}
    fn = compile(loss, params)
    want = fn.loss(*args[0], **args[1])
    files = cache.numba_files(fn.path)
    assert files
    found_later = time.time() - 3600                 # damage found on a later day
    for name in files:                               # truncate the index and object files
        with open(name, "r+b") as f:
            f.truncate(10)
        os.utime(name, (found_later, found_later))
    cache._loaded.pop(fn.path)                       # import it afresh, as a new process would
    with pytest.warns(RuntimeWarning, match="damaged"):
        got = compile(loss, params).loss(*args[0], **args[1])
    assert got == want


def test_versions_are_part_of_the_cache_key():
    loss, params, _ = sigmoid_perceptron()
    fn = compile(loss, params)
    import numba
    assert f"numba {numba.__version__}" in fn.source.splitlines()[1]
    assert "symgrad" in fn.source.splitlines()[1]


def test_two_processes_compiling_at_once_share_a_sound_cache(tmp_path):
    """Two cold processes race on one empty cache dir; both get the right numbers and a
    third process then loads the module they wrote."""
    env = {**os.environ, cache.ENV_VAR: str(tmp_path)}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    racers = [subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, cwd=root,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(2)]
    results = []
    for proc in racers:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[0]["path"] == results[1]["path"]
    assert results[0]["value"] == results[1]["value"]
    third = run_process(tmp_path)
    assert third["value"] == results[0]["value"] and third["hits"] >= 1
    modules = [f for f in os.listdir(tmp_path) if f.endswith(".py")]
    assert len(modules) == 1 and not [f for f in os.listdir(tmp_path) if ".tmp" in f]


@pytest.mark.slow
def test_cache_tests_pass_with_numba_cache_dir_set(tmp_path):
    """The tests above (and the damage and kill tests of test_cache_stress.py), run again
    in a process whose NUMBA_CACHE_DIR is a fresh dir (as in many containers and CI
    images): Numba's files land there, and the tests find and purge them there."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    numba_dir = tmp_path / "numba"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_dir),
           cache.ENV_VAR: str(tmp_path / "symgrad")}
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    here = os.path.abspath(__file__)
    stress = os.path.join(os.path.dirname(here), "test_cache_stress.py")
    tests = [f"{here}::{t}" for t in (
        "test_second_process_loads_from_cache", "test_damaged_numba_cache_is_a_miss",
        "test_two_processes_compiling_at_once_share_a_sound_cache")]
    tests += [f"{stress}::{t}" for t in (
        "test_damaged_numba_files_of_any_kind_are_a_miss",
        "test_damaged_cache_of_an_eagerly_compiled_helper_is_a_miss",
        "test_process_killed_while_writing_the_cache_is_recovered[numba-object]")]
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p",
                          "no:cacheprovider", "--basetemp", str(tmp_path / "inner"), *tests],
                         env=env, cwd=root, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert f"{len(tests)} passed" in out.stdout
    written = [f for _, _, fs in os.walk(numba_dir) for f in fs if f.endswith(".nbi")]
    assert written                                       # Numba's files went to its dir

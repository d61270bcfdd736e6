"""Start-up: a whole process that loads a cached trainer and runs one epoch.

    python -m bench.startup [--repeats 5]

Each row is a fresh interpreter (``python -c ...``) timed from the parent, so the
times include Python's start, every import and Numba's loading of machine code
from its cache. The caches are warmed by one run first; the figure is the median
of ``repeats`` runs. Model: the W3 MLP (64-64-10, relu, mean cross-entropy), one
epoch of batch-32 SGD on 1797 rows.

* ``numba``: the hand-written trainer (``bench.impl_numba``) with ``cache=True``;
* ``symgrad``: ``import symgrad``, declare the model, ``sg.compile`` (found in the
  cache), ``fn.run_epochs``;
* ``symgrad module``: the cached generated module imported directly (it needs only
  NumPy and Numba: what ``CompiledModel.export`` writes), its ``run_epochs`` called.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_DATA = """
import numpy as np
rng = np.random.default_rng(0)
X = rng.standard_normal((1797, 64)); y = rng.integers(0, 10, 1797)
order = np.stack([rng.permutation(1797)])
"""

HAND = """
import time; t0 = time.perf_counter()
from numba import njit
from bench import impl_numba as H
""" + _DATA + """
t1 = time.perf_counter()
run = njit(cache=True)(H._mlp_run_py)
p = {"W1": 0.1 * rng.standard_normal((64, 64)), "b1": np.zeros(64),
     "W2": 0.1 * rng.standard_normal((64, 10)), "b2": np.zeros(10)}
batches = np.ascontiguousarray(order[:, :1792].reshape(-1, 32))
run(X, y, p["W1"], p["b1"], p["W2"], p["b2"], 0.1, batches)
print(t1 - t0, time.perf_counter() - t1)
"""

SYMGRAD = """
import time; t0 = time.perf_counter()
import symgrad as sg
""" + _DATA + """
t1 = time.perf_counter()
Xs = sg.tensor("X", ("N", "D")); ys = sg.tensor("y", ("N",), dtype=int)
W1, b1 = sg.param("W1", ("D", "H")), sg.param("b1", ("H",))
W2, b2 = sg.param("W2", ("H", "C")), sg.param("b2", ("C",))
h = sg.relu(Xs @ W1 + b1).named("h")
fn = sg.compile(sg.cross_entropy(h @ W2 + b2, ys), params=[W1, b1, W2, b2])
p = {"W1": 0.1 * rng.standard_normal((64, 64)), "b1": np.zeros(64),
     "W2": 0.1 * rng.standard_normal((64, 10)), "b2": np.zeros(10)}
fn.run_epochs(p, {"X": X, "y": y}, order, np.full(1, 0.1), 32)
print(t1 - t0, time.perf_counter() - t1, fn.path)
"""

MODULE = """
import time; t0 = time.perf_counter()
import importlib.util, sys
spec = importlib.util.spec_from_file_location(MODNAME, PATH)
mod = importlib.util.module_from_spec(spec); sys.modules[MODNAME] = mod
spec.loader.exec_module(mod)
""" + _DATA + """
t1 = time.perf_counter()
p = {"W1": 0.1 * rng.standard_normal((64, 64)), "b1": np.zeros(64),
     "W2": 0.1 * rng.standard_normal((64, 10)), "b2": np.zeros(10)}
v = [np.zeros_like(p[k]) for k in ("W1", "b1", "W2", "b2")]
mod.run_epochs(X, y, p["W1"], p["b1"], p["W2"], p["b2"], *v, order, np.full(1, 0.1), 32, 0.0)
print(t1 - t0, time.perf_counter() - t1)
"""


def _child(code, env):
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                         text=True, check=True)
    wall = time.perf_counter() - t
    fields = out.stdout.split()
    return wall, float(fields[0]), float(fields[1]), fields[2:]


def measure(repeats=5, log=print):
    """Median whole-process times (s) of the three rows; caches in a fresh temp dir."""
    tmp = tempfile.mkdtemp(prefix="symgrad-startup-")
    env = {**os.environ, "SYMGRAD_CACHE_DIR": os.path.join(tmp, "symgrad"),
           "NUMBA_CACHE_DIR": os.path.join(tmp, "numba"), "SYMGRAD_PROGRESS": "0",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    # Warm caches include Python's own: the warm-up run writes bytecode for symgrad and
    # bench (installed packages have theirs from pip) even where the shell sets
    # PYTHONDONTWRITEBYTECODE, else every run recompiles ~60 symgrad modules (~40 ms).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cold = {"numba": _child(HAND, env), "symgrad": _child(SYMGRAD, env)}   # warms the caches
    path = cold["symgrad"][3][0]
    name = "symgrad_generated." + Path(path).stem      # the name symgrad.codegen.cache uses
    module = MODULE.replace("MODNAME", repr(name)).replace("PATH", repr(path))
    codes = {"numba": HAND, "symgrad": symgrad_code(), "symgrad module": module}
    runs = {k: [] for k in codes}
    for _ in range(repeats):            # interleaved, like the train-time table
        for name, code in codes.items():
            runs[name].append(_child(code, env))
    rows = []
    for name, rs in runs.items():
        rows.append({"impl": name, "process_s": statistics.median(r[0] for r in rs),
                     "imports_s": statistics.median(r[1] for r in rs),
                     "load_and_epoch_s": statistics.median(r[2] for r in rs),
                     "process_times_s": [r[0] for r in rs],
                     "cold_process_s": cold[name][0] if name in cold else None})
        log(f"  start-up {name}: {rows[-1]['process_s']:.2f} s")
    base = rows[0]["process_s"]
    for r in rows:
        r["ratio"] = r["process_s"] / base
    return rows


def symgrad_code():
    return SYMGRAD


def markdown(rows, repeats):
    out = [f"Whole process, fresh interpreter, warm caches, median of {repeats}: load the "
           "64-64-10 trainer, run one epoch.", "",
           "| start-up | process | imports | load + one epoch | × numba | cold (first) process |",
           "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        cold = f"{r['cold_process_s']:.2f} s" if r["cold_process_s"] else ""
        out.append(f"| {r['impl']} | {r['process_s']:.2f} s | {r['imports_s']:.2f} s "
                   f"| {r['load_and_epoch_s']:.2f} s | {r['ratio']:.2f} | {cold} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    rows = measure(args.repeats)
    print(markdown(rows, args.repeats))
    path = Path(__file__).parent / "results" / "startup.json"
    path.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()

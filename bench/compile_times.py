"""Cold compile and warm (cached) load of a 2-layer MLP trainer, each in a fresh process.

    python -m bench.compile_times [--repeats 3]

Each run starts a new Python process with the given cache directory, imports
symgrad and Numba (timed separately: that cost is Python's, paid once per
process), then times ``sg.compile`` plus the first ``run_epochs`` call. The first
run uses an empty cache (cold); the next ones find the module and Numba's
machine code on disk (warm). Writes bench/results/compile_times.json.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import time
t0 = time.perf_counter()
import numpy as np, numba, symgrad as sg
import symgrad.codegen
t1 = time.perf_counter()
net = sg.nn.mlp([64, 64, 10], activation="relu")
fn = sg.compile(net.loss, params=net.params)
X = np.random.default_rng(0).standard_normal((64, 64)); y = np.arange(64) % 10
params = net.init_params(0)
fn.run_epochs(params, {"X": X, "y": y}, None, np.full(1, 0.1), 32)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def run_child(cache_dir):
    env = {**os.environ, "SYMGRAD_CACHE_DIR": cache_dir, "SYMGRAD_PROGRESS": "0"}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                         text=True, check=True)
    imports, compile_s = map(float, out.stdout.split())
    return imports, compile_s


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    rows = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="symgrad-compile-") as cache:
            cold = run_child(cache)
            warm = min((run_child(cache) for _ in range(3)), key=lambda r: r[1])
        rows.append({"import_s": cold[0], "cold_compile_s": cold[1], "warm_load_s": warm[1],
                     "warm_import_s": warm[0]})
    best = {k: min(r[k] for r in rows) for k in rows[0]}
    print("| 2-layer MLP trainer (64-64-10) | seconds |\n|---|---:|")
    print(f"| import symgrad + Numba (per process) | {best['warm_import_s']:.2f} |")
    print(f"| cold: generate, compile, first epoch | {best['cold_compile_s']:.2f} |")
    print(f"| warm: load from the cache, first epoch | {best['warm_load_s']:.2f} |")
    path = os.path.join(os.path.dirname(__file__), "results", "compile_times.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump({"runs": rows, "best": best}, fh, indent=1)
    return best


if __name__ == "__main__":
    main()

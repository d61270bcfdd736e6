"""Hessian of logistic regression (mean NLL + 0.01 |w|^2): symgrad's compiled
``fn.hessian`` against ``jax.jit(jax.hessian(f))``, ``torch.func.hessian`` and the NumPy
closed form ``X^T diag(s (1 - s)) X / N + 0.02 I``, one process, one core, interleaved
warm calls, float64. The Hessians are checked equal (relative 1e-10) before timing.
Not a timed test: it prints a table and writes JSON.

    taskset -c 1 python -m bench.hessian [--repeats 21] [--json bench/results/hessian.json]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .env import pin_to_one_cpu, set_single_thread_env, thread_env_snapshot, versions

set_single_thread_env()

import numpy as np  # noqa: E402

SHAPES = [(4000, 120), (2000, 500)]
L2 = 0.01
DEFAULT_JSON = Path(__file__).parent / "results" / "hessian.json"
RTOL = 1e-10


def data(n, d, seed=0):
    r = np.random.default_rng(seed)
    X = r.normal(size=(n, d)) / np.sqrt(d)
    w = r.normal(size=d)
    t = (r.random(n) < 1.0 / (1.0 + np.exp(-X @ w))).astype(float)
    return X, t, 0.5 * w


def symgrad_hessian():
    import symgrad as sg
    X, t, w = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",)), sg.param("w", ("d",))
    loss = sg.binary_cross_entropy(sg.sigmoid(X @ w), t) + L2 * sg.l2(w)
    fn = sg.compile(loss, [w], hessian=True)
    return fn, lambda X, t, w: fn.hessian({"w": w}, X=X, t=t)["w", "w"]


def symgrad_kernel(fn):
    """The generated ``hessian`` called directly: what ``fn.hessian`` costs without its
    input checks (dims, dtypes, NaN/inf in the data: one pass over X)."""
    eyes = {}

    def hessian(X, t, w):
        d = len(w)
        if d not in eyes:
            eyes[d] = np.eye(d)
        return fn.module.hessian(X, w, eyes[d])[0]
    return hessian


def numpy_hessian():
    def hessian(X, t, w):
        s = 1.0 / (1.0 + np.exp(-(X @ w)))
        H = X.T @ (X * (s * (1.0 - s) / len(X))[:, None])
        H[np.diag_indices_from(H)] += 2 * L2
        return H
    return hessian


def jax_hessian():
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)

    def loss(w, X, t):
        z = X @ w
        return jnp.mean(jnp.logaddexp(0.0, z) - t * z) + L2 * jnp.sum(w * w)
    h = jax.jit(jax.hessian(loss))
    cache = {}

    def hessian(X, t, w):
        key = id(X)
        if key not in cache:          # device arrays made once, as a JAX user would
            cache.clear()
            cache[key] = (jnp.asarray(X), jnp.asarray(t))
        Xj, tj = cache[key]
        return np.asarray(h(jnp.asarray(w), Xj, tj).block_until_ready())
    return hessian


def torch_hessian():
    import torch
    torch.set_num_threads(1)
    cache = {}

    def loss(w, X, t):
        z = X @ w
        return torch.mean(torch.nn.functional.softplus(z) - t * z) + L2 * torch.sum(w * w)

    def hessian(X, t, w):
        key = id(X)
        if key not in cache:
            cache.clear()
            cache[key] = (torch.from_numpy(X), torch.from_numpy(t))
        Xt, tt = cache[key]
        return torch.func.hessian(loss)(torch.from_numpy(w), Xt, tt).numpy()
    return hessian


def implementations():
    fn, checked = symgrad_hessian()
    out = {"symgrad fn.hessian": checked, "symgrad kernel (no input checks)": symgrad_kernel(fn),
           "numpy closed form": numpy_hessian()}
    missing = {}
    for name, make in (("jax.jit(jax.hessian)", jax_hessian),
                       ("torch.func.hessian", torch_hessian)):
        try:
            out[name] = make()
        except ImportError as err:
            missing[name] = str(err)
    return out, missing


def time_interleaved(impls, args, repeats):
    """First call (compile) of each, then ``repeats`` rounds calling each once in turn.

    Wall time and this process's CPU time per call: on a machine shared with other jobs
    the CPU time is the steadier of the two (waiting for the core is not counted)."""
    first, times, cpu = {}, {k: [] for k in impls}, {k: [] for k in impls}
    for name, f in impls.items():
        t0 = time.perf_counter()
        f(*args)
        first[name] = time.perf_counter() - t0
    for _ in range(repeats):
        for name, f in impls.items():
            t0, c0 = time.perf_counter(), time.process_time()
            f(*args)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return first, times, cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--json", default=str(DEFAULT_JSON))
    args = parser.parse_args(argv)
    cpu = pin_to_one_cpu()
    impls, missing = implementations()
    rows = []
    print(f"Hessian of logistic regression (mean NLL + {L2:g} |w|^2), float64, one core "
          f"(cpu {cpu}), {args.repeats} interleaved warm calls\n")
    print("| N x d | implementation | median wall | best wall | median CPU | first call | "
          "CPU vs symgrad |")
    print("|---|---|---|---|---|---|---|")
    for n, d in SHAPES:
        X, t, w = data(n, d)
        ref = impls["numpy closed form"](X, t, w)
        for name, f in impls.items():
            err = np.max(np.abs(f(X, t, w) - ref)) / np.max(np.abs(ref))
            if err > RTOL:
                raise AssertionError(f"{name} disagrees with the closed form at ({n}, {d}): "
                                     f"relative error {err:.2e}")
        first, times, cpu = time_interleaved(impls, (X, t, w), args.repeats)
        mine = float(np.median(cpu["symgrad fn.hessian"]))
        for name in impls:
            med, best = float(np.median(times[name])), float(np.min(times[name]))
            med_cpu = float(np.median(cpu[name]))
            print(f"| {n} x {d} | {name} | {med * 1e3:.2f} ms | {best * 1e3:.2f} ms | "
                  f"{med_cpu * 1e3:.2f} ms | {first[name]:.2f} s | {med_cpu / mine:.1f}x |")
            rows.append({"N": n, "d": d, "impl": name, "median_s": med, "best_s": best,
                         "median_cpu_s": med_cpu, "first_call_s": first[name],
                         "times_s": times[name], "cpu_s": cpu[name],
                         "cpu_ratio_to_symgrad": med_cpu / mine})
    for name, why in missing.items():
        print(f"| | {name} | not installed ({why}) | | | | |")
    meta = {"workload": "logistic regression Hessian, mean binary NLL + 0.01 |w|^2, float64",
            "shapes": SHAPES, "repeats": args.repeats, "versions": versions(),
            "threads": thread_env_snapshot()}
    Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"\nversions: {meta['versions']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A 16-run lr x lambda grid of W2 (softmax regression on digits): sweep vs a loop of fits.

    python -m bench.sweep [--repeats 3] [--no-dask] [--no-jax] [--plot PNG]

Rows (wall time of the whole grid, best of ``--repeats`` warm calls; first calls
reported apart): 16 ``sg.fit`` calls in a row; ``sg.sweep`` with ``n_jobs=1``
(in-process) one run after another (``fuse=False``) and fused (the default: runs that
share the data order train in one compiled call, ``symgrad.train.together``); ``n_jobs=2`` (loky worker processes: the first sweep starts them,
later ones reuse them); a local 2-worker Dask cluster (cluster start reported apart);
JAX ``vmap`` over a jitted ``lax.scan`` training loop of the same 16 runs. The
in-process rows and JAX run pinned to one core; the 2-process and Dask rows use both.
Every run trains 20 epochs of minibatch SGD (batch 32) from the same initial params
with the same shuffle order; metrics are off (``metrics=()``) so only training is
timed. Writes bench/results/sweep.json; ``--plot`` also draws the grid's loss curves
(with validation on the last 297 rows) into a PNG, the README's picture.
"""
import bench  # noqa: F401  (single-threaded numeric libraries: import before numpy)

import argparse
import json
import os
import platform
import time

import numpy as np

from bench.env import thread_env_snapshot
from bench.workloads import make_w2

LRS = [0.03, 0.1, 0.3, 1.0]
LAMS = [0.0, 1e-4, 1e-3, 1e-2]
SEED = 102


def problem():
    import symgrad as sg
    wl = make_w2()
    X, y = sg.tensor("X", ("N", "D")), sg.tensor("y", ("N",), dtype=int)
    W, b = sg.param("W", ("D", "C")), sg.param("b", ("C",))
    lam = sg.tensor("lam", ())
    loss = sg.cross_entropy(X @ W + b, y) + lam * sg.l2(W)
    fn = sg.compile(loss, params=[W, b])
    return wl, fn, {"X": wl.X, "y": wl.y}


FIT = dict(epochs=20, batch_size=32, seed=SEED, metrics=(), progress=False)


def loop_of_fits(wl, fn, data):
    import symgrad as sg
    return [sg.fit(fn, wl.params, data={**data, "lam": lam}, lr=lr, **FIT)
            for lr in LRS for lam in LAMS]


def a_sweep(wl, fn, data, **where):
    import symgrad as sg
    return sg.sweep(fn, wl.params, data, {"lr": LRS, "lam": LAMS}, **FIT, **where)


class Row:
    """One way of training the grid: ``call()`` -> 16 final losses, timed on ``cores``."""

    def __init__(self, name, call, cores, **extra):
        self.name, self.call, self.cores, self.extra = name, call, cores, extra
        self.first, self.warm, self.losses = None, [], None

    def run(self, all_cores):
        os.sched_setaffinity(0, set(all_cores) if self.cores > 1 else {all_cores[-1]})
        t0 = time.perf_counter()
        self.losses = self.call()
        wall = time.perf_counter() - t0
        if self.first is None:
            self.first = wall
        else:
            self.warm.append(wall)

    def as_dict(self):
        return {"name": self.name, "cores": self.cores, "first_s": self.first,
                "warm_s": min(self.warm), "warm_all_s": self.warm,
                "final_losses": [float(v) for v in self.losses], **self.extra}


def final_losses(runs):
    return [float(r.loss[-1]) for r in runs]


def symgrad_rows(wl, fn, data):
    return [Row("16 sg.fit calls in a row", lambda: final_losses(loop_of_fits(wl, fn, data)), 1),
            Row("sg.sweep, n_jobs=1, fuse=False (in-process, one run after another)",
                lambda: final_losses(a_sweep(wl, fn, data, n_jobs=1, fuse=False)), 1),
            Row("sg.sweep, n_jobs=1 (in-process, fused: one compiled call)",
                lambda: final_losses(a_sweep(wl, fn, data, n_jobs=1)), 1),
            Row("sg.sweep, n_jobs=2 (worker processes, fused per process)",
                lambda: final_losses(a_sweep(wl, fn, data, n_jobs=2)), 2)]


def jax_row(wl):
    """vmap over a lax.scan SGD loop; the same 16 (lr, lambda) runs, same batches."""
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax import lax

    def loss(p, Xb, yb, lam):
        logp = jax.nn.log_softmax(Xb @ p["W"] + p["b"], axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1)) + lam * jnp.sum(
            p["W"] ** 2)

    def train(p, X, y, batches, lr, lam):
        def step(p, idx):
            value, g = jax.value_and_grad(loss)(p, X[idx], y[idx], lam)
            return jax.tree.map(lambda a, b: a - lr * b, p, g), value
        p, losses = lax.scan(step, p, batches)
        return p, losses

    many = jax.jit(jax.vmap(train, in_axes=(None, None, None, None, 0, 0)))
    rng = np.random.default_rng(SEED)   # fit's shuffle: one permutation per epoch
    used = (wl.n // 32) * 32
    batches = np.stack([rng.permutation(wl.n)[:used].reshape(-1, 32) for _ in range(20)])
    batches = jnp.asarray(batches.reshape(-1, 32).astype(np.int64))
    lr = jnp.asarray(np.repeat(LRS, len(LAMS)))
    lam = jnp.asarray(np.tile(LAMS, len(LRS)))
    p0 = {k: jnp.asarray(v) for k, v in wl.params.items()}
    X, y = jnp.asarray(wl.X), jnp.asarray(wl.y)

    def call():
        p, losses = many(p0, X, y, batches, lr, lam)
        jax.block_until_ready(p)
        return np.asarray(losses).reshape(16, 20, -1).mean(axis=2)[:, -1]

    return Row(f"JAX {jax.__version__}: jit(vmap(lax.scan SGD loop)), 16 runs", call, 1)


def fused_probe_row(wl):
    """What a fused path could gain: a hand-written Numba loop that trains the 16 runs
    together, gathering each minibatch once and doing each step's two matrix products
    as one GEMM over all models (X_b @ [W_1 ... W_16]); elementwise code as symgrad's
    generated run_epochs_with for this model, SGD only. A probe, not part of symgrad."""
    import numba

    @numba.njit(cache=True, error_model="numpy")
    def fused(X_all, y_all, lams, lrs, Wcat, bcat, orders, N, C):
        n_all, D = X_all.shape
        K, E, nb = lams.shape[0], orders.shape[0], X_all.shape[0] // N
        X, y = np.empty((N, D)), np.empty(N, np.int64)
        z, g = np.empty((N, K * C)), np.empty((N, K * C))
        gb, losses, totals = np.empty(K * C), np.empty((K, E)), np.empty(K)
        div = 1.0 / N
        for epoch in range(E):
            totals[:] = 0.0
            for step in range(nb):
                for row in range(N):
                    src = orders[epoch, step * N + row]
                    X[row] = X_all[src]
                    y[row] = y_all[src]
                z[:] = np.dot(X, Wcat)
                gb[:] = 0.0
                for k in range(K):
                    o, acc = k * C, 0.0
                    for i in range(N):
                        m = -np.inf
                        for c in range(o, o + C):
                            z[i, c] = z[i, c] + bcat[c]
                            m = z[i, c] if z[i, c] > m else m
                        total = 0.0
                        for c in range(o, o + C):
                            g[i, c] = np.exp(z[i, c] - m)
                            total += g[i, c]
                        for c in range(o, o + C):
                            g[i, c] /= total
                        acc += np.log(total) - (z[i, o + y[i]] - m)
                    for i in range(N):
                        for c in range(o, o + C):
                            g[i, c] = (g[i, c] - (1.0 if y[i] == c - o else 0.0)) * div
                            gb[c] += g[i, c]
                    totals[k] += acc / N
                mm = np.dot(X.T, g)
                for k in range(K):
                    o, S = k * C, 0.0
                    for j in range(D):
                        for c in range(o, o + C):
                            S += Wcat[j, c] * Wcat[j, c]
                            mm[j, c] = lams[k] * (2.0 * Wcat[j, c]) + mm[j, c]
                    totals[k] += lams[k] * S - 0.0
                    for j in range(D):
                        for c in range(o, o + C):
                            Wcat[j, c] -= lrs[k] * mm[j, c]
                    for c in range(o, o + C):
                        bcat[c] -= lrs[k] * gb[c]
            losses[:, epoch] = totals / nb
        return losses

    rng = np.random.default_rng(SEED)     # fit's shuffle: one permutation per epoch
    orders = np.stack([rng.permutation(wl.n) for _ in range(20)]).astype(np.int64)
    lrs, lams = np.repeat(LRS, len(LAMS)), np.tile(LAMS, len(LRS))
    K = len(lrs)

    def call():
        Wcat = np.ascontiguousarray(np.tile(wl.params["W"], (1, K)))
        bcat = np.tile(wl.params["b"], K)
        return fused(wl.X, wl.y, lams, lrs, Wcat, bcat, orders, 32, 10)[:, -1]

    return Row("probe: hand-written fused Numba loop of the 16 runs (not in symgrad)", call, 1)


def dask_row(wl, fn, data):
    """A Row on a fresh local 2-worker cluster, and the function that closes it."""
    try:
        import distributed
    except ImportError:
        return None, lambda: None
    t0 = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    start = time.perf_counter() - t0
    t0 = time.perf_counter()
    client.submit(sum, [1, 2], pure=False).result()
    task = time.perf_counter() - t0

    def close():
        client.close()
        cluster.close()
    row = Row(f"sg.sweep, client= local Dask cluster (2 workers, distributed "
              f"{distributed.__version__})",
              lambda: final_losses(a_sweep(wl, fn, data, client=client)), 2,
              cluster_start_s=start, one_empty_task_s=task)
    return row, close


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--no-jax", action="store_true")
    ap.add_argument("--plot", metavar="PNG", help="write the loss-curves picture here")
    args = ap.parse_args(argv)
    if args.plot:
        return plot(args.plot)
    cores = sorted(os.sched_getaffinity(0))
    import numba
    import symgrad as sg
    wl, fn, data = problem()
    rows, close = symgrad_rows(wl, fn, data) + [fused_probe_row(wl)], lambda: None
    if not args.no_jax:
        os.sched_setaffinity(0, {cores[-1]})   # XLA sizes its thread pool on first use
        row = jax_row(wl)
        rows += [row] if row is not None else []
    if not args.no_dask:
        os.sched_setaffinity(0, set(cores))
        row, close = dask_row(wl, fn, data)
        rows += [row] if row is not None else []
    try:
        for _ in range(args.repeats + 1):    # round-robin: every row sees the same machine
            for row in rows:
                row.run(cores)
    finally:
        os.sched_setaffinity(0, set(cores))
        close()
    report([r.as_dict() for r in rows], sg, numba, cores)


def plot(path):
    """The README picture: train on 1500 digits, validate on the other 297."""
    import symgrad as sg
    wl, fn, data = problem()
    train = {k: v[:1500] for k, v in data.items()}
    val = {k: v[1500:] for k, v in data.items()}
    res = sg.sweep(fn, wl.params, train, {"lr": LRS, "lam": LAMS}, epochs=20, batch_size=32,
                   seed=SEED, validation_data=val, n_jobs=1, progress=False)
    fig = res.plot("val_loss")
    fig.set_size_inches(9.5, 4.5)
    fig.axes[0].set_title("validation loss of a 4 x 4 lr x lam grid (softmax regression, "
                          "digits)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    best = res.best("val_loss")
    print(f"wrote {path}; best {best.settings} val_loss {best.metrics['val_loss'][-1]:.4f}")


def report(rows, sg, numba, cores):
    base = rows[0]["warm_s"]
    ref = np.array(rows[0]["final_losses"])
    print(f"{'':58} {'first s':>8} {'warm s':>8} {'vs loop':>8} {'max |dloss|':>12}")
    for r in rows:
        r["speedup_vs_loop"] = base / r["warm_s"]
        r["max_abs_loss_diff"] = float(np.max(np.abs(np.array(r["final_losses"]) - ref)))
        print(f"{r['name'][:58]:58} {r['first_s']:8.3f} {r['warm_s']:8.3f} "
              f"{r['speedup_vs_loop']:7.2f}x {r['max_abs_loss_diff']:12.3g}")
        if "cluster_start_s" in r:
            print(f"{'':4}(Dask cluster start {r['cluster_start_s']:.2f} s, one empty task "
                  f"round trip {1000 * r['one_empty_task_s']:.1f} ms)")
    meta = {"workload": "W2 softmax regression on digits (1797x64, 10 classes), 20 epochs "
                        "SGD batch 32, lr x lambda = 4 x 4 grid",
            "grid": {"lr": LRS, "lam": LAMS}, "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__, "symgrad": sg.__version__,
            "machine": platform.machine(), "cores": len(cores), "env": thread_env_snapshot(),
            "load_average_1_5_15min": list(os.getloadavg())}
    path = os.path.join(os.path.dirname(__file__), "results", "sweep.json")
    with open(path, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    print(f"load average (1, 5, 15 min) {os.getloadavg()} on {len(cores)} cores; wrote {path}")


if __name__ == "__main__":
    main()

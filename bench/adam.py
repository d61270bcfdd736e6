"""Adam training of W3 (MLP 64-64(relu)-10 on digits, batch 32, 20 epochs): symgrad's
fused loop against torch.optim.Adam and JAX (a hand-written Adam inside one jitted
``lax.scan``), one process, one core, interleaved warm runs.

All three use torch.optim's Adam (betas 0.9, 0.999, eps 1e-8 outside the bias-corrected
square root), lr 1e-3, float64, the same initial params and batch order, so their final
losses agree to rounding (checked). Not a timed test: it prints a table and writes JSON.

    python -m bench.adam [--repeats 5] [--json bench/results/adam.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .env import pin_to_one_cpu, set_single_thread_env, thread_env_snapshot, versions

set_single_thread_env()

import numpy as np  # noqa: E402

from .timing import time_trainers  # noqa: E402
from .workloads import Workload, make_w3  # noqa: E402

LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8
DEFAULT_JSON = Path(__file__).parent / "results" / "adam.json"
LOSS_RTOL = 1e-9


def symgrad_adam(wl: Workload):
    from symgrad.codegen.trainloop import call_run_epochs_with
    from symgrad.train.optimizers import Optimizer, OptimizerState

    from .impl_symgrad import compiled
    fn, params, data = compiled(wl), wl.init_params(), {"X": wl.X, "y": wl.y}
    opt = Optimizer("adam", betas=BETAS, eps=EPS)
    call_run_epochs_with(fn, params, data, wl.orders, np.full(wl.epochs, LR), wl.batch_size,
                         "adam", opt.hyper(), OptimizerState(params))
    return params, float(fn.loss(params, **data))


def torch_adam(wl: Workload):
    import torch

    from .impl_torch import _tensors, _to_numpy, mlp_loss
    torch.set_num_threads(1)
    X, y, params = _tensors(wl)
    opt = torch.optim.Adam(list(params.values()), lr=LR, betas=BETAS, eps=EPS)
    for idx in torch.from_numpy(wl.batches()):
        opt.zero_grad(set_to_none=True)
        mlp_loss(X[idx], y[idx], params).backward()
        opt.step()
    with torch.no_grad():
        final = float(mlp_loss(X, y, params))
    return _to_numpy(params), final


def _jax_trainer():
    import jax
    import jax.numpy as jnp
    from jax import lax

    from .impl_jax import mlp_loss
    b1, b2 = BETAS

    @jax.jit
    def run(params, X, y, batches):
        zeros = jax.tree.map(jnp.zeros_like, params)

        def step(carry, idx):
            p, m, s, t = carry
            g = jax.grad(mlp_loss)(p, X[idx], y[idx], 0.0)
            t = t + 1
            m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
            s = jax.tree.map(lambda s, g: b2 * s + (1 - b2) * g * g, s, g)
            c1, c2 = 1 - b1 ** t, jnp.sqrt(1 - b2 ** t)
            p = jax.tree.map(lambda p, m, s: p - (LR / c1) * m / (jnp.sqrt(s) / c2 + EPS),
                             p, m, s)
            return (p, m, s, t), None

        return lax.scan(step, (params, zeros, zeros, 0.0), batches)[0][0]

    def train(wl: Workload):
        params = {k: jnp.asarray(v) for k, v in wl.params.items()}
        X, y = jnp.asarray(wl.X), jnp.asarray(wl.y)
        params = run(params, X, y, jnp.asarray(wl.batches()))
        loss = float(mlp_loss(params, X, y, 0.0))
        return {k: np.asarray(v) for k, v in params.items()}, loss
    return train


def trainers():
    out, missing = {"symgrad": symgrad_adam}, {}
    try:
        import torch  # noqa: F401
        out["torch.optim.Adam"] = torch_adam
    except ImportError as err:
        missing["torch.optim.Adam"] = str(err)
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        out["jax lax.scan Adam"] = _jax_trainer()
    except ImportError as err:
        missing["jax lax.scan Adam"] = str(err)
    return out, missing


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=str(DEFAULT_JSON))
    args = parser.parse_args(argv)
    cpu = pin_to_one_cpu()
    wl = make_w3()
    runs, missing = trainers()
    results = time_trainers(runs, wl, repeats=args.repeats)
    ref = results["symgrad"].final_loss
    print(f"W3 with Adam (lr {LR:g}): {wl.steps} steps, best of {args.repeats} warm runs, "
          f"interleaved, one core (cpu {cpu})\n")
    print("| implementation | train time | per step | first call (compile) | final loss |"
          " CPU/wall |")
    print("|---|---|---|---|---|---|")
    rows = []
    for name, r in results.items():
        agree = abs(r.final_loss - ref) <= LOSS_RTOL * abs(ref)
        print(f"| {name} | {r.train_s * 1e3:.1f} ms | {r.step_s * 1e6:.1f} us | "
              f"{r.first_call_s:.2f} s | {r.final_loss:.10f}{'' if agree else ' (DIFFERS)'} | "
              f"{r.cpu_over_wall:.2f} |")
        rows.append({"impl": name, "train_s": r.train_s, "step_s": r.step_s,
                     "first_call_s": r.first_call_s, "final_loss": r.final_loss,
                     "loss_agrees": bool(agree), "times_s": r.times_s,
                     "cpu_over_wall": r.cpu_over_wall})
    for name, why in missing.items():
        print(f"| {name} | not installed ({why}) | | | | |")
    meta = {"workload": f"W3: MLP 64-64(relu)-10 on digits, mean CE, Adam lr={LR:g} betas "
                        f"{BETAS} eps {EPS:g}, batch {wl.batch_size}, {wl.epochs} epochs",
            "steps": wl.steps,
            "versions": versions(), "threads": thread_env_snapshot(), "repeats": args.repeats}
    Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"\nversions: {meta['versions']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

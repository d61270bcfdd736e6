"""Your own functions cost what their arithmetic costs: a swish MLP against the relu one,
and layers written as contractions, sum(X * W, axis="D"), against X @ W.

    python -m bench.formulas [--repeats 5]

Both are the W3 workload (MLP 64-64-10 on digits, mean cross-entropy, SGD batch 32,
lr 0.1, 20 epochs, the same initial parameters and batch order), compiled by symgrad;
the swish one uses ``sg.elementwise("swish", lambda x: x * sg.sigmoid(x))``. The
expected extra cost is its exps: each step evaluates a sigmoid twice per hidden unit
and row (forward, and in swish' on the backward pass); the "exp budget" row times
exactly that many stable sigmoids in a compiled loop. The same network with swish
spelled as graph ops, ``z * sg.sigmoid(z)``, shows what sharing one sigmoid between the
forward and backward passes (the code generator's CSE) saves. Warm calls are interleaved
(bench.timing). Writes bench/results/formulas.json. Not a test: nothing is asserted.
"""
import argparse
import json
import math
import os
import time

import numba
import numpy as np

import symgrad as sg

from .timing import time_trainers
from .workloads import make_w3

swish = sg.elementwise("swish", lambda x: x * sg.sigmoid(x))


def _model(activation, contraction=False):
    X, y = sg.tensor("X", ("N", "D")), sg.tensor("y", ("N",), dtype=int)
    W1, b1 = sg.param("W1", ("D", "H")), sg.param("b1", ("H",))
    W2, b2 = sg.param("W2", ("H", "C")), sg.param("b2", ("C",))
    # the same layers in index notation: z_ik = sum_j X_ij W_jk
    z1 = sg.sum(X * W1, axis="D") if contraction else X @ W1
    h = activation(z1 + b1).named("h")
    z2 = sg.sum(h * W2, axis="H") if contraction else h @ W2
    return sg.cross_entropy(z2 + b2, y), [W1, b1, W2, b2]


def trainer(activation, contraction=False):
    loss, params = _model(activation, contraction)
    fn = sg.compile(loss, params=params)

    def train(wl):
        p = wl.init_params()
        data = {"X": wl.X, "y": wl.y}
        fn.run_epochs(p, data, wl.orders, np.full(wl.epochs, wl.lr), wl.batch_size)
        return p, float(fn.loss(p, **data))
    return train


@numba.njit(cache=True)
def _sigmoids(x, reps):
    total = 0.0
    for _ in range(reps):
        for i in range(x.size):
            v = x[i]
            if v >= 0.0:
                total += 1.0 / (1.0 + math.exp(-v))
            else:
                e = math.exp(v)
                total += e / (1.0 + e)
    return total


def exp_budget(wl, hidden, repeats):
    """Seconds for the sigmoids swish adds to one training run: 2 per hidden element."""
    x = np.random.default_rng(0).standard_normal(wl.batch_size * hidden)
    reps = 2 * wl.steps
    _sigmoids(x, 1)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _sigmoids(x, reps)
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    wl = make_w3()
    res = time_trainers({"relu": trainer(sg.relu), "swish": trainer(swish),
                         "swish_ops": trainer(lambda z: z * sg.sigmoid(z)),
                         "relu_sum": trainer(sg.relu, contraction=True)}, wl, args.repeats)
    budget = exp_budget(wl, 64, args.repeats)
    relu, sw = res["relu"].train_s, res["swish"].train_s
    rows = {"relu_s": relu, "swish_s": sw, "swish_over_relu": sw / relu, "exp_budget_s": budget,
            "swish_over_relu_plus_exps": sw / (relu + budget),
            "swish_ops_s": res["swish_ops"].train_s,
            "swish_ops_over_relu": res["swish_ops"].train_s / relu,
            "sum_of_product_s": res["relu_sum"].train_s,
            "sum_of_product_over_matmul": res["relu_sum"].train_s / relu,
            "relu_final_loss": res["relu"].final_loss, "swish_final_loss": res["swish"].final_loss,
            "steps": wl.steps, "workload": wl.description}
    print(f"| {wl.description} | seconds | final loss |\n|---|---:|---:|")
    print(f"| relu MLP | {relu:.3f} | {rows['relu_final_loss']:.4f} |")
    print(f"| swish MLP (sg.elementwise) | {sw:.3f} | {rows['swish_final_loss']:.4f} |")
    print(f"| exp budget: {2 * wl.steps * wl.batch_size * 64} stable sigmoids | {budget:.3f} | |")
    print(f"| swish / relu | {rows['swish_over_relu']:.2f} | |")
    print(f"| swish / (relu + exp budget) | {rows['swish_over_relu_plus_exps']:.2f} | |")
    print(f"| swish as graph ops, z * sigmoid(z) | {rows['swish_ops_s']:.3f} | "
          f"{res['swish_ops'].final_loss:.4f} |")
    print(f"| swish as graph ops / relu | {rows['swish_ops_over_relu']:.2f} | |")
    print(f"| relu MLP as sum(X * W, axis=...) | {rows['sum_of_product_s']:.3f} | "
          f"{res['relu_sum'].final_loss:.4f} |")
    print(f"| sum(X * W) / X @ W | {rows['sum_of_product_over_matmul']:.2f} | |")
    path = os.path.join(os.path.dirname(__file__), "results", "formulas.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(rows, fh, indent=1)
    return rows


if __name__ == "__main__":
    main()

"""Your own functions cost what their arithmetic costs: a swish MLP against the relu one.

    python -m bench.formulas [--repeats 5]

Both are the W3 workload (MLP 64-64-10 on digits, mean cross-entropy, SGD batch 32,
lr 0.1, 20 epochs, the same initial parameters and batch order), compiled by symgrad;
the swish one uses ``sg.elementwise("swish", lambda x: x * sg.sigmoid(x))``. The
expected extra cost is its exps: each step evaluates a sigmoid twice per hidden unit
and row (forward, and in swish' on the backward pass); the "exp budget" row times
exactly that many stable sigmoids in a compiled loop. Warm calls are interleaved
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


def _model(activation):
    X, y = sg.tensor("X", ("N", "D")), sg.tensor("y", ("N",), dtype=int)
    W1, b1 = sg.param("W1", ("D", "H")), sg.param("b1", ("H",))
    W2, b2 = sg.param("W2", ("H", "C")), sg.param("b2", ("C",))
    h = activation(X @ W1 + b1).named("h")
    return sg.cross_entropy(h @ W2 + b2, y), [W1, b1, W2, b2]


def trainer(activation):
    loss, params = _model(activation)
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
    res = time_trainers({"relu": trainer(sg.relu), "swish": trainer(swish)}, wl, args.repeats)
    budget = exp_budget(wl, 64, args.repeats)
    relu, sw = res["relu"].train_s, res["swish"].train_s
    rows = {"relu_s": relu, "swish_s": sw, "swish_over_relu": sw / relu, "exp_budget_s": budget,
            "swish_over_relu_plus_exps": sw / (relu + budget),
            "relu_final_loss": res["relu"].final_loss, "swish_final_loss": res["swish"].final_loss,
            "steps": wl.steps, "workload": wl.description}
    print(f"| {wl.description} | seconds | final loss |\n|---|---:|---:|")
    print(f"| relu MLP | {relu:.3f} | {rows['relu_final_loss']:.4f} |")
    print(f"| swish MLP (sg.elementwise) | {sw:.3f} | {rows['swish_final_loss']:.4f} |")
    print(f"| exp budget: {2 * wl.steps * wl.batch_size * 64} stable sigmoids | {budget:.3f} | |")
    print(f"| swish / relu | {rows['swish_over_relu']:.2f} | |")
    print(f"| swish / (relu + exp budget) | {rows['swish_over_relu_plus_exps']:.2f} | |")
    path = os.path.join(os.path.dirname(__file__), "results", "formulas.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(rows, fh, indent=1)
    return rows


if __name__ == "__main__":
    main()

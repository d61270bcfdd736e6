"""Derivation cost vs depth: an L-layer MLP for L = 1..16.

Prints, per depth, the time to build the backward graph (reverse mode over the
graph), its size in nodes, the time of the symbolic sweep plus the full
step-by-step LaTeX derivation, and writes JSON to bench/results/derive_scaling.json.

    python -m bench.derive_scaling [--max-layers 16] [--repeats 3]
"""
import argparse
import json
import os
import time

import symgrad as sg
from symgrad.diff.reverse import backward
from symgrad.graph import topo_order


def mlp(layers, width=64, classes=10):
    X = sg.tensor("X", ("N", "D0"))
    y = sg.tensor("y", ("N",), dtype=int)
    h, params = X, []
    for k in range(layers):
        out = f"D{k + 1}" if k < layers - 1 else "C"
        W, b = sg.param(f"W{k + 1}", (f"D{k}", out)), sg.param(f"b{k + 1}", (out,))
        params += [W, b]
        h = h @ W + b
        if k < layers - 1:
            h = sg.relu(h)
    return sg.cross_entropy(h, y), params


def best_of(fn, repeats):
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def measure(layers, repeats):
    loss, params = mlp(layers)
    t_bwd, (grads, _) = best_of(lambda: backward(loss, params), repeats)
    size = len(topo_order(list(grads.values())))
    t_tex, tex = best_of(lambda: sg.derive(loss, params).to_latex(), repeats)
    return {"layers": layers, "forward_nodes": len(topo_order(loss)), "backward_nodes": size,
            "backward_ms": 1e3 * t_bwd, "latex_ms": 1e3 * t_tex, "latex_chars": len(tex)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-layers", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "results",
                                                   "derive_scaling.json"))
    args = ap.parse_args(argv)
    rows = [measure(L, args.repeats) for L in range(1, args.max_layers + 1)]
    print("| layers | forward nodes | backward nodes | backward graph | derivation + LaTeX |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['layers']} | {r['forward_nodes']} | {r['backward_nodes']} | "
              f"{r['backward_ms']:.2f} ms | {r['latex_ms']:.0f} ms |")
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump(rows, fh, indent=1)
    return rows


if __name__ == "__main__":
    main()

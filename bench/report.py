"""Markdown and JSON for ``bench.run_all``: the summary tables the README shows."""
from __future__ import annotations

import json
import math
import platform
import statistics

from . import startup, threads
from .run_baselines import MIN_SECONDS, _cpu_model, _fmt_time, _versions, markdown_table

PEERS = ("numpy", "torch", "jax_jit", "jax_scan")


def _ok(rows, workload, impl):
    return next((r for r in rows if r["workload"] == workload and r["impl"] == impl
                 and r.get("status") == "ok"), None)


def header(repeats):
    v = _versions()
    return (f"Machine: {_cpu_model()} ({platform.machine()}), one pinned core. Python "
            f"{v['python']}, NumPy {v['numpy']}, Numba {v['numba']}, PyTorch {v['torch']}, "
            f"JAX {v['jax']}. Train time = best of {repeats} warm calls (of more for a short "
            f"run: as many as add up to {MIN_SECONDS} s for the fastest trainer, at most 50), "
            "interleaved round-robin in one process.")


def float64_table(rows):
    """One line per workload: hand-written Numba, symgrad (run_epochs and fit), peers."""
    names = list(dict.fromkeys(r["workload"] for r in rows))
    peers = [p for p in PEERS if any(_ok(rows, n, p) for n in names)]
    head = ["workload", "hand-written Numba", "symgrad run_epochs", "symgrad sg.fit",
            "per round (median)", "fit / run_epochs (best, per round)",
            "fit+bar / run_epochs (best, per round)"] + peers + [
                "symgrad / fastest peer"]
    out = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for n in names:
        ref, sg, fit, bar = (_ok(rows, n, i) for i in ("numba", "symgrad", "symgrad fit",
                                                        "symgrad fit+bar"))
        if ref is None or sg is None:
            continue
        cells = [n, _fmt_time(ref["train_s"]),
                 f"{_fmt_time(sg['train_s'])} ({sg['train_s'] / ref['train_s']:.2f}x)"]
        cells.append(f"{_fmt_time(fit['train_s'])} ({fit['train_s'] / ref['train_s']:.2f}x)"
                     if fit else "")
        cells.append(f"{paired(sg, ref):.2f}x")
        cells += [_driver_cost(driven, sg) for driven in (fit, bar)]
        best = math.inf
        for p in peers:
            r = _ok(rows, n, p)
            if r is None:
                cells.append("n/a")
                continue
            best = min(best, r["train_s"])
            cells.append(f"{_fmt_time(r['train_s'])} ({r['train_s'] / ref['train_s']:.2f}x; "
                         f"symgrad {sg['train_s'] / r['train_s']:.2f}x)")
        best = min(best, ref["train_s"])
        cells.append(f"{sg['train_s'] / best:.2f}")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _driver_cost(driven, sg):
    """fit's time ÷ run_epochs': of the best calls, and the median of the rounds' ratios
    (the steadier one on a shared host: a best call of each may come from another phase)."""
    if driven is None:
        return ""
    return f"{driven['train_s'] / sg['train_s']:.2f}, {paired(driven, sg):.2f}"


def paired(row, ref):
    """The median over rounds of row's time / ref's time in the same round: the calls of
    one round are adjacent in time, so a slow phase of a shared host hits both, where
    each one's best call may come from a different phase."""
    pairs = [a / b for a, b in zip(row["times_s"], ref["times_s"])]
    return statistics.median(pairs) if pairs else math.nan


def float32_table(f32):
    out = ["| float32 | hand-written Numba | symgrad | × numba | per round (median) "
           "| final loss (symgrad) |", "|---|---:|---:|---:|---:|---:|"]
    for n in dict.fromkeys(r["workload"] for r in f32):
        ref = next(r for r in f32 if r["workload"] == n and r["impl"] == "numba")
        sg = next(r for r in f32 if r["workload"] == n and r["impl"] == "symgrad")
        out.append(f"| {n} | {_fmt_time(ref['train_s'])} | {_fmt_time(sg['train_s'])} "
                   f"| {sg['ratio']:.2f} | {paired(sg, ref):.2f} | {sg['final_loss']:.6g} |")
    return "\n".join(out)


def markdown(rows, f32, thr, up, repeats, startup_repeats):
    parts = [header(repeats), "", "Train time, float64 (× the hand-written Numba trainer; "
             "for each peer also symgrad's time ÷ the peer's; per round: the median over the "
             "interleaved rounds of symgrad run_epochs' time ÷ the hand-written trainer's "
             "in the same round):", "", float64_table(rows)]
    if f32:
        parts += ["", float32_table(f32)]
    if thr:
        parts += ["", "Two cores (OpenBLAS on 1 vs 2 threads, same process, interleaved):",
                  "", threads.markdown(thr)]
    if up:
        parts += ["", startup.markdown(up, startup_repeats)]
    parts += ["", "Every row (float64):", "", markdown_table(rows)]
    return "\n".join(parts)


def add_sections(path, sections):
    """Add the float32, threads and start-up rows to the JSON ``write_json`` wrote."""
    data = json.loads(path.read_text())
    data.update(sections)
    path.write_text(json.dumps(data, indent=2) + "\n")

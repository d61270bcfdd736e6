"""Time every baseline on every workload; print a markdown table, write JSON.

    python -m bench.run_baselines [--workloads W1,W2] [--impls numpy,numba]
                                  [--repeats 5] [--json bench/results/baselines.json]

Other rows (e.g. symgrad) can reuse the pieces::

    rows = run_all(["W2"], ["numba"], repeats=5,
                   extra={"symgrad": {"W2": my_train}})  # interleaved timing
    print(markdown_table(rows))
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

from .env import pin_to_one_cpu, set_single_thread_env, thread_env_snapshot

set_single_thread_env()  # before numpy & co. (``import bench`` already did it)

import numpy as np  # noqa: E402

from .baselines import BASELINES, REFERENCE_IMPL, UNAVAILABLE  # noqa: E402
from .timing import TimingResult, time_trainers  # noqa: E402
from .workloads import WORKLOADS, Workload  # noqa: E402

DEFAULT_JSON = Path(__file__).parent / "results" / "baselines.json"
LOSS_RTOL = 1e-10  # final losses must agree this closely across implementations


# ----------------------------------------------------------------- measuring
def _ok_row(wl: Workload, impl: str, r: TimingResult) -> dict:
    return {
        "workload": wl.name, "impl": impl, "steps": wl.steps, "status": "ok",
        "train_s": r.train_s, "step_s": r.step_s, "first_call_s": r.first_call_s,
        "compile_s": r.compile_s, "final_loss": r.final_loss,
        "cpu_over_wall": r.cpu_over_wall, "times_s": r.times_s,
    }


def _status_row(wl: Workload, impl: str, status: str) -> dict:
    return {"workload": wl.name, "impl": impl, "steps": wl.steps, "status": status}


MIN_SECONDS = 0.5   # short runs: as many warm calls as fill this (time_trainers)


def measure_workload(wl: Workload, trainers: dict, repeats: int = 5) -> list[dict]:
    """Rows for one workload; ``trainers[impl]`` is a trainer, or a string
    saying why it is unavailable.  Warm calls are interleaved across impls."""
    runnable = {k: fn for k, fn in trainers.items() if callable(fn)}
    errors: dict[str, Exception] = {}
    results = time_trainers(runnable, wl, repeats=repeats, errors=errors,
                            min_seconds=MIN_SECONDS)
    rows = []
    for impl, fn in trainers.items():
        if impl in results:
            rows.append(_ok_row(wl, impl, results[impl]))
        elif impl in errors:
            exc = errors[impl]
            rows.append(_status_row(wl, impl, f"error: {type(exc).__name__}: {exc}"))
        else:
            rows.append(_status_row(wl, impl, str(fn)))
    return rows


def trainers_for(wname: str, impls, extra: dict | None = None) -> dict:
    """impl -> trainer (or 'not installed' string) for workload ``wname``.

    ``extra`` adds implementations, e.g. ``{"symgrad": {"W1": fn, ...}}``.
    """
    out = {}
    for impl in impls:
        table = BASELINES[impl]
        out[impl] = UNAVAILABLE.get(impl, "not installed") if table is None else table[wname]
    for impl, table in (extra or {}).items():
        out[impl] = table[wname]
    return out


def run_all(workloads, impls, repeats: int = 5, extra: dict | None = None,
            log=print) -> list[dict]:
    rows = []
    for wname in workloads:
        wl = WORKLOADS[wname]()
        log(f"{wname}: {wl.description}")
        new = measure_workload(wl, trainers_for(wname, impls, extra), repeats)
        for row in new:
            log(f"  {row['impl']}: {_short_status(row)}")
        rows += new
    add_comparisons(rows)
    return rows


def add_comparisons(rows: list[dict], reference: str = REFERENCE_IMPL) -> None:
    """Add ``ratio`` (train time / reference's) and ``loss_rel_diff``."""
    ref = {r["workload"]: r for r in rows
           if r["impl"] == reference and r.get("status") == "ok"}
    for r in rows:
        base = ref.get(r["workload"])
        if r.get("status") != "ok" or base is None:
            continue
        r["ratio"] = r["train_s"] / base["train_s"]
        r["loss_rel_diff"] = abs(r["final_loss"] - base["final_loss"]) / abs(base["final_loss"])


def loss_mismatches(rows: list[dict], rtol: float = LOSS_RTOL) -> list[dict]:
    return [r for r in rows if r.get("loss_rel_diff", 0.0) > rtol]


# ----------------------------------------------------------------- reporting
def _short_status(row: dict) -> str:
    if row.get("status") != "ok":
        return row.get("status", "?")
    return f"{_fmt_time(row['train_s'])}, loss {row['final_loss']:.12g}"


def _fmt_time(seconds: float) -> str:
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} µs"


def markdown_table(rows: list[dict]) -> str:
    head = ("| workload | impl | train | per step | first call | final loss "
            "| rel. diff vs numba | × numba |")
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r.get("status") != "ok":
            lines.append(f"| {r['workload']} | {r['impl']} | {r['status']} "
                         "| | | | | |")
            continue
        ratio = r.get("ratio", math.nan)
        diff = r.get("loss_rel_diff", math.nan)
        lines.append(
            f"| {r['workload']} | {r['impl']} | {_fmt_time(r['train_s'])} "
            f"| {_fmt_time(r['step_s'])} | {_fmt_time(r['first_call_s'])} "
            f"| {r['final_loss']:.12g} | {diff:.1e} | {ratio:.2f} |")
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("numba", "torch", "jax", "jaxlib", "scipy"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = "not installed"
    return out


def _cpu_model() -> str:
    """E.g. "AMD EPYC, family 25 model 1, AVX2": the widest vector extension matters
    (symgrad's vectorised exp runs 8 float64 lanes with AVX-512, 4 with AVX2), and a
    cloud VM's model name alone does not tell one host generation from another."""
    try:
        info = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor()
    flags = info.get("flags", "").split()
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return (f"{info.get('model name', platform.processor())}, family "
            f"{info.get('cpu family', '?')} model {info.get('model', '?')}, {vector}")


def write_json(rows: list[dict], path: Path, repeats: int) -> None:
    meta = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpu": _cpu_model(), "platform": platform.platform()},
        "versions": _versions(),
        "threads": thread_env_snapshot(),
        "repeats": repeats,
        "timing": "train_s = best of `repeats` warm calls of train(workload), "
                  "including the final full-dataset loss; first_call_s = first "
                  "call (JIT compile + one run); compile_s = first_call_s - train_s",
    }
    descriptions = {name: make().description for name, make in WORKLOADS.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "workloads": descriptions,
                                "rows": rows}, indent=2) + "\n")


# ----------------------------------------------------------------- CLI
def _parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--impls", default=",".join(BASELINES))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", type=Path, default=DEFAULT_JSON)
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin the process to one CPU")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = _parse_args(argv)
    if not args.no_pin:
        pin_to_one_cpu()
    workloads = args.workloads.split(",")
    impls = args.impls.split(",")
    rows = run_all(workloads, impls, repeats=args.repeats,
                   log=lambda s: print(s, file=sys.stderr))
    print(markdown_table(rows))
    write_json(rows, args.json, args.repeats)
    bad = loss_mismatches(rows)
    for r in bad:
        print(f"LOSS MISMATCH {r['workload']} {r['impl']}: "
              f"rel diff {r['loss_rel_diff']:.2e}", file=sys.stderr)
    print(f"\nwrote {args.json}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

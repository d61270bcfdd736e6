"""The whole benchmark: symgrad beside hand-written NumPy and Numba, PyTorch and JAX.

    python -m bench.run_all [--workloads W1,W2,W3,W4] [--repeats 5]
                            [--no-float32] [--no-threads] [--no-startup]

One process, one core, the same initial parameters and batch order for every
implementation, warm calls interleaved (this machine's speed drifts between
runs). Sections, all in one run:

* float64 train time of every implementation, ratios to the hand-written Numba
  trainer and symgrad's ratio to every peer; ``sg.fit`` (progress and metrics
  off) beside ``run_epochs``, and the driver's cost (fit / run_epochs), also with the
  progress bar on (fit+bar / run_epochs);
* float32: symgrad ``dtype=np.float32`` against the hand-written Numba trainer on
  float32 data (``bench.workloads.as_float32``);
* two threads (``bench.threads``, its own process: BLAS on 1 vs 2 threads);
* start-up (``bench.startup``): whole fresh processes that load a cached trainer
  and run one epoch, median of ``--startup-repeats`` (default 5).

Prints markdown (also written to bench/results/all.md) and writes
bench/results/all.json with the machine, the versions (Numba's included) and
every time measured. symgrad's compile cache goes to a fresh temporary
directory, so its first call is a cold compile.
"""
import os
import sys
import tempfile

os.environ.setdefault("SYMGRAD_CACHE_DIR", tempfile.mkdtemp(prefix="symgrad-bench-"))
os.environ.setdefault("SYMGRAD_PROGRESS", "0")

from . import run_baselines  # noqa: E402  (sets thread counts before NumPy loads)
from . import report, startup, threads  # noqa: E402
from .impl_numba import TRAINERS as NUMBA  # noqa: E402
from .impl_symgrad import FIT_BAR_TRAINERS, FIT_TRAINERS, TRAINERS  # noqa: E402
from .timing import time_trainers  # noqa: E402
from .workloads import WORKLOADS, as_float32  # noqa: E402

F32_RTOL = 1e-3      # float32 final losses of symgrad and hand-written Numba agree this well


def float32_rows(workloads, repeats, log):
    """symgrad float32 vs hand-written Numba float32, interleaved, per workload."""
    rows = []
    for name in workloads:
        wl = as_float32(WORKLOADS[name]())
        res = time_trainers({"numba": NUMBA[name], "symgrad": TRAINERS[name]}, wl, repeats,
                            min_seconds=run_baselines.MIN_SECONDS)
        ref = res["numba"]
        for impl, r in res.items():
            rows.append({"workload": name, "impl": impl, "dtype": "float32", "train_s": r.train_s,
                         "times_s": r.times_s, "first_call_s": r.first_call_s,
                         "final_loss": r.final_loss, "ratio": r.train_s / ref.train_s,
                         "loss_rel_diff": abs(r.final_loss - ref.final_loss) / abs(ref.final_loss)})
            log(f"  float32 {name} {impl}: {r.train_s * 1e3:.1f} ms, loss {r.final_loss:.6g}")
    return rows


def main(argv=None):
    args, extra = _parse(argv)
    if not args.no_pin:
        run_baselines.pin_to_one_cpu()
    if args.json == run_baselines.DEFAULT_JSON:
        args.json = args.json.with_name("all.json")
    log = lambda s: print(s, file=sys.stderr)  # noqa: E731
    names = args.workloads.split(",")
    ours = {"symgrad": TRAINERS, "symgrad fit": FIT_TRAINERS, "symgrad fit+bar": FIT_BAR_TRAINERS}
    impls = [i for i in args.impls.split(",") if i not in ours]
    rows = run_baselines.run_all(names, impls, repeats=args.repeats, extra=ours, log=log)
    f32 = [] if extra.no_float32 else float32_rows(names, args.repeats, log)
    thr = [] if extra.no_threads else threads.run(
        [n for n in ("W2", "W4") if n in names], args.repeats, log)
    up = [] if extra.no_startup else startup.measure(extra.startup_repeats, log)
    text = report.markdown(rows, f32, thr, up, args.repeats, extra.startup_repeats)
    print(text)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.with_suffix(".md").write_text(text + "\n")
    run_baselines.write_json(rows, args.json, args.repeats)
    report.add_sections(args.json, {"float32": f32, "threads": thr, "startup": up})
    bad = [r for r in run_baselines.loss_mismatches(rows)
           if not r["impl"].startswith("symgrad fit")]    # fit draws its own batch order
    bad += [r for r in f32 if r["loss_rel_diff"] > F32_RTOL]
    for r in bad:
        print(f"LOSS MISMATCH {r['workload']} {r['impl']} {r.get('dtype', 'float64')}: "
              f"rel diff {r['loss_rel_diff']:.2e}", file=sys.stderr)
    return 1 if bad else 0


def _parse(argv):
    import argparse
    more = argparse.ArgumentParser(add_help=False)
    more.add_argument("--no-float32", action="store_true")
    more.add_argument("--no-threads", action="store_true")
    more.add_argument("--no-startup", action="store_true")
    more.add_argument("--startup-repeats", type=int, default=5)
    extra, rest = more.parse_known_args(argv)
    return run_baselines._parse_args(rest), extra


if __name__ == "__main__":
    sys.exit(main())

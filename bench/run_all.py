"""The whole benchmark: symgrad beside hand-written NumPy and Numba, PyTorch and JAX.

One process, one core, the same initial parameters and batch order for every
implementation, warm calls interleaved (this machine's speed drifts between
runs). Prints a markdown table and writes bench/results/all.json.

    python -m bench.run_all [--workloads W1,W2,W3,W4] [--repeats 5]

symgrad's compile cache goes to a fresh temporary directory, so its first call
is a cold compile; `bench.compile_times` measures cold and warm (cached) loads.
"""
import os
import sys
import tempfile

os.environ.setdefault("SYMGRAD_CACHE_DIR", tempfile.mkdtemp(prefix="symgrad-bench-"))

from . import run_baselines  # noqa: E402  (sets thread counts before NumPy loads)
from .impl_symgrad import TRAINERS  # noqa: E402


def main(argv=None):
    args = run_baselines._parse_args(argv)
    if not args.no_pin:
        run_baselines.pin_to_one_cpu()
    if args.json == run_baselines.DEFAULT_JSON:
        args.json = args.json.with_name("all.json")
    impls = ["symgrad"] + [i for i in args.impls.split(",") if i != "symgrad"]
    rows = run_baselines.run_all(args.workloads.split(","), [i for i in impls if i != "symgrad"],
                                 repeats=args.repeats, extra={"symgrad": TRAINERS},
                                 log=lambda s: print(s, file=sys.stderr))
    print(run_baselines.markdown_table(rows))
    run_baselines.write_json(rows, args.json, args.repeats)
    bad = run_baselines.loss_mismatches(rows)
    for r in bad:
        print(f"LOSS MISMATCH {r['workload']} {r['impl']}: rel diff {r['loss_rel_diff']:.2e}",
              file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

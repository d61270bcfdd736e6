"""The ``symgrad`` command: ``demo``, ``derive MODEL`` and ``bench``.

``symgrad derive`` takes a lecture model by name or a path to the user's own Python
file, which is run with :mod:`runpy` exactly as ``python file.py`` would run it; text
typed on the command line is never evaluated.
"""
import argparse
import os
import runpy
import subprocess
import sys
import time
from pathlib import Path

QUICK_ENV = "SYMGRAD_DEMO_QUICK"


# -- the lecture's models -----------------------------------------------------------------------
def _linear_regression(sg):
    X, y, w = sg.tensor("X", ("N", "d")), sg.tensor("y", ("N",)), sg.param("w", ("d",))
    return sg.sum((y - X @ w) ** 2), [w]


def _perceptron(sg):
    X, t, w = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",)), sg.param("w", ("d",))
    return sg.sum((t - sg.sigmoid(X @ w)) ** 2), [w]


def _softmax(sg):
    X, y = sg.tensor("X", ("N", "D")), sg.tensor("y", ("N",), dtype=int)
    W, b = sg.param("W", ("D", "C")), sg.param("b", ("C",))
    return sg.cross_entropy((X @ W + b).named("s"), y), [W, b]


def _softmax_l2(sg):
    X, y = sg.tensor("X", ("N", "D")), sg.tensor("y", ("N",), dtype=int)
    W, b = sg.param("W", ("D", "C")), sg.param("b", ("C",))
    s = (X @ W + b).named("s")
    return (sg.cross_entropy(s, y) + 0.001 * sg.l2(W)).named("L"), [W, b]


def _two_layer(sg):
    X, t = sg.tensor("X", ("N", "D")), sg.tensor("t", ("N", "K"))
    W1, b1 = sg.param("W1", ("D", "H")), sg.param("b1", ("H",))
    W2, b2 = sg.param("W2", ("H", "K")), sg.param("b2", ("K",))
    h = sg.sigmoid(X @ W1 + b1).named("h")
    out = (h @ W2 + b2).named("out")
    return sg.sum((t - out) ** 2), [W1, b1, W2, b2]


def _backprop_example(sg):
    x, y, z = sg.scalars("x y z")
    return (x + y) * z, {x: -2, y: 5, z: -4}


MODELS = {
    "linear-regression": (_linear_regression, "L = sum_i (y_i - w^T x_i)^2 (lecture section 5)"),
    "perceptron": (_perceptron, "L = sum_i (t_i - sigmoid(w^T x_i))^2 (section 6)"),
    "softmax": (_softmax, "mean cross-entropy of s = X W + b (section 2)"),
    "softmax-l2": (_softmax_l2, "softmax with L2 regularization 0.001 sum W^2 (section 3)"),
    "two-layer": (_two_layer, "h = sigmoid(X W1 + b1), out = h W2 + b2, squared error (7)"),
    "backprop-example": (_backprop_example, "f = (x + y) z at x=-2, y=5, z=-4 (section 9)"),
}


# -- derive -------------------------------------------------------------------------------------
def load_model_file(path):
    """(loss, params or None, values or None) from the user's Python file, run with runpy."""
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"symgrad derive: no such model or file: {str(path)!r}\n"
                         f"known models: {', '.join(MODELS)}")
    # run_name is not "__main__": an `if __name__ == "__main__":` block (say, training)
    # does not run when the file is only read for its loss.
    ns = runpy.run_path(str(path), run_name="__symgrad_model__")
    if "loss" not in ns:
        raise SystemExit(f"symgrad derive: {path} defines no variable named 'loss'")
    return ns["loss"], ns.get("params"), ns.get("values")


def _resolve(model):
    import symgrad as sg
    if model in MODELS:
        built = MODELS[model][0](sg)
        if model == "backprop-example":
            return built[0], None, built[1]
        return built[0], built[1], None
    return load_model_file(model)


def explain(model):
    """The Derivation of MODEL's loss, or the BackpropRun of a scalar (SymPy) loss."""
    import sympy as sp

    import symgrad as sg
    from symgrad.graph.node import Node
    from symgrad.graph.traverse import leaves
    loss, params, values = _resolve(model)
    if isinstance(loss, Node):
        return sg.derive(loss, leaves(loss, "param") if params is None else params)
    if not isinstance(loss, sp.Expr):
        raise SystemExit(f"symgrad derive: 'loss' must be a symgrad node or a SymPy expression, "
                         f"got {type(loss).__name__}")
    if values is None:
        raise SystemExit("symgrad derive: a scalar (SymPy) loss needs a dict named 'values' "
                         "mapping each symbol to a number")
    return sg.backprop(loss, values)


def derive_output(model, latex=False, document=False, slides=False):
    """The text (or LaTeX, a LaTeX document, a Beamer deck) of ``symgrad derive MODEL``."""
    from symgrad.explain.derivation import Derivation
    obj = explain(model)
    if slides:
        from symgrad.explain.slides import backprop_slides
        return obj.to_slides() if isinstance(obj, Derivation) else backprop_slides(obj)
    if document:
        return obj.to_latex(document=True)
    return obj.to_latex() if latex else str(obj)


def matrix_output(model, latex=False):
    """The update rules of MODEL in matrix notation (text or LaTeX)."""
    from symgrad.explain.derivation import Derivation
    from symgrad.explain.matrix import MatrixFormError
    obj = explain(model)
    if not isinstance(obj, Derivation):
        raise SystemExit(f"symgrad derive --matrix: {model} is a scalar backprop run; "
                         "it has no update rules to write as matrices")
    try:
        rules = obj.update_rule(form="matrix")
    except MatrixFormError as err:
        raise SystemExit(f"symgrad derive --matrix: {err}") from None
    return rules.to_latex() if latex else str(rules)


def write_graph(model, path):
    """Save the annotated computation graph of MODEL (.svg, .png, .pdf or .dot)."""
    from symgrad.explain.graphview import graph_view
    return graph_view(explain(model)).save(path)


def cmd_derive(args):
    from symgrad.graph.arguments import check_derive_outputs
    check_derive_outputs(args)      # bad file names fail before any work
    if args.graph:
        print(f"wrote {write_graph(args.model, args.graph)}")
        return 0
    written = False
    for path, kind in ((args.output, "document"), (args.slides, "slides")):
        if path:
            text = derive_output(args.model, document=True, slides=kind == "slides")
            Path(path).write_text(text)
            print(f"wrote {path} ({len(text.splitlines())} lines); build it with: pdflatex {path}")
            written = True
    if written:
        return 0
    if args.matrix:
        print(matrix_output(args.model, latex=args.latex))
        return 0
    print(derive_output(args.model, latex=args.latex))
    return 0


# -- demo ---------------------------------------------------------------------------------------
def _quick(args):
    return args.quick or os.environ.get(QUICK_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def cmd_demo(args):
    quick = _quick(args)
    print("== 1. The sigmoid perceptron's update rule, derived ==")
    print(f"{explain('perceptron').update_rule()}\n")
    print("== 2. Backpropagation on f = (x + y) z at x=-2, y=5, z=-4 ==")
    print(f"{explain('backprop-example')}\n")
    print("== 3. Compile and train on scikit-learn's digits ==")
    return train_digits(quick=quick, progress=not args.no_progress)


def _digits():
    """Digits split 75/25 (stratified), standardized with the training rows' statistics."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    mu, sd = Xtr.mean(axis=0), Xtr.std(axis=0)
    sd[sd == 0] = 1.0
    return (Xtr - mu) / sd, (Xte - mu) / sd, ytr, yte


def train_digits(quick=False, progress=True):
    """Compile and train softmax regression and a 64-32-10 MLP; print accuracy and times."""
    try:
        from symgrad import nn
        from symgrad.train import fit
    except ImportError as err:
        print(f"training skipped: symgrad.train / symgrad.nn are not in this installation ({err})")
        return 0
    try:
        import symgrad.codegen  # noqa: F401
        how = "compiled with Numba"
    except ImportError as err:
        how = "NumPy reference (symgrad.codegen is not available: {}); slow".format(err)
    print(f"training: {how}")
    Xtr, Xte, ytr, yte = _digits()
    epochs = 2 if quick else 30
    models = [("softmax regression", nn.softmax_regression(64, 10, l2=1e-4)),
              ("MLP 64-32-10 (relu)", nn.mlp([64, 32, 10], activation="relu"))]
    for label, model in models:
        t0 = time.perf_counter()
        fn = model.compile()
        # Numba compiles on first call: one tiny epoch here, so "train" is training only.
        fn.run_epochs(model.init_params(seed=0), {"X": Xtr[:64], "y": ytr[:64]}, None,
                      [0.0], 32)
        compile_s = time.perf_counter() - t0
        hist = fit(fn, model.init_params(seed=0), data={"X": Xtr, "y": ytr}, lr=0.1,
                   epochs=epochs, batch_size=32, progress=progress,
                   metrics=())  # accuracy is measured once, on the test rows, below
        acc = model.accuracy(hist.params, Xte, yte)
        print(f"{label:22s} test accuracy {acc:6.1%}   compile (or cache load) {compile_s:5.2f} s   "
              f"train {hist.time:6.3f} s ({epochs} epochs, batch 32, "
              f"{len(Xtr)} rows, final loss {hist.loss[-1]:.4f})", flush=True)
    return 0


# -- bench --------------------------------------------------------------------------------------
def _repo_root():
    """The source checkout holding bench/ next to symgrad/, or None for an installed wheel."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "bench" / "__init__.py").is_file() else None


def cmd_bench(args):
    root = _repo_root()
    module = "bench.estimators" if args.estimators else "bench.run_all"
    if root is None or not (root / "bench" / f"{module.split('.')[1]}.py").is_file():
        print(f"symgrad bench: the benchmarks live in the source repository's bench/ folder, "
              f"which this installation does not include. From a checkout run:\n"
              f"    python -m {module}")
        return 2
    cmd = [sys.executable, "-m", module] + args.extra
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=root)


# -- the parser ---------------------------------------------------------------------------------
def build_parser():
    parser = argparse.ArgumentParser(
        prog="symgrad", description="Derive, explain and compile gradients of small ML models.")
    from symgrad import __version__
    parser.add_argument("--version", action="version", version=f"symgrad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="derive, backprop, compile and train (a tour)",
                          description="Derive the sigmoid perceptron's rule, show backprop on "
                          "(x+y)z, then compile and train softmax regression and a 64-32-10 "
                          "MLP on scikit-learn's digits.")
    demo.add_argument("--quick", action="store_true",
                      help=f"a few-second smoke run for CI (also: {QUICK_ENV}=1)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.set_defaults(func=cmd_demo)

    names = "\n".join(f"  {k:18s} {v[1]}" for k, v in MODELS.items())
    derive = sub.add_parser(
        "derive", help="print the derivation of a lecture model or of your own file",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print the step-by-step derivation and update rules.\n\nMODEL is one of:\n"
                    + names + "\nor a path to a Python file defining `loss` (a symgrad node, "
                    "or a SymPy expression with a dict `values`) and optionally `params`.")
    derive.add_argument("model", metavar="MODEL", help="a model name or a .py file")
    derive.add_argument("--latex", action="store_true", help="print LaTeX instead of text")
    derive.add_argument("-o", "--output", metavar="FILE.tex",
                        help="write a standalone LaTeX document to FILE.tex")
    derive.add_argument("--matrix", action="store_true",
                        help="print the update rules in matrix notation (X^T, Hadamard *, 1^T)")
    derive.add_argument("--slides", metavar="DECK.tex",
                        help="write a Beamer deck to DECK.tex (one frame per stage, the "
                             "chain-rule steps revealed one by one)")
    derive.add_argument("--graph", metavar="FILE",
                        help="write the annotated computation graph (.svg, .png, .pdf or .dot)")
    derive.set_defaults(func=cmd_derive)

    bench = sub.add_parser("bench", help="run the benchmarks (python -m bench.run_all)",
                           description="Run the speed comparison in the repository's bench/ "
                           "folder; other arguments (e.g. --workloads W2,W3 --repeats 3) "
                           "are passed on to it.")
    bench.add_argument("--estimators", action="store_true",
                       help="time the scikit-learn-style estimators instead (bench/estimators.py)")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv=None):
    parser = build_parser()
    # Only `bench` takes arguments it does not know: they belong to the bench script.
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "command", None) != "bench":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except BrokenPipeError:  # `symgrad derive ... | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())

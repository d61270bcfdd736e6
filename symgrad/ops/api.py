"""The user-facing op functions (``sg.exp``, ``sg.sigmoid``, ``sg.cross_entropy``, ...).

Each takes graph nodes (returning a node) and, where it makes sense, SymPy
scalars or numbers (returning a SymPy expression), so the same names serve the
scalar backprop examples and tensor models.
"""
import numbers

from symgrad.errors import DeclarationError, DimError
from symgrad.graph.node import INT, Node, apply, positional
from symgrad.ops._lazy import F, deferred, is_sympy, sp


def _unary(op_name, sympy_fn):
    def fn(x):
        if isinstance(x, Node):
            return apply(op_name, x)
        if is_sympy(x) or isinstance(x, numbers.Real):
            return sympy_fn(sp.sympify(x) if isinstance(x, numbers.Real) else x)
        raise DeclarationError(f"{op_name}: expected a symgrad node or a SymPy expression, got {x!r}")
    fn.__name__ = op_name
    fn.__doc__ = f"Elementwise {op_name} of a node (or of a SymPy scalar expression)."
    return fn


exp = _unary("exp", deferred(sp, "exp"))
log = _unary("log", deferred(sp, "log"))
sqrt = _unary("sqrt", deferred(sp, "sqrt"))
abs = _unary("abs", deferred(sp, "Abs"))  # noqa: A001 - mirrors numpy's name on purpose
sigmoid = _unary("sigmoid", deferred(F, "sigmoid"))
tanh = _unary("tanh", deferred(sp, "tanh"))
relu = _unary("relu", deferred(F, "relu"))
softplus = _unary("softplus", deferred(F, "softplus"))


def _node(x, fn):
    if not isinstance(x, Node):
        raise DeclarationError(f"{fn} takes a symgrad tensor node, got {type(x).__name__}")
    return x


def _keepdims(keepdims, fn):
    # Operands broadcast by dim name, so a reduced result already lines up with the
    # tensor it came from: keepdims=True is accepted for NumPy habits and changes nothing.
    if not isinstance(keepdims, bool):
        raise TypeError(f"{fn}: keepdims must be True or False, got {keepdims!r}")


def sum(x, axis=None, keepdims=False):  # noqa: A001
    """Sum over ``axis`` (an int, a dim name, a tuple of them, or None for all)."""
    _keepdims(keepdims, "sum")
    return positional(apply("sum", _node(x, "sum"), axis=axis))


def mean(x, axis=None, keepdims=False):
    _keepdims(keepdims, "mean")
    return positional(apply("mean", _node(x, "mean"), axis=axis))


def max(x, axis=None, keepdims=False):  # noqa: A001
    """Largest element along ``axis``; ties share its gradient evenly."""
    _keepdims(keepdims, "max")
    return positional(apply("max", _node(x, "max"), axis=axis))


def softmax(x, axis=-1):
    return apply("softmax", _node(x, "softmax"), axis=axis)


def log_softmax(x, axis=-1):
    return apply("log_softmax", _node(x, "log_softmax"), axis=axis)


def logsumexp(x, axis=-1):
    return positional(apply("logsumexp", _node(x, "logsumexp"), axis=axis))


# -- losses and regularisers -------------------------------------------------------------
def sse(pred, target):
    """Sum of squared errors, ``sum_i (target_i - pred_i)^2``."""
    return apply("sum", (target - pred) ** 2)


def mse(pred, target):
    """Mean squared error, ``(1/N) sum_i (target_i - pred_i)^2``."""
    return apply("mean", (target - pred) ** 2)


def cross_entropy(logits, labels):
    """Mean over the batch of ``-log softmax(logits)[label]``.

    ``labels`` is an integer tensor with the logits' dims minus the class dim, or a
    float (one-hot or soft) tensor with the logits' dims. Stable: log-sum-exp forward,
    ``p - onehot`` backward.
    """
    return apply("cross_entropy", _node(logits, "cross_entropy"), _node(labels, "cross_entropy"))


def binary_cross_entropy(pred, target, from_logits=False):
    """Mean binary cross-entropy of probabilities ``pred`` (or logits) against 0/1 targets.

    ``binary_cross_entropy(sigmoid(z), t)`` is computed from the logits ``z`` (stable
    for any z); for raw probabilities, logs are clamped at -100 so p = 0 or 1 is finite.
    """
    pred, target = _node(pred, "binary_cross_entropy"), _node(target, "binary_cross_entropy")
    if from_logits:
        return apply("bce_logits", pred, target)
    if pred.op == "sigmoid" and pred.name is None:
        return apply("bce_logits", pred.inputs[0], target)
    return -apply("mean", target * apply("clog", pred) + (1 - target) * apply("clog", 1 - pred))


def hinge(scores, targets, margin=1.0):
    """Hinge loss. Float targets in {-1, +1}: the mean of ``max(0, 1 - t s)``. Integer
    labels ``y`` (the scores' dims minus the class dim): the multiclass SVM loss of
    CS231n, ``mean_i sum_{j != y_i} max(0, s_ij - s_iy_i + margin)``."""
    scores, targets = _node(scores, "hinge"), _node(targets, "hinge")
    if targets.dtype != INT:
        return apply("mean", apply("relu", 1 - targets * scores))
    classes = [d for d in scores.dims if d not in targets.dims]
    if len(classes) != 1:
        raise DimError(f"hinge: integer labels {targets.display} with dims {targets.dims} "
                       f"must have every dim of the scores {scores.display} {scores.dims} "
                       "but the class dim")
    s_y = take(scores, targets, axis=classes[0])
    margins = apply("relu", scores - s_y + margin) * (1 - onehot(targets, classes[0]))
    return apply("mean", apply("sum", margins, axis=classes[0]))


# -- selection ---------------------------------------------------------------------------
def take(x, labels, axis=-1):
    """``x[..., labels_i, ...]``: gather along ``axis`` by integer labels, whose dims are
    (some of) ``x``'s other dims; the result has ``x``'s dims without ``axis``."""
    return positional(apply("take", _node(x, "take"), _node(labels, "take"), axis=axis))


def onehot(labels, dim):
    """1.0 where the class index along ``dim`` equals the label, else 0.0; the size of
    ``dim`` comes from the other tensors of the graph."""
    labels = _node(labels, "onehot")
    if not isinstance(dim, str) or not dim.isidentifier():
        raise DimError(f"onehot: dim must be a dim name such as 'C', got {dim!r}")
    if dim in labels.dims:
        raise DimError(f"onehot: labels {labels.display} already have dim {dim!r}")
    return apply("onehot", labels, dim=dim)


def where(condition, a, b):
    """``a`` where ``condition`` (a mask such as ``abs(r) <= 1``) is nonzero, else ``b``;
    the gradient goes to the branch chosen. Operands broadcast by dim name."""
    return apply("where", condition, a, b)


def maximum(a, b):
    """Elementwise larger of ``a`` and ``b``; at ties each gets half the gradient."""
    return apply("maximum", a, b)


def minimum(a, b):
    """Elementwise smaller of ``a`` and ``b``; at ties each gets half the gradient."""
    return apply("minimum", a, b)


def clip(x, lo, hi):
    """``x`` limited to ``[lo, hi]`` (numbers or nodes): ``minimum(maximum(x, lo), hi)``."""
    if isinstance(lo, numbers.Real) and isinstance(hi, numbers.Real) and lo > hi:
        raise DeclarationError(f"clip: lo={lo!r} is larger than hi={hi!r}")
    return minimum(maximum(_node(x, "clip"), lo), hi)


def l1(w):
    """L1 regulariser ``sum |w|`` (subgradient sign(w), 0 at 0)."""
    return apply("sum", apply("abs", _node(w, "l1")))


def l2(w):
    """L2 regulariser ``sum w^2``."""
    return apply("sum", _node(w, "l2") ** 2)

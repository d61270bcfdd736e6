"""The math library: ``sg.sin cos log1p expm1 square erf gelu silu elu leaky_relu huber``.

Each takes a node (returning a node) or a SymPy scalar or number (returning a SymPy
expression), like ``sg.sigmoid``.

``sin``, ``cos``, ``log1p``, ``expm1`` and ``erf`` are rows like those of
:mod:`symgrad.ops.elementwise` (SymPy's own functions, NumPy, gradient rule, Numba
template). ``gelu``, ``silu``, ``elu``, ``leaky_relu`` and the Huber function are made
with :func:`symgrad.ops.custom.elementwise` from their textbook bodies, which is also
how users add functions; ``square(x)`` is ``x ** 2``.

Kinks take the derivative of the branch their condition selects, which at 0 is the
left derivative, as relu'(0) = 0 and as PyTorch does: ``leaky_relu'(0) = slope``,
``elu'(0) = alpha`` (1 by default, where elu is smooth). Huber's derivative is
continuous (r inside [-delta, delta], +-delta outside).

Stability: gelu is exact (``x Phi(x)``, no tanh approximation; Phi by erfc, so
gelu(-10) = -7.6e-23 keeps its digits where 1 + erf cancels) and finite with a finite
derivative ``Phi(x) + x phi(x)`` for any x (``x exp(-x^2/2)`` is 0, not inf * 0, at 1e300);
silu is ``x sigmoid(x)`` with the stable sigmoid; elu uses ``expm1``; ``expm1(1000)``
is inf, as in NumPy.
"""
import math
import numbers

import numpy as np

from symgrad.errors import DeclarationError
from symgrad.graph.node import Node, apply
from symgrad.graph.registry import OpDef, register
from symgrad.ops._lazy import F, LazyModule, deferred, is_sympy, sp
from symgrad.ops._shape import unary_infer
from symgrad.ops.custom import library_op
from symgrad.ops.elementwise import scalar_code

# SymPy's log1p and expm1, and the body helpers, on first use (see symgrad.ops._lazy)
_B = LazyModule("symgrad.ops.body")
_CF = LazyModule("sympy.codegen.cfunctions")
sp_expm1, sp_log1p = deferred(_CF, "expm1"), deferred(_CF, "log1p")
_np_erf = deferred(_B, "_np_erf")
as_expr = deferred(_B, "as_expr")


def _np_log1p(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log1p(x)     # log1p(-1) = -inf, below -1 nan, as NumPy


def _np_expm1(x):
    with np.errstate(over="ignore"):
        return np.expm1(x)     # inf for large x, as NumPy


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

# name: (SymPy meaning, NumPy meaning, gradient rule (g, y, x), Numba scalar code, label)
LIBRARY = {
    "sin": (deferred(sp, "sin"), np.sin, lambda g, y, x: g * apply("cos", x), "math.sin({0})", "sin"),
    "cos": (deferred(sp, "cos"), np.cos, lambda g, y, x: -(g * apply("sin", x)), "math.cos({0})", "cos"),
    "log1p": (sp_log1p, _np_log1p, lambda g, y, x: g / (1 + x), "math.log1p({0})", "log1p"),
    "expm1": (sp_expm1, _np_expm1, lambda g, y, x: g * apply("exp", x), "math.expm1({0})",
              "expm1"),
    "erf": (deferred(sp, "erf"), _np_erf, lambda g, y, x: g * (_TWO_OVER_SQRT_PI * apply("exp", -(x * x))),
            "math.erf({0})", "erf"),
}

for _name, (_sym, _np, _rule, _code, _label) in LIBRARY.items():
    register(OpDef(_name, "elementwise", unary_infer(_name),
                   (lambda f: lambda ctx, node, idx: f(ctx.arg(0, idx)))(_sym),
                   (lambda f: lambda node, sizes, x: f(x))(_np),
                   ((lambda r: lambda g, node: r(g, node, node.inputs[0]))(_rule),),
                   label=_label, code=scalar_code(_code)))


def _unary(op_name, sympy_fn):
    def fn(x):
        if isinstance(x, Node):
            return apply(op_name, x)
        if is_sympy(x, "Expr") or (isinstance(x, numbers.Real) and not isinstance(x, bool)):
            return sympy_fn(as_expr(x, op_name))
        raise DeclarationError(f"{op_name}: expected a symgrad node or a SymPy expression, "
                               f"got {x!r}")
    fn.__name__ = fn.__qualname__ = op_name
    fn.__doc__ = f"Elementwise {op_name} of a node (or of a SymPy scalar expression)."
    return fn


sin = _unary("sin", deferred(sp, "sin"))
cos = _unary("cos", deferred(sp, "cos"))
log1p = _unary("log1p", sp_log1p)
expm1 = _unary("expm1", sp_expm1)
erf = _unary("erf", deferred(sp, "erf"))


def square(x):
    """``x ** 2`` (the ``pow`` op: code ``x * x``, gradient ``2 x``)."""
    if isinstance(x, Node) or is_sympy(x, "Expr"):
        return x ** 2
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return as_expr(x, "square") ** 2
    raise DeclarationError(f"square: expected a symgrad node or a SymPy expression, got {x!r}")


# -- activations and the Huber function, from their bodies ---------------------------------
# (library_op: registered now, generated from the body on first use, as sg.elementwise does)
gelu = library_op("gelu", lambda x: x * F.Phi(x),
                  doc="The exact GELU, x Phi(x) = x (1 + erf(x / sqrt 2)) / 2 (no tanh "
                      "approximation), with Phi computed by erfc: accurate for negative x too.")

silu = library_op("silu", lambda x: x * F.sigmoid(x),
                  doc="SiLU (swish with beta = 1), x sigmoid(x); stable for any x.")

elu = library_op("elu", lambda x, alpha: sp.Piecewise((x, x > 0), (alpha * sp_expm1(x), True)),
                 params={"alpha": 1.0},
                 doc="ELU, x for x > 0 else alpha (exp(x) - 1) (computed with expm1); "
                     "elu(x, alpha=1.0). Derivative at 0: alpha (the left one).")

leaky_relu = library_op("leaky_relu",
                        lambda x, slope: sp.Piecewise((x, x > 0), (slope * x, True)),
                        params={"slope": 0.01},
                        doc="Leaky relu, x for x > 0 else slope x; leaky_relu(x, slope=0.01). "
                            "Derivative at 0: slope (the left one, as relu'(0) = 0).")

huber_function = library_op(
    "huber", lambda r, delta: sp.Piecewise((r ** 2 / 2, sp.Abs(r) <= delta),
                                           (delta * (sp.Abs(r) - delta / 2), True)),
    params={"delta": 1.0},
    doc="Elementwise huber(x) = Piecewise((x**2/2, delta >= Abs(x)), (delta*(-delta/2 + "
        "Abs(x)), True)) (made by sg.elementwise).")


def huber(pred, target, delta=1.0):
    """The Huber loss, the mean over all elements of h(pred - target), with
    h(r) = r^2 / 2 for |r| <= delta, else delta (|r| - delta / 2), as
    ``torch.nn.functional.huber_loss(pred, target, delta=delta)`` (reduction "mean").

    On SymPy scalars it returns h(pred - target) (one element, no mean). ``delta`` may be
    a real SymPy symbol (a hyperparameter bound at run time): the Huber function is then
    written with ``sg.where`` (see :mod:`symgrad.ops.inline`) and derivations show delta.
    """
    symbolic = is_sympy(delta, "Symbol")
    if not symbolic and (not isinstance(delta, numbers.Real) or isinstance(delta, bool)
                         or not delta > 0):
        raise DeclarationError(f"huber: delta must be a positive number or a real SymPy "
                               f"symbol, got {delta!r}")
    if isinstance(pred, Node) or isinstance(target, Node):
        return apply("mean", huber_function(pred - target, delta=delta))
    return huber_function(as_expr(pred, "huber") - as_expr(target, "huber"), delta=delta)


__all__ = ["cos", "elu", "erf", "expm1", "gelu", "huber", "leaky_relu", "log1p", "silu", "sin",
           "square"]

"""The SymPy bodies of generated elementwise ops: what they may contain, and how they run.

A body is a SymPy expression in one real symbol (plus numeric parameters). symgrad
reads it in three ways, all driven by one whitelist of SymPy node types
(:data:`FUNCTIONS`), so a body can only use what symgrad knows how to evaluate
stably and print safely:

* :func:`check_body` refuses anything else (an undefined ``sp.Function("os.system")``,
  a free symbol other than the argument) with an error naming it;
* :func:`numpy_value` evaluates the tree with NumPy (an interpreter: no ``lambdify``,
  no ``exec``; both branches of a ``Piecewise`` are computed and ``np.select`` picks);
* :func:`symgrad.ops.body_code.numba_source` prints a scalar helper function for the
  generated module, one statement per common subexpression (``sympy.cse``), and, when
  every piece has one, a vectorisable twin for loops LLVM vectorises.

:func:`stabilize` rewrites the pieces of a body that have stable forms
(``1/(1 + exp(-u)) -> sigmoid(u)``, ``exp(u)/(1 + exp(u)) -> sigmoid(u)``,
``log(1 + exp(u)) -> softplus(u)``, ``log sigmoid(u) -> -softplus(-u)``,
``log cosh(u) -> u + softplus(-2u) - log 2``, ``Max(u, 0) -> relu(u)``) before it is
differentiated, so neither the body nor its derivative ever computes inf/inf.
"""
import math
import numbers

import numpy as np
import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p
from sympy.core.function import AppliedUndef
from sympy.functions.elementary.piecewise import ExprCondPair

from symgrad.errors import DeclarationError
from symgrad.graph.names import comment_text
from symgrad.ops import functions as F
from symgrad.ops.elementwise import np_log, np_sigmoid, np_softplus, np_sqrt


def _np_sign(x):
    return np.sign(x)


def _np_heaviside(x, h0=0.5):
    return np.where(x > 0, 1.0, np.where(x < 0, 0.0, h0))


# SymPy function class -> (NumPy meaning, Numba template over "{0}", "{1}", ...).
# Templates name stable helpers (``_sg_sigmoid``) that HELPERS defines.
FUNCTIONS = {
    sp.exp: (np.exp, "math.exp({0})"),
    sp.log: (np_log, "_sg_log({0})"),
    log1p: (np.log1p, "math.log1p({0})"),
    expm1: (np.expm1, "math.expm1({0})"),
    sp.sin: (np.sin, "math.sin({0})"),
    sp.cos: (np.cos, "math.cos({0})"),
    sp.tan: (np.tan, "math.tan({0})"),
    sp.atan: (np.arctan, "math.atan({0})"),
    sp.tanh: (np.tanh, "math.tanh({0})"),
    sp.sinh: (np.sinh, "math.sinh({0})"),
    sp.cosh: (np.cosh, "math.cosh({0})"),
    sp.erf: (None, "math.erf({0})"),          # NumPy meaning: scipy-free, see _np_erf
    sp.erfc: (None, "math.erfc({0})"),
    sp.Abs: (np.abs, "abs({0})"),
    sp.sign: (_np_sign, "_sg_sign({0})"),
    sp.Heaviside: (_np_heaviside, "(1.0 if {0} > 0.0 else (0.0 if {0} < 0.0 else {1}))"),
    F.sigmoid: (np_sigmoid, "_sg_sigmoid({0})"),
    F.softplus: (np_softplus, "_sg_softplus({0})"),
    F.relu: (lambda x: np.maximum(x, 0.0), "(0.0 if {0} <= 0.0 else {0})"),
    F.Phi: (None, "(0.5 * math.erfc(-0.7071067811865476 * {0}))"),
    F.step: (lambda x: (x > 0).astype(float), "(1.0 if {0} > 0.0 else 0.0)"),
}

_RELATIONS = {sp.StrictGreaterThan: (np.greater, ">"), sp.GreaterThan: (np.greater_equal, ">="),
              sp.StrictLessThan: (np.less, "<"), sp.LessThan: (np.less_equal, "<="),
              sp.Equality: (np.equal, "=="), sp.Unequality: (np.not_equal, "!=")}
_LOGIC = {sp.And: (np.logical_and, "and"), sp.Or: (np.logical_or, "or")}
_CONSTANTS = {sp.pi: math.pi, sp.E: math.e}

# Generated ops register their SymPy classes here (class -> its op's Custom record), so
# one generated function may call another.
GENERATED = {}


def _np_erf(x):
    # math.erf is exact to the last bit; vectorised, as SciPy has no place in the core.
    return np.vectorize(math.erf, otypes=[float])(x)


def _np_erfc(x):
    return np.vectorize(math.erfc, otypes=[float])(x)


def _np_phi(x):
    return 0.5 * _np_erfc(-0.7071067811865476 * np.asarray(x, dtype=float))


_NUMPY_OVERRIDE = {sp.erf: _np_erf, sp.erfc: _np_erfc, F.Phi: _np_phi}


# -- validation ------------------------------------------------------------------------
def as_expr(value, where):
    """A SymPy expression from a body's result (Python numbers are accepted)."""
    if isinstance(value, bool):
        raise DeclarationError(f"{where}: the body returned a bool, not an expression")
    if isinstance(value, numbers.Integral):
        return sp.Integer(int(value))
    if isinstance(value, numbers.Real):
        return sp.Float(float(value))
    if isinstance(value, sp.Expr):
        return value
    raise DeclarationError(f"{where}: the body must return a SymPy expression, got "
                           f"{type(value).__name__}")


def _function_name(func):
    return comment_text(getattr(func, "__name__", type(func).__name__))


def check_body(expr, allowed_symbols, where):
    """Raise naming the first piece of ``expr`` symgrad cannot evaluate and print safely."""
    for e in sp.preorder_traversal(expr):
        if isinstance(e, sp.Symbol):
            if e not in allowed_symbols:
                raise DeclarationError(
                    f"{where}: the body uses the symbol {comment_text(e.name)!r}; a body may "
                    "use only its argument (and its declared parameters)")
        elif isinstance(e, (sp.Number, sp.logic.boolalg.BooleanAtom)):
            if e.is_Number and not e.is_finite and e not in (sp.oo, -sp.oo):
                raise DeclarationError(f"{where}: the body contains the number {e}")
        elif e in _CONSTANTS or isinstance(e, (sp.Add, sp.Mul, sp.Pow, sp.Piecewise,
                                                   ExprCondPair)):
            continue
        elif type(e) in _RELATIONS or type(e) in _LOGIC or isinstance(e, sp.Not):
            continue
        elif isinstance(e, sp.Function) and (e.func in FUNCTIONS or e.func in GENERATED):
            continue
        elif isinstance(e, (sp.Max, sp.Min)):
            continue
        else:
            known = ", ".join(sorted(f.__name__ for f in FUNCTIONS))
            undefined = "the undefined SymPy function " if isinstance(e, AppliedUndef) else ""
            raise DeclarationError(
                f"{where}: the body uses {undefined}{_function_name(e.func)!r}, which symgrad "
                f"cannot evaluate and print safely; a body may use + - * / **, numbers, pi, E, "
                f"Piecewise, comparisons, Max, Min, {known}, and functions made by "
                "sg.elementwise")


# -- stable forms --------------------------------------------------------------------
def _one_plus_exp(base):
    """v if ``base`` is ``1 + exp(v)``, else None."""
    if isinstance(base, sp.Add) and len(base.args) == 2 and sp.S.One in base.args:
        other = base.args[0] if base.args[1] == 1 else base.args[1]
        if isinstance(other, sp.exp):
            return other.args[0]
    return None


def _rewrite_node(e):
    """One rewrite at the root of ``e`` (its arguments are already stable)."""
    if isinstance(e, sp.Pow) and e.exp.is_Integer and e.exp < 0:
        v = _one_plus_exp(e.base)
        if v is not None:                       # 1 / (1 + exp(v))**k = sigmoid(-v)**k
            return F.sigmoid(-v) ** (-e.exp)
        common = sp.factor_terms(e.base)        # 2 / (2 + 2 exp(v)) = 1 / (1 + exp(v))
        if isinstance(e.base, sp.Add) and _one_plus_exp(common.as_coeff_Mul()[1]) is not None:
            return common ** e.exp
    if isinstance(e, sp.log):
        v = _one_plus_exp(e.args[0])
        if v is not None:
            return F.softplus(v)
        if isinstance(e.args[0], F.sigmoid):    # log sigmoid(u) = -softplus(-u)
            return -F.softplus(-e.args[0].args[0])
        if isinstance(e.args[0], sp.cosh):      # log cosh(u) = u + softplus(-2u) - log 2
            u = e.args[0].args[0]
            return u + F.softplus(-2 * u) - sp.log(2)
    if isinstance(e, sp.Mul):
        return _absorb_exp(e)
    if isinstance(e, (sp.Max, sp.Min)) and len(e.args) == 2 and sp.S.Zero in e.args:
        u = e.args[0] if e.args[1] == 0 else e.args[1]
        return F.relu(u) if isinstance(e, sp.Max) else -F.relu(-u)
    return e


def _absorb_exp(e):
    """exp(v) sigmoid(-v)**k = sigmoid(v) sigmoid(-v)**(k-1): e^v / (1 + e^v) = sigmoid(v)."""
    factors = list(e.args)
    for i, f in enumerate(factors):
        if not isinstance(f, sp.exp):
            continue
        v = f.args[0]
        for j, s in enumerate(factors):
            base, k = s.as_base_exp()
            if isinstance(base, F.sigmoid) and base.args[0] == -v and k.is_Integer and k >= 1:
                factors[i], factors[j] = F.sigmoid(v), F.sigmoid(-v) ** (k - 1)
                return sp.Mul(*factors)
    return e


def stabilize(expr):
    """``expr`` with its unstable exp/log patterns replaced by stable functions."""
    if not expr.args or isinstance(expr, (sp.Symbol, sp.Number)):
        return expr
    rebuilt = expr.func(*[stabilize(a) for a in expr.args])
    out = _rewrite_node(rebuilt)
    return out if out == rebuilt else stabilize(out)


def drop_deltas(expr):
    """Derivatives of kinks: DiracDelta terms are zero almost everywhere; symgrad's
    convention (as relu' = step with step(0) = 0) drops them."""
    return expr.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.S.Zero)


# -- NumPy: an interpreter over the whitelisted tree -----------------------------------
def numpy_value(expr, env):
    """Value of ``expr`` with NumPy; ``env`` maps its symbols to arrays or floats."""
    with np.errstate(all="ignore"):   # the branch Piecewise does not pick may overflow
        return _np(expr, env)


def _np(e, env):
    if isinstance(e, sp.Symbol):
        return env[e]
    if e in _CONSTANTS:
        return _CONSTANTS[e]
    if isinstance(e, sp.logic.boolalg.BooleanAtom):
        return bool(e)
    if e.is_Number:
        return float(e)
    args = [_np(a, env) for a in e.args] if not isinstance(e, sp.Piecewise) else None
    if isinstance(e, sp.Add):
        return _fold(np.add, args)
    if isinstance(e, sp.Mul):
        return _fold(np.multiply, args)
    if isinstance(e, sp.Pow):
        return _np_pow(*args)
    if isinstance(e, sp.Piecewise):
        return _np_piecewise(e, env)
    if type(e) in _RELATIONS:
        return _RELATIONS[type(e)][0](*args)
    if type(e) in _LOGIC:
        return _fold(_LOGIC[type(e)][0], args)
    if isinstance(e, sp.Not):
        return np.logical_not(args[0])
    if isinstance(e, sp.Max):
        return _fold(np.maximum, args)
    if isinstance(e, sp.Min):
        return _fold(np.minimum, args)
    if e.func in GENERATED:
        return GENERATED[e.func].numpy(*args)
    fn = _NUMPY_OVERRIDE.get(e.func) or FUNCTIONS[e.func][0]
    return fn(*args)


def _fold(fn, args):
    out = args[0]
    for a in args[1:]:
        out = fn(out, a)
    return out


def _np_pow(base, exponent):
    if exponent == 2:
        return base * base
    if exponent == 0.5:
        return np_sqrt(base)
    return np.power(np.asarray(base, dtype=float), exponent)


def _np_piecewise(e, env):
    conds, values = [], []
    for value, cond in e.args:
        conds.append(np.asarray(_np(cond, env), dtype=bool))
        values.append(_np(value, env))
    shape = np.broadcast_shapes(*[np.shape(v) for v in values + conds])
    conds = [np.broadcast_to(c, shape) for c in conds]
    return np.select(conds, [np.broadcast_to(v, shape) for v in values], default=np.nan)

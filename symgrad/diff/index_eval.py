"""Numeric evaluation of index-notation formulas (``Sum``, ``X[i, j]``, deltas).

A plain interpreter, one element at a time: slow, but independent of the
backward graph and the code generator, so it checks the *printed* formulas
(update rules, closed-form gradients) against the numbers.
"""
import math

import numpy as np
import sympy as sp

from symgrad.ops import functions as F


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


_FUNCS = {
    sp.exp: math.exp, sp.log: lambda x: math.log(x) if x > 0 else -math.inf,
    sp.tanh: math.tanh, sp.Abs: abs, sp.sign: lambda x: float(np.sign(x)),
    F.sigmoid: _sigmoid, F.relu: lambda x: max(x, 0.0), F.step: lambda x: 1.0 if x > 0 else 0.0,
    F.softplus: lambda x: max(x, 0.0) + math.log1p(math.exp(-abs(x))),
    sp.Max: max, sp.Min: min, sp.Heaviside: lambda x, h=0.5: 1.0 if x > 0 else h if x == 0 else 0.0,
}


def eval_index_expr(expr, arrays, sizes, env=None):
    """Value of ``expr`` given arrays by name, dim sizes by size-symbol name, and ``env``
    (index symbol -> int) for free indices."""
    if isinstance(expr, str):
        raise TypeError("eval_index_expr takes a SymPy expression (e.g. der.gradient), not a "
                        "string: symgrad never parses text as code")
    env = dict(env or {})
    return _ev(sp.sympify(expr, strict=True), arrays, sizes, env)


def _ev(e, arrays, sizes, env):
    if e.is_Number or (e.is_number and not e.has(sp.Indexed)):   # 2, sqrt(pi), pi / 2
        return float(e)
    if isinstance(e, sp.Symbol):
        if e in env:
            return env[e]
        if e.name in sizes:
            return float(sizes[e.name])
        return float(arrays[e.name])
    if isinstance(e, sp.Indexed):
        idx = tuple(int(_ev(i, arrays, sizes, env)) for i in e.indices)
        return float(arrays[str(e.base.label)][idx])
    if isinstance(e, sp.Add):
        return sum(_ev(a, arrays, sizes, env) for a in e.args)
    if isinstance(e, sp.Mul):
        out = 1.0
        for a in e.args:
            out *= _ev(a, arrays, sizes, env)
        return out
    if isinstance(e, sp.Pow):
        return _ev(e.base, arrays, sizes, env) ** _ev(e.exp, arrays, sizes, env)
    if isinstance(e, sp.Sum):
        return _sum(e.function, list(e.limits), arrays, sizes, env)
    if isinstance(e, (sp.KroneckerDelta, F.onehot)):
        a, b = (_ev(x, arrays, sizes, env) for x in e.args)
        return 1.0 if a == b else 0.0
    if isinstance(e, F.maximum):
        body, k, n = e.args
        return max(_ev(body, arrays, sizes, {**env, k: v}) for v in range(int(_ev(n, arrays, sizes, env))))
    if isinstance(e, sp.Piecewise):
        return next(_ev(v, arrays, sizes, env) for v, c in e.args
                    if c is sp.true or _truth(c, arrays, sizes, env))
    if isinstance(e, sp.core.relational.Relational):
        return 1.0 if _truth(e, arrays, sizes, env) else 0.0
    fn = _function(e.func)
    return fn(*[_ev(a, arrays, sizes, env) for a in e.args])


# SymPy's own functions that ``math`` computes under the same name.
_MATH = {"sin", "cos", "tan", "sinh", "cosh", "asinh", "atan", "erf", "erfc"}
_COMPARE = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}


def _function(func):
    """The float function of a SymPy function class: the table, a symgrad function's own
    ``numeric`` (scalar, stable), or ``math``'s function of the same name."""
    fn = _FUNCS.get(func) or getattr(func, "numeric", None)
    if fn is None and getattr(func, "__name__", None) in _MATH:
        fn = getattr(math, func.__name__)
    if fn is None:
        raise NotImplementedError(f"cannot evaluate {func}")
    return fn


def _truth(cond, arrays, sizes, env):
    a, b = (_ev(x, arrays, sizes, env) for x in cond.args)
    return _COMPARE[cond.rel_op](a, b)


def _sum(body, limits, arrays, sizes, env):
    (k, lo, hi), rest = limits[0], limits[1:]
    total = 0.0
    for v in range(int(_ev(lo, arrays, sizes, env)), int(_ev(hi, arrays, sizes, env)) + 1):
        inner = {**env, k: v}
        total += _sum(body, rest, arrays, sizes, inner) if rest else _ev(body, arrays, sizes, inner)
    return total

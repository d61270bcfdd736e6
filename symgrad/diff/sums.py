"""Collapsing index sums: the bookkeeping SymPy leaves undone.

``Sum(f(k) * KroneckerDelta(k, j), (k, 0, n-1))`` becomes ``f(j)``: named dims
make ``0 <= j < n`` true by construction, so no ``Piecewise`` is needed. Sums
are also split over ``+`` and factors that do not depend on the summation index
are pulled out, which puts constants such as ``-2`` in front, as a lecture does.
"""
import sympy as sp


def collapse(expr):
    """Simplify every ``Sum`` in ``expr`` (innermost first)."""
    if not isinstance(expr, sp.Basic) or not expr.has(sp.Sum):
        return expr
    if isinstance(expr, sp.Sum):
        body = collapse(expr.function)
        for limit in expr.limits:
            body = _sum_over(body, limit)
        return body
    return expr.func(*[collapse(a) for a in expr.args])


def _sum_over(body, limit):
    k = limit[0]
    terms = sp.Add.make_args(body)
    if not any(_has_delta(t, k) or any(isinstance(f, sp.Add) and any(_has_delta(a, k) for a in f.args)
                                       for f in sp.Mul.make_args(t)) for t in terms):
        # Nothing to collapse: keep one sum, with common factors (like 1/N) pulled out.
        return _sum_term(sp.factor_terms(body), limit)
    return sp.Add(*[_sum_term(term, limit) for term in terms])


def _sum_term(term, limit):
    k, lo, hi = limit
    outside, inside = [], []
    for factor in sp.Mul.make_args(term):
        (inside if factor.has(k) else outside).append(factor)
    if not inside:
        return sp.Mul(*outside) * (hi - lo + 1)
    for pos, factor in enumerate(inside):
        target = _delta_partner(factor, k)
        if target is not None:
            rest = sp.Mul(*(inside[:pos] + inside[pos + 1:]))
            return sp.Mul(*outside) * collapse(rest.xreplace({k: target}))
    for pos, factor in enumerate(inside):
        if isinstance(factor, sp.Add) and any(_has_delta(a, k) for a in factor.args):
            rest = inside[:pos] + inside[pos + 1:]
            spread = sp.Add(*[sp.Mul(a, *rest) for a in factor.args])
            return sp.Mul(*outside) * _sum_over(spread, limit)
    return sp.Mul(*outside) * sp.Sum(sp.Mul(*inside), limit)


def _delta_partner(factor, k):
    """For ``KroneckerDelta(k, e)`` (either order, e free of k) return e."""
    if isinstance(factor, sp.KroneckerDelta):
        a, b = factor.args
        if a == k and not b.has(k):
            return b
        if b == k and not a.has(k):
            return a
    return None


def _has_delta(expr, k):
    return any(_delta_partner(f, k) is not None for f in sp.Mul.make_args(expr))


"""The chain rule behind ``sg.hessian``: total derivatives of index-notation formulas
through a derivation's where-definitions.

Each auxiliary (``sigma_i``, ``p_ik``, ``bar_h_ik``) is differentiated through its
definition, one at a time (``d g / d w_k = dg/dw_k + sum_m dg/dsigma_m dsigma_m/dw_k``),
the Kronecker deltas are summed away (:func:`symgrad.diff.sums.collapse`) and the
auxiliaries are read back in. A softmax auxiliary takes its textbook derivative
``p (delta - p)``; masks, steps, signs and labels are held constant, as the backward
graph's ``constant`` ops are.
"""
import sympy as sp

from symgrad.diff.notation import as_expr
from symgrad.diff.sums import collapse
from symgrad.ops import functions as F

_SPARE_LETTERS = "klmnpqrsuvabcefgh"
# piecewise constant: no derivative flows through them (the registry's ``constant`` ops)
_CONSTANT = (F.iverson, F.step, F.onehot, sp.sign, sp.Heaviside)


class Letters:
    """Index letters no formula of the derivation uses yet."""

    def __init__(self, taken):
        self.taken = set(taken)

    def next(self):
        for primes in range(4):
            for c in _SPARE_LETTERS:
                name = c + "'" * primes
                if name not in self.taken:
                    self.taken.add(name)
                    return sp.Symbol(name, integer=True)
        raise RuntimeError("out of index letters")


def bound_indices(expr):
    return {lim[0] for s in as_expr(expr).atoms(sp.Sum) for lim in s.limits}


class Chain:
    """Total derivatives through where-definitions (the chain rule, one auxiliary at a
    time), with the deltas summed away and the auxiliaries read back in."""

    def __init__(self, pairs, letters, sizes):
        self.sizes = sizes      # index symbol -> the size of its dim
        self.preferred = {}     # size -> the dim's own index (sums over N run over i)
        for k, n in sizes.items():
            if "'" not in k.name:
                self.preferred.setdefault(n, k)
        self.defs = {_name(lhs): (lhs, rhs) for lhs, rhs in pairs}
        self.letters = letters
        self.fold = {}          # a definition at some indices -> the auxiliary there

    def total(self, expr, target, depth=0):
        if depth > 32:
            raise RecursionError("where-definitions refer to each other in a cycle")
        out = _diff(expr, target)
        for aux in _aux_in(expr, self.defs):
            lhs, rhs = self.defs[_name(aux)]
            idx = [sp.Dummy("m", integer=True) for _ in getattr(lhs, "indices", ())]
            at = lhs.base[tuple(idx)] if idx else lhs
            partial = _diff(expr, at)
            if partial == 0:
                continue
            definition = definition_at(rhs, lhs, idx)
            self.fold[definition] = at
            soft = _softmax_form(definition, idx)
            inner = self.total(definition, target, depth + 1) if soft is None else \
                self._softmax(at, soft, target, depth)
            if inner == 0:
                continue
            term = partial * self.read_back(inner)
            for k, old in zip(idx, getattr(lhs, "indices", ())):
                term = sp.Sum(term, (k, 0, self.sizes[old] - 1))
            out += term
        return collapse(out)

    def _softmax(self, at, soft, target, depth):
        """d p_ik = p_ik (d u_ik - sum_k' p_ik' d u_ik') for p = softmax(u) along k: the
        textbook form (``p (delta - p)``), not the quotient rule on exp / sum exp."""
        u, k, k2, hi = soft
        du = self.total(u, target, depth + 1)
        if du == 0:
            return sp.S.Zero
        other = sp.Sum(at.xreplace({k: k2}) * du.xreplace({k: k2}), (k2, 0, hi))
        return collapse(at * (du - other))

    def read_back(self, expr):
        return expr.xreplace(self.fold) if self.fold else expr

    def tidy(self, expr):
        expr = collapse(self.read_back(collapse(expr)))
        expr = expr.replace(_is_mask_power, lambda e: e.base)      # step(z)^2 = step(z)
        expr = _canonical_dummies(sp.factor_terms(_merge_sums(expr)), self.preferred)
        return _letters_for_dummies(expr, self.letters)


def _canonical_dummies(expr, preferred):
    """Sums run over their dim's own letter (``sum_i`` for N) where it is not taken."""
    top = expr.free_symbols

    def rename(s):
        body, limits = s.function, []
        for k, lo, hi in s.limits:
            want = preferred.get(hi + 1)
            if want is not None and want != k and want not in s.free_symbols | top \
                    and want not in bound_indices(body) and lo == 0:
                body = body.xreplace({k: want})
                k = want
            limits.append((k, lo, hi))
        return sp.Sum(body, *limits)
    return expr.replace(lambda e: isinstance(e, sp.Sum), rename)


def _letters_for_dummies(expr, letters):
    """Summation indices still internal (Dummy) get readable letters, one per name."""
    dummies = sorted({k for k in bound_indices(expr) if isinstance(k, sp.Dummy)}, key=str)
    return expr.xreplace({k: letters.next() for k in dummies}) if dummies else expr


def _merge_sums(expr):
    """``Sum(a, i) + Sum(b, i)`` (same limits) as ``Sum(a + b, i)``."""
    terms = sp.Add.make_args(expr)
    groups, rest = {}, []
    for t in terms:
        coeff, sums = sp.S.One, None
        factors = sp.Mul.make_args(t)
        found = [f for f in factors if isinstance(f, sp.Sum)]
        if len(found) == 1:
            sums = found[0]
            coeff = sp.Mul(*[f for f in factors if f is not sums])
            groups.setdefault((sums.limits, coeff), []).append(sums.function)
        else:
            rest.append(t)
    merged = [coeff * sp.Sum(sp.factor_terms(sp.Add(*fs)), *limits)
              for (limits, coeff), fs in groups.items()]
    return sp.Add(*merged, *rest)


def _is_mask_power(e):
    """A positive power of a 0/1 mask (step, [condition], onehot): the mask itself."""
    return isinstance(e, sp.Pow) and isinstance(e.base, (F.step, F.iverson, F.onehot)) \
        and e.exp.is_integer and e.exp.is_positive


def _diff(expr, x):
    """``d expr / dx`` with piecewise-constant parts (masks, steps, signs, labels) held
    constant: their derivative is zero away from the kinks, as in the backward graph
    (``constant`` ops), rather than SymPy's DiracDelta."""
    held = {}

    def hold(e):
        held.setdefault(e, sp.Dummy("c"))
        return held[e]
    flat = expr.replace(lambda e: isinstance(e, _CONSTANT), hold)
    out = sp.diff(flat, x).xreplace({d: e for e, d in held.items()})
    return out.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.S.Zero)


def _softmax_form(definition, idx):
    """``(u, k, k', upper)`` when ``definition`` is ``exp(u) / sum_k' exp(u[k -> k'])``
    (a softmax along the aux index ``k``), else None."""
    num = [f for f in sp.Mul.make_args(definition) if isinstance(f, sp.exp)]
    den = [f for f in sp.Mul.make_args(definition)
           if isinstance(f, sp.Pow) and f.exp == -1 and isinstance(f.base, sp.Sum)]
    if len(num) != 1 or len(den) != 1 or len(sp.Mul.make_args(definition)) != 2:
        return None
    u, total = num[0].args[0], den[0].base
    if len(total.limits) != 1 or not isinstance(total.function, sp.exp):
        return None
    k2, lo, hi = total.limits[0]
    for k in idx:
        if lo == 0 and _same_up_to_bound(total.function.args[0], u.xreplace({k: k2})):
            return u, k, k2, hi
    return None


def _same_up_to_bound(a, b):
    """Equal once the summation indices are renamed alike (alpha-equivalence)."""
    return _normal_bound(a) == _normal_bound(b)


def _normal_bound(expr, depth=0):
    if not isinstance(expr, sp.Basic) or not expr.args:
        return expr
    if isinstance(expr, sp.Sum):
        body, limits = expr.function, []
        for n, (k, lo, hi) in enumerate(expr.limits):
            new = sp.Symbol(f"_bound{depth}_{n}", integer=True)
            body = body.xreplace({k: new})
            limits.append((new, lo, hi))
        return sp.Sum(_normal_bound(body, depth + 1), *limits)
    return expr.func(*[_normal_bound(a, depth) for a in expr.args])


def _name(e):
    return str(e.base.label) if isinstance(e, sp.Indexed) else str(e)


def _aux_in(expr, defs):
    """The auxiliaries (IndexedBase or scalar symbols with a definition) ``expr`` uses."""
    seen, out = set(), []
    for a in as_expr(expr).atoms(sp.Indexed, sp.Symbol):
        if isinstance(a, sp.Symbol) and a.is_integer:
            continue
        name = _name(a)
        if name in defs and name not in seen and \
                isinstance(a, sp.Indexed) == isinstance(defs[name][0], sp.Indexed):
            seen.add(name)
            out.append(defs[name][0])
    return out


def definition_at(rhs, lhs, idx):
    """The definition ``rhs`` of ``lhs`` at the indices ``idx``, its summation indices
    renamed to fresh ones (so none is captured by the formula it goes into)."""
    rhs = rhs.replace(lambda e: isinstance(e, sp.Sum), _fresh_sum)
    if not idx:
        return rhs
    return rhs.xreplace(dict(zip(lhs.indices, idx)))


def _fresh_sum(s):
    body, limits = s.function, []
    for k, lo, hi in s.limits:
        new = sp.Dummy(k.name, integer=True)
        body = body.xreplace({k: new})
        limits.append((new, lo, hi))
    return sp.Sum(body, *limits)

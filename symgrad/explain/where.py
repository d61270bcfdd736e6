"""``der.where`` and ``der.expanded()``: the auxiliaries of a derivation, public.

A printed rule uses auxiliaries (``sigma_i``, ``delta_i``, ``bar_h_ik``) defined in its
where-block. ``where`` maps each auxiliary (as an indexed symbol at its own indices) to
its definition; ``expand`` substitutes them, recursively, at whatever indices a formula
uses them, renaming summation indices so that none is captured. What is left holds only
data, params, hyperparameters and dim sizes: a user can evaluate or substitute it.
"""
import re
from collections.abc import Mapping

import sympy as sp

from symgrad.diff.notation import as_expr, tidy_numbers


class Where(Mapping):
    """Auxiliary symbol (``sigma[i]``) -> its definition, in where-block order."""

    def __init__(self, pairs):
        self._pairs = dict(pairs)
        self._by_name = {_name(lhs): (lhs, rhs) for lhs, rhs in self._pairs.items()}

    def __getitem__(self, key):
        if isinstance(key, str):
            return self._by_name[key][1]
        return self._pairs[key]

    def __iter__(self):
        return iter(self._pairs)

    def __len__(self):
        return len(self._pairs)

    def __repr__(self):
        return "Where({%s})" % ", ".join(f"{k}: {v}" for k, v in self._pairs.items())

    def expand(self, expr, depth=64):
        """``expr`` with every auxiliary replaced by its definition (recursively)."""
        for _ in range(depth):
            # indices free in the formula must not be captured by a definition's sums
            self._avoid = {s for s in expr.free_symbols if s.is_integer}
            new = expr.replace(self._is_aux, self._definition_at)
            if new == expr:
                return expr
            expr = new
        raise RecursionError("where-definitions refer to each other in a cycle")

    def _is_aux(self, e):
        # an Indexed for an indexed auxiliary; a plain Symbol only for a scalar one (the
        # label of sigma[i] is a Symbol named sigma too)
        hit = self._by_name.get(_name(e)) if isinstance(e, (sp.Indexed, sp.Symbol)) else None
        return hit is not None and isinstance(e, sp.Indexed) == isinstance(hit[0], sp.Indexed)

    def _definition_at(self, e):
        lhs, rhs = self._by_name[_name(e)]
        if not isinstance(e, sp.Indexed):
            return rhs
        rhs = _fresh_bound(rhs, self._avoid.union(*(as_expr(i).free_symbols
                                                     for i in e.indices)))
        temps = {k: sp.Dummy() for k in lhs.indices}
        return rhs.xreplace(temps).xreplace({temps[k]: v for k, v in zip(lhs.indices, e.indices)})


def _name(e):
    return str(e.base.label) if isinstance(e, sp.Indexed) else str(e)


def _fresh_bound(expr, avoid):
    """Rename the summation indices of ``expr`` that are in ``avoid`` (adding primes)."""
    def rename(s):
        limits, body = list(s.limits), s.function
        for pos, (k, lo, hi) in enumerate(limits):
            if k in avoid:
                new = k
                while new in avoid or new in body.free_symbols:
                    new = sp.Symbol(new.name + "'", integer=True)
                body = body.xreplace({k: new})
                limits[pos] = (new, lo, hi)
        return sp.Sum(body, *limits)
    return expr.replace(lambda e: isinstance(e, sp.Sum), rename)


# Names that say only what op made a node (symgrad.diff.notation's fallbacks): a rule
# reads better with their definition written in, when it is short.
GENERIC = re.compile(r"^(bar_)?(u|S|a)\d*$")
SHORT = 12            # sympy.count_ops of a definition worth writing in


def inline_generic(grads, pairs):
    """``(grads', pairs')``: short definitions with generic names substituted into the
    gradients (a dict) and into the other definitions, which are kept if still used."""
    inline = [(l, r) for l, r in pairs if GENERIC.match(_name(l)) and sp.count_ops(r) <= SHORT]
    if not inline:
        return grads, pairs
    where = Where(inline)
    grads = {k: tidy_numbers(where.expand(g)) for k, g in grads.items()}
    rest = [(l, tidy_numbers(where.expand(r))) for l, r in pairs if (l, r) not in inline]
    return grads, needed(sp.Add(*grads.values()), rest)


def needed(expr, pairs):
    """The definitions ``expr`` uses, following references, in their order."""
    table = {_name(l): (l, r) for l, r in pairs}
    need, todo = set(), [_name(a) for a in _aux_atoms(expr)]
    while todo:
        name = todo.pop()
        if name in table and name not in need:
            need.add(name)
            todo += [_name(a) for a in _aux_atoms(table[name][1])]
    return [p for p in pairs if _name(p[0]) in need]


def _aux_atoms(expr):
    return [a for a in as_expr(expr).atoms(sp.Indexed, sp.Symbol)
            if not (isinstance(a, sp.Symbol) and a.is_integer)]

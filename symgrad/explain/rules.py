"""Update rules and their "where" definitions, in the lecture's own terms.

Definitions are computed once for all params of a derivation and shared: each
symbol a formula uses (a node such as ``sigma_i``, or an adjoint kept by name
such as ``bar_h_ik``) is defined once; nodes no formula refers to are written out
inside the definitions that use them (``sigma_i = sigma(sum_j w_j x_ij)`` rather
than ``sigma_i = sigma(z_i)``), unless the user named them.
"""
import sympy as sp

from symgrad.diff.symbolic import ElementContext
from symgrad.explain.printing import aligned_block, to_latex, to_text

ALPHA = sp.Symbol("alpha", positive=True)


def names_in(expr):
    """Names of the IndexedBases and non-index Symbols in ``expr``."""
    out = set()
    for atom in sp.sympify(expr).atoms(sp.IndexedBase, sp.Symbol):
        if isinstance(atom, sp.IndexedBase):
            out.add(str(atom.label))
        elif not atom.is_integer:
            out.add(atom.name)
    return out


class Definitions:
    """All "where" definitions of one derivation, keyed by the symbol they define."""

    def __init__(self, notation, roots, forward, kept, closed):
        self.notation = notation
        self.order = []          # names, in the order they are printed
        self.table = {}          # name -> (lhs, rhs, names used by rhs)
        wanted = set().union(*map(names_in, roots))
        self._add_adjoints(wanted, kept, closed)
        candidates = [n for n in forward if not n.is_leaf and n.op != "transpose"]
        wanted |= set().union(*[used for _, _, used in self.table.values()])
        shown = {n for n in candidates if notation.names.get(n) in wanted}
        shown |= _named_ancestors(shown, candidates)
        shown |= _shared_reductions(shown, candidates)
        inline = frozenset(n for n in candidates if n not in shown)
        for node in candidates:
            if node in shown:
                idx = notation.canonical(node)
                rhs = ElementContext(notation, inline=inline).element(node, idx)
                self._put(notation.names[node], notation.symbol(node, idx), rhs)

    def _add_adjoints(self, wanted, kept, closed):
        todo = [k for k in kept if "bar_" + self.notation.names[k] in wanted]
        seen = set()
        while todo:
            node = todo.pop(0)
            if node in seen:
                continue
            seen.add(node)
            rhs = closed[node]
            self._put("bar_" + self.notation.names[node],
                      self.notation.adjoint(node, self.notation.canonical(node)), rhs)
            todo += [k for k in kept if "bar_" + self.notation.names[k] in names_in(rhs)]

    def _put(self, name, lhs, rhs):
        self.table[name] = (lhs, rhs, names_in(rhs))
        self.order.append(name)

    def needed_by(self, expr):
        """The (lhs, rhs) pairs ``expr`` needs, following references, in print order."""
        need, todo = set(), list(names_in(expr))
        while todo:
            name = todo.pop()
            if name in self.table and name not in need:
                need.add(name)
                todo += list(self.table[name][2])
        return [self.table[n][:2] for n in self.order if n in need]


def _shared_reductions(shown, candidates):
    """Reductions that keep a dim (batch statistics such as mu_j = sum_i X_ij / N and the
    variance v_j) upstream of shown nodes: named, as a textbook names them, rather than
    their sums written out inside other definitions."""
    allowed, out, stack, seen = set(candidates), set(), list(shown), set()
    while stack:
        for x in stack.pop().inputs:
            if x in allowed and x not in seen:
                seen.add(x)
                if x.op in ("sum", "mean", "max", "logsumexp") and x.dims:
                    out.add(x)
                stack.append(x)
    return out


def _named_ancestors(shown, candidates):
    """User-named nodes upstream of shown ones: always shown by their name."""
    allowed = set(candidates)
    out, stack, seen = set(), list(shown), set()
    while stack:
        node = stack.pop()
        for x in node.inputs:
            if x in seen or x not in allowed:
                continue
            seen.add(x)
            if x.name is not None:
                out.add(x)
            stack.append(x)
    return out


class UpdateRule:
    """``p <- p - alpha dL/dp`` for one parameter, with its where-definitions."""

    def __init__(self, param, lhs, gradient, where, ranks, lr=ALPHA):
        self.param = param
        self.lhs = lhs
        self.gradient = gradient
        self.lr = lr
        self.step = -lr * gradient
        self.rhs = lhs + self.step
        self.where = where
        self._ranks = ranks

    def rhs_text(self, printer):
        step = _model_first(self.step, self._ranks)
        if step.could_extract_minus_sign():
            return f"{printer(self.lhs, self._ranks)} - {printer(-step, self._ranks)}"
        return f"{printer(self.lhs, self._ranks)} + {printer(step, self._ranks)}"

    def line(self):
        return f"{to_text(self.lhs, self._ranks)} <- {self.rhs_text(to_text)}"

    def latex_line(self):
        return r"%s &\leftarrow %s" % (to_latex(self.lhs, self._ranks), self.rhs_text(to_latex))

    def __str__(self):
        return "\n".join([self.line()] + where_text(self.where, self._ranks))

    __repr__ = __str__

    def to_latex(self):
        rows = [self.latex_line()] + where_latex(self.where, self._ranks)
        return aligned_block(rows)

    def _repr_latex_(self):
        return "$$" + self.to_latex() + "$$"


def _model_first(step, ranks):
    """``+ alpha sum_i (Y_ik - p_ik) X_ij`` as ``- alpha sum_i (p_ik - Y_ik) X_ij``: in a
    difference of a model quantity and data inside the rule's sums, the model's comes
    first, as textbooks write ``p - y`` and ``sigma - t`` (same value, display only)."""
    def flips(e):
        return isinstance(e, sp.Sum) and any(_data_first(f, ranks)
                                             for f in sp.Mul.make_args(e.function))

    def flipped(e):
        inner = [-f if _data_first(f, ranks) else f for f in sp.Mul.make_args(e.function)]
        sign = (-1) ** sum(_data_first(f, ranks) for f in sp.Mul.make_args(e.function))
        return sign * sp.Sum(sp.Mul(*inner), *e.limits)
    return step.replace(flips, flipped)


def _data_first(add, ranks):
    """A two-term difference whose positive term is data and negative term a model node."""
    if not isinstance(add, sp.Add) or len(add.args) != 2:
        return False
    pos = [a for a in add.args if not a.could_extract_minus_sign()]
    neg = [a for a in add.args if a.could_extract_minus_sign()]
    if len(pos) != 1 or len(neg) != 1:
        return False
    if not names_in(pos[0]) or not names_in(neg[0]):
        return False                       # 1 - sigma_i stays as it is
    rank = lambda e: min((ranks.get(n, 1e9) for n in names_in(e)), default=1e9)  # noqa: E731
    return rank(pos[0]) > rank(-neg[0])


class UpdateRules(list):
    """The rules of several params, sharing one block of where-definitions."""

    def __init__(self, rules, where, ranks):
        super().__init__(rules)
        self.where = where
        self._ranks = ranks

    def __str__(self):
        return "\n".join([r.line() for r in self] + where_text(self.where, self._ranks))

    def to_latex(self):
        rows = [r.latex_line() for r in self] + where_latex(self.where, self._ranks)
        return aligned_block(rows)

    def _repr_latex_(self):
        return "$$" + self.to_latex() + "$$"


def where_text(pairs, ranks):
    return [("  where " if k == 0 else "        ") + f"{to_text(l, ranks)} = {to_text(r, ranks)}"
            for k, (l, r) in enumerate(pairs)]


def where_latex(pairs, ranks):
    return [(r"\text{where } " if k == 0 else "") + f"{to_latex(l, ranks)} &= {to_latex(r, ranks)}"
            for k, (l, r) in enumerate(pairs)]

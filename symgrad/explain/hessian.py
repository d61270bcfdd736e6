"""``sg.hessian``: second derivatives in index notation, as a lecture writes them.

The gradient of :func:`symgrad.derive` is already in the lecture's terms
(``sum_i (sigma_i - t_i) X_ij / N + 2 lambda w_j``, with ``sigma_i`` defined in a
where-block). Its derivative with respect to ``w_k`` is taken the way one does on a
blackboard: SymPy differentiates the formula, each auxiliary is differentiated through
its definition (the chain rule, one auxiliary at a time: ``d sigma_i / d w_k =
sigma_i (1 - sigma_i) X_ik``), the Kronecker deltas are summed away, and the
auxiliaries are read back in. So logistic regression gives
``sum_i sigma_i (1 - sigma_i) X_ij X_ik / N + 2 lambda delta_jk``; its matrix form
(``form="matrix"``) is ``X^T diag(sigma (1 - sigma)) X / N + 2 lambda I``.

The numeric Hessian (``symgrad.diff.hessian``, reverse mode over the backward graph)
is independent of this one; tests evaluate these formulas against it.
"""
import itertools

import numpy as np
import sympy as sp

from symgrad.diff.index_eval import eval_index_expr
from symgrad.diff.notation import as_expr
from symgrad.explain.derivation import Derivation
from symgrad.explain.printing import aligned_block, DerivationLatexPrinter, DerivationTextPrinter
from symgrad.explain.rules import where_latex, where_text
from symgrad.explain.hessian_chain import Chain, Letters, bound_indices
from symgrad.explain.where import needed
from symgrad.graph.arguments import check_derive_params



class _Text(DerivationTextPrinter):
    """The derivation's printer; a Kronecker delta of two indices reads ``delta_jk``."""

    def _print_KroneckerDelta(self, expr):
        return "delta_" + "".join(self._print(a) for a in expr.args)


class _Latex(DerivationLatexPrinter):
    def _print_KroneckerDelta(self, expr, exp=None):
        text = r"\delta_{%s}" % " ".join(self._print(a) for a in expr.args)
        return text if exp is None else r"%s^{%s}" % (text, exp)


def to_text(expr, ranks=None):
    return _Text({"ranks": ranks}).doprint(expr)


def to_latex(expr, ranks=None):
    return _Latex({"ranks": ranks}).doprint(expr)


def hessian(loss, params, form="index"):
    """The symbolic Hessian of ``loss``: one block ``d2L / dp dq`` per pair of params.

    ``form="matrix"`` gives the same blocks in matrix notation (a
    :class:`~symgrad.explain.hessian_matrix.MatrixHessian`) where one exists.
    """
    check_derive_params(params)       # derive's rule: something to differentiate
    if form not in ("index", "matrix"):
        raise ValueError(f"hessian form must be 'index' or 'matrix', got {form!r}")
    hes = Hessian(loss, params)
    return hes.matrix() if form == "matrix" else hes


class Hessian:
    """Second derivatives of ``loss`` in index notation, with the where-block they use."""

    def __init__(self, loss, params):
        self.derivation = der = Derivation(loss, params)
        self.params = der.params
        self._single = len(self.params) == 1
        self.notation, self.ranks = der.notation, der.ranks
        self._pairs = list(der.where.items())
        self._letters = Letters(self._taken_letters())
        self.first = {p: [self.notation.index(d) for d in p.dims] for p in self.params}
        # the second derivative's indices: fresh letters (w_j, w_k), one per dim of q
        self.second = {p: [self._letters.next() for _ in p.dims] for p in self.params}
        self.blocks = {}
        for i, p in enumerate(self.params):
            for q in self.params[i:]:
                self.blocks[p.name, q.name] = self._block(p, q)

    # -- derivation ----------------------------------------------------------------------
    def _taken_letters(self):
        taken = {str(s) for e in [*self.derivation.gradients.values(),
                                  *(x for pair in self._pairs for x in pair)]
                 for s in as_expr(e).free_symbols | bound_indices(e)}
        taken |= {self.notation.letter(d) for n in self.derivation.forward for d in n.dims}
        return taken

    def element(self, p, idx):
        """The SymPy element of param ``p`` at indices ``idx`` (``w[k]``, or ``b``)."""
        sym = self.notation.symbol(p, dict(zip(p.dims, idx))) if p.dims else \
            self.notation.symbol(p, {})
        return sym

    def _block(self, p, q):
        grad = self.derivation.gradients[p.name]
        target = self.element(q, self.second[q])
        rules = Chain(self._pairs, self._letters, self._index_sizes())
        return rules.tidy(rules.total(grad, target))

    @property
    def steps(self):
        """The chain rule's steps: each auxiliary's derivative with respect to each param
        (``d sigma_i / d w_k = sigma_i (1 - sigma_i) X_ik``), as ``(aux, param element,
        derivative)``; auxiliaries that do not depend on a param are left out."""
        if getattr(self, "_steps", None) is None:
            self._steps = []
            for lhs, rhs in self.where:
                for q in self.params:
                    target = self.element(q, self.second[q])
                    rules = Chain(self._pairs, self._letters, self._index_sizes())
                    d = rules.tidy(rules.total(lhs, target))    # through its definition
                    if d != 0:
                        self._steps.append((lhs, target, d))
        return self._steps

    def _step_rows(self, latex):
        show = to_latex if latex else to_text
        if latex:
            return [r"\frac{\partial %s}{\partial %s} &= %s" % (show(a, self.ranks),
                                                                show(x, self.ranks),
                                                                show(d, self.ranks))
                    for a, x, d in self.steps]
        return [f"d{show(a, self.ranks)}/d{show(x, self.ranks)} = {show(d, self.ranks)}"
                for a, x, d in self.steps]

    def _index_sizes(self):
        return {self.notation.index(d, primes): self.notation.size(d)
                for n in self.derivation.forward for d in n.dims for primes in range(3)}

    # -- results ---------------------------------------------------------------------------
    def block(self, p, q):
        """``d2L / dp dq`` in index notation (p's indices first)."""
        names = [x if isinstance(x, str) else x.name for x in (p, q)]
        if tuple(names) in self.blocks:
            return self.blocks[tuple(names)]
        known = [n.name for n in self.params]
        if not all(n in known for n in names):
            raise KeyError(f"{names} are not both among the params {known}")
        p_node, q_node = (self.params[known.index(n)] for n in names)
        swap = {a: b for a, b in zip(self.first[q_node] + self.second[p_node],
                                     self.second[q_node] + self.first[p_node])}
        return self.blocks[names[1], names[0]].xreplace(swap)      # symmetric

    @property
    def hessian(self):
        """The one block of a single param (else the dict of blocks)."""
        return next(iter(self.blocks.values())) if self._single else dict(self.blocks)

    @property
    def where(self):
        """The definitions the blocks use (``sigma_i = sigmoid(...)``), in order."""
        return needed(sp.Add(*self.blocks.values()), self._pairs)

    def expanded(self, p=None, q=None):
        """The block(s) with every auxiliary substituted: only data, params,
        hyperparameters and dim sizes remain."""
        where = self.derivation.where
        if p is None and not self._single:
            return {k: where.expand(v) for k, v in self.blocks.items()}
        p = p or self.params[0].name
        return where.expand(self.block(p, q or p))

    def matrix(self):
        """The blocks in matrix notation (``X^T diag(sigma (1 - sigma)) X / N + ...``)."""
        from symgrad.explain.hessian_matrix import MatrixHessian
        return MatrixHessian(self)

    def lhs(self, p, q, latex=False):
        def d(node, idx):
            e = self.element(node, idx)
            return (r"\partial " + to_latex(e, self.ranks)) if latex else "d" + to_text(e, self.ranks)
        top = r"\partial^2 L" if latex else "d2L"
        bottom = d(p, self.first[p]) + " " + d(q, self.second[q])
        return r"\frac{%s}{%s}" % (top, bottom) if latex else f"{top}/{bottom}"

    def _rows(self, latex):
        by_name = {n.name: n for n in self.params}
        show = to_latex if latex else to_text
        rows = []
        for (pn, qn), expr in self.blocks.items():
            lhs = self.lhs(by_name[pn], by_name[qn], latex)
            rows.append(f"{lhs} {'&=' if latex else '='} {show(expr, self.ranks)}")
        return rows

    def to_text(self, steps=False):
        """The blocks and their where-block; ``steps=True`` first shows the chain rule's
        step for each auxiliary (``dsigma_i/dw_k = sigma_i (1 - sigma_i) X_ik``)."""
        rows = self._step_rows(False) if steps else []
        return "\n".join(rows + self._rows(False) + where_text(self.where, self.ranks))

    __str__ = to_text

    def __repr__(self):
        return f"<Hessian of L w.r.t. ({', '.join(p.name for p in self.params)}): " \
               f"{len(self.blocks)} blocks>"

    def to_latex(self, steps=False):
        rows = (self._step_rows(True) if steps else []) + self._rows(True) + \
            where_latex(self.where, self.ranks)
        return aligned_block(rows)

    def _repr_latex_(self):
        return "$$" + self.to_latex() + "$$"

    # -- numbers -----------------------------------------------------------------------------
    def evaluate(self, data):
        """The printed blocks at ``data``: ``{(p, q): ndarray p.shape + q.shape}``."""
        arrays, sizes = self.derivation.symbol_values(data)
        by_name = {n.name: n for n in self.params}
        out = {}
        for (pn, qn) in itertools.product(by_name, by_name):
            p, q = by_name[pn], by_name[qn]
            expr = self.block(pn, qn)
            shape = [sizes[d] for d in p.dims] + [sizes[d] for d in q.dims]
            idx = self.first[p] + self.second[q]
            value = np.empty(shape)
            for pos in np.ndindex(*shape):
                value[pos] = eval_index_expr(expr, arrays, sizes, dict(zip(idx, pos)))
            out[pn, qn] = value
        return out

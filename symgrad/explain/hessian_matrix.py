"""The Hessian in matrix notation: ``X^T diag(sigma (1 - sigma)) X / N + 2 lambda I``.

Built on the update rules' converter (:mod:`symgrad.explain.matrix`): a block's rows are
the first param's index, its columns the second's. Two readings are added for second
derivatives: ``sum_i A_ij v_i B_ik`` (a weighted Gram matrix) is ``A^T diag(v) B``, and
``delta_jk`` is the identity ``I``. A block with no matrix form raises
:class:`~symgrad.explain.matrix.MatrixFormError` naming the part that has none.
"""
import sympy as sp

from symgrad.explain.matrix import MatrixConverter, MatrixFormError, Mx, transpose
from symgrad.explain.printing import aligned_block, latex_name
from symgrad.explain.matrix_rules import _definition, _Printer, index_sizes, where_latex, \
    where_text


class _HessianPrinter(_Printer):
    """The matrix printer, plus ``diag(v)`` and the identity."""

    def _diag(self, x):
        (v,) = x.args
        if v.op == "had" and self.kind == "text":     # diag(sigma (1 - sigma)), as written
            inner = " ".join(self.atom(a) for a in v.args)
        else:
            inner = self.show(v)
        if self.kind == "latex":
            return r"\operatorname{diag}\left(%s\right)" % inner
        return f"np.diag({inner}.ravel())" if self.kind == "numpy" else f"diag({inner})"

    def _eye(self, x):
        if self.kind == "numpy":
            return f"np.eye({self.scalar(self.sizes[x.rows])})"
        return r"I" if self.kind == "latex" else "I"

    def atom(self, x):
        return self.show(x) if x.op in ("diag", "eye") else super().atom(x)


class MatrixHessian:
    """The blocks of a :class:`~symgrad.explain.hessian.Hessian` in matrix notation."""

    def __init__(self, hes):
        self.hessian = hes
        exprs = list(hes.blocks.values()) + [rhs for _, rhs in hes.where]
        self.sizes = index_sizes(hes.derivation, exprs)
        for p in hes.params:
            for d, k in zip(p.dims, hes.second[p]):
                self.sizes[k] = hes.notation.size(d)
        self.conv = MatrixConverter(self.sizes, hes.ranks)
        self.where = [_definition(self.conv, lhs, rhs) for lhs, rhs in hes.where]
        by_name = {p.name: p for p in hes.params}
        self.blocks = {}
        for (pn, qn), expr in hes.blocks.items():
            p, q = by_name[pn], by_name[qn]
            if len(p.dims) > 1 or len(q.dims) > 1:
                raise MatrixFormError(f"the block ({pn}, {qn}) has {len(p.dims) + len(q.dims)} "
                                      "indices: matrix notation has rows and columns only")
            rows = hes.first[p][0] if p.dims else None
            cols = hes.second[q][0] if q.dims else None
            try:
                self.blocks[pn, qn] = self._convert(expr, rows, cols)
            except MatrixFormError as err:
                raise MatrixFormError(f"the Hessian block ({pn}, {qn}) has no matrix form: "
                                      f"{err}") from None

    def _convert(self, expr, rows, cols):
        if expr == 0:
            return Mx("scalar", (sp.S.Zero,))
        terms = [self._term(t, rows, cols) for t in _terms(expr)]
        if len(terms) == 1:
            return terms[0]
        return Mx("add", tuple(terms), rows, cols)

    def _term(self, term, rows, cols):
        scalars = [f for f in sp.Mul.make_args(term) if not f.atoms(sp.Indexed)
                   and not isinstance(f, sp.KroneckerDelta)]
        rest = [f for f in sp.Mul.make_args(term) if f not in scalars]
        coeff = sp.Mul(*scalars)
        body = None
        if len(rest) == 1 and isinstance(rest[0], sp.KroneckerDelta) \
                and set(rest[0].args) == {rows, cols}:
            body = Mx("eye", (), rows, cols)
        elif len(rest) == 1 and isinstance(rest[0], sp.Sum):
            body = self._gram(rest[0], rows, cols)
        if body is None:
            body = self.conv.broadcast(self.conv.convert(sp.Mul(*rest)), rows, cols)
        return body if coeff == 1 else Mx("scale", (coeff, body), rows, cols)

    def _gram(self, s, rows, cols):
        """``sum_i A_ij v_i B_ik`` as ``A^T diag(v) B`` (None if the sum is not one)."""
        if len(s.limits) != 1 or rows is None or cols is None:
            return None
        i = s.limits[0][0]
        factors = self.conv.ordered(s.function)
        free = [{x for x in f.free_symbols if x in self.sizes} for f in factors]
        mats = [f for f, ix in zip(factors, free) if len(ix) == 2 and i in ix]
        vecs = [f for f, ix in zip(factors, free) if ix == {i}]
        if len(mats) != 2 or len(mats) + len(vecs) != len(factors):
            return None
        a, b = (self.conv.convert(m) for m in mats)
        if b.indices == {i, rows}:
            a, b = b, a
        if a.indices != {i, rows} or b.indices != {i, cols}:
            return None
        a, b = self.conv.orient(a, i, rows), self.conv.orient(b, i, cols)
        if not vecs:
            return Mx("mm", (transpose(a), b), rows, cols)
        v = self.conv.orient(self.conv._product([self.conv.convert(f) for f in vecs]), i, None)
        return Mx("mm", (transpose(a), Mx("diag", (v,), i, i), b), rows, cols)

    # -- rendering ---------------------------------------------------------------------------
    def _lhs(self, pn, qn, latex):
        if latex:
            return r"\frac{\partial^2 L}{\partial %s \, \partial %s}" % (latex_name(pn),
                                                                         latex_name(qn))
        return f"d2L/d{pn} d{qn}"

    def lines(self, kind):
        p = _HessianPrinter(kind, self.sizes)
        eq = " &= " if kind == "latex" else " = "
        return [self._lhs(pn, qn, kind == "latex") + eq + p.show(x)
                for (pn, qn), x in self.blocks.items()]

    def __str__(self):
        return "\n".join(self.lines("text") + where_text(self.where, self.sizes))

    __repr__ = __str__

    def to_latex(self):
        rows = self.lines("latex") + where_latex(self.where, self.sizes)
        return aligned_block(rows)

    def _repr_latex_(self):
        return "$$" + self.to_latex() + "$$"


def _terms(expr):
    """The terms of a block, a common factor (``1/N``) multiplied into each."""
    coeff, rest = sp.S.One, expr
    if isinstance(expr, sp.Mul):
        scalars = [f for f in expr.args if not f.atoms(sp.Indexed)]
        adds = [f for f in expr.args if isinstance(f, sp.Add)]
        if len(adds) == 1 and len(scalars) + 1 == len(expr.args):
            coeff, rest = sp.Mul(*scalars), adds[0]
    return [coeff * t for t in sp.Add.make_args(rest)]

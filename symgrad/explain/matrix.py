"""Index notation to matrix notation: ``sum_i delta_i X_ij`` becomes ``X^T delta``.

A formula in index notation over at most two free indices maps to a matrix
expression when every product of factors is one a matrix product, a transpose, an
elementwise (Hadamard) product or an outer product can write: ``sum_i A_ij B_ik`` is
``A^T B``, ``sum_i a_i`` is ``1^T a`` (a sum over the batch as a product with ones),
``a_i b_k`` is ``a b^T``, equal index sets multiply elementwise. Anything else (a
three-index product, a max over an index, a label used as a number) raises
:class:`MatrixFormError` naming the construct.

A matrix's rows and columns are the indices of its name in order (``W_jk``: rows j,
columns k). A vector is a column unless the model adds it across the rows of a
matrix (a bias ``b`` in ``X W + 1 b``), then it is a row: the orientation of each
name is fixed the first time it is needed and kept.
"""
from dataclasses import dataclass

import sympy as sp

from symgrad.explain.printing import DerivationTextPrinter
from symgrad.ops import functions as F


class MatrixFormError(ValueError):
    """The formula has no matrix form (the message names the part that has none)."""


@dataclass(frozen=True)
class Mx:
    """A matrix expression: ``op`` with ``args``; ``rows``/``cols`` are index symbols
    (None for a dimension of size one)."""
    op: str          # name ones T mm had add scale fn pow softmax onehot
    args: tuple
    rows: object = None
    cols: object = None

    @property
    def indices(self):
        return frozenset(i for i in (self.rows, self.cols) if i is not None)

    @property
    def is_scalar(self):
        return self.rows is None and self.cols is None


def transpose(x):
    """``x^T`` with the transpose pushed down to the names: ``(A B)^T = B^T A^T``."""
    if x.is_scalar:
        return x
    if x.op == "T":
        return x.args[0]
    if x.op == "mm":
        return Mx("mm", (transpose(x.args[1]), transpose(x.args[0])), x.cols, x.rows)
    if x.op in ("had", "fn", "pow", "scale", "add"):
        args = tuple(_map_args(x, transpose))
        return Mx(x.op, args, x.cols, x.rows)
    return Mx("T", (x,), x.cols, x.rows)


def _map_args(x, f):
    for a in x.args:
        if isinstance(a, Mx):
            yield f(a)
        elif isinstance(a, tuple) and len(a) == 2 and isinstance(a[1], Mx):
            yield (a[0], f(a[1]))
        else:
            yield a


def fewest_transposes(x):
    """``x`` or ``x^T``, whichever writes fewer transposes (a column on a tie)."""
    t = transpose(x)
    cx, ct = count_transposes(x), count_transposes(t)
    if ct < cx or (ct == cx and x.rows is None and t.rows is not None):
        return t
    return x


def count_transposes(x):
    if not isinstance(x, Mx):
        return 0
    own = 1 if x.op == "T" else 0
    return own + sum(count_transposes(a if isinstance(a, Mx) else a[1] if isinstance(a, tuple)
                                      and len(a) == 2 else None) for a in x.args)


class MatrixConverter:
    """Converts the formulas of one derivation, keeping each vector's orientation."""

    def __init__(self, sizes, ranks=None):
        self.sizes = sizes          # index symbol -> size expression (N, D, ...)
        self._printer = DerivationTextPrinter({"ranks": ranks})
        self.orient_of = {}         # vector name -> "col" or "row"
        self.onehots = {}           # label name -> class index symbol

    # -- leaves ---------------------------------------------------------------------------
    def leaf(self, indexed):
        name = str(indexed.base.label)
        idx = indexed.indices
        if len(idx) > 2:
            raise MatrixFormError(f"{indexed} has {len(idx)} indices: matrix notation has "
                                  "rows and columns only")
        if len(set(idx)) != len(idx):
            raise MatrixFormError(f"{indexed} repeats an index (a diagonal)")
        odd = [i for i in idx if i not in self.sizes]
        if odd:
            raise MatrixFormError(f"{indexed} is indexed by {odd[0]} (a gather by label or a "
                                  "shifted index), which a matrix product cannot write")
        if len(idx) == 2:
            return Mx("name", (name,), idx[0], idx[1])
        if self.orient_of.get(name) == "row":
            return Mx("name", (name,), None, idx[0])
        return Mx("name", (name,), idx[0], None)

    def orient(self, x, rows, cols):
        """``x`` laid out with ``rows`` and ``cols`` (transposed if need be)."""
        if (x.rows, x.cols) == (rows, cols):
            self._fix(x)
            return x
        if (x.cols, x.rows) != (rows, cols):
            raise MatrixFormError(f"cannot lay out indices {sorted(map(str, x.indices))} as "
                                  f"({rows}, {cols})")
        if x.op == "name" and x.args[0] not in self.orient_of and (x.rows is None or x.cols is None):
            self.orient_of[x.args[0]] = "row" if rows is None else "col"
            return Mx("name", x.args, rows, cols)
        if x.op in ("scale", "fn", "pow", "had", "add"):
            # Elementwise: lay out the parts, so a vector not yet oriented is not transposed.
            args = tuple(self.orient(a, rows, cols) if isinstance(a, Mx) and not a.is_scalar
                         else a for a in x.args)
            if x.op == "scale":
                args = (x.args[0], self.orient(x.args[1], rows, cols))
            return Mx(x.op, args, rows, cols)
        self._fix(x)
        return transpose(x)

    def _fix(self, x):
        if x.op == "name" and (x.rows is None) != (x.cols is None):
            self.orient_of.setdefault(x.args[0], "row" if x.rows is None else "col")

    # -- the conversion ---------------------------------------------------------------------
    def ordered(self, product):
        """Factors in the index form's printed order (upstream first, data last)."""
        return self._printer.ordered_factors(product)

    def convert(self, expr):
        # expr is a SymPy expression from the derivation (text is never parsed)
        if isinstance(expr, sp.Indexed):
            return self.leaf(expr)
        if not expr.atoms(sp.Indexed):
            return Mx("scalar", (expr,))
        if isinstance(expr, sp.Add):
            # As written by hand: positive terms first, the widest first among them.
            terms = sorted(expr.args, key=lambda t: (bool(t.could_extract_minus_sign()),
                                                     -len(_free_indices(t, self.sizes))))
            return self._add([self.convert(t) for t in terms])
        if isinstance(expr, sp.Mul):
            return self._mul(expr)
        if isinstance(expr, sp.Sum):
            return self._sum(expr)
        if isinstance(expr, sp.Pow):
            base, e = expr.as_base_exp()
            if e.is_Integer and e > 1:
                b = self.convert(base)
                return Mx("pow", (b, int(e)), b.rows, b.cols)
            raise MatrixFormError(f"the power {expr} has no matrix form")
        if isinstance(expr, (F.onehot, sp.KroneckerDelta)):
            return self._onehot(expr)
        if isinstance(expr, sp.Function) and len(expr.args) == 1:
            a = self.convert(expr.args[0])
            return Mx("fn", (expr.func, a), a.rows, a.cols)
        raise MatrixFormError(f"{type(expr).__name__} ({expr}) has no matrix form")

    def _onehot(self, expr):
        label, k = expr.args
        if isinstance(k, sp.Indexed):
            label, k = k, label
        if not (isinstance(label, sp.Indexed) and len(label.indices) == 1 and k in self.sizes):
            raise MatrixFormError(f"{expr} compares two indices: no matrix form")
        name, i = str(label.base.label), label.indices[0]
        self.onehots[name] = k
        return Mx("onehot", (name, k), i, k)

    def _add(self, terms):
        sized = [t for t in terms if not t.is_scalar]
        widest = max(len(t.indices) for t in sized)
        ref = next((t for t in sized if len(t.indices) == widest and t.op == "name"),
                   next(t for t in sized if len(t.indices) == widest))
        out = [self.broadcast(t, ref.rows, ref.cols) for t in terms]
        return Mx("add", tuple(out), ref.rows, ref.cols)

    def broadcast(self, x, rows, cols):
        """``x`` as a ``rows x cols`` matrix: scalars as they are, a vector spread with ones."""
        if x.is_scalar or x.indices == frozenset(i for i in (rows, cols) if i is not None):
            return x if x.is_scalar else self.orient(x, rows, cols)
        if x.op == "scale":      # - b spread is - (1 b): the sign stays outside
            body = self.broadcast(x.args[1], rows, cols)
            return Mx("scale", (x.args[0], body), body.rows, body.cols)
        if len(x.indices) != 1:
            raise MatrixFormError(f"cannot spread indices {sorted(map(str, x.indices))} over "
                                  f"({rows}, {cols})")
        (k,) = x.indices
        if k == cols and rows is not None:       # 1 b: b added to every row
            return Mx("mm", (Mx("ones", (rows,), rows, None), self.orient(x, None, k)), rows, k)
        if k == rows and cols is not None:       # b 1^T: b added to every column
            return Mx("mm", (self.orient(x, k, None), Mx("T", (Mx("ones", (cols,), cols),),
                                                            None, cols)), k, cols)
        raise MatrixFormError(f"cannot spread indices {sorted(map(str, x.indices))} over "
                              f"({rows}, {cols})")

    def _mul(self, expr):
        soft = _softmax_parts(expr)
        if soft is not None:
            s = self.convert(soft)
            return Mx("softmax", (s,), s.rows, s.cols)
        scalars, sums, others = [], [], []
        for f in self.ordered(expr):
            if not f.atoms(sp.Indexed):
                scalars.append(f)
            elif isinstance(f, sp.Sum):
                sums.append(f)
            else:
                others.append(f)
        if len(sums) == 1 and others:
            # Factors that do not depend on the summed index go inside the sum, where
            # they can join an outer product: W2_k sum_i delta_i ... -> sum_i delta_i W2_k ...
            s = sums[0]
            sums, others = [sp.Sum(sp.Mul(*others) * s.function, *s.limits)], []
        body = self._product([self.convert(f) for f in sums + others])
        coeff = sp.Mul(*scalars)
        return body if coeff == 1 else Mx("scale", (coeff, body), body.rows, body.cols)

    def _product(self, factors, keep=None):
        """One matrix from factors multiplied elementwise (no index summed)."""
        groups = _hadamard_groups(self, factors)
        while len(groups) > 1:
            groups = self._merge_two(groups, keep)
        return groups[0]

    def _merge_two(self, groups, keep):
        """Two of ``groups`` made one: a vector spread into a matrix over its index
        (elementwise), else two vectors as an outer product."""
        vecs = [g for g in groups if len(g.indices) == 1]
        mats = [g for g in groups if len(g.indices) == 2]
        pair = next(((v, m) for v in vecs for m in mats if v.indices <= m.indices), None)
        if pair is not None:
            v, m = pair
            merged = _had([m, self.broadcast(v, m.rows, m.cols)])
        elif len(vecs) >= 2:
            v, m = vecs[:2]
            merged = self.outer(v, m)
        else:
            raise MatrixFormError(
                "a product over indices " + " and ".join(
                    "(" + ", ".join(sorted(map(str, g.indices))) + ")" for g in groups)
                + " needs a tensor of three or more indices: no matrix form")
        rest = [g for g in groups if g is not v and g is not m]
        return _hadamard_groups(self, rest + [merged])

    def outer(self, u, v):
        (a,), (b,) = u.indices, v.indices
        return Mx("mm", (self.orient(u, a, None), self.orient(v, None, b)), a, b)

    def _sum(self, expr):
        body, limits = expr.function, expr.limits
        if len(limits) > 1:
            inner = sp.Sum(body, *limits[:-1])
            return self._sum(sp.Sum(inner, limits[-1]))
        (s, _, _), = limits
        factors = self.ordered(body)
        outside = [f for f in factors if s not in f.free_symbols]
        inside = [self.convert(f) for f in factors if s in f.free_symbols]
        outside_mx = [self.convert(f) for f in outside if f.atoms(sp.Indexed)]
        coeff = sp.Mul(*[f for f in outside if not f.atoms(sp.Indexed)])
        groups = _hadamard_groups(self, inside)
        groups, outside_mx = self._pull_into_outer(groups, outside_mx, s)
        while len(groups) > 2:
            groups = self._merge_two(groups, keep=s)
        out = self._contract(groups, s)
        if outside_mx:
            out = self._product([out] + outside_mx)
        return out if coeff == 1 else Mx("scale", (coeff, out), out.rows, out.cols)

    def _pull_into_outer(self, groups, outside, s):
        """``delta_i`` (summed) times ``W2_k`` (outside) next to an ``(i, k)`` factor:
        their outer product joins that factor elementwise."""
        for v in list(outside):
            if len(v.indices) != 1:
                continue
            for u in groups:
                pair = u.indices | v.indices
                if u.indices == {s} and any(g.indices == pair for g in groups):
                    outside.remove(v)
                    groups = _hadamard_groups(self, [g for g in groups if g is not u]
                                              + [self.outer(u, v)])
                    return groups, outside
        return groups, outside

    def _contract(self, groups, s):
        if len(groups) == 1:
            (g,) = groups
            other = next(iter(g.indices - {s}), None)
            ones_t = Mx("T", (Mx("ones", (s,), s),), None, s)
            # 1^T A: the sum over the batch reads as a product with ones.
            return Mx("mm", (ones_t, self.orient(g, s, other)), None, other)
        a, b = groups
        if s not in a.indices or s not in b.indices:
            raise MatrixFormError("a sum over an index only one factor carries")
        ra, rb = next(iter(a.indices - {s}), None), next(iter(b.indices - {s}), None)
        if ra is not None and rb is None:   # vector first: g^T A, read as A^T g once transposed
            a, b, ra, rb = b, a, rb, ra
        return fewest_transposes(
            Mx("mm", (transpose(self.orient(a, s, ra)), self.orient(b, s, rb)), ra, rb))


def _had(parts):
    flat = []
    for p in parts:
        flat += list(p.args) if p.op == "had" else [p]
    return Mx("had", tuple(flat), flat[0].rows, flat[0].cols)


def _hadamard_groups(conv, factors):
    """Factors over the same indices multiplied elementwise; one group per index set."""
    by_set = {}
    for f in factors:
        by_set.setdefault(f.indices, []).append(f)
    out = []
    for fs in by_set.values():
        if len(fs) == 1:
            out.append(fs[0])
            continue
        ref = next((f for f in fs if f.op == "name"), fs[0])
        out.append(_had([conv.orient(f, ref.rows, ref.cols) if f is not ref else f for f in fs]))
    return out


def _free_indices(expr, sizes):
    return [s for s in expr.free_symbols if s in sizes]


def _softmax_parts(expr):
    """``exp(s_ik) / sum_k' exp(s_ik')`` -> ``s_ik`` (a row-wise softmax), else None."""
    num = [f for f in expr.args if isinstance(f, sp.exp)]
    den = [f for f in expr.args if isinstance(f, sp.Pow) and f.exp == -1
           and isinstance(f.base, sp.Sum)]
    if len(expr.args) != 2 or len(num) != 1 or len(den) != 1:
        return None
    total = den[0].base
    (k2, _, _), = total.limits
    if not isinstance(total.function, sp.exp):
        return None
    arg = num[0].args[0]
    for k in arg.free_symbols:
        if _bound_renamed(arg).xreplace({k: k2}) == _bound_renamed(total.function.args[0]):
            return arg
    return None


def _bound_renamed(e, depth=0):
    """``e`` with each summed index renamed by nesting depth: equal up to dummy names."""
    if isinstance(e, sp.Sum) and len(e.limits) == 1:
        (v, lo, hi), = e.limits
        new = sp.Symbol(f"_bound{depth}", integer=True)
        return sp.Sum(_bound_renamed(e.function.xreplace({v: new}), depth + 1), (new, lo, hi))
    if e.args and not isinstance(e, (sp.Indexed, sp.IndexedBase)):
        return e.func(*[_bound_renamed(a, depth) for a in e.args])
    return e

"""Update rules in matrix notation: ``der.update_rule(form="matrix")``.

Text uses juxtaposition for the matrix product, ``^T`` for the transpose, ``*`` for
the elementwise (Hadamard) product and ``1`` for a vector of ones; LaTeX writes
``^{\\top}``, ``\\odot`` and ``\\mathbf{1}``; :meth:`MatrixRule.to_numpy` writes
NumPy (``@``, ``.T``, ``*``) with every vector a two-dimensional column or row.
``softmax`` is taken along each row.
"""
import keyword

import numpy as np
import sympy as sp

from symgrad.explain.matrix import MatrixConverter, MatrixFormError, Mx, fewest_transposes
from symgrad.explain.matrix_eval import _flat, evaluate, shaped_arrays
from symgrad.graph.names import safe_identifier
from symgrad.explain.printing import aligned_block, latex_name, to_latex, to_text

__all__ = ["MatrixFormError", "MatrixRule", "MatrixRules", "matrix_rules"]

_PLACEHOLDER = sp.Symbol("MXARG")
_NUMPY_FN = {"sigmoid": "1 / (1 + np.exp(-{x}))", "tanh": "np.tanh({x})", "exp": "np.exp({x})",
             "log": "np.log({x})", "relu": "np.maximum({x}, 0)", "step": "1.0 * ({x} > 0)",
             "softplus": "np.logaddexp(0, {x})"}
_NUMPY_SAME_NAME = {"abs", "sign", "sqrt", "sin", "cos", "log1p", "expm1", "cosh", "sinh"}


class _Printer:
    """One of three spellings (text, LaTeX, NumPy) of a matrix expression."""

    def __init__(self, kind, sizes):
        self.kind, self.sizes = kind, sizes

    def scalar(self, expr):
        if self.kind == "latex":
            return to_latex(expr)
        if self.kind == "text":
            return to_text(expr)
        return str(expr.xreplace({s: sp.Symbol(numpy_name(s.name)) for s in expr.free_symbols}))

    def name(self, name):
        if self.kind == "latex":
            return latex_name(name)
        return numpy_name(name) if self.kind == "numpy" else name

    def atom(self, x):
        text = self.show(x)
        simple = x.op in ("name", "ones", "T", "fn", "softmax", "onehot", "scalar")
        if x.op == "scalar" and isinstance(x.args[0], sp.Add):
            simple = False
        if not simple:
            return r"\left(%s\right)" % text if self.kind == "latex" else f"({text})"
        return text

    def show(self, x):
        return getattr(self, "_" + x.op)(x)

    def _scalar(self, x):
        return self.scalar(x.args[0])

    def _name(self, x):
        return self.name(x.args[0])

    def _ones(self, x):
        if self.kind == "numpy":
            return f"np.ones(({self.scalar(self.sizes[x.args[0]])}, 1))"
        return r"\mathbf{1}" if self.kind == "latex" else "1"

    def _T(self, x):
        inner = self.atom(x.args[0])
        if self.kind == "numpy":
            return inner + ".T"
        if self.kind == "latex":
            return ("{%s}" % inner if "^" in inner else inner) + r"^{\top}"
        return inner + "^T"

    def _mm(self, x):
        joiner = " @ " if self.kind == "numpy" else " "
        return joiner.join(self.atom(a) for a in x.args)

    def _had(self, x):
        joiner = {"numpy": " * ", "latex": r" \odot ", "text": " * "}[self.kind]
        return joiner.join(self.atom(a) for a in x.args)

    def _pow(self, x):
        base, n = x.args
        if self.kind == "latex":
            return r"%s^{\circ %d}" % ("{%s}" % self.atom(base) if "^" in self.atom(base)
                                       else self.atom(base), n)
        return f"{self.atom(base)}**{n}"

    def _fn(self, x):
        func, arg = x.args
        if self.kind == "numpy":
            form = _NUMPY_FN.get(func.__name__)
            if form is None and func.__name__.lower() in _NUMPY_SAME_NAME:
                form = "np.%s({x})" % func.__name__.lower()
            if form is None:
                raise MatrixFormError(f"no NumPy spelling for {func.__name__}")
            return form.format(x=self.atom(arg))
        template = (to_latex if self.kind == "latex" else to_text)(func(_PLACEHOLDER))
        hole = latex_name(_PLACEHOLDER.name) if self.kind == "latex" else _PLACEHOLDER.name
        return template.replace(hole, self.show(arg))

    def _softmax(self, x):
        inner = self.show(x.args[0])
        if self.kind == "numpy":
            return f"np.exp({inner}) / np.exp({inner}).sum(axis=1, keepdims=True)"
        return (r"\operatorname{softmax}\left(%s\right)" if self.kind == "latex"
                else "softmax(%s)") % inner

    def _onehot(self, x):
        name, k = x.args
        if self.kind == "numpy":
            return f"np.eye({self.scalar(self.sizes[k])})[{self.name(name)}]"
        return (r"\operatorname{onehot}\left(%s\right)" if self.kind == "latex"
                else "onehot(%s)") % self.name(name)

    def _scale(self, x):
        coeff, body = x.args
        sign = ""
        if coeff.could_extract_minus_sign():
            sign, coeff = "- ", -coeff
        numer, denom = sp.fraction(coeff)
        text = self.atom(body) if body.op in ("add",) else self.show(body)
        if self.kind == "latex":
            lead = "" if numer == 1 and denom == 1 else (
                self.scalar(numer) if denom == 1 else r"\frac{%s}{%s}" % (
                    self.scalar(numer), self.scalar(denom)))
            return f"{sign}{lead} {text}".strip()
        star = " * " if self.kind == "numpy" else " "
        head = "" if numer == 1 else self._paren_scalar(numer, self.kind == "numpy") + star
        tail = "" if denom == 1 else " / " + self._paren_scalar(denom, True)
        return f"{sign}{head}{text}{tail}"

    def _paren_scalar(self, expr, products_too):
        text = self.scalar(expr)
        wrap = isinstance(expr, sp.Add) or (products_too and isinstance(expr, sp.Mul))
        return f"({text})" if wrap else text

    def _add(self, x):
        out = []
        for k, term in enumerate(x.args):
            text, negative = self.signed(term)
            out.append(("- " if negative else ("+ " if k else "")) + text)
        return " ".join(out)

    def signed(self, term):
        """(text of |term|, whether term is negative)."""
        if term.op == "scale" and term.args[0].could_extract_minus_sign():
            return self.show(Mx("scale", (-term.args[0], term.args[1]), term.rows, term.cols)), True
        if term.op == "scalar" and term.args[0].could_extract_minus_sign():
            return self.scalar(-term.args[0]), True
        return self.show(term), False


def numpy_name(name):
    """The Python identifier a name takes in :meth:`MatrixRule.to_numpy` text."""
    ident = safe_identifier(name)
    return ident + "_" if keyword.iskeyword(ident) or ident == "np" else ident


def numpy_namespace(values, sizes, orientation):
    shaped = shaped_arrays(values, orientation)
    out = {numpy_name(k): v for k, v in shaped.items()}
    out.update({numpy_name(k): v for k, v in (sizes or {}).items()})
    out["np"] = np
    return out


class MatrixRule:
    """``p <- p - alpha (gradient in matrix form)``, with matrix where-definitions."""

    def __init__(self, name, lhs, step, where, sizes, orientation):
        self.name, self.lhs, self.step = name, lhs, step
        self.where, self.sizes = where, sizes
        self.orientation = orientation   # vector name -> "col" or "row"

    def arrays(self, values, sizes=None):
        """The namespace :meth:`to_numpy`'s text runs in: ``values`` (and dim ``sizes``)
        under their NumPy names, each vector the 2-D column or row the formulas read."""
        return numpy_namespace(values, sizes, self.orientation)

    def _line(self, kind, arrow):
        p = _Printer(kind, self.sizes)
        text, negative = p.signed(self.step)
        return f"{p.show(self.lhs)} {arrow} {p.show(self.lhs)} {'-' if negative else '+'} {text}"

    def line(self):
        return self._line("text", "<-")

    def latex_line(self):
        return self._line("latex", r"&\leftarrow")

    def __str__(self):
        return "\n".join([self.line()] + where_text(self.where, self.sizes))

    __repr__ = __str__

    def to_latex(self):
        rows = [self.latex_line()] + where_latex(self.where, self.sizes)
        return aligned_block(rows)

    def _repr_latex_(self):
        return "$$" + self.to_latex() + "$$"

    def to_numpy(self):
        """NumPy statements: the where-definitions, then ``p = p - ...`` (``alpha`` by name)."""
        p = _Printer("numpy", self.sizes)
        lines = [f"{p.show(lhs)} = {p.show(rhs)}" for lhs, rhs in self.where]
        text, negative = p.signed(self.step)
        lines.append(f"{p.show(self.lhs)} = {p.show(self.lhs)} {'-' if negative else '+'} {text}")
        return "\n".join(lines)

    def evaluate(self, values, sizes):
        """The new value of the param: ``values`` maps names (and ``alpha``) to arrays,
        ``sizes`` dim-size names to ints; vectors are 1-D, laid out as the rule reads them."""
        env = dict(values)
        for lhs, rhs in self.where:
            env[lhs.args[0]] = _flat(evaluate(rhs, env, self.sizes, sizes))
        new = evaluate(self.lhs, env, self.sizes, sizes) + evaluate(self.step, env, self.sizes,
                                                                    sizes)
        return _flat(new)


class MatrixRules(list):
    """The matrix rules of several params, sharing one block of where-definitions."""

    def __init__(self, rules, where, sizes, orientation):
        super().__init__(rules)
        self.where, self.sizes, self.orientation = where, sizes, orientation

    def arrays(self, values, sizes=None):
        """The namespace :meth:`to_numpy`'s text runs in: ``values`` (and dim ``sizes``)
        under their NumPy names, each vector the 2-D column or row the formulas read."""
        return numpy_namespace(values, sizes, self.orientation)

    def __str__(self):
        return "\n".join([r.line() for r in self] + where_text(self.where, self.sizes))

    def to_latex(self):
        rows = [r.latex_line() for r in self] + where_latex(self.where, self.sizes)
        return aligned_block(rows)

    def _repr_latex_(self):
        return "$$" + self.to_latex() + "$$"

    def to_numpy(self):
        p = _Printer("numpy", self.sizes)
        lines = [f"{p.show(lhs)} = {p.show(rhs)}" for lhs, rhs in self.where]
        for r in self:
            text, negative = p.signed(r.step)
            lines.append(f"{p.show(r.lhs)} = {p.show(r.lhs)} {'-' if negative else '+'} {text}")
        return "\n".join(lines)


def where_text(pairs, sizes):
    p = _Printer("text", sizes)
    return [("  where " if k == 0 else "        ") + f"{p.show(l)} = {p.show(r)}"
            for k, (l, r) in enumerate(pairs)]


def where_latex(pairs, sizes):
    p = _Printer("latex", sizes)
    return [(r"\text{where } " if k == 0 else "") + f"{p.show(l)} &= {p.show(r)}"
            for k, (l, r) in enumerate(pairs)]


# -- building the rules of a derivation ------------------------------------------------------
def index_sizes(der, exprs):
    """Index symbol -> size symbol, for the canonical indices and every summed one."""
    out = {}
    for node in der.forward:
        for d in node.dims:
            for primes in range(3):
                out[der.notation.index(d, primes)] = der.notation.size(d)
    for e in exprs:
        for s in e.atoms(sp.Sum):
            for idx, _, hi in s.limits:
                out.setdefault(idx, hi + 1)
    return out


def matrix_rules(der, rules):
    """The matrix form of ``rules`` (an UpdateRule or UpdateRules of ``der``)."""
    listed = list(rules) if isinstance(rules, list) else [rules]
    exprs = [r.gradient for r in listed] + [rhs for _, rhs in rules.where]
    sizes = index_sizes(der, exprs)
    conv = MatrixConverter(sizes, der.ranks)
    where = []
    for lhs, rhs in rules.where:
        where.append(_definition(conv, lhs, rhs))
    out = []
    for r in listed:
        lhs = conv.leaf(r.lhs) if isinstance(r.lhs, sp.Indexed) else Mx("name", (str(r.lhs),))
        try:
            step = conv.convert(r.step)
        except MatrixFormError as err:
            raise MatrixFormError(f"the update rule of {r.param.name} has no matrix form: "
                                  f"{err}") from None
        lhs, step = _laid_out(conv, step, lhs)
        out.append(MatrixRule(r.param.name, lhs, step, where, sizes, conv.orient_of))
    _record_orientations(conv.orient_of, [x for pair in where for x in pair]
                         + [x for r in out for x in (r.lhs, r.step)])
    if isinstance(rules, list):
        return MatrixRules(out, where, sizes, conv.orient_of)
    return out[0]


def _definition(conv, lhs, rhs):
    name = str(lhs.base.label) if isinstance(lhs, sp.Indexed) else str(lhs)
    try:
        value = conv.convert(rhs)
    except MatrixFormError as err:
        raise MatrixFormError(f"the definition of {name} has no matrix form: {err}") from None
    target = conv.leaf(lhs) if isinstance(lhs, sp.Indexed) else Mx("name", (name,))
    return _laid_out(conv, value, target)


def _laid_out(conv, value, target):
    """(target, value) laid out alike; a vector not yet oriented takes the value's side."""
    if value.is_scalar or target.is_scalar:
        return target, value
    if value.indices == target.indices and (value.rows, value.cols) != (target.rows, target.cols):
        name = target.args[0]
        if (target.rows is None) != (target.cols is None) and name not in conv.orient_of:
            if not _sum_over_batch(value):
                value = fewest_transposes(value)
            conv.orient_of[name] = "row" if value.rows is None else "col"
            return Mx("name", (name,), value.rows, value.cols), value
        return target, conv.orient(value, target.rows, target.cols)
    conv._fix(target)
    if value.indices != target.indices:
        return target, conv.broadcast(value, target.rows, target.cols)
    return target, value



def _sum_over_batch(x):
    """``1^T A`` (possibly scaled): kept as it reads, a row."""
    while x.op == "scale":
        x = x.args[1]
    return x.op == "mm" and x.args[0].op == "T" and x.args[0].args[0].op == "ones"


def _record_orientations(orient_of, trees):
    """Every vector name's side (column or row), as the finished formulas read it."""
    stack = list(trees)
    while stack:
        x = stack.pop()
        if x.op == "name" and (x.rows is None) != (x.cols is None):
            side = "row" if x.rows is None else "col"
            if orient_of.setdefault(x.args[0], side) != side:
                raise AssertionError(f"{x.args[0]} read both as a row and as a column")
        stack += [a for a in x.args if isinstance(a, Mx)]
        stack += [a[1] for a in x.args if isinstance(a, tuple) and len(a) == 2
                  and isinstance(a[1], Mx)]

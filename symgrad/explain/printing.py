"""Printers for derivations, in SymPy's ``_print_<Class>`` style.

Both printers write index notation the way a lecture does: ``X_ij`` (not
``X[i, j]``), ``sum_i`` without bounds (named dims give them), adjoints as
``bar{sigma}``, layer numbers as superscripts, and products in chain-rule order
(upstream adjoint first, then the nodes nearest the loss, data last), so the
sigmoid-perceptron rule prints as ``delta_i sigma_i (1 - sigma_i) X_ij``.
"""
import re

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from symgrad.diff.notation import split_name

_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
          "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi",
          "psi", "omega", "ell", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma",
          "Phi", "Psi", "Omega"}
_LATEX_SPECIAL = re.compile(r"([\\{}$&#^_%~])")


_TEXT_ESCAPES = {"\\": r"\textbackslash{}", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}"}


def latex_text(text):
    """``text`` safe inside ``\\text{...}``: LaTeX's special characters escaped."""
    return _LATEX_SPECIAL.sub(lambda m: _TEXT_ESCAPES.get(m.group(1), "\\" + m.group(1)), text)


# Inside \mathrm{} (math mode) the text-mode \textbackslash and friends are errors.
_MATH_ESCAPES = {"\\": r"\backslash ", "^": r"\wedge ", "~": r"\sim "}


def latex_name(name):
    """LaTeX for a display name: Greek letters, ``bar_`` adjoints, layer superscripts."""
    bar = name.startswith("bar_")
    stem, layer = split_name(name[4:] if bar else name)
    if stem in _GREEK:
        body = "\\" + stem
    elif len(stem) == 1 and stem.isalpha():
        body = stem
    else:
        escaped = _LATEX_SPECIAL.sub(lambda m: _MATH_ESCAPES.get(m.group(1), "\\" + m.group(1)),
                                     stem)
        body = r"\mathrm{%s}" % escaped
    if bar:
        body = r"\bar{%s}" % body
    return body + (r"^{(%s)}" % layer if layer else "")


def _index_text(indices, printer):
    parts = [printer._print(i) for i in indices]
    if all(re.fullmatch(r"[A-Za-z]'*", p) for p in parts):
        return "".join(parts)
    return ",".join(parts)


def _shortest(number):
    """The shortest decimal that reads back as the same float: 0.002, 1e-05, 2."""
    value = float(number)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


class _Ordered:
    """Shared factor ordering: numbers, adjoints, nodes nearest the loss, data, sums."""

    def _factor_key(self, factor):
        ranks = self._settings.get("ranks") or {}
        if factor.is_Number:
            return (0, 0)
        if isinstance(factor, sp.Sum):
            return (3, 0)
        if isinstance(factor, sp.Symbol) and factor.name not in ranks:
            return (0, 1)  # scalars such as the learning rate alpha go right after numbers
        names = [b.name if isinstance(b, sp.Symbol) else str(b.label)
                 for b in factor.atoms(sp.Symbol, sp.IndexedBase)
                 if not (isinstance(b, sp.Symbol) and b.is_integer)]
        bars = [n for n in names if n.startswith("bar_")]
        if bars:
            return (1, 0)
        known = [ranks[n] for n in names if n in ranks]
        shift = 0.5 if not isinstance(factor, (sp.Indexed, sp.Symbol)) else 0.0
        return (2, (min(known) if known else 1e9) + shift)

    def _as_ordered_terms(self, expr, order=None):
        # Positive terms first: "t_i - sigma_i", as written by hand, not "-sigma_i + t_i".
        # SymPy's own term ordering costs a sort_key per term; the stored order is canonical.
        terms = list(expr.args) if isinstance(expr, sp.Add) else [expr]
        return sorted(terms, key=lambda t: bool(t.could_extract_minus_sign()))

    def ordered_factors(self, expr):
        return sorted(sp.Mul.make_args(expr), key=self._factor_key)


class DerivationLatexPrinter(_Ordered, LatexPrinter):
    _default_settings = {**LatexPrinter._default_settings, "ranks": None}

    def _print_Symbol(self, expr, style="plain"):
        if expr.is_integer:
            return expr.name
        return latex_name(expr.name)

    def _print_IndexedBase(self, expr):
        return latex_name(str(expr.label))

    def _print_Indexed(self, expr):
        return "%s_{%s}" % (self._print(expr.base), _index_text(expr.indices, self))

    def _print_Sum(self, expr):
        subs = "".join(r"\sum_{%s} " % self._print(lim[0]) for lim in expr.limits)
        body = self._print(expr.function)
        if isinstance(expr.function, sp.Add):
            body = r"\left(%s\right)" % body
        return subs + body

    def _print_Derivative(self, expr):
        (var, _), = expr.variable_count
        return r"\frac{\partial %s}{\partial %s}" % (self._print(expr.expr), self._print(var))

    def _print_KroneckerDelta(self, expr, exp=None):
        a, b = expr.args
        return r"\mathbb{1}\left[%s = %s\right]" % (self._print(a), self._print(b))

    def _print_Float(self, expr):
        # the number as the user wrote it: 0.002, 1e-05 -> 10^{-5}
        text = _shortest(expr)
        if "e" not in text:
            return text
        mantissa, exponent = text.split("e")
        power = "10^{%d}" % int(exponent)
        return power if mantissa == "1" else r"%s \cdot %s" % (mantissa, power)

    def _print_Pow(self, expr):
        base, e = expr.as_base_exp()
        if e.is_Integer and e > 1 and isinstance(base, (sp.Indexed, sp.Symbol)):
            # W^{(1)}_{jk} already carries a superscript: a second one needs braces
            # around the base, or TeX stops with "Double superscript".
            text = self._print(base)
            if "^" in text:
                text = "{%s}" % text
            return "%s^{%s}" % (text, e)
        return super()._print_Pow(expr)

    def _print_Mul(self, expr):
        coeff, rest = expr.as_coeff_Mul()
        if coeff.is_negative:
            return "- " + self._print_Mul_ordered(-coeff, rest)
        return self._print_Mul_ordered(coeff, rest)

    def _print_Mul_ordered(self, coeff, rest):
        numer, denom = sp.fraction(coeff * rest, exact=True)
        if denom != 1:
            return r"\frac{%s}{%s}" % (self._print(numer), self._print(denom))
        factors = self.ordered_factors(coeff * rest)
        out = []
        for f in factors:
            text = self._print(f)
            if isinstance(f, sp.Add) or (f.is_Number and f.is_negative):
                text = r"\left(%s\right)" % text
            out.append(text)
        return " ".join(out)


class DerivationTextPrinter(_Ordered, StrPrinter):
    _default_settings = {**StrPrinter._default_settings, "ranks": None}
    printmethod = "_symgrad_text"  # bypass Indexed._sympystr, which writes X[i, j]

    def _print_Symbol(self, expr):
        return expr.name

    def _print_Abs(self, expr):
        return "|%s|" % self._print(expr.args[0])

    def _print_IndexedBase(self, expr):
        return str(expr.label)

    def _print_Indexed(self, expr):
        return "%s_%s" % (self._print(expr.base), _index_text(expr.indices, self))

    def _print_Sum(self, expr):
        subs = "".join("sum_%s " % self._print(lim[0]) for lim in expr.limits)
        body = self._print(expr.function)
        if isinstance(expr.function, sp.Add):
            body = "(%s)" % body
        return subs + body

    def _print_Derivative(self, expr):
        (var, _), = expr.variable_count
        return "d%s/d%s" % (self._print(expr.expr), self._print(var))

    def _print_Float(self, expr):
        return _shortest(expr)

    def _print_Pow(self, expr, rational=False):
        base, e = expr.as_base_exp()
        if e.is_Integer and e > 1:
            text = self._print(base)
            if not isinstance(base, (sp.Symbol, sp.Indexed, sp.Function)):
                text = "(%s)" % text
            return "%s^%s" % (text, e)
        return super()._print_Pow(expr, rational)

    def _print_KroneckerDelta(self, expr):
        return "[%s = %s]" % tuple(self._print(a) for a in expr.args)

    def _print_maximum(self, expr):
        body, k, _ = expr.args
        return "max_%s %s" % (self._print(k), self._print(body))

    def _print_onehot(self, expr):
        return "[%s = %s]" % tuple(self._print(a) for a in expr.args)

    def _print_Mul(self, expr):
        coeff, rest = expr.as_coeff_Mul()
        sign = ""
        if coeff.is_negative:
            sign, coeff = "-", -coeff
        numer, denom = sp.fraction(coeff * rest, exact=True)
        if denom != 1:
            d = self._print(denom)
            d = "(%s)" % d if isinstance(denom, (sp.Add, sp.Mul)) else d
            n = self._print(numer)
            n = "(%s)" % n if isinstance(numer, sp.Add) else n
            return "%s%s / %s" % (sign, n, d)
        parts = []
        for f in self.ordered_factors(coeff * rest):
            text = self._print(f)
            if isinstance(f, sp.Add):
                text = "(%s)" % text
            parts.append(text)
        return sign + " ".join(parts)


def aligned_block(rows):
    """LaTeX rows (``lhs &= rhs``) as one ``aligned`` block."""
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


def to_latex(expr, ranks=None):
    return DerivationLatexPrinter({"ranks": ranks}).doprint(expr)


def to_text(expr, ranks=None):
    return DerivationTextPrinter({"ranks": ranks}).doprint(expr)

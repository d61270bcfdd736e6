"""SymPy functions for the activations SymPy lacks, with their registered identities.

``sigmoid'(x) = sigmoid(x) (1 - sigmoid(x))`` and ``softplus' = sigmoid`` are
given as ``fdiff`` so SymPy's own differentiation produces the forms a lecture
writes, never ``exp(-x)/(1 + exp(-x))**2`` (which is NaN at x = -800).
``relu'(x) = step(x)`` with the convention ``step(0) = 0``.
"""
import math

import sympy as sp


def _stable_sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


class sigmoid(sp.Function):
    """The logistic function 1 / (1 + exp(-x))."""

    @classmethod
    def eval(cls, x):
        if x.is_Number and not x.is_Integer:
            return sp.Float(_stable_sigmoid(float(x)))
        if x is sp.S.Zero:
            return sp.Rational(1, 2)
        return None

    def fdiff(self, argindex=1):
        return self * (1 - self)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sp.exp(-x))

    def _eval_evalf(self, prec):
        return self.rewrite(sp.exp)._eval_evalf(prec)

    def _eval_is_real(self):
        return self.args[0].is_real

    def _latex(self, printer):
        return r"\sigma\left(%s\right)" % printer._print(self.args[0])


class softplus(sp.Function):
    """log(1 + exp(x)), computed without overflow."""

    @classmethod
    def eval(cls, x):
        if x.is_Number and not x.is_Integer:
            v = float(x)
            return sp.Float(max(v, 0.0) + math.log1p(math.exp(-abs(v))))
        return None

    def _eval_is_real(self):
        return self.args[0].is_real

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_log(self, x, **kwargs):
        return sp.log(1 + sp.exp(x))

    def _eval_evalf(self, prec):
        return self.rewrite(sp.log)._eval_evalf(prec)

    def _latex(self, printer):
        return r"\operatorname{softplus}\left(%s\right)" % printer._print(self.args[0])


class step(sp.Function):
    """The unit step with step(0) = 0: relu's derivative."""

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sp.S.One if x > 0 else sp.S.Zero
        return None

    def _eval_is_real(self):
        return self.args[0].is_real

    def fdiff(self, argindex=1):
        return sp.S.Zero

    def _latex(self, printer):
        return r"\mathbb{1}\left[%s > 0\right]" % printer._print(self.args[0])


class relu(sp.Function):
    """max(x, 0)."""

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return x if x > 0 else sp.S.Zero * x
        return None

    def _eval_is_real(self):
        return self.args[0].is_real

    def fdiff(self, argindex=1):
        return step(self.args[0])

    def _eval_rewrite_as_Max(self, x, **kwargs):
        return sp.Max(x, 0)

    def _eval_evalf(self, prec):
        return self.rewrite(sp.Max)._eval_evalf(prec)

    def _latex(self, printer):
        return r"\operatorname{relu}\left(%s\right)" % printer._print(self.args[0])


class onehot(sp.Function):
    """onehot(y, c) = 1 if the label y equals class c else 0 (a Kronecker delta)."""

    def fdiff(self, argindex=1):
        return sp.S.Zero

    def _latex(self, printer):
        return r"\mathbb{1}\left[%s = %s\right]" % tuple(printer._print(a) for a in self.args)


class maximum(sp.Function):
    """maximum(expr, k, n): the largest value of ``expr`` over index k = 0 .. n-1."""

    def _latex(self, printer):
        body, k, _ = self.args
        return r"\max_{%s} %s" % (printer._print(k), printer._print(body))


class iverson(sp.Function):
    """[condition]: 1 where a comparison holds, else 0 (a mask; no derivative)."""

    @classmethod
    def eval(cls, cond):
        if cond is sp.true:
            return sp.S.One
        if cond is sp.false:
            return sp.S.Zero
        return None

    def fdiff(self, argindex=1):
        return sp.S.Zero

    @staticmethod
    def numeric(flag):
        return 1.0 if flag else 0.0

    def _latex(self, printer):
        return r"\mathbb{1}\left[%s\right]" % printer._print(self.args[0])

    def _sympystr(self, printer):
        return "[%s]" % printer._print(self.args[0])

    _symgrad_text = _sympystr


class select(sp.Function):
    """where(c, a, b): a where the mask c is 1, else b; the gradient goes to the chosen branch."""

    def fdiff(self, argindex=1):
        c = self.args[0]
        return (sp.S.Zero, c, 1 - c)[argindex - 1]

    @staticmethod
    def numeric(c, a, b):
        return a if c != 0 else b

    def _latex(self, printer):
        c, a, b = (printer._print(x) for x in self.args)
        return (r"\begin{cases} %s & \text{if } %s = 1 \\ %s & \text{otherwise} \end{cases}"
                % (a, c, b))

    def _symgrad_text(self, printer):
        return "where(%s, %s, %s)" % tuple(printer._print(x) for x in self.args)


class Phi(sp.Function):
    """The standard normal CDF, (1 + erf(x / sqrt 2)) / 2, computed as erfc(-x / sqrt 2) / 2
    so that Phi(-10) keeps its digits (1 + erf cancels); Phi' is the normal density."""

    @classmethod
    def eval(cls, x):
        if x.is_Number and not x.is_Integer:
            return sp.Float(cls.numeric(float(x)))
        if x is sp.S.Zero:
            return sp.Rational(1, 2)
        return None

    @staticmethod
    def numeric(x):
        return 0.5 * math.erfc(-x / math.sqrt(2.0))

    def fdiff(self, argindex=1):
        x = self.args[0]
        return sp.exp(-x ** 2 / 2) / sp.sqrt(2 * sp.pi)

    def _eval_rewrite_as_erf(self, x, **kwargs):
        return (1 + sp.erf(x / sp.sqrt(2))) / 2

    def _eval_evalf(self, prec):
        return self.rewrite(sp.erf)._eval_evalf(prec)

    def _eval_is_real(self):
        return self.args[0].is_real

    def _latex(self, printer):
        return r"\Phi\left(%s\right)" % printer._print(self.args[0])

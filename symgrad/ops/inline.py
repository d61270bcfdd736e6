"""A generated op's body written out as graph nodes, for parameters that are SymPy symbols.

``sg.leaky_relu(z, slope=a)`` with ``a = sp.Symbol("a", positive=True)`` (a hyperparameter,
bound by name at run time) cannot be one op node, whose parameters are numbers fixed in
the emitted code; the body is spelled with symgrad's own ops instead
(``where(z > 0, z, a * z)``), so the symbol stays symbolic in derivations and compiled
code takes it as a run-time scalar. Only whitelisted pieces reach here
(:func:`symgrad.ops.body.check_body` ran first); a piece with no exact spelling in
symgrad's ops (``Phi``, ``erfc``, ``Heaviside``, ...) is an error naming it.
"""
import math

import sympy as sp

from symgrad.errors import DeclarationError
from symgrad.graph.node import Node
from symgrad.ops import api
from symgrad.ops import body as B
from symgrad.ops import functions as F


def _node_functions():
    from symgrad.ops import library as L        # the library is built on this module's caller
    return {sp.exp: api.exp, sp.log: api.log, sp.tanh: api.tanh, sp.Abs: api.abs,
            F.sigmoid: api.sigmoid, F.softplus: api.softplus, F.relu: api.relu,
            sp.sin: L.sin, sp.cos: L.cos, sp.erf: L.erf, B.log1p: L.log1p, B.expm1: L.expm1}


_FLIP = {sp.StrictGreaterThan: "__lt__", sp.GreaterThan: "__le__",
         sp.StrictLessThan: "__gt__", sp.LessThan: "__ge__"}
_SAME = {sp.StrictGreaterThan: "__gt__", sp.GreaterThan: "__ge__",
         sp.StrictLessThan: "__lt__", sp.LessThan: "__le__"}


def inline(expr, env, where):
    """``expr`` as a node; ``env`` maps the body's symbols to nodes or SymPy symbols."""
    return _Inliner(env, where).node(expr)


class _Inliner:
    def __init__(self, env, where):
        self.env, self.where, self.funcs = env, where, _node_functions()

    def node(self, e):
        if isinstance(e, sp.Symbol):
            return self.env[e]
        if e.is_number and not isinstance(e, sp.logic.boolalg.Boolean):
            return float(e)
        if isinstance(e, sp.Add):
            return _fold(lambda a, b: a + b, [self.node(a) for a in e.args])
        if isinstance(e, sp.Mul):
            return _fold(lambda a, b: a * b, [self.node(a) for a in e.args])
        if isinstance(e, sp.Pow) and e.exp.is_number:
            base = self.node(e.base)
            return api.sqrt(base) if e.exp == sp.Rational(1, 2) else base ** float(e.exp)
        if isinstance(e, sp.Piecewise):
            return self.piecewise(e.args)
        if type(e) in _SAME:
            return self.compare(e)
        if isinstance(e, (sp.Max, sp.Min)):
            pick = api.maximum if isinstance(e, sp.Max) else api.minimum
            return _fold(pick, [self.node(a) for a in e.args])
        if e.func in B.GENERATED:
            from symgrad.ops.custom import user_function    # custom imports this module
            op = B.GENERATED[e.func]
            values = {p: self.param(v) for p, v in zip(op.params, e.args[1:])}
            return user_function(op)(self.node(e.args[0]), **values)
        if e.func in self.funcs:
            return self.funcs[e.func](*[self.node(a) for a in e.args])
        raise DeclarationError(f"{self.where}: {B._function_name(e.func)!r} cannot be written "
                               "with symgrad's ops; give the parameters numbers instead")

    def param(self, v):
        return self.env.get(v, v) if isinstance(v, sp.Symbol) else float(v)

    def compare(self, e):
        lhs, rhs = self.node(e.lhs), self.node(e.rhs)
        if isinstance(lhs, Node):
            return getattr(lhs, _SAME[type(e)])(rhs)
        if isinstance(rhs, Node):
            return getattr(rhs, _FLIP[type(e)])(lhs)
        raise DeclarationError(f"{self.where}: the condition {e} does not involve the argument")

    def piecewise(self, pairs):
        (value, cond), rest = pairs[0], pairs[1:]
        if cond == sp.true:
            return self.node(value)
        otherwise = self.piecewise(rest) if rest else math.nan   # as the body: NaN
        return api.where(self.node(cond), self.node(value), otherwise)


def _fold(fn, items):
    out = items[0]
    for item in items[1:]:
        out = fn(out, item)
    return out

"""Numba source for generated ops: a helper function printed from a body's SymPy tree.

Only symgrad's templates and the identifiers it chooses (``x``, ``p_<param>``, ``t<k>``,
``_sg_*`` helpers) ever appear; the tree was checked by
:func:`symgrad.ops.body.check_body`, so every node has a template here.
"""
import math
import re

import sympy as sp

from symgrad.ops import functions as F
from symgrad.ops.body import _CONSTANTS, _LOGIC, _RELATIONS, FUNCTIONS, GENERATED, _function_name

# The vectorisable subset (see VECTOR_HELPERS in symgrad.ops.elementwise): arithmetic,
# selects and these templates. A body using anything else (a libm call, ``**``) has no
# vector form, and its op only the scalar helper.
VECTOR_FUNCTIONS = {
    sp.exp: "_sg_vexp({0})", F.sigmoid: "_sg_vsigmoid({0})", sp.Abs: "abs({0})",
    F.relu: FUNCTIONS[F.relu][1], F.step: FUNCTIONS[F.step][1],
    sp.Heaviside: FUNCTIONS[sp.Heaviside][1],
}


class NoVectorForm(Exception):
    """The body uses a piece LLVM cannot vectorise."""



# -- Numba: one helper function per generated op -------------------------------------
def numba_source(fname, expr, args, vector=False):
    """Source of ``def fname(*args)`` computing ``expr`` (args: SymPy symbols, in order:
    the argument, then the parameters, whose names are plain identifiers), plus the
    helper names it calls. Common subexpressions become one statement each. ``vector``:
    only vectorisable pieces (:data:`VECTOR_FUNCTIONS`), else :class:`NoVectorForm`."""
    names = {a: f"p_{a.name}" if k else "x" for k, a in enumerate(args)}
    temps = sp.numbered_symbols("_t")
    steps, (reduced,) = sp.cse([expr], symbols=temps, optimizations=None)
    printer = _NumbaPrinter(names, vector)
    lines = [f"def {fname}({', '.join(names[a] for a in args)}):"]
    for k, (sym, sub) in enumerate(steps):
        names[sym] = f"t{k}"
        lines.append(f"    t{k} = {printer.show(sub)}")
    lines.append(f"    return {printer.show(reduced)}")
    return "\n".join(lines) + "\n", printer.helpers


class _NumbaPrinter:
    """Python/Numba text for a whitelisted tree: only symgrad's templates and the
    identifiers it chose (x, p0, t0, _sg_*) ever appear."""

    def __init__(self, names, vector=False):
        self.names, self.helpers, self.vector = names, set(), vector

    def show(self, e):
        if isinstance(e, sp.Symbol):
            return self.names[e]
        if e in _CONSTANTS:
            return repr(_CONSTANTS[e])
        if isinstance(e, sp.logic.boolalg.BooleanAtom):
            return "True" if e else "False"
        if isinstance(e, sp.Expr) and e.is_number:       # sqrt(2 pi), sigmoid(1), ...
            return float_literal(float(e.evalf(17)))
        if isinstance(e, sp.Piecewise):
            return self._piecewise(e)
        if isinstance(e, sp.Add):
            return self._add(e)
        if isinstance(e, sp.Mul):
            return self._mul(e)
        args = [self.show(a) for a in e.args]
        if isinstance(e, sp.Pow):
            return self._pow(e, args[0])
        if type(e) in _RELATIONS:
            return f"({args[0]} {_RELATIONS[type(e)][1]} {args[1]})"
        if type(e) in _LOGIC:         # & and | on booleans are selects; and/or branch
            joiner = {"and": " & ", "or": " | "} if self.vector else {"and": " and ",
                                                                      "or": " or "}
            return "(" + joiner[_LOGIC[type(e)][1]].join(args) + ")"
        if isinstance(e, sp.Not):
            return f"(not {args[0]})"
        if isinstance(e, (sp.Max, sp.Min)):
            return f"{'max' if isinstance(e, sp.Max) else 'min'}({', '.join(args)})"
        if e.func in GENERATED:
            op = GENERATED[e.func]
            name = op.vector_helper_name if self.vector else op.helper_name
            if not name:
                raise NoVectorForm(op.name)
            self.helpers |= {name} | (op.vector_helpers if self.vector else op.helpers)
            return f"{name}({', '.join(args)})"
        template = VECTOR_FUNCTIONS.get(e.func) if self.vector else FUNCTIONS[e.func][1]
        if template is None:
            raise NoVectorForm(_function_name(e.func))
        self.helpers |= set(re.findall(r"_sg_\w+", template))
        return template.format(*args)

    def _add(self, e):
        terms = sorted(e.args, key=lambda t: bool(t.could_extract_minus_sign()))
        text = self.show(terms[0])
        for t in terms[1:]:
            text += f" - {self.show(-t)}" if t.could_extract_minus_sign() else f" + {self.show(t)}"
        return f"({text})"

    def _mul(self, e):
        coeff, rest = e.as_coeff_Mul()
        if coeff == -1:
            return f"(-{self.show(rest)})"
        number = sp.Mul(*[f for f in e.args if f.is_number])
        numer, denom = [] if number == 1 else [self.show(number)], []
        for f in (f for f in e.args if not f.is_number):
            base, k = f.as_base_exp()
            if k.is_Number and k < 0 and not f.is_Number:
                denom.append(self.show(base ** -k))
            else:
                numer.append(self.show(f))
        text = " * ".join(numer) or "1.0"
        if denom:
            text += " / " + (denom[0] if len(denom) == 1 else f"({' * '.join(denom)})")
        return f"({text})"

    def _pow(self, e, base):
        c = e.exp
        if c == 2:
            return f"({base} * {base})"
        if self.vector and c != -1:
            raise NoVectorForm("**")
        if c == sp.Rational(1, 2):
            self.helpers.add("_sg_sqrt")
            return f"_sg_sqrt({base})"
        if c == -1:
            return f"(1.0 / {base})"
        return f"({base} ** {self.show(c)})"

    def _piecewise(self, e):
        text = "math.nan"
        for value, cond in reversed(e.args):
            if cond == sp.true:
                text = self.show(value)
            else:
                text = f"({self.show(value)} if {self.show(cond)} else {text})"
        return text


def float_literal(value):
    """Python source for a float, inf and nan included."""
    if math.isnan(value):
        return "math.nan"
    if math.isinf(value):
        return "math.inf" if value > 0 else "(-math.inf)"
    return repr(value) if value >= 0 else f"({value!r})"

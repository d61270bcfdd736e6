"""SymPy scalars inside tensor graphs: hyperparameters and exact constants.

``lam = sp.Symbol("lambda"); L = sse(X @ w, t) + lam * l2(w)`` puts ``lambda`` in the
graph as a *hyperparameter*: a 0-d data tensor named after the symbol, so it stays
symbolic in derivations and pictures, and the compiled module takes it as a run-time
float bound by name (a new value never recompiles). A SymPy expression of such symbols
(``lam / 2``, ``sp.sqrt(lam)``) becomes the graph of ops it spells; an exact number
(``sp.pi``, ``sp.Rational(1, 3)``) a constant that remembers how it was written.
"""
import numbers
import sys

from symgrad.errors import DeclarationError
from symgrad.graph.names import check_name

# One leaf per hyperparameter name: data is bound by name, so the symbol ``lambda``
# written twice (or with other assumptions) must be the same input of the graph.
_LEAVES = {}


def is_sympy(value):
    # a SymPy object exists only once SymPy is imported: no import needed to ask
    sympy = sys.modules.get("sympy")
    return sympy is not None and isinstance(value, sympy.Basic)


def hyperparameter(symbol):
    """The graph leaf of a real SymPy symbol."""
    from symgrad.graph.node import FLOAT, Node
    if symbol.is_real is False:
        raise DeclarationError(f"hyperparameter {symbol.name!r} must be a real symbol "
                               f"(it has is_real=False)")
    name = check_name(symbol.name, "hyperparameter")
    leaf = _LEAVES.get(name)
    if leaf is None:
        leaf = _LEAVES[name] = Node("input", (), (), FLOAT, {"symbol": symbol}, name=name)
    return leaf


def from_sympy(expr, leaves=None):
    """The graph node a SymPy scalar expression spells (hyperparameters, numbers, ops).

    ``leaves`` maps symbols to the nodes they stand for (used when symgrad rewrites an
    elementwise region through SymPy); other symbols are hyperparameters.
    """
    import sympy as sp
    from symgrad.graph.node import apply, const
    from symgrad.graph.registry import OPS
    if leaves and expr in leaves:
        return leaves[expr]
    if expr.is_Symbol:
        return hyperparameter(expr)
    if expr.is_number:
        if not expr.is_real:
            raise DeclarationError(f"constant {expr} is not a real number")
        value = float(expr)
        return const(value if not value.is_integer() or expr.is_Float else int(value), exact=expr)
    if expr.is_Add or expr.is_Mul:
        nodes = [from_sympy(a, leaves) for a in expr.args]
        out = nodes[0]
        for x in nodes[1:]:
            out = apply("add" if expr.is_Add else "mul", out, x)
        return out
    if expr.is_Pow:
        base, exponent = expr.args
        if not exponent.is_number:
            raise DeclarationError(f"{expr}: the exponent must be a number")
        return apply("pow", from_sympy(base, leaves), exponent=_exponent(exponent))
    name = {"Abs": "abs"}.get(type(expr).__name__, type(expr).__name__)
    if isinstance(expr, sp.core.function.AppliedUndef):
        # sp.Function("exp")(lam) is an undefined function that is only *named* exp: it must
        # not be taken for the op of that name (nor its name for anything at all).
        raise DeclarationError(f"symgrad cannot put the SymPy expression {expr} into a graph: "
                               f"{type(expr).__name__!r} is an undefined SymPy function; use "
                               "symgrad's functions (sg.exp, ...) or sg.elementwise")
    if isinstance(expr, sp.Function) and len(expr.args) == 1 and name in OPS \
            and OPS[name].family == "elementwise":
        return apply(name, from_sympy(expr.args[0], leaves))
    raise DeclarationError(f"symgrad cannot put the SymPy expression {expr} into a graph: "
                           f"{type(expr).__name__} is not one of its ops")


def _exponent(e):
    value = float(e)
    return int(value) if value.is_integer() else value


def as_scalar_node(value):
    """A SymPy value (symbol, expression or exact number), or None if ``value`` is not one."""
    if isinstance(value, numbers.Real) or not is_sympy(value):
        return None
    return from_sympy(value)


def sympy_error(node):
    """What ``sp.sin(node)`` raises: a TypeError that says what to write instead.

    It is a SympifyError too, so SymPy's own operators (``Symbol * node``) still return
    NotImplemented and Python calls the node's reflected operator.
    """
    from sympy import SympifyError

    class NodeInSymPyError(SympifyError, TypeError):
        def __str__(self):
            return self.args[0]

    return NodeInSymPyError(
        f"{node.display} is a symgrad tensor node, not a SymPy expression: SymPy functions "
        "cannot take it. Use symgrad's function of the same name (sg.sin, sg.exp, "
        "sg.sigmoid, ...) or make your own with sg.elementwise(name, body).")

"""Scalar graphs: SymPy expressions treated as computation graphs, as in the lecture's
``f = (x + y) z`` example. Forward values, then for every edge the upstream gradient
times the local gradient gives the downstream gradient."""
from dataclasses import dataclass, field

import sympy as sp

from symgrad.errors import DataError, DeclarationError

_INTERMEDIATE_NAMES = "qrsuvabcdeghkmnp"


def scalars(names):
    """Real SymPy symbols: ``x, y, z = sg.scalars("x y z")``."""
    return sp.symbols(names, real=True)


def grad(f, variables):
    """``[df/dv for v in variables]`` as SymPy expressions, in the same order."""
    f = _as_expr(f)
    return [sp.diff(f, v) for v in variables]


def _as_expr(f):
    if not isinstance(f, sp.Basic):
        raise DeclarationError(f"expected a SymPy expression, got {type(f).__name__}: {f!r}")
    return f


@dataclass(eq=False)
class ScalarNode:
    expr: object            # the SymPy subexpression this node computes
    name: str
    symbol: object          # the symbol standing for this node in its consumers' formulas
    inputs: list = field(default_factory=list)
    value: float = 0.0
    grad: float = 0.0

    @property
    def is_leaf(self):
        return not self.inputs

    @property
    def is_constant(self):
        return self.expr.is_Number

    @property
    def formula(self):
        """This node's expression in terms of its inputs' symbols (``q z``)."""
        if self.is_leaf:
            return self.expr
        return self.expr.func(*[x.symbol for x in self.inputs])


@dataclass
class Edge:
    """One backward edge: consumer -> input, with upstream x local = downstream."""

    consumer: ScalarNode
    input: ScalarNode
    upstream: float
    local_expr: object
    local_value: float
    downstream: float


def build_graph(f, output_name="f"):
    """The nodes of ``f`` in topological order; intermediates named q, r, s, ..."""
    f = _as_expr(f)
    taken = {s.name for s in f.free_symbols} | {output_name}
    names = iter(n for n in _INTERMEDIATE_NAMES if n not in taken)
    nodes, by_expr = [], {}

    def visit(e):
        if e in by_expr:
            return by_expr[e]
        inputs = [visit(a) for a in e.args] if not (e.is_Atom or not e.args) else []
        if e.is_Symbol:
            node = ScalarNode(e, e.name, e)
        elif e.is_Number:
            node = ScalarNode(e, str(e), e)
        else:
            name = output_name if e is f else next(names, None) or f"t{len(nodes)}"
            node = ScalarNode(e, name, sp.Symbol(name, real=True), inputs)
        by_expr[e] = node
        nodes.append(node)
        return node

    visit(f)
    # Inputs first, in the order the user lists them; then the rest in topological order.
    return sorted((n for n in nodes if n.is_leaf), key=lambda n: (n.is_constant, n.name)) \
        + [n for n in nodes if not n.is_leaf]


def _number(v, what):
    try:
        return float(v)
    except (TypeError, ValueError):
        raise DataError(f"value for {what} must be a number, got {v!r}") from None


def _real(expr, what):
    """``float(expr)``, or a DataError naming ``what`` when the value is not a real number
    (SymPy's ``zoo`` for log(0) or 1/0, or a complex value such as sqrt(-1))."""
    value = expr.evalf() if isinstance(expr, sp.Basic) else expr
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(f"{what} is not a real number at these values (SymPy gives {value}); "
                        "move the input away from the singularity") from None


def run_backprop(f, values, output_name="f"):
    """Forward values and backward edges of ``f`` at ``values`` ({symbol or name: number})."""
    nodes = build_graph(f, output_name)
    order = [str(k) for k in values]
    nodes.sort(key=lambda n: order.index(n.name) if n.is_leaf and n.name in order else len(order)
               if n.is_leaf else len(order) + 1)
    by_name = {str(k) if not isinstance(k, str) else k: v for k, v in values.items()}
    leaves = {n.name for n in nodes if n.expr.is_Symbol}
    for key in by_name:
        if key not in leaves:
            raise DataError(f"{key!r} is not a variable of {f}; it has {sorted(leaves)}")
    env = {}
    for node in nodes:
        if node.expr.is_Symbol:
            if node.name not in by_name:
                raise DataError(f"missing a value for {node.name!r}")
            node.value = _number(by_name[node.name], node.name)
        elif node.is_leaf:
            node.value = float(node.expr)
        else:
            node.value = _real(node.formula.xreplace(env), f"{node.name} = {node.formula}")
        env[node.symbol] = sp.Float(node.value)
    edges = _backward(nodes, env)
    return nodes, edges


def _backward(nodes, env):
    nodes[-1].grad = 1.0
    edges = []
    for node in reversed(nodes):
        if node.is_leaf:
            continue
        formula = node.formula
        for x in dict.fromkeys(node.inputs):
            if x.is_constant:
                continue
            # Written with the node's own symbol where it appears: sigma' = f (1 - f).
            local = sp.diff(formula, x.symbol).subs(formula, node.symbol)
            local_value = _real(local.xreplace(env), f"d{node.name}/d{x.name} = {local}")
            down = node.grad * local_value
            x.grad += down
            edges.append(Edge(node, x, node.grad, local, local_value, down))
    return edges

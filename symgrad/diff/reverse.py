"""Reverse mode over the graph: the backward graph, built from the ops' gradient rules.

Adjoints are accumulated in reverse topological order; each node's adjoint is the
sum over its consumers of the consumer's rule applied to the consumer's adjoint.
Every rule adds a bounded number of nodes, so the backward graph is linear in the
size of the forward graph.
"""
from symgrad.errors import DeclarationError, DimError
from symgrad.graph.node import INT, Node, apply, const
from symgrad.graph.registry import get_op, vjp_rule
from symgrad.graph.traverse import topo_order


def check_loss(loss):
    if not isinstance(loss, Node):
        raise DeclarationError(f"the loss must be a symgrad node, got {type(loss).__name__}")
    if loss.dims:
        raise DimError(f"the loss must be a scalar, but {loss.display} has dims {loss.dims}; "
                       "reduce it with sg.sum or sg.mean")


def check_params(loss, params):
    check_loss(loss)
    if isinstance(params, Node):
        params = [params]
    if not isinstance(params, (list, tuple)):
        raise DeclarationError(f"params must be a param node or a list of them, got "
                               f"{type(params).__name__}: {params!r}")
    params = list(params)
    graph = set(topo_order(loss))
    for k, p in enumerate(params):
        if not isinstance(p, Node) or p.op not in ("param", "input"):
            raise DeclarationError(f"can only differentiate with respect to declared "
                                   f"params or tensors, got {p!r}")
        if p not in graph:
            raise DeclarationError(f"{p.display} does not appear in the loss {loss.display}")
        if p.dtype == INT:
            raise DeclarationError(f"{p.display} is an integer tensor (labels); it has no "
                                   "gradient")
        if any(q is p for q in params[:k]):
            raise DeclarationError(f"{p.display} is listed twice in params")
    return params


def relevant_nodes(loss, params):
    """The nodes on some path from a param to the loss, in topological order. A
    piecewise-constant op (a mask such as ``abs(r) <= 1``) ends every path through it."""
    order = topo_order(loss)
    on_path = set(params)
    for node in order:
        if any(x in on_path for x in node.inputs) and not get_op(node.op).constant:
            on_path.add(node)
    return [n for n in order if n in on_path]


def backward(loss, params):
    """Adjoint nodes: returns ``(grads, adjoints)`` with grads[param] -> gradient node.

    ``adjoints`` maps every relevant forward node to its adjoint node, and holds
    the per-edge contributions under ``adjoints.edges[(consumer, k)]``.
    """
    check_loss(loss)
    params = check_params(loss, params)
    order = relevant_nodes(loss, params)
    relevant = set(order)
    adjoint = {loss: const(1)}
    edges = {}
    for node in reversed(order):
        g = adjoint.get(node)
        if g is None or node.is_leaf:
            continue
        for k, x in enumerate(node.inputs):
            if x not in relevant:
                continue
            contribution = vjp_rule(node, k)(g, node)
            edges[(node, k)] = contribution
            adjoint[x] = contribution if x not in adjoint else adjoint[x] + contribution
    # A param whose every path to the loss passes through a mask gets a zero gradient.
    grads = {p: adjoint[p] if p in adjoint else _zeros(p) for p in params}
    return grads, Adjoints(adjoint, edges, order)


def _zeros(p):
    zero = const(0)
    return apply("expand", zero, dims=p.dims) if p.dims else zero


class Adjoints:
    """The result of one reverse sweep: node adjoints, per-edge contributions, order."""

    def __init__(self, adjoint, edges, order):
        self.adjoint = adjoint
        self.edges = edges
        self.order = order


def gradients(loss, params):
    """``[dL/dp for p in params]`` as graph nodes (the backward graph)."""
    grads, _ = backward(loss, params)
    return [grads[p] for p in check_params(loss, params)]

"""Symbolic reverse mode: element meanings, local gradients and adjoints in index notation.

For each node ``v`` (loss first) and each consumer ``c`` of ``v``:

    bar_v[idx_v] = sum_c  sum_{idx_c}  bar_c[idx_c] * d c[idx_c] / d v[idx_v]

The local gradient comes from SymPy differentiating ``c``'s element expression
(operands written as symbols, so expressions stay one level deep), or from the
op's registered ``local`` rule where SymPy's form is unreadable (softmax,
cross-entropy). Kronecker deltas are collapsed by :mod:`symgrad.diff.sums`.
"""
from dataclasses import dataclass, field

import sympy as sp

from symgrad.diff.notation import add_name
from symgrad.diff.sums import collapse
from symgrad.graph.registry import get_op


class ElementContext:
    """What an op's ``element``/``local`` rule may ask for while writing one element.

    ``inline`` holds nodes to write out by their own element expression instead
    of their symbol (used for "where" definitions).
    """

    def __init__(self, notation, used=(), inline=frozenset()):
        self.notation = notation
        self.used = set(used)
        self.inline = inline
        self.node = None
        self.aux_nodes = []

    def fresh(self, dim):
        primes = 0
        while self.notation.index(dim, primes) in self.used:
            primes += 1
        sym = self.notation.index(dim, primes)
        self.used.add(sym)
        return sym

    def size(self, dim):
        return self.notation.size(dim)

    def ref(self, node, idx):
        if node in self.inline:
            return self.element(node, idx)
        return self.notation.symbol(node, idx)

    def arg(self, k, idx):
        return self.ref(self.node.inputs[k], idx)

    def aux(self, base, node, idx):
        """A helper quantity (e.g. ``p = softmax(s)`` inside cross-entropy), shown by name;
        a node of the graph that computes the same thing is used instead (one sigma)."""
        node = self.notation.same_as(node)
        add_name(self.notation, node, base)
        if node not in self.aux_nodes:
            self.aux_nodes.append(node)
        return self.notation.symbol(node, idx)

    def element(self, node, idx):
        """``node``'s element expression at ``idx`` with operands as symbols."""
        saved, self.node = self.node, node
        self.used |= {s for v in idx.values() for s in sp.sympify(v).free_symbols}
        try:
            return get_op(node.op).element(self, node, idx)
        finally:
            self.node = saved


def fresh_indices(ctx, node):
    return {d: ctx.fresh(d) for d in node.dims}


def local_gradient(ctx, consumer, v, idx_c, idx_v):
    """d consumer[idx_c] / d v[idx_v], with the consumer's own value written as its symbol."""
    op = get_op(consumer.op)
    if op.local is not None:
        return sp.Add(*[op.local(ctx, consumer, k, idx_c, idx_v)
                        for k, x in enumerate(consumer.inputs) if x is v])
    elem = ctx.element(consumer, idx_c)
    local = sp.diff(elem, ctx.notation.symbol(v, idx_v))
    if consumer.dims or elem.free_symbols:
        local = local.subs(elem, ctx.notation.symbol(consumer, idx_c))
    return collapse(local)


@dataclass
class Edge:
    """One consumer's share of a node's adjoint."""

    consumer: object
    idx_c: dict
    local: object          # d consumer[idx_c] / d v[idx_v]
    term: object           # sum_{idx_c} bar_c[idx_c] * local, collapsed


@dataclass
class AdjointStep:
    """The chain rule at one node: bar_v = sum over consumers of upstream x local."""

    node: object
    idx: dict
    edges: list = field(default_factory=list)
    result: object = None  # in terms of the consumers' adjoint symbols


def adjoint_step(notation, v, consumer_list, aux_sink):
    """The local gradients at ``v``: one :class:`Edge` per distinct consumer (terms unset)."""
    idx_v = notation.canonical(v)
    step = AdjointStep(v, idx_v)
    for c in dict.fromkeys(c for c, _ in consumer_list):
        ctx = ElementContext(notation, used=idx_v.values())
        idx_c = fresh_indices(ctx, c)
        local = local_gradient(ctx, c, v, idx_c, idx_v)
        step.edges.append(Edge(c, idx_c, local, None))
        aux_sink.extend(n for n in ctx.aux_nodes if n not in aux_sink)
    return step


def combine(notation, step, upstream):
    """sum over edges of sum_{idx_c} upstream(c, idx_c) * local, collapsed, per edge."""
    terms = []
    for e in step.edges:
        limits = [(e.idx_c[d], 0, notation.size(d) - 1) for d in e.consumer.dims]
        body = upstream(e.consumer, e.idx_c) * e.local
        term = collapse(sp.Sum(body, *limits)) if limits else collapse(body)
        terms.append(notation.unit_sums(term))
    return terms


def rename(expr, node_idx, target_idx):
    """Rewrite ``expr`` (written at a node's canonical indices) at other indices."""
    mapping = {node_idx[d]: target_idx[d] for d in node_idx if node_idx[d] != target_idx[d]}
    if not mapping:
        return expr
    # Simultaneous replacement through temporaries, so i->j, j->i swaps are safe.
    temps = {k: sp.Dummy() for k in mapping}
    return expr.xreplace(temps).xreplace({temps[k]: v for k, v in mapping.items()})

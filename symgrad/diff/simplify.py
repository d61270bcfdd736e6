"""Textbook form: the identities symgrad knows, applied to a graph before deriving it.

A hand-written loss is rewritten the way a textbook simplifies it, so the derivation
prints the textbook rule (``sum_i (sigma_i - t_i) X_ij`` for hand-written binary
cross-entropy) rather than a correct but unreadable one:

- identical subexpressions are one node (``sigmoid(X @ w)`` written twice is one sigma);
- ``exp(Z) / sum(exp(Z), axis=C)`` is ``softmax(Z, axis=C)``; ``log softmax`` is
  ``log_softmax``; ``exp(log_softmax)`` is ``softmax``; ``log sum exp`` is ``logsumexp``;
- inside each elementwise region (a maximal chain of elementwise ops), SymPy applies
  ``log sigma(z) = -softplus(-z)``, ``log(1 - sigma(z)) = -softplus(z)``,
  ``softplus(-z) = softplus(z) - z``, ``exp(log x) = x``, ``log(exp x) = x`` and expands;
  the region is replaced only when an identity fired.

Leaves and user-named nodes are kept as they are. The result has the same value and
gradients (the tests check both); :func:`textbook` returns it with the list of the
identities used, which the derivation shows.
"""
import sympy as sp

from symgrad.graph.hyper import from_sympy
from symgrad.graph.node import Node, apply
from symgrad.graph.registry import get_op
from symgrad.graph.traverse import topo_order
from symgrad.ops import functions as F

# Ops an elementwise region may contain: float elementwise ops with a SymPy meaning
# that reads only its operands (not onehot, which reads the index; not masks).
_REGION_OPS = {"add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "sigmoid",
               "tanh", "softplus", "abs"}


def textbook(loss):
    """``(loss', identities)``: the loss in textbook form and the identities applied."""
    rewriter = _Rewriter(loss)
    out = rewriter.node(loss)
    return (loss if not rewriter.used else out), rewriter.used


def _in_region(node):
    return node.op in _REGION_OPS and node.name is None


class _Rewriter:
    def __init__(self, loss):
        self.memo, self.table, self.used = {}, {}, []
        # a region is simplified once, at its root: the node no region op consumes
        inner = {x for n in topo_order(loss) if _in_region(n) for x in n.inputs}
        self.roots = {n for n in topo_order(loss) if _in_region(n) and n not in inner}

    def note(self, identity):
        if identity not in self.used:
            self.used.append(identity)

    def node(self, root):
        for n in topo_order(root):
            if n not in self.memo:
                self.memo[n] = self._rewrite(n)
        return self.memo[root]

    def _rewrite(self, n):
        if n.is_leaf:
            return n
        node = self._make(n, tuple(self.memo[x] for x in n.inputs))
        rewritten = _graph_identity(self, node)
        if rewritten is not None:
            return rewritten
        if n in self.roots and _in_region(node):
            rewritten = _simplify_region(self, node)
        return node if rewritten is None else rewritten

    def _make(self, n, inputs):
        """Hash-consing: structurally equal nodes are one node (a user's name stays)."""
        key = (n.op, tuple(id(x) for x in inputs), n.dims, _frozen(n.attrs))
        seen = self.table.get(key)
        if seen is not None and n.name in (None, seen.name):
            self.note("identical subexpressions are one node")
            return seen
        made = n if inputs == n.inputs else Node(n.op, inputs, n.dims, n.dtype, n.attrs, n.name)
        self.table.setdefault(key, made)
        return made


def _frozen(attrs):
    return tuple(sorted((k, repr(v)) for k, v in attrs.items()))


# -- graph identities (normalisations written out by hand) ------------------------------
def _graph_identity(rw, node):
    op, ins = node.op, node.inputs
    if op == "div" and ins[0].op == "exp" and ins[1].op == "sum" and ins[1].name is None \
            and len(ins[1].attrs["axes"]) == 1 and ins[1].inputs[0] is ins[0] \
            and node.dims == ins[0].dims:
        rw.note("exp(z_k) / sum_k exp(z_k) = softmax(z)_k")
        return apply("softmax", ins[0].inputs[0], axis=ins[1].attrs["axes"][0])
    if op == "log" and ins[0].op == "softmax" and ins[0].name is None:
        rw.note("log softmax(z) = log_softmax(z)")
        return apply("log_softmax", ins[0].inputs[0], axis=ins[0].attrs["axis"])
    if op == "exp" and ins[0].op == "log_softmax" and ins[0].name is None:
        rw.note("exp(log_softmax(z)) = softmax(z) = p")
        return apply("softmax", ins[0].inputs[0], axis=ins[0].attrs["axis"])
    if op == "log" and ins[0].op == "sum" and ins[0].name is None and \
            len(ins[0].attrs["axes"]) == 1 and ins[0].inputs[0].op == "exp":
        rw.note("log sum_k exp(z_k) = logsumexp(z)")
        return apply("logsumexp", ins[0].inputs[0].inputs[0], axis=ins[0].attrs["axes"][0])
    return None


# -- elementwise regions through SymPy ---------------------------------------------------
_u = sp.Wild("u")
_IDENTITIES = [
    ("log sigma(z) = -softplus(-z)", lambda e: e.replace(sp.log(F.sigmoid(_u)), -F.softplus(-_u))),
    ("log(1 - sigma(z)) = -softplus(z)",
     lambda e: e.replace(sp.log(1 - F.sigmoid(_u)), -F.softplus(_u))),
    ("exp(log x) = x", lambda e: e.replace(sp.exp(sp.log(_u)), _u)),
    ("log(exp x) = x", lambda e: e.replace(sp.log(sp.exp(_u)), _u)),
]
_SOFTPLUS_NEG = ("softplus(-z) = softplus(z) - z",
                 lambda e: e.replace(lambda x: isinstance(x, F.softplus)
                                     and x.args[0].could_extract_minus_sign(),
                                     lambda x: F.softplus(-x.args[0]) + x.args[0]))


def _simplify_region(rw, root):
    """Rewrite the elementwise region ending at ``root`` if one of the identities applies."""
    leaves = {}
    expr = _to_sympy(root, leaves)
    new, fired = expr, []
    for name, rule in _IDENTITIES:
        changed = rule(new)
        if changed != new:
            fired.append(name)
            new = changed
    if not fired:
        return None
    if new.has(F.softplus):
        changed = _SOFTPLUS_NEG[1](new)
        if changed != new:
            fired.append(_SOFTPLUS_NEG[0])
            new = changed
    new = sp.expand(new)
    for name in fired:
        rw.note(name)
    back = {s: n for n, s in leaves.items()}
    out = from_sympy(new, leaves=back)
    return out if out.dims == root.dims else apply("expand", out, dims=root.dims)


def _to_sympy(node, leaves):
    """SymPy expression of an elementwise region; other nodes become symbols."""
    if node.op == "const":
        return sp.nsimplify(node.attrs["value"]) if "exact" not in node.attrs \
            else node.attrs["exact"]
    if node.op not in _REGION_OPS or node.is_leaf or node.name is not None:
        if node not in leaves:
            leaves[node] = sp.Symbol(f"_sg_region_{len(leaves)}", real=True)
        return leaves[node]
    ctx = _RegionContext(node, leaves)
    return get_op(node.op).element(ctx, node, {})


class _RegionContext:
    """What an elementwise op's ``element`` rule asks for, with operands as expressions."""

    def __init__(self, node, leaves):
        self.node, self.leaves = node, leaves

    def arg(self, k, idx):
        return _to_sympy(self.node.inputs[k], self.leaves)

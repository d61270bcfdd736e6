"""Notation for derivations: a symbol per node, an index letter per dim.

Leaves and user-named nodes keep their names. Other nodes get the names a
lecture would use: ``sigma`` for a sigmoid, ``delta`` for a residual that is
squared, ``z`` for affine maps, ``h`` for hidden activations, ``p`` for a
softmax and ``L`` for the loss; repeated names are numbered in graph order.
"""
import re
from collections import Counter

import sympy as sp

from symgrad.graph.dims import base
from symgrad.graph.registry import get_op
from symgrad.graph.traverse import batch_dim, consumers, topo_order

INDEX_LETTERS = "ijkmnpqrsuvabcefgh"

_AUTO_NAMES = {
    "sigmoid": "sigma", "tanh": "h", "relu": "h", "softplus": "h", "softmax": "p",
    "log_softmax": "ell", "logsumexp": "lse", "matmul": "z", "exp": "e", "log": "ell",
    "sqrt": "r", "abs": "a", "max": "m", "pow": "u", "mul": "u", "div": "u", "neg": "u",
    "cross_entropy": "CE", "bce_logits": "BCE", "sum": "S", "mean": "S",
    "less": "m", "less_equal": "m", "onehot": "Y", "maximum": "m", "minimum": "m", "take": "s",
}


def _is_product(node):
    """A matrix product, also written as a contraction sum(X * W, axis="d")."""
    return node.op == "matmul" or (node.op == "sum" and node.inputs[0].op == "mul"
                                   and len(node.attrs["axes"]) == 1)


def _auto_name(node, used_by):
    if node.op == "sub" and any(c.op == "pow" and c.attrs["exponent"] == 2 for c, _ in used_by):
        return "delta"
    if node.op == "add" and any(_is_product(x) for x in node.inputs) or _is_product(node):
        return "z"
    if node.op in ("add", "sub") and any(c.op == "relu" for c, _ in used_by):
        return "margin"                              # hinge losses: max(0, margin)
    if node.op == "sub" and any(x.op == "input" and x.dims for x in node.inputs):
        return "r"                                   # a residual against data
    if node.op == "div" and node.inputs[1].op == "sqrt":
        return "xhat"                                # normalised: (x - mu) / sqrt(v + eps)
    if node.op == "mean" and node.dims:             # batch statistics: mean and variance
        x = node.inputs[0]
        return "v" if x.op == "pow" and x.attrs["exponent"] == 2 else "mu"
    return _AUTO_NAMES.get(node.op, "u")


class Notation:
    """Display symbols for the nodes of one graph, and index letters for its dims."""

    def __init__(self, outputs, loss=None):
        order = topo_order(outputs)
        used_by = consumers(order)
        self.rank = {node: pos for pos, node in enumerate(order)}
        taken = {n.name for n in order if n.name is not None}
        self.names = {}
        self.literal = _literals(order)
        auto = [(n, _auto_name(n, used_by[n])) for n in order
                if n.name is None and n.op not in ("const", "count") and n not in self.literal]
        if loss is not None and loss.name is None:
            auto = [(n, "L" if n is loss else base) for n, base in auto]
        counts = Counter(base for _, base in auto)
        serial = Counter()
        for node, base in auto:
            if counts[base] > 1 or base in taken:
                serial[base] += 1
                while f"{base}{serial[base]}" in taken:
                    serial[base] += 1
                base = f"{base}{serial[base]}"
            self.names[node] = base
        for node in order:
            if node.name is not None:
                self.names[node] = node.name
        self._letters = self._assign_letters(order, taken)
        # one-hot rows: name -> axis position whose entries sum to one
        self.centred = {self.names[n]: n.dims.index(n.inputs[1].attrs["axes"][0])
                        for n in order if n.op == "sub" and n in self.names
                        and n.inputs[1].op == "mean" and n.inputs[1].inputs[0] is n.inputs[0]
                        and len(n.inputs[1].attrs["axes"]) == 1}
        self.unit_rows = {self.names[n]: n.dims.index(n.attrs["onehot"] if n.op == "input"
                                                      else n.attrs["dim"])
                          for n in order if n.attrs.get("onehot") is not None and
                          isinstance(n.attrs["onehot"], str) or n.op == "onehot"}
        self._bases = {}
        self._sizes = {}

    @staticmethod
    def _assign_letters(order, taken):
        """Conventional letters, whatever the declaration order: the batch dim ``i``, then
        the dims of the data the model multiplies (``X_ij``), other data, params, rest."""
        letters = [c for c in INDEX_LETTERS if c not in taken]
        data = [n for n in order if n.op == "input" and n.dims]
        features = set()        # data times params: X in X @ W or sum(X * W, axis="d")
        for n in order:
            pair = n.inputs if n.op == "matmul" else n.inputs[0].inputs if _is_product(n) else ()
            if len(pair) == 2 and n.op == "matmul" or any(x.op == "param" for x in pair):
                features.update(x for x in pair if x.op == "input")
        batch = batch_dim(data)
        dims = [batch] if batch is not None else []
        rank = {"input": 1, "param": 2}
        for node in sorted(order, key=lambda n: (rank.get(n.op, 3) - (n in features),)):
            dims.extend(d for d in node.dims if d not in dims)
        return {d: letters[k % len(letters)] + ("'" * (k // len(letters)))
                for k, d in enumerate(dims)}

    def name(self, node):
        return self.names[node]

    def unit_sums(self, expr):
        """The sums a textbook knows: ``sum_c Y_ic = 1`` for a one-hot ``Y`` (declared
        ``onehot=``, or ``sg.onehot``) and ``sum_i (x_ij - mu_j) = 0`` for ``x`` centred by
        its own mean along ``i``; then whole-number floats back to integers."""
        if self.unit_rows:
            expr = expr.replace(lambda e: _sum_of(e, self.unit_rows) is not None,
                                lambda e: sp.S.One)
        if self.centred and expr.has(sp.Sum):
            expr = expr.replace(self._has_centred_term, self._drop_centred)
        return tidy_numbers(expr)

    def _has_centred_term(self, e):
        if not isinstance(e, sp.Sum) or len(e.limits) != 1:
            return False
        return any(self._is_centred(t, e.limits[0][0]) for t in sp.Add.make_args(e.function))

    def _drop_centred(self, e):
        k = e.limits[0][0]
        kept = [t for t in sp.Add.make_args(e.function) if not self._is_centred(t, k)]
        return sp.Add(*[collapse_sum(t, e.limits[0]) for t in kept])

    def _is_centred(self, term, k):
        """``c * x_ij`` with ``x`` centred along the position that index ``k`` fills."""
        factors = [f for f in sp.Mul.make_args(term) if f.has(k)]
        return len(factors) == 1 and _sum_position(factors[0], k, self.centred)

    def same_as(self, node):
        """A named node computing what ``node`` computes (same op, inputs, attrs), or it."""
        key = (node.op, tuple(map(id, node.inputs)), node.dims, repr(sorted(node.attrs.items())))
        for other in self.names:
            if (other.op, tuple(map(id, other.inputs)), other.dims,
                    repr(sorted(other.attrs.items()))) == key:
                return other
        return node

    def letter(self, dim):
        if dim not in self._letters:
            self._letters[dim] = INDEX_LETTERS[len(self._letters) % len(INDEX_LETTERS)]
        return self._letters[dim]

    def index(self, dim, primes=0):
        return sp.Symbol(self.letter(dim) + "'" * primes, integer=True)

    def canonical(self, node):
        """The node's own index per dim: {dim: Symbol}."""
        return {d: self.index(d) for d in node.dims}

    def size(self, dim):
        dim = base(dim)                   # the axes H' and H of a square tensor: one size
        if dim not in self._sizes:
            self._sizes[dim] = sp.Symbol(dim, integer=True, positive=True)
        return self._sizes[dim]

    def base(self, name, scalar):
        key = (name, scalar)
        if key not in self._bases:
            self._bases[key] = sp.Symbol(name, real=True) if scalar else sp.IndexedBase(name, real=True)
        return self._bases[key]

    def symbol(self, node, idx, name=None):
        """``node``'s element at ``idx`` as a symbol: ``X[i, j]``, ``sigma[i]`` or ``L``."""
        while node.op == "transpose":  # by-name indexing makes a transpose invisible
            node = node.inputs[0]
        if node.op == "const":
            return constant(node)
        if node in self.literal and node.name is None:     # lambda / 2: written out
            return get_op(node.op).element(_Literal(self, node), node, {})
        if node.op == "count":
            return sp.Mul(*[self.size(d) for d in node.attrs["dims"]])
        name = name or self.names[node]
        if not node.dims:
            return self.base(name, True)
        return self.base(name, False)[tuple(idx[d] for d in node.dims)]

    def adjoint(self, node, idx):
        """The adjoint dL/d(node) at ``idx``, written with a bar: ``bar{sigma}[i]``."""
        while node.op == "transpose":
            node = node.inputs[0]
        return self.symbol(node, idx, name=f"bar_{self.names[node]}")


def _sum_of(e, rows):
    """For ``Sum(Y[.., k, ..], k)`` with ``Y`` in ``rows`` (name -> position of k), Y."""
    if not isinstance(e, sp.Sum) or len(e.limits) != 1:
        return None
    return e.function if _sum_position(e.function, e.limits[0][0], rows) else None


def _sum_position(f, k, rows):
    """``f`` is ``Y[..]`` with ``k`` exactly at the position ``rows`` gives for ``Y``."""
    pos = rows.get(str(f.base.label)) if isinstance(f, sp.Indexed) else None
    return pos is not None and f.indices[pos] == k and \
        not any(i.has(k) for j, i in enumerate(f.indices) if j != pos)


def collapse_sum(term, limit):
    """``sum_k term`` with the factors free of k pulled out."""
    k = limit[0]
    outside = [f for f in sp.Mul.make_args(term) if not f.has(k)]
    inside = [f for f in sp.Mul.make_args(term) if f.has(k)]
    if not inside:
        return sp.Mul(*outside) * (limit[2] - limit[1] + 1)
    return sp.Mul(*outside) * sp.Sum(sp.Mul(*inside), limit)


def _literals(order):
    """Scalar nodes made of numbers and hyperparameters only (``lambda / 2``): they are
    written out wherever they appear, never given a name of their own."""
    out = set()
    for n in order:
        if n.op == "const" or (n.op == "input" and "symbol" in n.attrs):
            out.add(n)
        elif not n.dims and n.inputs and get_op(n.op).family == "elementwise" \
                and all(x in out for x in n.inputs):
            out.add(n)
    return {n for n in out if n.op != "input"}


class _Literal:
    """The element context of a literal node: operands are their own expressions."""

    def __init__(self, notation, node):
        self.notation, self.node = notation, node

    def arg(self, k, idx):
        return self.notation.symbol(self.node.inputs[k], idx)


def constant(node):
    """A constant as the user wrote it: an exact SymPy number (``pi``), an integer, or a
    decimal float (``0.001`` stays 0.001, not 1/1000)."""
    if "exact" in node.attrs:
        return node.attrs["exact"]
    value = node.attrs["value"]
    return sp.Integer(value) if float(value).is_integer() else sp.Float(value)


def tidy_numbers(expr):
    """Whole-number floats (0.5 * 2 = 1.0) back to integers, so 1.0 r reads r."""
    floats = {f: sp.Integer(int(f)) for f in expr.atoms(sp.Float) if float(f).is_integer()}
    return expr.xreplace(floats) if floats else expr


def split_name(name):
    """``sigma12`` -> (``sigma``, ``12``): trailing digits become a layer superscript."""
    m = re.match(r"^(.*?[^\d])(\d+)$", name)
    return (m.group(1), m.group(2)) if m else (name, "")


def add_name(notation, node, base):
    """Name a node that is not in the forward graph (e.g. the softmax inside a fused loss)."""
    if node in notation.names:
        return notation.names[node]
    taken = set(notation.names.values())
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}{k}"
    notation.names[node] = name
    return name

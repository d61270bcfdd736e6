"""Graph preparation for code generation: hash-consing (CSE), small rewrites, names.

The forward graph and the backward graph from ``symgrad.diff.reverse.backward``
are merged into one DAG in which structurally identical nodes are one node
(hash-consing), so a value the backward pass recomputes (``softmax(s)``,
``1 - y``, ``X.T``) is computed once. A few local rewrites keep the emitted
code close to what one would write by hand; each is exact (one, ``A @ u + A @ v ->
A @ (u + v)``, in real arithmetic only: it changes the last bits).
"""
import builtins
import keyword

from symgrad.graph.dims import base
from symgrad.graph.names import comment_text, safe_identifier
from symgrad.graph.node import Node, describe
from symgrad.graph.registry import get_op
from symgrad.graph.traverse import topo_order


def _freeze(value):
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


class Canon:
    """Maps original nodes to canonical ones; identical structure -> one node."""

    def __init__(self):
        self.table = {}   # structural key -> canonical node
        self.of = {}      # original node -> canonical node

    def key(self, op, inputs, dims, dtype, attrs):
        return (op, tuple(id(x) for x in inputs), dims, dtype, _freeze(attrs))

    def make(self, op, inputs, dims, dtype, attrs, name=None):
        key = self.key(op, inputs, dims, dtype, attrs)
        node = self.table.get(key)
        if node is None:
            node = Node(op, inputs, dims, dtype, attrs, name)
            self.table[key] = node
        elif node.name is None and name is not None:
            node.name = name
        return node

    def find(self, op, inputs, dims, dtype, attrs):
        return self.table.get(self.key(op, inputs, dims, dtype, attrs))

    def add(self, outputs):
        """Canonicalise everything ``outputs`` depend on; returns their canonical nodes."""
        for node in topo_order(list(outputs)):
            if node in self.of:
                continue
            if node.op in ("input", "param"):
                self.of[node] = node   # leaves are themselves
                continue
            inputs = tuple(self.of[x] for x in node.inputs)
            self.of[node] = self._rewrite(node, inputs)
        return [self.of[o] for o in outputs]

    def _rewrite(self, node, inputs):
        op, dims, attrs = node.op, node.dims, node.attrs
        if op == "const":
            return self.make("const", (), (), node.dtype, {"value": float(attrs["value"])})
        folded = _fold(op, inputs, attrs)
        if folded is not None:
            return self.make("const", (), (), node.dtype, {"value": folded})
        if len(inputs) == 2 and get_op(op).family == "elementwise":
            # expand(c) next to an operand with all the dims: the constant broadcasts itself
            inputs = tuple(x.inputs[0] if x.op == "expand" and x.inputs[0].op == "const"
                           and inputs[1 - k].dims == dims else x for k, x in enumerate(inputs))
        if op == "mul":
            for k in (0, 1):
                if _is_const(inputs[k], 1.0) and inputs[1 - k].dims == dims:
                    return inputs[1 - k]          # 1 * g: the seed adjoint
        if op in ("neg", "transpose") and inputs[0].op == op:
            return inputs[0].inputs[0]            # -(-x), x.T.T
        if op == "expand" and tuple(attrs["dims"]) == inputs[0].dims:
            return inputs[0]
        if op == "add":
            shared = _shared_product(self, inputs, dims)
            if shared is not None:
                return shared
        if op == "sum" and inputs[0].op == "mul" and len(attrs["axes"]) == 1:
            product = _as_matmul(self, inputs[0], attrs["axes"][0], dims)
            if product is not None:
                return product
        if op == "step":
            # relu'(x) = step(x) = step(relu(x)): read the activation the forward pass
            # already stored, so the pre-activation needs no buffer of its own.
            r = self.find("relu", inputs, dims, node.dtype, {})
            if r is not None:
                inputs = (r,)
        return self.make(op, inputs, dims, node.dtype, attrs, node.name)


def _as_matmul(canon, mul, k, dims):
    """``sum(a * b, axis=k)`` as the matrix product it is (gemm, gemv or a dot), with the
    operands' arrays read in place: the product is never materialised. ``a`` and ``b``
    are 1-D or 2-D, share only ``k``, and the result is ``a``'s free dim then ``b``'s."""
    a, b = (x.inputs[0] if x.op == "expand" else x for x in mul.inputs)
    if a.dims == b.dims == (k,):
        left, right, free = a, b, ([], [])
    else:
        if any(base(d) != d for d in a.dims + b.dims) or a.ndim > 2 or b.ndim > 2 \
                or k not in a.dims or k not in b.dims \
                or set(mul.dims) != set(a.dims) | set(b.dims):
            return None
        fa, fb = [d for d in a.dims if d != k], [d for d in b.dims if d != k]
        if tuple(fa + fb) == dims:
            left, right, free = a, b, (fa, fb)
        elif tuple(fb + fa) == dims:
            left, right, free = b, a, (fb, fa)
        else:
            return None
    if left.ndim == 2 and left.dims[-1] != k:
        left = canon.make("transpose", (left,), left.dims[::-1], "float", {})
    if right.ndim == 2 and right.dims[0] != k:
        right = canon.make("transpose", (right,), right.dims[::-1], "float", {})
    attrs = {"contract": (k, k), "out_a": tuple((d, d) for d in free[0]),
             "out_b": tuple((d, d) for d in free[1])}
    return canon.make("matmul", (left, right), dims, "float", attrs)


def _shared_product(canon, inputs, dims):
    """``A @ u + A @ v`` as ``A @ (u + v)`` (and ``u @ B + v @ B`` as ``(u + v) @ B``): a
    param reached by two paths (``softplus(z) - t * z`` with ``z = X @ w``) gets its two
    gradient products as one, one pass over ``A`` instead of two. Exact in real
    arithmetic; the rounding of the last bits changes."""
    a, b = inputs
    if a.op != "matmul" or b.op != "matmul" or a.attrs != b.attrs or a.dims != dims \
            or b.dims != dims:
        return None
    for k in (0, 1):
        other = 1 - k
        if a.inputs[k] is b.inputs[k] and a.inputs[other].dims == b.inputs[other].dims:
            u, v = a.inputs[other], b.inputs[other]
            total = canon.make("add", (u, v), u.dims, "float", {})
            operands = (a.inputs[0], total) if k == 0 else (total, a.inputs[1])
            return canon.make("matmul", operands, dims, "float", a.attrs)
    return None


def _is_const(node, value):
    return node.op == "const" and node.attrs["value"] == value


def _fold(op, inputs, attrs):
    """Fold an elementwise op of constants (dims ()) to a float, else None."""
    if not inputs or op in ("count", "expand", "onehot") or any(x.op != "const" for x in inputs):
        return None
    if get_op(op).family != "elementwise":
        return None
    import numpy as np
    node = Node(op, inputs, (), "float", attrs)
    value = get_op(op).numpy(node, {}, *[np.float64(x.attrs["value"]) for x in inputs])
    return float(value)


# -- names -------------------------------------------------------------------------
# Builtins and module names the generated code uses; never handed out as variables.
_TAKEN = set(dir(builtins)) | set(keyword.kwlist) | {"np", "math", "numba", "njit"}

# Base names of unnamed nodes, by op: short, like the letters of a derivation.
_BASE = {"matmul": "mm", "sigmoid": "sig", "tanh": "th", "relu": "relu", "softplus": "sp",
         "exp": "ex", "log": "lg", "sqrt": "sq", "abs": "ab", "add": "add", "sub": "sub",
         "mul": "mul", "div": "div", "neg": "neg", "pow": "pw", "sum": "total", "mean": "avg",
         "max": "mx", "softmax": "p", "log_softmax": "logp", "logsumexp": "lse",
         "cross_entropy": "ce", "bce_logits": "bce", "step": "mask", "onehot": "onehot",
         "clog": "lg", "clog_grad": "dlg", "equal": "eq", "sign": "sgn", "expand": "ex",
         "transpose": "tr", "count": "cnt"}


class Namer:
    """Hands out unique identifiers; user names first, via ``safe_identifier``."""

    def __init__(self):
        self.used = set(_TAKEN)

    def fresh(self, base):
        base = safe_identifier(base)
        name, k = base, 2
        while name in self.used:
            name, k = f"{base}{k}", k + 1
        self.used.add(name)
        return name


def node_names(order, namer, adjoint_of=None, known=None):
    """Identifier for every node in ``order``: user names, ``g_<name>`` for adjoints."""
    names = dict(known or {})
    for node in order:                      # user names first: they win collisions
        if node.name is not None and node not in names:
            names[node] = namer.fresh(node.name)
    for node in order:
        if node in names:
            continue
        fwd = (adjoint_of or {}).get(node)
        if fwd is not None and fwd in names:
            names[node] = namer.fresh("g_" + names[fwd])
        else:
            names[node] = namer.fresh(_BASE.get(node.op, node.op))
    return names


def comment_for(node, names, adjoint_of=None):
    """A comment naming the node: the user's name, ``dL/d<node>`` for an adjoint, or
    the op applied to its inputs' variables. Escaped with ``comment_text``."""
    if node.name is not None:
        return comment_text(node.name)
    fwd = (adjoint_of or {}).get(node)
    if fwd is not None:
        return comment_text("dL/d" + (fwd.name or names.get(fwd, "?")))
    args = ", ".join(repr(x.attrs["value"]) if x.op == "const" else names.get(x, describe(x, 0))
                     for x in node.inputs)
    return comment_text(f"{node.op}({args})")

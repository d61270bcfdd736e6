"""The op space as data: one term per (op, axis, rank) combination, and models that sum them.

A term is a tree of :class:`Leaf` and :class:`Call` whose ``repr`` is the Python that builds
it (``softmax(p_NKC, axis=-2)``, ``take(p_NC, y_N, axis='C')``, ``p_BNK @ r_BKC``); leaf
kinds say what values a leaf gets (see :func:`_values`). :data:`CATALOGUE` lists every
combination; terms whose graphs are the same up to leaf names (``axis=0``, ``axis=-3`` and
``axis='N'`` name one node) are compiled once, ``TERMS_PER_MODEL`` to a model
(:data:`CHUNKS`). Used by ``test_opspace.py``.
"""
import itertools
import operator
from dataclasses import dataclass

import numpy as np
import sympy as sp

import symgrad as sg
from symgrad.graph.dims import base, broadcast_dims
from symgrad.graph.node import apply
from symgrad.graph.traverse import topo_order

R = {0: (), 1: ("N",), 2: ("N", "K"), 3: ("N", "K", "C")}   # rank r: the dims R[r]
# Numba's compile time grows faster than the function: ~15 terms per model is the cheapest.
TERMS_PER_MODEL = 15

# A user function with a Piecewise body, a parameter and a CSE-able subexpression.
WIGGLE = sg.elementwise("opspace_wiggle", lambda x, a: sp.Piecewise(
    (a * sp.sin(x) * sp.exp(-x * x), x > 0), (sp.tanh(x) ** 2 + sp.exp(-x * x) / 3, True)),
    params={"a": 1.5})
LAM = sp.Symbol("lam_opspace", positive=True)       # a hyperparameter


# -- terms: leaves and calls that print as the Python that builds them ------------------------
@dataclass(frozen=True)
class Leaf:
    kind: str            # p r q u z: params; x w b s v Y y: data (see _values); lam
    dims: tuple = ()
    of: str = None       # integer labels: the dim they index

    def __repr__(self):
        return "lam" if self.kind == "lam" else f"{self.kind}_{''.join(self.dims) or 's'}"


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple
    kw: tuple = ()

    def __repr__(self):
        a = [repr(x) for x in self.args]
        if self.fn in _INFIX:
            return f"({a[0]} {self.fn} {a[1]})"
        if self.fn == "neg":
            return f"-{a[0]}"
        if self.fn == "T":
            return f"{a[0]}.T"
        if self.fn == "sqrt_lam":
            return f"(sp.sqrt(lam) * {a[1]})"
        kw = "".join(f", {k}={v!r}" for k, v in self.kw)
        head = f"apply({self.fn[6:]!r}, " if self.fn.startswith("apply:") else f"{self.fn}("
        return f"{head}{', '.join(a)}{kw})".replace("(, ", "(")


_INFIX = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
          "@": operator.matmul, "<": operator.lt, "<=": operator.le, ">": operator.gt,
          ">=": operator.ge, "**": operator.pow}


def leaf(kind, *dims, of=None):
    return Leaf(kind, tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], tuple)
                else tuple(dims), of)


def call(fn, *args, **kw):
    return Call(fn, args, tuple(kw.items()))


def _build(e, leaf_node):
    if isinstance(e, Leaf):
        return leaf_node(e)
    if not isinstance(e, Call):
        return e                                       # a number
    args = [_build(x, leaf_node) for x in e.args]
    kw = dict(e.kw)
    if e.fn in _INFIX:
        return _INFIX[e.fn](*args)
    if e.fn == "neg":
        return -args[0]
    if e.fn == "T":
        return args[0].T
    if e.fn.startswith("apply:"):
        return apply(e.fn[6:], *args, **kw)
    if e.fn == "wiggle":
        return WIGGLE(*args, **kw)
    if e.fn == "sqrt_lam":                             # a SymPy expression of a hyperparameter
        return sp.sqrt(LAM) * args[1]
    return getattr(sg, e.fn)(*args, **kw)


# -- the catalogue: (op, axis, rank) -> term ------------------------------------------------------
def _axis_label(axis):
    return "default" if axis is _DEFAULT else repr(axis)


_DEFAULT = object()


def _with_axis(fn, *args, axis=_DEFAULT, **kw):
    return call(fn, *args, **kw) if axis is _DEFAULT else call(fn, *args, axis=axis, **kw)


def reduction_axes(r):
    """Every valid ``axis`` of sum/mean/max on a rank-r tensor: None, () (no reduction),
    each int (both signs), each dim name, every tuple of 2+ axes as ints and as names, a
    one-element tuple and a tuple mixing an int and a name."""
    dims = R[r]
    out = [None, (), *range(r), *range(-r, 0), *dims]
    for size in range(2, r + 1):
        for comb in itertools.combinations(range(r), size):
            out += [comb, tuple(dims[i] for i in comb)]
    if r >= 1:
        out += [(0,), (dims[-1],)]
    if r >= 2:
        out += [(-1, dims[0])]
    return out


def one_axis(r):
    """Every valid single axis of a rank-r tensor (softmax, logsumexp, take), and none."""
    return [_DEFAULT, *range(r), *range(-r, 0), *R[r]]


UNARY = {"neg": "p", "exp": "p", "log": "q", "sqrt": "q", "abs": "p", "sigmoid": "p",
         "tanh": "p", "relu": "p", "softplus": "p", "sin": "p", "cos": "p", "log1p": "q",
         "expm1": "p", "erf": "p", "gelu": "p", "silu": "p", "elu": "p", "leaky_relu": "p",
         "square": "p", "wiggle": "p", "apply:clog": "u"}
UNARY_KW = {"elu": {"alpha": 0.5}, "leaky_relu": {"slope": 0.2}, "wiggle": {"a": -0.7}}
MASKS = ("apply:step", "apply:sign")                   # constant: times a param
EXPONENTS = {2: "p", 3: "p", 0.5: "q", -1: "q", -1.5: "q", 1.7: "q", -2: "q"}


def unary_terms():
    for r in range(4):
        d = R[r]
        for fn, kind in UNARY.items():
            yield (fn, "-", str(r)), call(fn, leaf(kind, d))
            if fn in UNARY_KW:
                yield (fn, "-", f"{r} {UNARY_KW[fn]}"), call(fn, leaf(kind, d), **UNARY_KW[fn])
        for fn in MASKS:
            yield (fn, "-", str(r)), call("*", call(fn, leaf("p", d)), leaf("z", d))
        yield ("apply:clog_grad", "-", str(r)), call("*", call("apply:clog_grad", leaf("v", d)),
                                                     leaf("z", d))
        for c, kind in EXPONENTS.items():
            yield ("**", f"exponent {c}", str(r)), call("**", leaf(kind, d), c)
        if r:
            yield ("T", "-", str(r)), call("T", leaf("p", d))
            yield ("clip", "-", str(r)), call("clip", leaf("p", d), -0.5, 0.5)


def operand_pairs():
    """(rank label, a dims, b dims): equal dims, suffix and prefix broadcasts, a scalar
    operand, the same dims in another order, and disjoint dims (an outer product)."""
    for r in range(4):
        yield f"{r}x{r}", R[r], R[r]
        if r:
            yield f"{r}x0", R[r], ()
            yield f"0x{r}", (), R[r]
        if r >= 2:
            yield f"{r}x1 last", R[r], R[r][-1:]
            yield f"1x{r} first", R[r][:1], R[r]
    yield "2x2 swapped", ("N", "K"), ("K", "N")
    yield "3x2 middle", ("N", "K", "C"), ("N", "C")
    yield "1x1 outer", ("N",), ("K",)
    yield "2x1 outer", ("N", "K"), ("C",)
    yield "1x2 outer", ("C",), ("N", "K")


BINARY = {"+": ("p", "r"), "-": ("p", "r"), "*": ("p", "r"), "/": ("p", "q"),
          "maximum": ("p", "r"), "minimum": ("p", "r")}
COMPARE = ("<", "<=", ">", ">=", "apply:equal")


def _result_dims(*dims):
    return broadcast_dims(*dims)


def binary_terms():
    for label, da, db in operand_pairs():
        out = _result_dims(da, db)
        for fn, (ka, kb) in BINARY.items():
            a, b = leaf(ka, da), leaf(kb, db)
            yield (fn, "-", label), call(fn, a, b)
        for fn in COMPARE:
            yield (fn, "-", label), call("*", call(fn, leaf("p", da), leaf("r", db)),
                                         leaf("z", out))
        yield ("where", "-", label), call("where", leaf("b", da), leaf("p", db), leaf("r", da))
    for r in range(1, 4):
        d = R[r]
        for fn, (ka, kb) in BINARY.items():
            yield (fn, "-", f"{r}xnumber"), call(fn, leaf(ka, d), 2.5)
            if fn != "/":
                yield (fn, "-", f"numberx{r}"), call(fn, -0.5, leaf(kb, d))
        yield ("/", "-", f"numberx{r}"), call("/", 2.5, leaf("q", d))
        yield ("where", "-", f"{r} branch number"), call("where", leaf("b", d), leaf("p", d), 0.0)
        yield ("where", "-", f"{r} mask < "), call("where", call("<", leaf("x", d), 0.3),
                                                   leaf("p", d), call("*", leaf("r", d), 2.0))
        yield ("where", "-", f"{r}x0x1"), call("where", leaf("b", d), leaf("p"), leaf("r", d[-1:]))


def reduction_terms():
    for r in range(4):
        for fn in ("sum", "mean", "max"):
            for axis in reduction_axes(r):
                yield (fn, _axis_label(axis), str(r)), call(fn, leaf("p", R[r]), axis=axis)
        if r:
            for fn in ("sum", "mean", "max"):
                yield (fn, "keepdims", str(r)), call(fn, leaf("p", R[r]), axis=0, keepdims=True)
            for fn in ("softmax", "log_softmax", "logsumexp"):
                for axis in one_axis(r):
                    term = _with_axis(fn, leaf("p", R[r]), axis=axis)
                    yield (fn, _axis_label(axis), str(r)), term


def matmul_terms():
    pairs = {"1@1": (("K",), ("K",)), "2@1": (("N", "K"), ("K",)), "1@2": (("K",), ("K", "C")),
             "2@2": (("N", "K"), ("K", "C")), "3@1": (("B", "N", "K"), ("K",)),
             "1@3": (("K",), ("B", "K", "C")), "3@2": (("B", "N", "K"), ("K", "C")),
             "2@3": (("N", "K"), ("B", "K", "C")), "3@3": (("B", "N", "K"), ("B", "K", "C"))}
    for label, (da, db) in pairs.items():
        yield ("@", "-", label), call("@", leaf("p", da), leaf("r", db))
    yield ("@", "-", "2T@1"), call("@", call("T", leaf("p", "K", "N")), leaf("r", "K"))
    yield ("@", "-", "1@2T"), call("@", leaf("p", "N"), call("T", leaf("r", "C", "N")))
    yield ("@", "-", "2T@2T"), call("@", call("T", leaf("p", "K", "N")),
                                    call("T", leaf("r", "C", "K")))
    yield ("@", "-", "2@2 data"), call("@", leaf("x", "N", "K"), leaf("p", "K", "C"))
    # sum-of-product contractions (1-D/2-D ones compile to BLAS calls)
    contractions = [
        ("1*1", ("K",), ("K",), "K"), ("2*1", ("N", "K"), ("K",), "K"),
        ("1*2", ("K",), ("K", "C"), "K"), ("2*2", ("N", "K"), ("K", "C"), "K"),
        ("2*2", ("N", "K"), ("K", "C"), 1), ("2*2", ("N", "K"), ("K", "C"), -2),
        ("2T*2", ("K", "N"), ("K", "C"), "K"), ("2*2T", ("N", "K"), ("C", "K"), "K"),
        ("2*2 rows", ("N", "K"), ("N", "K"), "K"), ("2*1 other", ("N", "K"), ("K",), "N"),
        ("3*3", ("B", "N", "K"), ("B", "K", "C"), "K"), ("2*2", ("N", "K"), ("K", "C"), ("N", "K")),
        ("3*2", ("N", "K", "C"), ("K", "C"), "C")]
    for label, da, db, axis in contractions:
        yield ("sum(a*b)", _axis_label(axis), label), call(
            "sum", call("*", leaf("p", da), leaf("r", db)), axis=axis)


def square_terms():
    """Square tensors: a dim used twice (("C", "C"): labels C', C) or three times."""
    W, S3 = leaf("p", "C", "C"), leaf("p", "N", "C", "C")
    for fn in ("sum", "mean", "max"):
        for axis in (0, 1, -1, "C", "C'", None, (0, 1)):
            yield (fn, _axis_label(axis), "CC"), call(fn, W, axis=axis)
        for axis in (1, 2, "C'", (1, 2)):
            yield (fn, _axis_label(axis), "NCC"), call(fn, S3, axis=axis)
    for fn in ("softmax", "log_softmax", "logsumexp"):
        for axis in (0, 1, "C'", "C"):
            yield (fn, _axis_label(axis), "CC"), call(fn, W, axis=axis)
        yield (fn, "1", "NCC"), call(fn, S3, axis=1)
    C3 = leaf("p", "C", "C", "C")
    yield ("sum", "0", "CCC"), call("sum", C3, axis=0)
    yield ("softmax", "1", "CCC"), call("softmax", C3, axis=1)
    yield ("T", "-", "CC"), call("T", W)
    yield ("T", "-", "NCC"), call("T", S3)
    yield ("@", "-", "CC@1"), call("@", W, leaf("r", "C"))
    yield ("@", "-", "1@CC"), call("@", leaf("r", "C"), W)
    yield ("@", "-", "CC@CC"), call("@", W, leaf("r", "C", "C"))
    yield ("@", "-", "NC@CC"), call("@", leaf("r", "N", "C"), W)
    yield ("@", "-", "NCC@1"), call("@", S3, leaf("r", "C"))
    yield ("*", "-", "CCxCC.T"), call("*", W, call("T", leaf("r", "C", "C")))
    yield ("+", "-", "CCx1"), call("+", W, leaf("r", "C"))
    yield ("tanh", "-", "CC"), call("tanh", W)
    yield ("take", "0", "CC"), call("take", W, leaf("y", "C", of="C"), axis=0)
    # labels y_C pair with the last axis (C), so along it only 0-d labels are left
    yield ("take", "1", "CC"), call("take", W, leaf("y", of="C"), axis=1)


def selection_terms():
    takes = [(("C",), (), "C"), (("N", "C"), ("N",), "C"), (("N", "C"), (), "C"),
             (("N", "C"), ("C",), "N"), (("N", "K", "C"), ("N", "K"), "C"),
             (("N", "K", "C"), ("N",), "C"), (("N", "K", "C"), ("N", "C"), "K"),
             (("N", "K", "C"), ("K", "C"), "N")]
    for ds, dy, along in takes:
        r = len(ds)
        pos = ds.index(along)
        for axis in (pos, pos - r, along) + ((_DEFAULT,) if pos == r - 1 else ()):
            yield ("take", _axis_label(axis), f"{r} labels {len(dy)}"), _with_axis(
                "take", leaf("p", ds), leaf("y", dy, of=along), axis=axis)
    for dy in ((), ("N",), ("N", "K")):
        yield ("onehot", "C", str(len(dy))), call("*", call("onehot", leaf("y", dy, of="C"), "C"),
                                                  leaf("z", dy + ("C",)))


def loss_terms():
    for r in range(1, 4):
        d = R[r]
        yield ("cross_entropy", "int", str(r)), call("cross_entropy", leaf("p", d),
                                                      leaf("y", d[:-1], of=d[-1]))
        yield ("cross_entropy", "soft", str(r)), call("cross_entropy", leaf("p", d), leaf("Y", d))
        yield ("hinge", "int", str(r)), call("hinge", leaf("p", d), leaf("y", d[:-1], of=d[-1]),
                                             margin=0.5)
    for r in range(4):
        d = R[r]
        yield ("binary_cross_entropy", "sigmoid", str(r)), call(
            "binary_cross_entropy", call("sigmoid", leaf("p", d)), leaf("b", d))
        yield ("binary_cross_entropy", "from_logits", str(r)), call(
            "binary_cross_entropy", leaf("p", d), leaf("b", d), from_logits=True)
        yield ("binary_cross_entropy", "probs", str(r)), call(
            "binary_cross_entropy", leaf("u", d), leaf("b", d))
        yield ("hinge", "float", str(r)), call("hinge", leaf("p", d), leaf("s", d))
        yield ("huber", "-", str(r)), call("huber", leaf("p", d), leaf("x", d))
        yield ("huber", "delta 0.5", str(r)), call("huber", leaf("p", d), leaf("x", d), delta=0.5)
        for fn in ("mse", "sse"):
            yield (fn, "-", str(r)), call(fn, leaf("p", d), leaf("x", d))
        for fn in ("l1", "l2"):
            yield (fn, "-", str(r)), call(fn, leaf("p", d))


def internal_terms():
    """Ops that gradients make (expand, count) built directly, and hyperparameters."""
    yield ("apply:expand", "-", "0->1"), call("apply:expand", leaf("p"), dims=("N",))
    yield ("apply:expand", "-", "1->2"), call("apply:expand", leaf("p", "N"), dims=("N", "K"))
    yield ("apply:expand", "-", "2->2 reorder"), call("apply:expand", leaf("p", "N", "K"),
                                                       dims=("K", "N"))
    yield ("apply:expand", "-", "1->3"), call("apply:expand", leaf("p", "K"), dims=("N", "K", "C"))
    for dims in ((), ("N",), ("N", "K")):
        yield ("apply:count", "-", str(len(dims))), call("*", call("apply:count", dims=dims),
                                                         leaf("p", dims))
    for r in range(3):
        yield ("hyperparameter", "-", str(r)), call("*", leaf("p", R[r]), Leaf("lam"))
    yield ("hyperparameter", "sqrt", "1"), call("sqrt_lam", Leaf("lam"), leaf("p", "N"))


CATALOGUE = [t for gen in (unary_terms, binary_terms, reduction_terms, matmul_terms,
                           square_terms, selection_terms, loss_terms, internal_terms)
             for t in gen()]
COMBINATIONS = sorted({key for key, _ in CATALOGUE}, key=repr)


# -- models: a weighted sum of terms ---------------------------------------------------------------
PARAM_KINDS = "prquz"


def weighted(node, k, weight):
    """Term ``k`` as a scalar: ``sum(term * w_dims)`` (a data weight, so its adjoint is not
    all ones), or ``term * w_s`` for a 0-d term."""
    w = weight(node.dims)
    return sg.sum(node * w) if node.dims else node * w


@dataclass(frozen=True)
class Model:
    terms: tuple          # ((key, term), ...)
    sizes: dict
    seed: int
    label: str = ""

    def _repr_pretty_(self, printer, cycle):
        printer.text(repr(self))

    def __repr__(self):
        if len(self.terms) > 1:
            return f"<{self.label}: {len(self.terms)} terms, sizes={self.sizes} seed={self.seed}>"
        used = {base(d) for n in topo_order(self._leafless(self.terms[0][1])) for d in n.dims}
        sizes = {d: n for d, n in self.sizes.items() if d in used}
        return f"{self.formula()}   sizes={sizes} seed={self.seed}"

    def formula(self):
        """The one-line model, as Python: ``L = sum(softmax(p_NK, axis='K') * w_NK)``."""
        parts = []
        for _, term in self.terms:
            node = self._leafless(term)
            parts.append(f"sum({term!r} * w_{''.join(node.dims)})" if node.dims
                         else f"{term!r} * w_s")
        return "L = " + " + ".join(parts)

    @staticmethod
    def _leafless(term):
        cache = {}
        return _build(term, lambda lf: cache.setdefault(lf, _declare(lf, repr(lf))))

    def build(self):
        """(loss, params, data, [(term loss, its params)]): term k's leaves are named
        ``p<k>_NK``, so each param belongs to one term."""
        leaves, data, rng = {}, {}, np.random.default_rng(self.seed)
        parts = []
        for k, (_, term) in enumerate(self.terms):
            mine = {}

            def leaf_node(lf, k=k, mine=mine):
                name = ("lam_opspace" if lf.kind == "lam"
                        else f"{lf.kind}{k}_{''.join(lf.dims) or 's'}")
                if name not in leaves:
                    leaves[name] = _declare(lf, name)
                    data[name] = _values(lf, self.sizes, rng)
                mine[name] = leaves[name]
                return leaves[name]
            node = _build(term, leaf_node)
            value = weighted(node, k, lambda dims, k=k: leaf_node(Leaf("w", dims)))
            params = [n for n in mine.values() if n.op == "param"]
            parts.append((value, params))
        loss = parts[0][0]
        for value, _ in parts[1:]:
            loss = loss + value
        params = [p for _, ps in parts for p in ps]
        return loss, params, data, parts


def _declare(lf, name):
    if lf.kind == "lam":
        return sg.graph.hyper.hyperparameter(LAM)
    if lf.kind in PARAM_KINDS:
        return sg.param(name, lf.dims)
    return sg.tensor(name, lf.dims, dtype=int if lf.kind == "y" else float)


def _values(lf, sizes, rng):
    shape = tuple(sizes[base(d)] for d in lf.dims)
    kind = lf.kind
    if kind == "y":
        return rng.integers(0, sizes[lf.of], size=shape)
    if kind == "lam":
        return np.array(0.3 + rng.random())
    if kind in ("q", "v"):                        # positive: log, sqrt, division, fractional powers
        return 0.5 + np.abs(0.8 * rng.normal(size=shape))
    if kind == "u":                               # probabilities
        return 0.1 + 0.8 * rng.random(shape)
    if kind == "b":
        return (rng.random(shape) > 0.5) * 1.0
    if kind == "s":
        return np.where(rng.random(shape) > 0.5, 1.0, -1.0)
    if kind == "Y":
        w = rng.random(shape) + 0.1
        return w / w.sum(axis=-1, keepdims=True)
    return 0.8 * rng.normal(size=shape)


def signature(node, leaves=None):
    """The graph of ``node`` up to leaf names: two terms with one signature generate the
    same code (``sum(p, axis=0)``, ``sum(p, axis=-3)`` and ``sum(p, axis='N')`` are one
    node), so only the first is compiled."""
    leaves = {} if leaves is None else leaves
    if node.op in ("input", "param"):
        return (node.op, node.dims, node.dtype, leaves.setdefault(node, len(leaves)))
    return (node.op, node.dims, node.dtype, repr(sorted(node.attrs.items(), key=repr)),
            tuple(signature(x, leaves) for x in node.inputs))


def _distinct(catalogue):
    """The catalogue's terms with distinct signatures (the first of each), and for every
    term the index of the compiled one with its signature."""
    first, same_as = {}, []
    for key, term in catalogue:
        node = Model._leafless(term)
        same_as.append(first.setdefault(repr(signature(node)), len(first)))
    reps = {v: k for k, v in reversed(list(enumerate(same_as)))}
    return [catalogue[reps[v]] for v in range(len(first))], same_as


COMPILED_TERMS, SAME_AS = _distinct(CATALOGUE)
CHUNKS = [tuple(COMPILED_TERMS[k:k + TERMS_PER_MODEL])
          for k in range(0, len(COMPILED_TERMS), TERMS_PER_MODEL)]

"""Graph nodes: tensors with named dims, params, constants and op results.

A :class:`Node` is immutable apart from its display name. Nodes hash by
identity, so they can key dicts of values and adjoints. Arithmetic operators
build new nodes through the op table (``symgrad.graph.registry``).
"""
import itertools
import numbers

from symgrad.errors import DeclarationError
from symgrad.graph.dims import canonical, check_dims
from symgrad.graph.hyper import as_scalar_node, sympy_error
from symgrad.graph.names import check_name
from symgrad.graph.registry import get_op

_ids = itertools.count()

FLOAT, INT = "float", "int"


class Node:
    """One vertex of a computation graph."""

    __slots__ = ("op", "inputs", "dims", "dtype", "attrs", "name", "id", "__weakref__")
    __array_priority__ = 1000  # so ndarray @ node and 2.0 * node reach our operators

    def __init__(self, op, inputs, dims, dtype, attrs=None, name=None):
        self.op = op
        self.inputs = tuple(inputs)
        self.dims = tuple(dims)
        self.dtype = dtype
        self.attrs = dict(attrs or {})
        self.name = name
        self.id = next(_ids)

    # -- identity and display ------------------------------------------------
    @property
    def is_leaf(self):
        return self.op in ("input", "param", "const")

    @property
    def display(self):
        """How errors and pictures refer to this node: its name, or a short formula."""
        if self.name is not None:
            return repr(self.name)
        text = describe(self)
        return text if len(text) <= 48 else text[:45] + "..."

    def named(self, name):
        """Give this node a display name (used in derivations, pictures and code)."""
        if self.is_leaf:
            raise DeclarationError(f"{self.display} is a {self.op}; its name is fixed at declaration")
        self.name = check_name(name, "node")
        return self

    @property
    def ndim(self):
        return len(self.dims)

    def __repr__(self):
        kind = {"input": "tensor", "param": "param"}.get(self.op, self.op)
        label = f"{self.name!r}, " if self.name else ""
        return f"<{kind} {label}dims={self.dims}{', int' if self.dtype == INT else ''}>"

    def __bool__(self):
        raise TypeError(f"{self.display} is symbolic; it has no truth value")

    def _sympy_(self):
        raise sympy_error(self)

    def __getitem__(self, key):
        raise TypeError(f"{self.display} cannot be indexed; gather by integer labels with "
                        "sg.take(x, labels, axis=...) or select with sg.where(mask, a, b)")

    # -- comparisons give masks (1.0 where true, else 0.0; no gradient) -------------
    def __lt__(self, other):
        return apply("less", self, other)

    def __le__(self, other):
        return apply("less_equal", self, other)

    def __gt__(self, other):
        return apply("less", other, self)

    def __ge__(self, other):
        return apply("less_equal", other, self)

    # -- operators ------------------------------------------------------------
    def __add__(self, other):
        return apply("add", self, other)

    def __radd__(self, other):
        return apply("add", other, self)

    def __sub__(self, other):
        return apply("sub", self, other)

    def __rsub__(self, other):
        return apply("sub", other, self)

    def __mul__(self, other):
        return apply("mul", self, other)

    def __rmul__(self, other):
        return apply("mul", other, self)

    def __truediv__(self, other):
        return apply("div", self, other)

    def __rtruediv__(self, other):
        return apply("div", other, self)

    def __neg__(self):
        return apply("neg", self)

    def __pos__(self):
        return self

    def __pow__(self, exponent):
        if isinstance(exponent, Node):
            raise DeclarationError(
                f"{self.display} ** {exponent.display}: the exponent must be a number; "
                "write exp(y * log(x)) for a tensor exponent")
        return apply("pow", self, exponent=_number(exponent, "exponent"))

    def __matmul__(self, other):
        return apply("matmul", self, other)

    def __rmatmul__(self, other):
        return apply("matmul", other, self)

    @property
    def T(self):
        return positional(apply("transpose", self)) if self.ndim >= 2 else self

    def sum(self, axis=None):
        return positional(apply("sum", self, axis=axis))

    def mean(self, axis=None):
        return positional(apply("mean", self, axis=axis))

    def max(self, axis=None):
        return positional(apply("max", self, axis=axis))


def _number(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DeclarationError(f"{what} must be a real number, got {value!r}")
    return float(value) if not float(value).is_integer() else int(value)


def as_node(value):
    """Wrap Python, NumPy and SymPy scalars as nodes (SymPy symbols become
    hyperparameters, see :mod:`symgrad.graph.hyper`); pass nodes through."""
    if isinstance(value, Node):
        return value
    scalar = as_scalar_node(value)
    if scalar is not None:
        return scalar
    if getattr(value, "ndim", 0) != 0:
        raise DeclarationError(
            "arrays cannot be mixed into a graph directly; declare them with "
            f"sg.tensor(name, dims) and pass the data at run time (got shape {value.shape})")
    return const(_number(value.item() if hasattr(value, "item") else value, "constant"))


def apply(op_name, *inputs, **attrs):
    """Build the node ``op_name(*inputs)``, checking dims before anything runs."""
    op = get_op(op_name)
    nodes = tuple(as_node(x) for x in inputs)
    lowered = op.lower(nodes, attrs) if op.lower is not None else None
    if lowered is not None:
        return lowered
    dims, dtype = op.infer(nodes, attrs)
    return Node(op_name, nodes, dims, dtype, attrs)


def positional(node):
    """``node`` with its axes labelled by the position rule of :mod:`symgrad.graph.dims`.

    Gradient rules reason by label (the sum over the last axis of ``A (T', T)`` is a
    vector along ``T'``), but what a *user* gets is laid out by position, as in NumPy:
    that vector is relabelled ``(T,)``. The user-facing functions (reductions, ``.T``,
    ``take``) call this; nothing changes for tensors without a repeated dim.
    """
    labels = canonical(node.dims)
    return node if labels == node.dims else apply("relabel", node, dims=labels)


def tensor(name, dims=(), dtype=float, onehot=None):
    """Declare data: an input whose dim sizes are bound from the arrays passed at run time.

    ``onehot="C"`` declares one-hot rows along dim ``C`` (0/1, one 1 per row; checked when
    data is bound), which lets derivations use ``sum_c Y_ic = 1`` as a textbook does.
    """
    name = check_name(name, "tensor")
    dims = check_dims(dims, f"tensor {name!r}")
    if onehot is None:
        return Node("input", (), dims, _dtype(dtype, name), name=name)
    if onehot not in dims or _dtype(dtype, name) != FLOAT:
        raise DeclarationError(f"tensor {name!r}: onehot={onehot!r} must name one of its dims "
                               f"{dims} (and the tensor must be float)")
    return Node("input", (), dims, FLOAT, {"onehot": onehot}, name=name)


def param(name, dims=()):
    """Declare a trainable parameter (always floating point)."""
    name = check_name(name, "param")
    return Node("param", (), check_dims(dims, f"param {name!r}"), FLOAT, name=name)


def const(value, exact=None):
    """A constant; ``exact`` is the SymPy number the user wrote (``pi``), for display."""
    return Node("const", (), (), FLOAT, {"value": value} if exact is None
                else {"value": value, "exact": exact})


def _dtype(dtype, name):
    if dtype in (float, "float", "float64", "float32"):
        return FLOAT
    if dtype in (int, "int", "int64", "int32"):
        return INT
    raise DeclarationError(f"tensor {name!r}: dtype must be float or int, got {dtype!r}")


def describe(node, depth=3):
    """A short formula for an unnamed node, e.g. ``sigmoid(X @ w)``."""
    if node.name is not None:
        return node.name
    if node.op == "const":
        return repr(node.attrs["value"])
    if depth == 0:
        return "..."
    args = ", ".join(describe(x, depth - 1) for x in node.inputs)
    return f"{node.op}({args})"

"""Named dimensions: the shape rules that make declarations fail early.

Dims are strings ("N", "d"). Elementwise ops align their operands by dim *name*
(xarray's rule), never by position: a dim present in one operand only is broadcast
along, and operands with no dim in common give the outer product. Sizes are bound
from the data at run time; a name means the same size everywhere (checked by
``bind``, naming both tensors).
"""
from symgrad.errors import DimError


def check_dims(dims, what):
    """Normalise a user's dims argument to a tuple of non-empty strings."""
    if isinstance(dims, str):
        dims = (dims,)
    try:
        dims = tuple(dims)
    except TypeError:
        raise DimError(f"dims of {what} must be a tuple of names, got {dims!r}") from None
    for d in dims:
        # labels of an existing tensor's axes (``A.dims``, maybe ``("T'", "T")``) work too
        if not isinstance(d, str) or not base(d).isidentifier():
            raise DimError(f"dim {d!r} of {what} must be a name such as 'N' or 'd'")
    return canonical(dims)


# -- square tensors: a dim that appears more than once in one tensor -------------------
# Each axis of a tensor has its own *label*. A dim used once is its own label; a dim
# used k times (("H", "H"): an RNN's recurrent weights, (T, T) attention scores) labels
# its last axis "H" and the earlier ones "H'", "H''", ... So, as in NumPy's right
# alignment, an operand with a single "H" pairs with the last "H" axis, and the first
# is reached by name as axis "H'" (or by position). Labels with primes are never valid
# user dim names, so they cannot collide; they all share the size of "H".

def base(label):
    """The dim name of an axis label: ``"H'"`` -> ``"H"``."""
    return label.rstrip("'")


def canonical(dims):
    """Labels for axes with the dim names ``base(d) for d in dims``, by position."""
    names = [base(d) for d in dims]
    later = {}
    out = []
    for k in range(len(names) - 1, -1, -1):
        n = later.get(names[k], 0)
        later[names[k]] = n + 1
        out.append(names[k] + "'" * n)
    return tuple(reversed(out))


def shape_names(dims):
    """The dims as the user declared them (labels without primes)."""
    return tuple(base(d) for d in dims)


def broadcast_dims(*operands):
    """Dims of an elementwise result: operands aligned by name.

    The result has the dims of the operand with the most dims (the first one on a
    tie), followed by the dims of the others that it lacks, in their order. So
    ``(N, C) / (N,)`` is ``(N, C)``, ``(C,) + (N, C)`` is ``(N, C)`` (NumPy agrees
    wherever NumPy's rule applies) and ``(N, D) - (K, D)`` is ``(N, D, K)``.
    """
    dims = list(max(operands, key=len)) if operands else []
    for d in (d for x in operands for d in x):
        if d not in dims:
            dims.append(d)
    return _primes_first(dims)


def _primes_first(dims):
    """Order the axes of one dim so the labels read H'', H', H (by name nothing changes;
    the result's layout then follows the position rule)."""
    out = list(dims)
    for name in {base(d) for d in dims}:
        at = [k for k, d in enumerate(dims) if base(d) == name]
        ranked = sorted((dims[k] for k in at), key=len, reverse=True)
        for k, d in zip(at, ranked):
            out[k] = d
    return tuple(out)


def broadcast(op, a, b):
    """Dims of an elementwise ``op`` on nodes ``a`` and ``b`` (aligned by name)."""
    return broadcast_dims(a.dims, b.dims)


def axis_dim(node, axis, op):
    """The dim name an ``axis`` argument (int or dim name) refers to."""
    if isinstance(axis, str):
        if axis not in node.dims:
            raise DimError(f"{op}: {node.display} has no dim {axis!r}; its dims are {node.dims}")
        return axis
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise DimError(f"{op}: axis must be an int or a dim name, got {axis!r}")
    if not -len(node.dims) <= axis < len(node.dims):
        raise DimError(f"{op}: axis {axis} is out of range for {node.display} with dims {node.dims}")
    return node.dims[axis]

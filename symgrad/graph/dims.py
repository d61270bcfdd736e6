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
        if not isinstance(d, str) or not d.isidentifier():
            raise DimError(f"dim {d!r} of {what} must be a name such as 'N' or 'd'")
    if len(set(dims)) != len(dims):
        raise DimError(f"{what} repeats a dim in {dims}; give each axis its own name")
    return dims


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
    return tuple(dims)


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

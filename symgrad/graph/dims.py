"""Named dimensions: the shape rules that make declarations fail early.

Dims are strings ("N", "d"). Elementwise ops broadcast NumPy-style from the
right, but aligned dims must have the same *name*: ``(N, C) + (C,)`` is fine,
``(N, C) + (H,)`` is an error naming both tensors and both dims. Sizes are
bound from the data at run time; a name means the same size everywhere.
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


def broadcast(op, a, b):
    """Dims of an elementwise ``op`` on nodes ``a`` and ``b`` (right-aligned, same names)."""
    da, db = a.dims, b.dims
    n = min(len(da), len(db))
    if n and da[len(da) - n:] != db[len(db) - n:]:
        raise DimError(
            f"cannot {op} {a.display} with dims {da} and {b.display} with dims {db}: "
            f"trailing dims must match by name ({da[len(da) - n:]} vs {db[len(db) - n:]})")
    return da if len(da) >= len(db) else db


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

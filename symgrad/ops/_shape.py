"""Shape rules shared by the op families, and the NumPy alignment that goes with them."""
import numpy as np

from symgrad.errors import DimError
from symgrad.graph.dims import axis_dim, broadcast
from symgrad.graph.node import FLOAT, INT
from symgrad.ops._lazy import sp


def require_float(op, node):
    if node.dtype == INT:
        raise DimError(
            f"op {op!r} takes floating-point tensors, but {node.display} is an integer "
            "tensor (integer labels go to cross_entropy)")


def unary_infer(op):
    def infer(inputs, attrs):
        require_float(op, inputs[0])
        return inputs[0].dims, FLOAT
    return infer


def binary_infer(op):
    def infer(inputs, attrs):
        a, b = inputs
        require_float(op, a)
        require_float(op, b)
        return broadcast(op, a, b), FLOAT
    return infer


def reduced_axes(op, node, axis):
    """Normalise ``axis`` (None, int, dim name or a tuple of them) to dim names."""
    if axis is None:
        return node.dims
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    axes = tuple(axis_dim(node, a, op) for a in items)
    if len(set(axes)) != len(axes):
        raise DimError(f"{op}: axis {axis!r} names a dim of {node.display} twice")
    return tuple(d for d in node.dims if d in axes)


def reduction_infer(op):
    def infer(inputs, attrs):
        x = inputs[0]
        require_float(op, x)
        # Users pass ``axis``; gradient rules pass the already-named ``axes``.
        axis = attrs["axes"] if "axes" in attrs else attrs.pop("axis", None)
        attrs["axes"] = reduced_axes(op, x, axis)
        return tuple(d for d in x.dims if d not in attrs["axes"]), FLOAT
    return infer


def keep_dims_infer(op):
    """Ops like softmax that normalise along one axis and keep the shape."""
    def infer(inputs, attrs):
        x = inputs[0]
        require_float(op, x)
        if not x.dims:
            raise DimError(f"{op} needs a tensor with at least one dim, got scalar {x.display}")
        attrs["axis"] = axis_dim(x, attrs.get("axis", -1), op)
        return x.dims, FLOAT
    return infer


def pick_dims(idx, dims):
    """The index entries of ``idx`` (dim -> index) for ``dims``, in order."""
    return tuple(idx[d] for d in dims)


def align(x, src, dims):
    """View of array ``x`` (dims ``src``) laid out along ``dims`` (a superset, any order):
    its axes permuted into ``dims`` order, with length-1 axes for the dims it lacks, so
    NumPy's positional broadcasting does what alignment by name means."""
    x = np.asarray(x)
    if tuple(src) == tuple(dims):
        return x
    present = [d for d in dims if d in src]
    x = np.transpose(x, [src.index(d) for d in present]) if x.ndim else x
    return np.reshape(x, [x.shape[present.index(d)] if d in src else 1 for d in dims])


def deltas(idx_out, idx_in, dims):
    """prod_d [idx_out[d] = idx_in[d]]: the Kronecker deltas of a local gradient."""
    return sp.Mul(*[sp.KroneckerDelta(idx_out[d], idx_in[d]) for d in dims])

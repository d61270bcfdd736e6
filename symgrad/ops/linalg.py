"""Linear algebra: matmul (1-D and 2-D operands, contracted dim matched by name) and transpose."""
import sympy as sp

from symgrad.errors import DimError
from symgrad.graph.node import FLOAT, apply
from symgrad.graph.registry import OpDef, register
from symgrad.ops._shape import require_float
from symgrad.ops.reductions import expand


def _matmul_infer(inputs, attrs):
    a, b = inputs
    for x in (a, b):
        require_float("matmul", x)
        if x.ndim not in (1, 2):
            raise DimError(f"matmul takes 1-D or 2-D tensors; {x.display} has dims {x.dims}")
    ka, kb = a.dims[-1], b.dims[0]
    if ka != kb:
        raise DimError(
            f"cannot matmul {a.display} with dims {a.dims} and {b.display} with dims {b.dims}: "
            f"contracted dims {ka!r} and {kb!r} differ")
    dims = a.dims[:-1] + b.dims[1:]
    if len(set(dims)) != len(dims):
        raise DimError(f"{a.display} @ {b.display} would have dims {dims}, repeating a name; "
                       "declare the two axes with different dim names")
    attrs["contract"] = ka
    return dims, FLOAT


def _matmul_element(ctx, node, idx):
    c = node.attrs["contract"]
    k = ctx.fresh(c)
    inner = {**idx, c: k}
    return sp.Sum(ctx.arg(0, inner) * ctx.arg(1, inner), (k, 0, ctx.size(c) - 1))


def _grad_a(g, y):
    a, b = y.inputs
    if b.ndim == 2:
        return g @ b.T                    # (..., j) @ (j, k)
    return expand(g, a.dims) * b if a.ndim == 2 else g * b


def _grad_b(g, y):
    a, b = y.inputs
    if a.ndim == 2:
        return a.T @ g                    # (k, i) @ (i, ...)
    return expand(a, b.dims) * g if b.ndim == 2 else g * a


register(OpDef("matmul", "linalg", _matmul_infer, _matmul_element,
               lambda node, sizes, a, b: a @ b, (_grad_a, _grad_b), label="@"))


def _transpose_infer(inputs, attrs):
    return tuple(reversed(inputs[0].dims)), inputs[0].dtype


register(OpDef("transpose", "linalg", _transpose_infer, lambda ctx, node, idx: ctx.arg(0, idx),
               lambda node, sizes, x: x.T, (lambda g, y: apply("transpose", g),), label="ᵀ"))

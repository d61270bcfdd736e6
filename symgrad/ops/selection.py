"""Masks and selection: comparisons, where, maximum/minimum, and gathering by labels.

Comparisons (``a < b``, ``a <= b``; ``>``/``>=`` swap the operands) give masks of 1.0
and 0.0 that no gradient flows through. ``where(c, a, b)`` sends the gradient to the
branch it chose; ``maximum``/``minimum`` do the same and share it evenly at ties, as
``max`` does. ``take(S, y, axis)`` reads ``S[..., y_i, ...]`` for integer labels ``y``.
"""
import numpy as np

from symgrad.errors import DimError
from symgrad.graph.dims import broadcast_dims
from symgrad.graph.node import FLOAT, INT, apply
from symgrad.graph.registry import OpDef, register
from symgrad.ops._lazy import F, deferred, sp
from symgrad.ops._shape import align, axis_dim, require_float
from symgrad.ops.elementwise import aligned, binary_infer, scalar_code, unbroadcast
from symgrad.ops.reductions import expand

# name: (SymPy relation, NumPy comparison, Numba code)
COMPARISONS = {
    "less": (deferred(sp, "StrictLessThan"), np.less, "(1.0 if {0} < {1} else 0.0)"),
    "less_equal": (deferred(sp, "LessThan"), np.less_equal, "(1.0 if {0} <= {1} else 0.0)"),
}

for _name, (_rel, _np, _code) in COMPARISONS.items():
    register(OpDef(
        _name, "elementwise", binary_infer(_name),
        (lambda rel: lambda ctx, node, idx: F.iverson(rel(ctx.arg(0, idx), ctx.arg(1, idx))))(_rel),
        aligned((lambda f: lambda a, b: f(a, b).astype(np.result_type(a, b, np.float32)))(_np)),
        (None, None), label=_code.split()[3], code=scalar_code(_code), constant=True))


# -- where -------------------------------------------------------------------------------
def _where_infer(inputs, attrs):
    for x in inputs:
        require_float("where", x)
    return broadcast_dims(*(x.dims for x in inputs)), FLOAT


def _np_where(c, a, b):
    return np.where(c != 0, a, b)


def _branch_vjp(k):
    """where's gradient for branch k (1: chosen where c, 2: where not c)."""
    def rule(g, y):
        c = y.inputs[0]
        picked = apply("where", c, g, 0.0) if k == 1 else apply("where", c, 0.0, g)
        return unbroadcast(picked, y.inputs[k])
    return rule


register(OpDef(
    "where", "elementwise", _where_infer,
    lambda ctx, node, idx: F.select(*(ctx.arg(k, idx) for k in range(3))),
    aligned(_np_where), (None, _branch_vjp(1), _branch_vjp(2)), label="where",
    # a select, not a product with the mask: inf or nan in the branch not taken stay out
    code=scalar_code("({1} if {0} != 0.0 else {2})")))


# -- maximum / minimum -------------------------------------------------------------------
def _extremum_vjp(k, op):
    """The share of the gradient of maximum(a, b) (or minimum) for input k: 1 where it won,
    1/2 at ties (a valid subgradient, as max's), 0 where it lost."""
    def rule(g, y):
        a, b = y.inputs
        mine, other = (a, b) if k == 0 else (b, a)
        wins = apply("less", other, mine) if op == "maximum" else apply("less", mine, other)
        share = wins + 0.5 * apply("equal", mine, other)
        return unbroadcast(g * share, y.inputs[k])
    return rule


# NaN wins, as in np.maximum: `a != a` is true only for NaN.
EXTREMA = {
    "maximum": (deferred(sp, "Max"), np.maximum, "({0} if {0} > {1} or {0} != {0} else {1})"),
    "minimum": (deferred(sp, "Min"), np.minimum, "({0} if {0} < {1} or {0} != {0} else {1})"),
}

for _name, (_sym, _np, _code) in EXTREMA.items():
    register(OpDef(
        _name, "elementwise", binary_infer(_name),
        (lambda f: lambda ctx, node, idx: f(ctx.arg(0, idx), ctx.arg(1, idx)))(_sym),
        aligned(_np), (_extremum_vjp(0, _name), _extremum_vjp(1, _name)), label=_name,
        code=scalar_code(_code)))


# -- take: gather by integer labels -------------------------------------------------------
def _take_infer(inputs, attrs):
    s, y = inputs
    require_float("take", s)
    if y.dtype != INT:
        raise DimError(f"take: labels {y.display} must be an integer tensor "
                       "(sg.tensor(name, dims, dtype=int))")
    axis = axis_dim(s, attrs.pop("axis", -1) if "dim" not in attrs else attrs["dim"], "take")
    rest = tuple(d for d in s.dims if d != axis)
    if not set(y.dims) <= set(rest):
        raise DimError(f"take: labels {y.display} have dims {y.dims}, but {s.display} with "
                       f"dims {s.dims} along {axis!r} only has the dims {rest} to index by")
    attrs["dim"] = axis
    return rest, FLOAT


def _np_take(node, sizes, s, y):
    """take_along_axis with the labels laid out like ``s`` minus the label axis."""
    at = node.inputs[0].dims.index(node.attrs["dim"])
    labels = np.broadcast_to(align(y, node.inputs[1].dims, node.dims),
                             [sizes[d] for d in node.dims])
    picked = np.take_along_axis(s, np.expand_dims(labels, at).astype(np.intp), axis=at)
    return np.squeeze(picked, axis=at)


def _take_vjp(g, y):
    s, labels = y.inputs
    return expand(g, s.dims) * apply("onehot", labels, dim=y.attrs["dim"])


def _emit_take(node, ctx):
    """One loop over the result: ``out[i] = S[i, y[i]]``."""
    head, ind = ctx.loops(list(node.dims))
    idx = {d: ctx.index(d) for d in node.dims}
    label = ctx.at(1, idx)
    return head + [f"{ind}{ctx.out_at(idx)} = {ctx.at(0, {**idx, node.attrs['dim']: label})}"]


register(OpDef(
    "take", "linalg", _take_infer,
    lambda ctx, node, idx: ctx.arg(0, {**idx, node.attrs["dim"]: ctx.arg(1, idx)}),
    _np_take, (_take_vjp, None), label="take", code={"emit": _emit_take}))

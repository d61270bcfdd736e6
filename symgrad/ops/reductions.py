"""Reductions and normalisations along named axes: sum, mean, max, softmax, log_softmax,
logsumexp, plus the two helpers their gradients need (expand, count)."""
import math

import numpy as np

from symgrad.errors import DimError
from symgrad.graph.node import FLOAT, apply
from symgrad.graph.registry import OpDef, register
from symgrad.ops._lazy import F, sp
from symgrad.ops._shape import align, deltas, keep_dims_infer, reduction_infer, require_float
from symgrad.ops.elementwise import vector_closure


def _axes_of(node, x):
    return tuple(x.dims.index(d) for d in node.attrs["axes"])


def _bind_fresh(ctx, idx, dims):
    """Extend ``idx`` with a fresh summation index per dim; return it and SymPy limits."""
    inner, limits = dict(idx), []
    for d in dims:
        k = ctx.fresh(d)
        inner[d] = k
        limits.append((k, 0, ctx.size(d) - 1))
    return inner, limits


def _sum_element(ctx, node, idx):
    inner, limits = _bind_fresh(ctx, idx, node.attrs["axes"])
    return sp.Sum(ctx.arg(0, inner), *limits) if limits else ctx.arg(0, idx)


def _count(ctx, dims):
    return sp.Mul(*[ctx.size(d) for d in dims])


def _max_element(ctx, node, idx):
    inner, _ = _bind_fresh(ctx, idx, node.attrs["axes"])
    expr = ctx.arg(0, inner)
    for d in reversed(node.attrs["axes"]):
        expr = F.maximum(expr, inner[d], ctx.size(d))
    return expr


def _max_local(ctx, node, k, idx_out, idx_in):
    """d max_j x_ij / d x_ij' = [x_ij' = m_i] / #{j: x_ij = m_i}: ties share the gradient
    evenly (a valid subgradient, as autograd and JAX do)."""
    x, axes = node.inputs[0], node.attrs["axes"]
    kept = [d for d in x.dims if d not in axes]
    hit = F.onehot(ctx.ref(x, idx_in), ctx.ref(node, idx_out))
    inner, limits = _bind_fresh(ctx, idx_out, axes)
    ties = sp.Sum(F.onehot(ctx.ref(x, inner), ctx.ref(node, idx_out)), *limits)
    return hit / ties * sp.Mul(*[sp.KroneckerDelta(idx_out[d], idx_in[d]) for d in kept])


def _max_vjp(g, y):
    x, axes = y.inputs[0], y.attrs["axes"]
    mask = apply("equal", x, expand(y, x.dims))
    ties = expand(apply("sum", mask, axes=axes), x.dims)
    return expand(g, x.dims) * mask / ties


def expand(g, dims):
    """Broadcast ``g`` to ``dims`` (a supersequence of its dims): reductions' adjoint."""
    return g if g.dims == tuple(dims) else apply("expand", g, dims=tuple(dims))


def count(dims):
    """The number of elements along ``dims``, bound from the data at run time."""
    return apply("count", dims=tuple(dims))


def _np_reduce(fn):
    return lambda node, sizes, x: fn(x, axis=_axes_of(node, node.inputs[0]))


register(OpDef("sum", "reduction", reduction_infer("sum"), _sum_element, _np_reduce(np.sum),
               (lambda g, y: expand(g, y.inputs[0].dims),), label="Σ",
               code={"reduce": "sum"}))
register(OpDef("mean", "reduction", reduction_infer("mean"),
               lambda ctx, node, idx: _sum_element(ctx, node, idx) / _count(ctx, node.attrs["axes"]),
               _np_reduce(np.mean),
               (lambda g, y: expand(g / count(y.attrs["axes"]), y.inputs[0].dims),), label="mean",
               code={"reduce": "mean"}))
register(OpDef("max", "reduction", reduction_infer("max"), _max_element, _np_reduce(np.max),
               (_max_vjp,), label="max",
               local=_max_local,
               code={"reduce": "max"}))


def _expand_infer(inputs, attrs):
    """expand: broadcast to ``dims``, a superset of the input's dims in any order (by name,
    so a reordering is an expand too)."""
    x, dims = inputs[0], tuple(attrs["dims"])
    if not set(x.dims) <= set(dims) or len(set(dims)) != len(dims):
        raise DimError(f"cannot expand {x.display} with dims {x.dims} to {dims}")
    return dims, FLOAT


def _np_expand(node, sizes, x):
    dims = node.attrs["dims"]
    return np.broadcast_to(align(x, node.inputs[0].dims, dims), [sizes[d] for d in dims])


def _expand_vjp(g, y):
    x = y.inputs[0]
    extra = tuple(d for d in y.dims if d not in x.dims)
    # an expand may also reorder (the lowered ``(N, K) @ (B, K, C)``): the adjoint is laid
    # out as x again, else a param's gradient would come back transposed
    return expand(apply("sum", g, axes=extra), x.dims)


register(OpDef("expand", "reduction", _expand_infer, lambda ctx, node, idx: ctx.arg(0, idx),
               _np_expand, (_expand_vjp,), label="expand",
               code={"scalar": "{0}"}))  # indexing by dim name does the broadcast
register(OpDef("count", "leaf", lambda inputs, attrs: ((), FLOAT),
               lambda ctx, node, idx: _count(ctx, node.attrs["dims"]),
               lambda node, sizes: float(math.prod(sizes[d] for d in node.attrs["dims"])),
               (), label="count",
               code={"value": lambda node, size: " * ".join(size(d) for d in node.attrs["dims"])
                     or "1"}))


# -- normalisations along one axis ---------------------------------------------------
def np_logsumexp(x, axis, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def np_shifted(x, axis):
    """``(x - m, log sum exp(x - m))`` along ``axis``, with ``m`` the (finite) row max.

    Normalisations are built from these pieces so that ``x - logsumexp(x)`` is computed
    as ``(x - m) - log(sum)``: written as ``x - (m + log(sum))``, the ``log(sum)`` term
    is lost to rounding once |x| exceeds ~1e16 (log_softmax([1e300, 1e300]) would be 0).
    """
    m = np.max(x, axis=axis, keepdims=True)
    shifted = x - np.where(np.isfinite(m), m, 0.0)
    return shifted, np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def np_log_softmax(x, axis):
    shifted, log_total = np_shifted(x, axis)
    return shifted - log_total


def np_softmax(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _axis(node):
    return node.inputs[0].dims.index(node.attrs["axis"])


def _lse_element(ctx, node, idx):
    a = node.attrs["axis"]
    inner, limits = _bind_fresh(ctx, idx, (a,))
    return sp.log(sp.Sum(sp.exp(ctx.arg(0, inner)), *limits))


def _softmax_local(ctx, node, k, idx_out, idx_in):
    a = node.attrs["axis"]
    rest = [d for d in node.dims if d != a]
    p_in = ctx.ref(node, {**idx_out, a: idx_in[a]})
    return ctx.ref(node, idx_out) * (sp.KroneckerDelta(idx_out[a], idx_in[a]) - p_in) \
        * deltas(idx_out, idx_in, rest)


def _log_softmax_local(ctx, node, k, idx_out, idx_in):
    """d ell_ij / d x_ij' = [j = j'] - p_ij', with p = softmax(x) shown by name (the
    textbook's p, not exp(ell))."""
    a = node.attrs["axis"]
    rest = [d for d in node.dims if d != a]
    p = apply("softmax", node.inputs[0], axis=a)
    p_in = ctx.aux("p", p, {**idx_out, a: idx_in[a]})
    return (sp.KroneckerDelta(idx_out[a], idx_in[a]) - p_in) * deltas(idx_out, idx_in, rest)


def _lse_local(ctx, node, k, idx_out, idx_in):
    """d lse_i / d x_ij = p_ij = softmax(x)_ij, as the backward graph computes it (the
    equal form exp(x_ij - lse_i) loses the log n term of lse for |x| > ~1e16)."""
    p = ctx.aux("p", apply("softmax", node.inputs[0], axis=node.attrs["axis"]), idx_in)
    return p * deltas(idx_out, idx_in, node.dims)


def _lse_infer(inputs, attrs):
    x = inputs[0]
    keep_dims_infer("logsumexp")(inputs, attrs)
    attrs["axes"] = (attrs["axis"],)
    return tuple(d for d in x.dims if d != attrs["axis"]), FLOAT


# exp over a whole buffer in one flat loop: LLVM vectorises _sg_vexp there, where a
# row of a few classes with a running sum keeps libm's scalar exp (W2: 1.14x -> 0.82x
# of a hand-written Numba trainer).
EXP_ALL = """def _sg_exp_all(a):
    \"\"\"a <- exp(a) in place over a flat array: a loop LLVM vectorises (_sg_vexp).\"\"\"
    for q in range(a.shape[0]):
        a[q] = _sg_vexp(a[q])
"""


def emit_softmax(ctx, x, axis, out, finite_max=False, shifted=None, normalised=None,
                 divide=True):
    """Lines writing softmax(x) along ``axis`` into ``out`` = (array name, element at idx).

    Three passes: row max and ``x - max`` into ``out``; exp of the whole buffer
    (``_sg_exp_all``); row sum and divide. ``shifted(ind, m)`` and ``normalised(ind,
    total)`` add lines to the first and last pass (cross-entropy's terms).
    ``finite_max``: an infinite row max counts as 0, as np_shifted does. ``divide=False``
    leaves ``exp(x - max)`` in ``out`` (only the row sums are wanted).
    """
    name, at = out
    rows = [d for d in x.dims if d != axis]
    c, n = ctx.index(axis), ctx.size(axis)
    m, total = ctx.fresh("m"), ctx.fresh("total")
    idx = {d: ctx.index(d) for d in x.dims}
    xa, oa = ctx.at(0, idx), at(idx)
    head, ind = ctx.loops(rows)
    lines = head + _row_max(ctx.elementwise, ind, m, c, n, xa, finite_max)
    lines += [f"{ind}for {c} in range({n}):", f"{ind}    {oa} = {xa} - {m}"]
    lines += shifted(ind, m) if shifted else []
    ctx.use_helpers({"_sg_exp_all": EXP_ALL, **vector_closure("_sg_vexp")})
    lines.append(f"_sg_exp_all({name}.reshape(-1))  # exp of every shifted element, vectorised")
    head, ind = ctx.loops(rows)
    lines += head + [f"{ind}{total} = 0.0", f"{ind}for {c} in range({n}):",
                     f"{ind}    {total} += {oa}"]
    lines += [f"{ind}for {c} in range({n}):", f"{ind}    {oa} /= {total}"] if divide else []
    return lines + (normalised(ind, total) if normalised else [])


def _row_max(typed, ind, m, c, n, xa, finite):
    """``m`` = the max of ``xa`` over ``c`` in range(n); ``finite``: an infinite max
    counts as 0, as np_shifted does (so exp(x - m) is never inf - inf). ``typed`` writes
    its literals: ``ctx.elementwise`` where ``x - m`` is stored in the buffer's dtype (in
    float32, the same bits: the difference of two float32s rounds once either way)."""
    lines = [f"{ind}{m} = {typed('-math.inf')}", f"{ind}for {c} in range({n}):",
             f"{ind}    {m} = {xa} if {xa} > {m} else {m}"]
    zero = typed("0.0")
    return lines + ([f"{ind}{m} = {m} if math.isfinite({m}) else {zero}"] if finite else [])


def _emit_normalise(kind):
    """Code for softmax / log_softmax / logsumexp along one axis: max, sum of exp, write.

    Subtracting the row max keeps exp from overflowing (as np_logsumexp does).
    """
    def emit(node, ctx):
        x, a = node.inputs[0], node.attrs["axis"]
        if kind == "softmax":
            return emit_softmax(ctx, x, a, (ctx.out, ctx.out_at))
        lines, ind = ctx.loops([d for d in x.dims if d != a])
        c, n = ctx.index(a), ctx.size(a)
        m, total = ctx.fresh("m"), ctx.fresh("total")
        idx = {d: ctx.index(d) for d in x.dims}
        xa = ctx.at(0, idx)
        lines += _row_max(str, ind, m, c, n, xa, finite=True)   # exp(x - m) in float64
        lines += [f"{ind}{total} = 0.0", f"{ind}for {c} in range({n}):",
                  f"{ind}    {total} += math.exp({xa} - {m})"]
        lse = f"{m} + math.log({total})"
        if kind == "logsumexp":
            return lines + [f"{ind}{ctx.out_at(idx)} = {lse}"]
        # (x - m) - log(total), not x - (m + log(total)): see np_shifted.
        lines += [f"{ind}{total} = math.log({total})", f"{ind}for {c} in range({n}):",
                  f"{ind}    {ctx.out_at(idx)} = ({xa} - {m}) - {total}"]
        return lines
    return emit


def _sum_along(g, a):
    return apply("sum", g, axes=(a,))


register(OpDef(
    "softmax", "reduction", keep_dims_infer("softmax"),
    lambda ctx, node, idx: sp.exp(ctx.arg(0, idx) - _lse_element(ctx, node, idx)),
    lambda node, sizes, x: np_softmax(x, _axis(node)),
    (lambda g, y: y * (g - expand(_sum_along(g * y, y.attrs["axis"]), y.dims)),),
    local=_softmax_local, label="softmax", code={"emit": _emit_normalise("softmax")}))
register(OpDef(
    "log_softmax", "reduction", keep_dims_infer("log_softmax"),
    lambda ctx, node, idx: ctx.arg(0, idx) - _lse_element(ctx, node, idx),
    lambda node, sizes, x: np_log_softmax(x, _axis(node)),
    (lambda g, y: g - apply("exp", y) * expand(_sum_along(g, y.attrs["axis"]), y.dims),),
    local=_log_softmax_local, label="log softmax",
    code={"emit": _emit_normalise("log_softmax")}))
register(OpDef(
    "logsumexp", "reduction", _lse_infer, _lse_element,
    lambda node, sizes, x: np_logsumexp(x, _axis(node)),
    # d lse / dx = softmax(x), computed from the row max: exp(x - lse) would lose the
    # log n term of lse to rounding for |x| > ~1e16 (giving 1 instead of 1/n).
    (lambda g, y: expand(g, y.inputs[0].dims) * apply("softmax", y.inputs[0], axis=y.attrs["axis"]),),
    local=_lse_local, label="logsumexp", code={"emit": _emit_normalise("logsumexp")}))

__all__ = ["count", "expand", "np_log_softmax", "np_logsumexp", "np_shifted", "np_softmax",
           "require_float"]

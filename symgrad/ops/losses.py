"""Losses with stable fused rules: cross-entropy (integer or one-hot labels) and binary
cross-entropy (from logits, or from probabilities with clamped logs).

Softmax + cross-entropy has the registered gradient ``p - onehot(y)`` rather than a
chain through ``log`` and ``softmax``; binary cross-entropy of ``sigmoid(z)`` is
rewritten to its logits form ``softplus(z) - t z``, whose gradient is ``sigmoid(z) - t``.
"""
import numpy as np

from symgrad.errors import DimError, MissingRuleError
from symgrad.graph.node import FLOAT, INT, apply
from symgrad.graph.registry import OpDef, register
from symgrad.ops._lazy import F, sp
from symgrad.ops._shape import require_float
from symgrad.ops.elementwise import HELPERS, np_sigmoid, np_softplus, scalar_code
from symgrad.ops.reductions import count, emit_softmax, expand, np_shifted

# log(p) is clamped below at this value, as PyTorch's BCELoss does, so p = 0 or 1 is finite.
LOG_FLOOR = -100.0


def _ce_infer(inputs, attrs):
    logits, labels = inputs
    require_float("cross_entropy", logits)
    if not logits.dims:
        raise DimError(f"cross_entropy: logits {logits.display} must have a class dim")
    want = logits.dims[:-1] if labels.dtype == INT else logits.dims
    if labels.dims != want:
        kind = "integer labels" if labels.dtype == INT else "one-hot labels"
        raise DimError(
            f"cross_entropy: {kind} {labels.display} have dims {labels.dims}, but logits "
            f"{logits.display} with dims {logits.dims} need dims {want}")
    attrs.update(classes=logits.dims[-1], batch=logits.dims[:-1],
                 onehot=labels.dtype != INT)
    return (), FLOAT


def _batch_mean(ctx, node, idx, body_fn):
    """(1/N) sum_i body(i) over the batch dims (no sum when there are none)."""
    inner, limits = dict(idx), []
    for d in node.attrs["batch"]:
        k = ctx.fresh(d)
        inner[d] = k
        limits.append((k, 0, ctx.size(d) - 1))
    body = body_fn(inner)
    if not limits:
        return body
    return sp.Sum(body, *limits) / sp.Mul(*[ctx.size(d) for d in node.attrs["batch"]])


def _ce_element(ctx, node, idx):
    C = node.attrs["classes"]

    def per_example(inner):
        c = ctx.fresh(C)
        lse = sp.log(sp.Sum(sp.exp(ctx.arg(0, {**inner, C: c})), (c, 0, ctx.size(C) - 1)))
        if not node.attrs["onehot"]:
            return lse - ctx.arg(0, {**inner, C: ctx.arg(1, inner)})
        c2 = ctx.fresh(C)
        y = ctx.arg(1, {**inner, C: c2})
        return sp.Sum(y * (lse - ctx.arg(0, {**inner, C: c2})), (c2, 0, ctx.size(C) - 1))
    return _batch_mean(ctx, node, idx, per_example)


def _ce_local(ctx, node, k, idx_out, idx_in):
    """dL/ds_ic = (p_ic - onehot(y_i, c)) / N, with p = softmax(s) along the class dim."""
    C, batch = node.attrs["classes"], node.attrs["batch"]
    n = sp.Mul(*[ctx.size(d) for d in batch])
    if k == 1:      # soft labels: dL/dY_ic = (lse_i - s_ic) / N, as _ce_labels_vjp
        lse = ctx.aux("lse", apply("logsumexp", node.inputs[0], axis=C),
                      {d: idx_in[d] for d in batch})
        return (lse - ctx.ref(node.inputs[0], idx_in)) / n
    p = ctx.aux("p", apply("softmax", node.inputs[0], axis=C), idx_in)
    if node.attrs["onehot"]:
        c2 = ctx.fresh(C)
        total = sp.Sum(ctx.ref(node.inputs[1], {**idx_in, C: c2}), (c2, 0, ctx.size(C) - 1))
        return (p * total - ctx.ref(node.inputs[1], idx_in)) / n
    label = ctx.ref(node.inputs[1], {d: idx_in[d] for d in batch})
    return (p - F.onehot(label, idx_in[C])) / n


def _np_ce(node, sizes, s, y):
    # lse - s_c computed as log(sum) - (s_c - m) (see np_shifted): exact at any scale.
    axis = s.ndim - 1
    shifted, log_total = np_shifted(s, axis)
    if node.attrs["onehot"]:
        per = np.sum(y * (log_total - shifted), axis=axis)
    else:
        per = log_total[..., 0] - np.take_along_axis(shifted, y[..., None].astype(np.intp),
                                                     axis=axis)[..., 0]
    return np.mean(per) if per.ndim else per


def _ce_vjp(g, y):
    s, labels = y.inputs
    C, batch = y.attrs["classes"], y.attrs["batch"]
    p = apply("softmax", s, axis=C)
    scale = g / count(batch) if batch else g
    if y.attrs["onehot"]:
        rowsum = expand(apply("sum", labels, axes=(C,)), s.dims)
        return (p * rowsum - labels) * scale
    return (p - apply("onehot", labels, dim=C)) * scale


def _emit_ce(node, ctx):
    """Mean cross-entropy, ``log(sum_c exp(s_c - m)) - (s_y - m)`` per example.

    When the backward pass needs ``softmax(logits)`` (the ``p`` of ``p - onehot``),
    ``ctx.filled`` names its buffer: the softmax kernel writes it (exp vectorised over
    the whole buffer) and its row sums give the loss. Otherwise a scratch buffer of the
    logits' shape takes that place. Integer labels: the row sums are multiplied and
    their log taken once per 1e250 of product, not once per row (each sum is in [1, C]).
    """
    s, C = node.inputs[0], node.attrs["classes"]
    acc, prod = ctx.fresh("acc"), ctx.fresh("prod")
    if ctx.filled is not None:
        out, lines = (ctx.filled_name, ctx.filled), []
    else:
        tmp = ctx.fresh("e")
        out = (tmp, lambda idx: f"{tmp}[{', '.join(idx[d] for d in s.dims)}]")
        lines = [f"{tmp} = {ctx.empty(s.dims)}  # exp(s - max), per example"]
    idx = {d: ctx.index(d) for d in s.dims}
    lines += [f"{acc} = 0.0", f"{prod} = 1.0"]
    if node.attrs["onehot"]:     # row loss: sum_c Y_c log(total) - sum_c Y_c (s_c - m)
        ya, c, n = ctx.at(1, idx), ctx.index(C), ctx.size(C)
        wsum = ctx.fresh("ysum")

        def shifted(ind, m):
            return [f"{ind}for {c} in range({n}):", f"{ind}    {acc} -= {ya} * {out[1](idx)}"]

        def normalised(ind, total):
            return [f"{ind}{wsum} = 0.0", f"{ind}for {c} in range({n}):", f"{ind}    {wsum} += {ya}",
                    f"{ind}{acc} += {wsum} * math.log({total})"]
    else:
        label = ctx.at(1, {d: ctx.index(d) for d in node.attrs["batch"]})
        picked = out[1]({**idx, C: label})

        def shifted(ind, m):
            return [f"{ind}{acc} -= {picked}"]

        def normalised(ind, total):
            return [f"{ind}{prod} *= {total}", f"{ind}if {prod} > 1e250:",
                    f"{ind}    {acc} += math.log({prod})", f"{ind}    {prod} = 1.0"]
    lines += emit_softmax(ctx, s, C, out, finite_max=True, shifted=shifted, normalised=normalised,
                          divide=ctx.filled is not None)
    count = " * ".join(ctx.size(d) for d in node.attrs["batch"]) or "1"
    return lines + [f"{ctx.out} = ({acc} + math.log({prod})) / ({count})"]


def _ce_labels_vjp(g, y):
    """Soft (float) labels: dL/dY_ic = -log_softmax(s)_ic / N. Integer labels have none."""
    if not y.attrs["onehot"]:
        raise MissingRuleError(f"cross_entropy: integer labels {y.inputs[1].display} "
                               "have no gradient")
    s, C, batch = y.inputs[0], y.attrs["classes"], y.attrs["batch"]
    scale = g / count(batch) if batch else g
    return -apply("log_softmax", s, axis=C) * scale


register(OpDef("cross_entropy", "loss", _ce_infer, _ce_element, _np_ce, (_ce_vjp, _ce_labels_vjp),
               local=_ce_local, label="cross-entropy",
               code={"emit": _emit_ce, "fills": lambda node: ("softmax", {"axis": node.attrs["classes"]})}))


def _onehot_infer(inputs, attrs):
    if inputs[0].dtype != INT:
        raise DimError(f"onehot needs integer labels, {inputs[0].display} is float")
    return inputs[0].dims + (attrs["dim"],), FLOAT


register(OpDef(
    "onehot", "elementwise", _onehot_infer,
    lambda ctx, node, idx: F.onehot(ctx.arg(0, idx), idx[node.attrs["dim"]]),
    lambda node, sizes, y: (y[..., None] == np.arange(sizes[node.attrs["dim"]])).astype(float),
    (None,), label="onehot", constant=True,
    code={"scalar": lambda node: "(1.0 if {0} == {index[%s]} else 0.0)" % node.attrs["dim"]}))


# -- binary cross-entropy ---------------------------------------------------------------
def _bce_infer(op):
    def infer(inputs, attrs):
        x, t = inputs
        require_float(op, x)
        require_float(op, t)
        if x.dims != t.dims:
            raise DimError(f"{op}: prediction {x.display} has dims {x.dims} but target "
                           f"{t.display} has dims {t.dims}")
        return (), FLOAT
    return infer


def _mean_all(ctx, node, idx, body_fn):
    inner, limits = dict(idx), []
    for d in node.inputs[0].dims:
        k = ctx.fresh(d)
        inner[d] = k
        limits.append((k, 0, ctx.size(d) - 1))
    if not limits:
        return body_fn(inner)
    return sp.Sum(body_fn(inner), *limits) / sp.Mul(*[ctx.size(d) for d in node.inputs[0].dims])


def _bce_logits_element(ctx, node, idx):
    return _mean_all(ctx, node, idx, lambda i: F.softplus(ctx.arg(0, i)) - ctx.arg(1, i) * ctx.arg(0, i))


def _np_bce_logits(node, sizes, z, t):
    return np.mean(np_softplus(z) - t * z)


def _scale_all(g, x):
    return g / count(x.dims) if x.dims else g


def _bce_logits_local(ctx, node, k, idx_out, idx_in):
    """d/dz_i mean(softplus(z) - t z) = (sigma_i - t_i) / N, with sigma_i by name."""
    z, t = node.inputs
    n = sp.Mul(*[ctx.size(d) for d in z.dims])
    if k == 1:
        return -ctx.ref(z, idx_in) / n
    return (ctx.aux("sigma", apply("sigmoid", z), idx_in) - ctx.ref(t, idx_in)) / n


register(OpDef(
    "bce_logits", "loss", _bce_infer("binary_cross_entropy"), _bce_logits_element, _np_bce_logits,
    (lambda g, y: (apply("sigmoid", y.inputs[0]) - y.inputs[1]) * _scale_all(g, y.inputs[0]),
     lambda g, y: -y.inputs[0] * _scale_all(g, y.inputs[0])),
    label="BCE(logits)", local=_bce_logits_local,
    # A mean over all elements of a fused elementwise term: one loop, no buffers.
    code={"reduce": "mean", "element": "(_sg_softplus({0}) - {1} * {0})",
          "helpers": {"_sg_softplus": HELPERS["_sg_softplus"]}}))


# Emitted forms of clog and its derivative (x <= 0 gives log = -inf / nan, then the floor).
CLOG_HELPERS = {
    "_sg_clog": (
        "def _sg_clog(x):\n"
        "    v = math.log(x) if x > 0.0 else (-math.inf if x == 0.0 else math.nan)\n"
        "    return v if not v < %r else %r\n" % (LOG_FLOOR, LOG_FLOOR)),
    "_sg_clog_grad": (
        "def _sg_clog_grad(x):\n"
        "    v = math.log(x) if x > 0.0 else (-math.inf if x == 0.0 else math.nan)\n"
        "    return 1.0 / x if v > %r else 0.0\n" % LOG_FLOOR),
}


def _np_clog(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.maximum(np.log(x), LOG_FLOOR)


def _clog_vjp(g, y):
    # d/dx max(log x, -100) = 1/x where log x > -100; 0 where the floor is active.
    x = y.inputs[0]
    return g * apply("clog_grad", x)


def _np_clog_grad(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.log(x) > LOG_FLOOR, 1.0 / x, 0.0)


register(OpDef("clog", "elementwise", lambda inputs, attrs: (inputs[0].dims, FLOAT),
               lambda ctx, node, idx: sp.log(ctx.arg(0, idx)),
               lambda node, sizes, x: _np_clog(x), (_clog_vjp,), label="log",
               code=scalar_code("_sg_clog({0})", CLOG_HELPERS)))
register(OpDef("clog_grad", "elementwise", lambda inputs, attrs: (inputs[0].dims, FLOAT),
               lambda ctx, node, idx: 1 / ctx.arg(0, idx),
               # second order: (1/x)' = -1/x^2 = -clog_grad(x)^2 (0 where the floor is active)
               lambda node, sizes, x: _np_clog_grad(x), (lambda g, y: -(g * (y * y)),), label="1/x",
               code=scalar_code("_sg_clog_grad({0})", CLOG_HELPERS)))

__all__ = ["LOG_FLOOR", "np_sigmoid"]

"""An independent re-expression of symgrad graphs in HIPS autograd.numpy.

Used as the gradient oracle by the corpus tests (tests/diff) and the property
tests (tests/reliability): each op is written from its textbook meaning with
autograd's own primitives, never from symgrad's gradient rules.
"""
import autograd.numpy as anp
import numpy as np

from symgrad.graph import topo_order


def _ag_sigmoid(x):
    return 0.5 * (anp.tanh(0.5 * x) + 1.0)


def _ag_lse(x, axis):
    m = anp.max(x, axis=axis, keepdims=True)
    return anp.log(anp.sum(anp.exp(x - m), axis=axis, keepdims=True)) + m


def _ag_ce(n, a):
    s, y = a
    lse = _ag_lse(s, -1)[..., 0]
    if n.attrs["onehot"]:
        per = anp.sum(y, axis=-1) * lse - anp.sum(y * s, axis=-1)
    else:
        per = lse - s[np.arange(len(y)), y]
    return anp.mean(per)


def _axes(n):
    return tuple(n.inputs[0].dims.index(d) for d in n.attrs["axes"])


def _axis(n):
    return n.inputs[0].dims.index(n.attrs["axis"])


def _expand(n, x, sizes):
    src, dims = n.inputs[0].dims, n.attrs["dims"]
    view = anp.reshape(x, [sizes[d] if d in src else 1 for d in dims])
    return view * anp.ones([sizes[d] for d in dims])


def _al(n, k, x):
    """Input k of elementwise node n, laid out along n's dims (operands align by name)."""
    src, dims = n.inputs[k].dims, n.dims
    if src == dims or not src:
        return x
    present = [d for d in dims if d in src]
    x = anp.transpose(x, [src.index(d) for d in present])
    return anp.reshape(x, [x.shape[present.index(d)] if d in src else 1 for d in dims])


def _take(n, s, y):
    at = n.inputs[0].dims.index(n.attrs["dim"])
    rest = n.dims
    lab = np.asarray(y)
    src = n.inputs[1].dims
    lab = np.transpose(lab, [src.index(d) for d in rest if d in src]) if lab.ndim else lab
    lab = np.reshape(lab, [lab.shape[[d for d in rest if d in src].index(d)] if d in src else 1
                           for d in rest]) if rest else lab
    lab = np.broadcast_to(lab, [s.shape[n.inputs[0].dims.index(d)] for d in rest])
    moved = anp.moveaxis(s, at, -1)
    flat = anp.reshape(moved, (-1, moved.shape[-1]))
    picked = flat[np.arange(flat.shape[0]), lab.reshape(-1)]
    return anp.reshape(picked, lab.shape)


def _onehot(n, y, sizes):
    return (np.asarray(y)[..., None] == np.arange(sizes[n.attrs["dim"]])).astype(float)


def _elementwise(n, a):
    """Name-aligned elementwise ops (binary and where)."""
    x = [_al(n, k, v) for k, v in enumerate(a)]
    return {
        "add": lambda: x[0] + x[1], "sub": lambda: x[0] - x[1], "mul": lambda: x[0] * x[1],
        "div": lambda: x[0] / x[1],
        "less": lambda: (x[0] < x[1]) * 1.0, "less_equal": lambda: (x[0] <= x[1]) * 1.0,
        "where": lambda: anp.where(x[0] != 0, x[1], x[2]),
        "maximum": lambda: anp.maximum(x[0], x[1]), "minimum": lambda: anp.minimum(x[0], x[1]),
    }[n.op]()


def to_autograd(node, env, sizes):
    """``node``'s value with autograd.numpy; ``env`` maps leaf names to arrays.

    ``sizes`` (dim name -> size) is needed only by ``count`` and ``expand`` nodes
    (which appear in backward graphs, not in user models).
    """
    cache = {}
    for n in topo_order(node):
        a = [cache[x] for x in n.inputs]
        cache[n] = {
            "input": lambda: env[n.name], "param": lambda: env[n.name],
            "const": lambda: n.attrs["value"],
            **{op: (lambda: _elementwise(n, a)) for op in (
                "add", "sub", "mul", "div", "less", "less_equal", "where", "maximum",
                "minimum")},
            "neg": lambda: -a[0],
            "take": lambda: _take(n, a[0], a[1]), "onehot": lambda: _onehot(n, a[0], sizes),
            "relabel": lambda: a[0],
            "pow": lambda: a[0] ** n.attrs["exponent"],
            "exp": lambda: anp.exp(a[0]), "log": lambda: anp.log(a[0]),
            "clog": lambda: anp.maximum(anp.log(a[0]), -100.0),
            "sqrt": lambda: anp.sqrt(a[0]), "abs": lambda: anp.abs(a[0]),
            "sigmoid": lambda: _ag_sigmoid(a[0]), "tanh": lambda: anp.tanh(a[0]),
            "relu": lambda: anp.maximum(a[0], 0.0), "softplus": lambda: anp.logaddexp(0.0, a[0]),
            "sum": lambda: anp.sum(a[0], axis=_axes(n)),
            "mean": lambda: anp.mean(a[0], axis=_axes(n)),
            "max": lambda: anp.max(a[0], axis=_axes(n)),
            "softmax": lambda: anp.exp(a[0] - _ag_lse(a[0], _axis(n))),
            "log_softmax": lambda: a[0] - _ag_lse(a[0], _axis(n)),
            "logsumexp": lambda: anp.squeeze(_ag_lse(a[0], _axis(n)), axis=_axis(n)),
            "matmul": lambda: anp.dot(a[0], a[1]), "transpose": lambda: anp.transpose(a[0]),
            "cross_entropy": lambda: _ag_ce(n, a),
            "bce_logits": lambda: anp.mean(anp.logaddexp(0.0, a[0]) - a[1] * a[0]),
            "count": lambda: float(np.prod([sizes[d] for d in n.attrs["dims"]])),
            "expand": lambda: _expand(n, a[0], sizes),
        }[n.op]()
    return cache[node]

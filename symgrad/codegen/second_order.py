"""Compiled second order: ``hessian`` and ``hvp`` in the model's generated module.

The graphs come from :mod:`symgrad.diff.hessian`; here they join the module's
hash-consed DAG (so ``sigma`` and ``X.T`` are shared with the gradient) and become two
functions: ``hessian`` returns the blocks ``(p, q)`` with ``p`` not after ``q`` in the
params' order (the others are their transposes), ``hvp`` returns ``sum_p H_qp v_p`` for
every ``q``. A block that is a contraction of 2-D operands (``X^T (D X)``) is one gemm.
"""
import functools

import numpy as np

from symgrad.diff.hessian import SecondOrder, identity_array
from symgrad.errors import DataError, DeclarationError
from symgrad.graph.names import comment_text


class SecondOrderGraphs:
    """The canonical block and HVP nodes of a model, and the leaves they add."""

    def __init__(self, loss, params, canon):
        self.so = so = SecondOrder(loss, params)
        self.pairs = [(p, q) for i, p in enumerate(so.params) for q in so.params[i:]]
        self.blocks = {pq: so.block(*pq) for pq in self.pairs}
        self.hvps = dict(so.hvp)
        found = [n for n in list(self.blocks.values()) + list(self.hvps.values()) if n is not None]
        canonical = dict(zip(found, canon.add(found)))
        self.blocks = {pq: canonical.get(n) for pq, n in self.blocks.items()}
        self.hvps = {q: canonical.get(n) for q, n in self.hvps.items()}

    def nodes(self):
        return [n for n in list(self.blocks.values()) + list(self.hvps.values()) if n is not None]

    def leaves(self):
        """The tensors second order adds: directions v_p and identities I_p."""
        return set(self.so.vectors.values()) | {eye for eye, _ in self.so._eyes.values()}

    def eyes(self):
        """{eye node: p} for the identity tensors the blocks read."""
        return {eye: p for p, (eye, _) in self.so._eyes.items()}


def functions(src):
    """The text of ``hessian`` and ``hvp`` for a :class:`symgrad.codegen.module.Source`.

    User names appear only in ``#`` comments, through ``comment_text`` (a docstring
    could be closed by a name holding quotes)."""
    g = src.second
    live = [pq for pq in g.pairs if g.blocks[pq] is not None]
    blocks = ["# returns the blocks " + comment_text(", ".join(f"({p.name}, {q.name})"
                                                           for p, q in live))]
    hvps = ["# returns H v for " + comment_text(", ".join(
        q.name for q in g.so.params if g.hvps[q] is not None))]
    texts = [_multi(src, "hessian", [g.blocks[pq] for pq in g.pairs],
                    "The Hessian blocks (p, q), p not after q in the params' order.", blocks),
             _multi(src, "hvp", [g.hvps[q] for q in g.so.params],
                    "Hessian-vector products, one per param: sum_p H_qp v_p.", hvps)]
    return [t for t in texts if t]


def _multi(src, fname, outputs, doc, notes):
    """One function returning several nodes (the zero blocks, None, are left out)."""
    from symgrad.codegen import rowpass
    from symgrad.codegen.emit import Body
    from symgrad.codegen.module import Function, _function
    from symgrad.codegen.schedule import Plan
    live = [n for n in outputs if n is not None]
    if not live:
        return ""
    plan = Plan(live, row_passes=True)
    used = set(plan.order)
    leaves = src.leaves_of(plan) + [n for n in src.second_leaves if n in used]
    body = Body(src.m, plan, [src.m.names[n] for n in leaves])
    lines = notes + src.sizes(leaves, src.plan_dims(plan))
    emitted = body.emit()         # names a row pass's rows per block, set here first
    lines += [rowpass.block_rows(src.m, rp) for rp in plan.passes.values()]
    lines += [src.alloc(src.m.names[n], n.dims) for n in plan.order if n in plan.buffered]
    lines += emitted
    rets = []
    for node in live:
        if node in plan.buffered and node.dims and plan.kind[node] not in ("leaf", "const",
                                                                         "value"):
            rets.append(src.m.names[node])
            continue
        name = src.m.namer.fresh("out")      # a fused or scalar result: write it out
        head, ind = body.loops(node.dims)
        lines += [src.alloc(name, node.dims)] + head + \
            [f"{ind}{name}[{body.idx(node.dims) or '0'}] = {body.read(node)}"]
        rets.append(name)
    src.functions[fname] = Function(fname, leaves)
    ret = ", ".join(rets) + ("," if len(rets) == 1 else "")
    return _function(fname, [src.m.names[n] for n in leaves], doc, lines + [f"return {ret}"])


# -- the CompiledModel side --------------------------------------------------------------
def _require(model, what):
    if getattr(model._src, "second", None) is None:
        raise DeclarationError(f"fn.{what} needs second order compiled in: "
                               "sg.compile(loss, params, hessian=True)")
    return model._src.second


@functools.lru_cache(maxsize=16)
def _identity(shape):
    """The identity for a param of ``shape`` (made once per shape: at d = 500 a fresh one
    per call would cost a tenth of the block's time); compiled code only reads it."""
    return identity_array(shape)


def _leaf_names(model, fname):
    return {n.name for n in model._src.functions[fname].leaves}


def _shape_of(params, p):
    if p.name not in params:
        raise DataError(f"missing param {p.name!r} (dims {p.dims})")
    return np.shape(params[p.name])


def hessian(model, params, data):
    """``{(p name, q name): ndarray of shape p.shape + q.shape}``, every block."""
    g = _require(model, "hessian")
    params = {(k.name if hasattr(k, "name") else k): v for k, v in (params or {}).items()}
    live = [(pq, n) for pq, n in ((pq, g.blocks[pq]) for pq in g.pairs) if n is not None]
    values = []
    if live:
        nodes = [n for _, n in live]
        used = _leaf_names(model, "hessian")
        eyes = {eye.name: _identity(_shape_of(params, p)) for eye, p in g.eyes().items()
                if eye.name in used}          # 2 lambda I reads one; X^T D X alone does not
        values = model._call("hessian", *model._args("hessian", params, {**data, **eyes}, nodes))
    got = {pq: v for (pq, _), v in zip(live, values)}
    out = {}
    for p in g.so.params:
        for q in g.so.params:
            sp, sq = _shape_of(params, p), _shape_of(params, q)
            if (p, q) in g.blocks:
                v = got.get((p, q))
                out[p.name, q.name] = np.zeros(sp + sq, model.dtype) if v is None \
                    else np.asarray(v).reshape(sp + sq)
            else:                       # H_qp^T: the block below the diagonal
                upper = out[q.name, p.name].reshape(int(np.prod(sq)), int(np.prod(sp)))
                out[p.name, q.name] = np.ascontiguousarray(upper.T).reshape(sp + sq)
    return out


def hvp(model, params, vectors, data):
    """``{q name: sum_p H_qp v_p}``; ``vectors`` maps each param name to an array of its
    shape (the directions)."""
    g = _require(model, "hvp")
    params = {(k.name if hasattr(k, "name") else k): v for k, v in (params or {}).items()}
    vectors = {(k.name if hasattr(k, "name") else k): v for k, v in (vectors or {}).items()}
    named = {}
    for p in g.so.params:
        if p.name not in vectors:
            raise DataError(f"hvp: missing the direction for param {p.name!r} "
                            f"(vectors must have one array per param: {[q.name for q in g.so.params]})")
        v = np.asarray(vectors[p.name])
        if v.shape != _shape_of(params, p):
            raise DataError(f"hvp: the direction for {p.name!r} has shape {v.shape}, but the "
                            f"param has shape {_shape_of(params, p)}")
        named[g.so.vectors[p].name] = v
    live = [(q, g.hvps[q]) for q in g.so.params if g.hvps[q] is not None]
    values = []
    if live:
        nodes = [n for _, n in live]
        used = _leaf_names(model, "hvp")
        named = {k: v for k, v in named.items() if k in used}
        values = model._call("hvp", *model._args("hvp", params, {**data, **named}, nodes))
    got = {q: v for (q, _), v in zip(live, values)}
    return {q.name: np.zeros(_shape_of(params, q), model.dtype) if q not in got
            else np.asarray(got[q]).reshape(_shape_of(params, q)) for q in g.so.params}

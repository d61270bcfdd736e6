"""Second order: Hessian-vector products and Hessian blocks, as ordinary graphs.

The gradient graph from :func:`symgrad.diff.reverse.backward` is itself a graph of
registry ops, so reverse mode runs over it a second time: seeding the adjoint of each
gradient ``g_p`` with a direction ``v_p`` (a data tensor shaped like ``p``) gives, for
every param ``q``, ``sum_p H_qp v_p`` -- the Hessian-vector product (Pearlmutter's
trick), without ever forming the Hessian.

That graph is linear in the directions. A full block ``H_pq`` is the same graph with
``v_p`` replaced by the identity of ``p`` (a tensor with ``p``'s dims and a primed
copy of them); :func:`lift` rebuilds the HVP graph on that identity, op by op, with the
primed dims carried along by name. Products with the identity are read as what they
are: ``X @ I`` is ``X`` with its axis relabelled, so for a GLM the block is
``X^T (D X)``, one matrix product (see ``symgrad.codegen``), not ``d`` HVPs.
"""
import numpy as np

from symgrad.errors import DeclarationError
from symgrad.graph.bind import bind
from symgrad.graph.evaluate import run_graph
from symgrad.graph.dims import base, canonical
from symgrad.graph.node import FLOAT, Node, apply, tensor
from symgrad.graph.registry import vjp_rule
from symgrad.graph.traverse import topo_order
from symgrad.diff.reverse import backward, check_params, relevant_nodes


def reverse_sweep(seeds, params):
    """Reverse mode from several non-scalar outputs: ``seeds`` maps an output node to the
    adjoint it starts with. Returns ``{p: adjoint node or None}`` (None: no path)."""
    order = relevant_nodes(list(seeds), params)
    relevant = set(order)
    adjoint = {}
    for node, seed in seeds.items():
        adjoint[node] = seed if node not in adjoint else adjoint[node] + seed
    for node in reversed(order):
        g = adjoint.get(node)
        if g is None or node.is_leaf:
            continue
        for k, x in enumerate(node.inputs):
            if x in relevant:
                c = vjp_rule(node, k)(g, node)
                adjoint[x] = c if x not in adjoint else adjoint[x] + c
    return {p: adjoint.get(p) for p in params}


def _free_name(stem, taken):
    name = stem
    while name in taken:
        name += "_"
    taken.add(name)
    return name


class SecondOrder:
    """The HVP graph of ``loss`` w.r.t. ``params``, and its Hessian blocks on demand.

    grads       {p: gradient node} (the first backward graph)
    vectors     {p: data tensor v_p with p's dims} (the directions, bound by the caller)
    hvp         {q: node with q's dims, or None when the Hessian rows of q are zero}
    """

    def __init__(self, loss, params):
        self.loss = loss
        self.params = check_params(loss, params)
        self.grads, _ = backward(loss, self.params)
        taken = {n.name for n in topo_order(loss) if n.name}
        self._taken = taken
        self.vectors = {p: tensor(_free_name(f"v_{p.name}", taken), p.dims) for p in self.params}
        self.hvp = reverse_sweep(self._seeds(self.params), self.params)
        self._eyes, self._rows = {}, {}

    def _seeds(self, params):
        seeds = {}
        for p in params:
            g, v = self.grads[p], self.vectors[p]
            v = v if g.dims == p.dims else apply("expand", v, dims=g.dims)
            seeds[g] = v if g not in seeds else seeds[g] + v
        return seeds

    # -- blocks ---------------------------------------------------------------------------
    def eye(self, p):
        """The identity of ``p``: a data tensor with dims ``p.dims + primed(p.dims)``."""
        if p not in self._eyes:
            graph = topo_order([self.loss] + [h for h in self.hvp.values() if h is not None])
            used = {d for n in graph for d in n.dims}
            primes = 1 + max([len(d) - len(base(d)) for d in used] or [0])
            # primes no label of the graph has; one more per axis, so a square p's two
            # axes (d', d) get two distinct labels too
            star = tuple(base(d) + "'" * (primes + k) for k, d in enumerate(p.dims))
            # a Node, not sg.tensor: the primed labels must stay as they are
            node = Node("input", (), p.dims + star, FLOAT,
                        name=_free_name(f"I_{p.name}", self._taken))
            self._eyes[p] = (node, star)
        return self._eyes[p]

    def rows(self, p):
        """``{q: block node of dims star(p) + q.dims}`` for every q: the lifted HVP graph."""
        if p not in self._rows:
            eye, star = self.eye(p)
            hvp = reverse_sweep(self._seeds([p]), self.params)   # H_qp v_p for every q
            lifted = lift([h for h in hvp.values() if h is not None], self.vectors[p], eye, star)
            self._rows[p] = {q: None if h is None else lifted[h] for q, h in hvp.items()}
        return self._rows[p]

    def block(self, p, q):
        """``H_pq = d^2 L / dp dq`` as a node with dims ``canonical(p.dims + q.dims)``
        (so the block of w (d,) with itself is a (d, d) tensor, dims (d', d)); None when
        it is zero."""
        p, q = self._param(p), self._param(q)
        _, star = self.eye(p)
        node = self.rows(p)[q]
        if node is None:
            return None
        want = star + q.dims
        if node.dims != want:      # a reorder by name (or a broadcast of a constant part)
            node = apply("expand", node, dims=want)
        labels = canonical(p.dims + q.dims)
        return node if labels == want else apply("relabel", node, dims=labels)

    def _param(self, p):
        for q in self.params:
            if q is p or q.name == p:
                return q
        raise DeclarationError(f"{getattr(p, 'display', repr(p))} is not one of the params "
                               f"{[q.name for q in self.params]}")


def lift(outputs, v, eye, star):
    """Rebuild the graph of ``outputs`` (linear in ``v``) with ``v`` replaced by ``eye``.

    Every node that depends on ``v`` gains the dims ``star``; names align operands, so
    elementwise ops and reductions over named axes carry them unchanged. Returns
    ``{old node: new node}`` for the nodes that changed (and the unchanged outputs).
    """
    new = {v: eye}
    for node in topo_order(outputs):
        if node.is_leaf or not any(x in new for x in node.inputs):
            continue
        new[node] = _lift_node(node, [new.get(x, x) for x in node.inputs], eye, star)
    return {o: new.get(o, o) for o in outputs} | new


def _extras(x, star):
    return tuple(d for d in star if d in x.dims)


def _lift_node(node, ins, eye, star):
    attrs = dict(node.attrs)
    if node.op == "matmul":
        return _lift_matmul(node, ins, eye, star)
    if node.op == "expand":
        return apply("expand", ins[0], dims=tuple(attrs["dims"]) + _extras(ins[0], star))
    if node.op == "transpose":      # by name a transpose changes nothing but the layout
        return ins[0]
    if node.op == "relabel":
        x, extra = ins[0], _extras(ins[0], star)
        x = apply("expand", x, dims=node.inputs[0].dims + extra)
        return apply("relabel", x, dims=node.dims + extra)
    sunk = _sink_relabel(node, ins)
    if sunk is not None:
        return sunk
    if node.op == "mul" and any(x is eye for x in ins):
        other = ins[1] if ins[0] is eye else ins[0]
        while other.op == "expand":
            other = other.inputs[0]
        if other.op == "const" and other.attrs["value"] == 1 and set(ins[0].dims + ins[1].dims) \
                <= set(eye.dims):
            return eye
    return apply(node.op, *ins, **attrs)


def _sink_relabel(node, ins):
    """``f(relabel(x), y)`` as ``relabel(f(x, y))`` for an elementwise ``f`` when ``y`` has
    none of the labels involved: the relabel (a copy in code) moves towards a matmul,
    which reads the array as it is, instead of copying a data matrix."""
    from symgrad.graph.registry import get_op
    if get_op(node.op).family != "elementwise" or node.op == "where":
        return None
    moved = [k for k, x in enumerate(ins) if x.op == "relabel"]
    if len(moved) != 1:
        return None
    r = ins[moved[0]]
    rename = {a: b for a, b in zip(r.inputs[0].dims, r.dims) if a != b}
    touched = set(rename) | set(rename.values())
    others = [x for k, x in enumerate(ins) if k != moved[0]]
    if any(touched & set(x.dims) for x in others) or len(set(rename)) != len(rename):
        return None
    inner = apply(node.op, *[r.inputs[0] if k == moved[0] else x for k, x in enumerate(ins)],
                  **dict(node.attrs))
    labels = tuple(rename.get(d, d) for d in inner.dims)
    return inner if labels == inner.dims else apply("relabel", inner, dims=labels)


def _lift_matmul(node, ins, eye, star):
    """``a @ b`` with one operand lifted: the contraction written by name,
    ``sum(a * b, axis=k)`` (codegen turns it back into gemm/gemv). ``a @ I`` over a 1-D
    param is ``a`` with its axis relabelled."""
    a, b = ins
    ka, kb = node.attrs["contract"]
    out_a, out_b = dict(node.attrs["out_a"]), dict(node.attrs["out_b"])
    if b is eye and len(star) == 1:
        return apply("relabel", a, dims=tuple(star[0] if d == ka else out_a.get(d, d)
                                               for d in a.dims))
    if a is eye and len(star) == 1:
        return apply("relabel", b, dims=tuple(star[0] if d == kb else out_b.get(d, d)
                                               for d in b.dims))
    if a.ndim == 2 and a.dims[0] == ka:
        a = apply("transpose", a)       # the same values by name; a BLAS flag in code
    if b.ndim == 2 and b.dims[-1] == kb:
        b = apply("transpose", b)
    if a.ndim <= 2 and b.ndim <= 2 and a.dims[-1] == ka and b.dims[0] == kb:
        # still a BLAS call (gemm for X^T (D X)); a relabelled operand is the same array
        arrays = [x.inputs[0] if x.op == "relabel" else x for x in (a, b)]
        rows = tuple(out_a.get(d, d) for d in a.dims[:-1])
        cols = tuple(out_b.get(d, d) for d in b.dims[1:])
        product = apply("matmul", *arrays)
        if product.dims != rows + cols and rows and cols:
            # (B^T A^T) lays the axes out as their labels want: no relabelling copy
            swapped = apply("matmul", *(apply("transpose", x) for x in reversed(arrays)))
            if swapped.dims == cols + rows:
                return swapped
        return product if product.dims == rows + cols else \
            apply("relabel", product, dims=rows + cols)
    a, b = _rename(a, out_a), _rename(b, out_b)
    if ka != kb:    # a fresh label for the contracted axis, so no label repeats
        longest = max(len(d) for d in a.dims + b.dims + star)
        k = base(ka) + "'" * longest
        a, b, ka = _rename(a, {ka: k}), _rename(b, {kb: k}), k
    return apply("sum", a * b, axes=(ka,))


def _rename(x, mapping):
    """``x`` with some axis labels renamed (a relabel node when anything changes)."""
    labels = tuple(mapping.get(d, d) for d in x.dims)
    return x if labels == x.dims else apply("relabel", x, dims=labels)


def hvp_graph(loss, params):
    """``(vectors, hvps)``: the direction tensors and ``{q: sum_p H_qp v_p}`` nodes."""
    so = SecondOrder(loss, params)
    return so.vectors, so.hvp


def hessian_blocks(loss, params):
    """``{(p, q): H_pq node or None}`` for every pair of params, and the identity
    tensors (``{p: (eye node, primed dims)}``) the blocks read."""
    so = SecondOrder(loss, params)
    blocks = {(p, q): so.block(p, q) for p in so.params for q in so.params}
    return blocks, so


# -- values (the NumPy evaluator: the oracle compiled second order is tested against) ------
def identity_array(shape):
    """The identity of a tensor of ``shape``, shaped ``shape + shape``."""
    n = int(np.prod(shape)) if shape else 1
    return np.eye(n).reshape(tuple(shape) * 2)


def _bound(so, data):
    """Leaf arrays and dim sizes for ``so``'s graphs: the data, the identities, the
    directions given (by their tensor names)."""
    arrays, sizes = bind([so.loss], data, strict=False)
    for p, (eye, star) in so._eyes.items():
        arrays[eye] = identity_array(np.shape(arrays[p]))
        for d in star:
            sizes[d] = sizes[base(d)]
    for p, v in so.vectors.items():
        if v.name in data:
            arrays[v] = np.asarray(data[v.name], dtype=np.float64).reshape(np.shape(arrays[p]))
    return arrays, sizes


def hessian_values(loss, params, data):
    """``{(p name, q name): ndarray of shape p.shape + q.shape}`` by the NumPy evaluator."""
    blocks, so = hessian_blocks(loss, params)
    arrays, sizes = _bound(so, data)
    wanted = [b for b in blocks.values() if b is not None]
    values = run_graph(wanted, arrays, sizes)
    out = {}
    for (p, q), node in blocks.items():
        shape = np.shape(arrays[p]) + np.shape(arrays[q])
        out[p.name, q.name] = np.zeros(shape) if node is None else \
            np.broadcast_to(values[node], shape).copy()
    return out


def hvp_values(loss, params, data, vectors):
    """``{q name: sum_p H_qp v_p}`` by the NumPy evaluator; ``vectors``: p name -> array."""
    so = SecondOrder(loss, params)
    named = {so.vectors[p].name: vectors[p.name] for p in so.params}
    arrays, sizes = _bound(so, {**data, **named})
    values = run_graph([h for h in so.hvp.values() if h is not None], arrays, sizes)
    return {q.name: np.zeros(np.shape(arrays[q])) if h is None
            else np.broadcast_to(values[h], np.shape(arrays[q])).copy()
            for q, h in so.hvp.items()}

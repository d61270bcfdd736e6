"""Every kernel-emitting op (an op whose code is an ``emit`` hook, not a loop template)
compiles and is exact for operands of every rank it accepts, every axis spelling, sizes
of 1, and results of rank 0.

The defect this guards: logsumexp of a 1-D tensor (a 0-d result) wrote ``L[] = ...``, a
SyntaxError at import (``take`` from a 1-D tensor went through the same line). Each
case is one small model whose loss sums many uses of one op (every rank and axis), so
one compile covers them all; it is checked against the
NumPy evaluator (value and gradients) and through every generated function: ``loss``,
``loss_and_grad``, a forward ``output`` and one step of the fused training loop.
"""
import numpy as np
import pytest

import symgrad as sg
from symgrad.codegen import compile
from symgrad.diff.reverse import backward
from symgrad.graph.evaluate import evaluate
from symgrad.graph.registry import OPS

DIMS = ("A", "B", "C")


def _data(leaves, size, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for leaf in leaves:
        shape = tuple(size for _ in leaf.dims)
        if leaf.dtype == sg.graph.node.INT:
            out[leaf.name] = rng.integers(0, size, size=shape)
        else:
            out[leaf.name] = rng.normal(size=shape)
    return out


def _axes(rank):
    """Every spelling of every axis of a rank-``rank`` tensor: int, negative int, name."""
    dims = DIMS[:rank]
    return [a for k, d in enumerate(dims) for a in (k, k - rank, d)]


def _weighted(node, tag):
    """sum(c * node): a generic scalar that gives every element its own gradient."""
    if not node.dims:
        return node * sg.tensor(f"c{tag}", ())
    return sg.sum(node * sg.tensor(f"c{tag}", node.dims))


def _dims(rank):
    return DIMS[:rank]


def normalise(op):
    """``op`` of a tensor of each rank 1..3 along every spelling of every axis."""
    def build():
        terms, params = [], []
        for rank in (1, 2, 3):
            x = sg.param(f"x{rank}", _dims(rank))
            params.append(x)
            terms += [getattr(sg, op)(sg.tanh(x), axis=a) for a in _axes(rank)]
        return terms, params
    return build


def matmul():
    """1-D and 2-D operands on both sides, params, data, and a transposed view operand."""
    def build():
        terms, params = [], []
        for k, (left, right) in enumerate(((("K",), ("K",)), (("A", "K"), ("K",)),
                                           (("K",), ("K", "B")), (("A", "K"), ("K", "B")))):
            a, b = sg.param(f"a{k}", left), sg.param(f"b{k}", right)
            params += [a, b]
            terms += [a @ b, sg.tensor(f"u{k}", left) @ b, a @ sg.tanh(b)]
            if len(left) == 2:
                terms.append(sg.tensor(f"uT{k}", left[::-1]).T @ b)
        return terms, params
    return build


def cross_entropy():
    """Logits of rank 1..3 (a 0-d integer label for rank 1), integer and one-hot labels."""
    def build():
        terms, params = [], []
        for rank in (1, 2, 3):
            s = sg.param(f"s{rank}", _dims(rank))
            params.append(s)
            for labels in (sg.tensor(f"y{rank}", _dims(rank)[:-1], dtype=int),
                           sg.tensor(f"Y{rank}", _dims(rank))):
                terms += [sg.cross_entropy(s, labels), sg.cross_entropy(sg.tanh(s) * 2.0, labels)]
        return terms, params
    return build


def take():
    """``take`` from a tensor of each rank 1..3 along every axis, each spelled three ways
    (a 0-d result for rank 1); one label tensor per axis."""
    def build():
        terms, params = [], []
        for rank in (1, 2, 3):
            dims = _dims(rank)
            x = sg.param(f"x{rank}", dims)
            params.append(x)
            for j, d in enumerate(dims):
                labels = sg.tensor(f"y{rank}{d}", tuple(e for e in dims if e != d), dtype=int)
                terms += [sg.take(x, labels, axis=a) for a in (j, j - rank, d)]
                terms.append(sg.take(sg.tanh(x), labels, axis=d))
        return terms, params
    return build


def relabel():
    """Square tensors (a dim twice): reductions and transposes relabel the axes they keep."""
    def build():
        W, V = sg.param("W", ("A", "A")), sg.param("V", ("A", "A", "B"))
        terms = [sg.sum(W, axis=0), sg.sum(W, axis=-1), sg.mean(sg.tanh(W), axis=1), W.T,
                 sg.softmax(W, axis=0), sg.logsumexp(W, axis=0), sg.sum(V, axis=1),
                 sg.max(V, axis=0), W @ W]
        return terms, [W, V]
    return build


CASES = {op: normalise(op) for op in ("softmax", "log_softmax", "logsumexp")}
CASES.update(matmul=matmul(), cross_entropy=cross_entropy(), take=take(), relabel=relabel())


def _model(build):
    terms, params = build()
    loss = _weighted(terms[0], 0)
    for k, t in enumerate(terms[1:], 1):
        loss = loss + _weighted(t, k)
    return loss, params, terms


def _reference(loss, params, data):
    grads, _ = backward(loss, params)
    values = evaluate([loss] + [grads[p] for p in params], data)
    return float(values[0]), [np.asarray(v, np.float64) for v in values[1:]]


def _close(got, want, what):
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=what)


def test_every_kernel_op_has_a_case():
    kernels = {name for name, op in OPS.items() if "emit" in op.code}
    covered = set(CASES)
    missing = sorted(kernels - covered)
    assert not missing, (f"kernel-emitting ops {missing} have no rank/axis case here; add "
                         "one to CASES in tests/codegen/test_kernel_ranks.py")


@pytest.mark.slow   # seven fresh compiles (~10 s each on a busy machine)
@pytest.mark.parametrize("size", [1, 3], ids=["size1", "size3"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_kernel_compiles_and_is_exact(case, size):
    loss, params, terms = _model(CASES[case])
    assert case in {n.op for n in sg.graph.topo_order(loss)}     # the case uses its op
    data = _data([n for n in sg.graph.topo_order(loss) if n.op in ("input", "param")], size)
    p = {q.name: data[q.name] for q in params}
    d = {k: v for k, v in data.items() if k not in p}
    fn = compile(loss, params, outputs=[terms[-1]])
    want, want_grads = _reference(loss, params, data)
    value, grads = fn.loss_and_grad(p, **d)
    _close(value, want, f"{case}: loss_and_grad value")
    _close(fn.loss(p, **d), want, f"{case}: loss")
    for q, g in zip(params, want_grads):
        _close(grads[q.name], np.broadcast_to(g, np.shape(p[q.name])), f"{case}: d/d{q.name}")
    _close(fn.output(terms[-1], p, **d), np.asarray(evaluate([terms[-1]], data)[0]),
           f"{case}: output")
    # one full-batch step of the fused training loop: p - lr * grad
    work = {k: np.array(v, np.float64) for k, v in p.items()}
    losses, done = fn.run_epochs(work, d, None, np.array([0.1]), None)
    assert done == 1
    _close(losses[0], want, f"{case}: run_epochs loss")
    for q in params:
        _close(work[q.name], p[q.name] - 0.1 * grads[q.name], f"{case}: run_epochs {q.name}")

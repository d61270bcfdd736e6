"""Second order as graphs: every Hessian block and Hessian-vector product of a corpus
against finite differences of the gradient and against HIPS autograd's hessian."""
import autograd
import autograd.numpy as anp
import numpy as np
import pytest

import symgrad as sg
from symgrad.diff.hessian import SecondOrder, hessian_values, hvp_values
from symgrad.errors import DeclarationError
from symgrad.graph.bind import bind
from symgrad.graph.evaluate import run_graph
from symgrad.graph.registry import OPS
from tests import cases
from tests.autograd_ref import to_autograd
from tests.ops.test_registry import CASES, NO_GRADIENT


def softmax_regression_matrix():
    """Softmax regression with a matrix param W (d, C) and a bias."""
    return cases.softmax_regression(seed=3, n=7, d=3, c=3)


def logistic_l2(seed=0, n=30, d=4):
    r = np.random.default_rng(seed)
    X, t, w = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",)), sg.param("w", ("d",))
    loss = sg.binary_cross_entropy(sg.sigmoid(X @ w), t) + 0.01 * sg.l2(w)
    return loss, [w], {"X": r.normal(size=(n, d)), "t": (r.random(n) > 0.5) * 1.0,
                       "w": r.normal(size=d)}


CORPUS = {
    "logistic": cases.logistic_regression,
    "logistic_l2": logistic_l2,
    "softmax_matrix": softmax_regression_matrix,
    "mlp2_tanh": lambda: cases.mlp(2, "tanh", n=5, sizes=[3, 4, 3]),
    "linear_regression": cases.linear_regression,
}


def _gradient_at(loss, params, data):
    grads = sg.gradients(loss, params)
    arrays, sizes = bind([loss], data)
    values = run_graph(grads, arrays, sizes)
    return [np.broadcast_to(values[g], np.shape(data[p.name])) for g, p in zip(grads, params)]


def fd_hessian(loss, params, data, eps=1e-6):
    """Central differences of the gradient (the backward graph), column by column."""
    blocks = {}
    for q in params:
        x = np.asarray(data[q.name], dtype=float)
        cols = []
        for k in range(x.size):
            step = np.zeros(x.size)
            step[k] = eps
            plus = _gradient_at(loss, params, {**data, q.name: x + step.reshape(x.shape)})
            minus = _gradient_at(loss, params, {**data, q.name: x - step.reshape(x.shape)})
            cols.append([(a - b) / (2 * eps) for a, b in zip(plus, minus)])
        for i, p in enumerate(params):
            shape = np.shape(data[p.name]) + x.shape
            col = np.stack([c[i] for c in cols], axis=-1) if cols else np.zeros(shape)
            blocks[p.name, q.name] = col.reshape(shape)
    return blocks


def autograd_hessian(loss, params, data):
    """autograd.hessian of the loss re-expressed in autograd.numpy, split into blocks."""
    arrays, sizes = bind([loss], data)
    shapes = [np.shape(data[p.name]) for p in params]
    splits = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]

    def f(theta):
        env = {k: np.asarray(v) for k, v in data.items()}
        for p, piece, shape in zip(params, anp.split(theta, splits), shapes):
            env[p.name] = anp.reshape(piece, shape)
        return to_autograd(loss, env, sizes)

    theta = np.concatenate([np.ravel(data[p.name]) for p in params])
    full = autograd.hessian(f)(theta)
    rows = np.split(full, splits, axis=0)
    return {(p.name, q.name): block.reshape(sp + sq)
            for p, row, sp in zip(params, rows, shapes)
            for q, block, sq in zip(params, np.split(row, splits, axis=1), shapes)}


def _close(got, want, rtol, atol, what):
    assert set(got) == set(want), what
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=rtol, atol=atol,
                                   err_msg=f"{what} block {key}")


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_hessian_matches_autograd_and_finite_differences(name):
    loss, params, data = CORPUS[name]()
    got = hessian_values(loss, params, data)
    _close(got, autograd_hessian(loss, params, data), 1e-9, 1e-9, name)
    _close(got, fd_hessian(loss, params, data), 1e-6, 1e-6, name)
    for (p, q), block in got.items():          # symmetric
        flat = block.reshape(np.size(data[p]), np.size(data[q]))
        np.testing.assert_allclose(flat, got[q, p].reshape(flat.shape[::-1]).T, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_hvp_is_the_hessian_times_the_vectors(name, rng):
    loss, params, data = CORPUS[name]()
    H = autograd_hessian(loss, params, data)
    vectors = {p.name: rng.normal(size=np.shape(data[p.name])) for p in params}
    got = hvp_values(loss, params, data, vectors)
    for q in params:
        want = sum(np.tensordot(H[q.name, p.name], vectors[p.name], axes=np.ndim(data[p.name]))
                   for p in params)
        np.testing.assert_allclose(got[q.name], want, rtol=1e-9, atol=1e-9)


def _autograd_knows(loss):
    from symgrad.graph.traverse import topo_order
    known = {"input", "param", "const", "add", "sub", "mul", "div", "neg", "pow", "exp", "log",
             "clog", "sqrt", "abs", "sigmoid", "tanh", "relu", "softplus", "sum", "mean", "max",
             "softmax", "log_softmax", "logsumexp", "matmul", "transpose", "cross_entropy",
             "bce_logits", "count", "expand"}
    return all(n.op in known for n in topo_order(loss))


@pytest.mark.parametrize("op", sorted(CASES))
def test_every_registry_op_has_second_derivatives(op, rng):
    """sum(f(params) * R) for each registry case: Hessian blocks against finite
    differences of the gradient, and against autograd where it spells the op."""
    loss, params, data = CASES[op](rng)
    got = hessian_values(loss, params, data)
    _close(got, fd_hessian(loss, params, data), 1e-5, 1e-6, op)
    if _autograd_knows(loss):
        _close(got, autograd_hessian(loss, params, data), 1e-9, 1e-9, op)


def test_registry_cases_cover_every_differentiable_op():
    from symgrad.ops.custom import CUSTOM
    assert not set(OPS) - set(CASES) - NO_GRADIENT - set(CUSTOM)


def test_blocks_have_the_params_dims():
    loss, params, data = softmax_regression_matrix()
    so = SecondOrder(loss, params)
    W, b = params
    assert so.block(W, W).dims == ("D'", "C'", "D", "C")
    assert so.block(W, b).dims == ("D", "C'", "C")
    assert so.block("b", "b").dims == ("C'", "C")
    with pytest.raises(DeclarationError, match="'X'"):
        so.block("X", W)


def test_logistic_block_is_one_matrix_product():
    """X^T (D X): the identity is read away, one contraction over N remains."""
    from symgrad.graph.traverse import topo_order
    loss, params, _ = logistic_l2()
    block = SecondOrder(loss, params).block(*params * 2)
    nodes = topo_order(block)
    products = [n for n in nodes if len(n.dims) == 2 and (
        n.op == "matmul" or (n.op == "sum" and n.inputs[0].op == "mul"))]
    assert len(products) == 1 and products[0].op == "matmul"
    assert products[0].attrs["contract"] == ("N", "N")
    eye = next(n for n in nodes if n.op == "input" and n.name == "I_w")
    assert all(c.op == "mul" for c in nodes if eye in c.inputs)     # only in 2 lambda I

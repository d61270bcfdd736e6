"""Second order as graphs: every Hessian block and Hessian-vector product of a corpus
against finite differences of the gradient and against HIPS autograd's hessian."""
import autograd
import autograd.numpy as anp
import autograd.scipy.special as ag_special
import numpy as np
import pytest

import symgrad as sg
from symgrad.diff.hessian import SecondOrder, hessian_values, hvp_values
from symgrad.errors import DeclarationError
from symgrad.graph.bind import bind
from symgrad.graph.evaluate import run_graph
from symgrad.graph.node import Node
from symgrad.graph.registry import OPS
from symgrad.ops._shape import align
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


def square_param(seed=0, n=5, d=3):
    """A square param A (d, d): its block with itself has four axes."""
    r = np.random.default_rng(seed)
    X, t, A = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",)), sg.param("A", ("d", "d"))
    loss = sg.mean((sg.sum(sg.tanh(X @ A) * X, axis="d") - t) ** 2) + 0.1 * sg.l2(A)
    return loss, [A], {"X": r.normal(size=(n, d)), "A": r.normal(size=(d, d)),
                       "t": r.normal(size=n)}


CORPUS = {
    "logistic": cases.logistic_regression,
    "logistic_l2": logistic_l2,
    "softmax_matrix": softmax_regression_matrix,
    "mlp2_tanh": lambda: cases.mlp(2, "tanh", n=5, sizes=[3, 4, 3]),
    "linear_regression": cases.linear_regression,
    "square_param": square_param,
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


def _ag_sigmoid(x):
    return 0.5 * (anp.tanh(0.5 * x) + 1.0)


def _ag_take(n, a, sizes):
    """S[..., y, ...] by fancy indexing (labels are data: no gradient)."""
    s_node, y_node = n.inputs
    labels = align(np.asarray(a[1]), y_node.dims, n.dims)
    index = []
    for d in s_node.dims:
        if d == n.attrs["dim"]:
            index.append(np.broadcast_to(labels, [sizes[e] for e in n.dims]))
        else:
            index.append(np.arange(sizes[d]).reshape([-1 if e == d else 1 for e in n.dims]))
    return a[0][tuple(index)]


def _ag_where(n, a, sizes):
    """Branches broadcast by a product first: autograd's where does not unbroadcast."""
    ones = np.ones([sizes[d] for d in n.dims])
    return anp.where(a[0] != 0, a[1] * ones, a[2] * ones)


SQRT2 = np.sqrt(2.0)
# the ops tests/autograd_ref.py does not spell, from their textbook definitions
EXTRA = {
    "sin": lambda n, a, z: anp.sin(a[0]), "cos": lambda n, a, z: anp.cos(a[0]),
    "log1p": lambda n, a, z: anp.log1p(a[0]), "expm1": lambda n, a, z: anp.expm1(a[0]),
    "erf": lambda n, a, z: ag_special.erf(a[0]),
    "gelu": lambda n, a, z: 0.5 * a[0] * (1.0 + ag_special.erf(a[0] / SQRT2)),
    "silu": lambda n, a, z: a[0] * _ag_sigmoid(a[0]),
    "swish": lambda n, a, z: a[0] * _ag_sigmoid(a[0]),
    "elu": lambda n, a, z: anp.where(a[0] > 0, a[0], n.attrs["alpha"] * anp.expm1(a[0])),
    "leaky_relu": lambda n, a, z: anp.where(a[0] > 0, a[0], n.attrs["slope"] * a[0]),
    "huber": lambda n, a, z: anp.where(anp.abs(a[0]) <= n.attrs["delta"], 0.5 * a[0] ** 2,
                                       n.attrs["delta"] * (anp.abs(a[0])
                                                           - 0.5 * n.attrs["delta"])),
    "maximum": lambda n, a, z: anp.maximum(a[0], a[1]),
    "minimum": lambda n, a, z: anp.minimum(a[0], a[1]),
    "where": lambda n, a, z: _ag_where(n, a, z),
    "less": lambda n, a, z: 1.0 * (a[0] < a[1]), "less_equal": lambda n, a, z: 1.0 * (a[0] <= a[1]),
    "relabel": lambda n, a, z: a[0], "take": _ag_take,
}


def ag_value(loss, env, sizes):
    """The loss in autograd.numpy: tests/autograd_ref.py, with the ops it lacks (EXTRA)
    evaluated here and handed to it as inputs (autograd traces through both)."""
    env, memo = dict(env), {}

    def rebuild(n):
        if n not in memo:
            if n.is_leaf or n.op == "count":
                memo[n] = n
            else:
                ins = [rebuild(x) for x in n.inputs]
                if n.op in EXTRA:
                    name = f"_ag{n.id}"
                    env[name] = EXTRA[n.op](n, [to_autograd(x, env, sizes) for x in ins], sizes)
                    memo[n] = Node("input", (), n.dims, n.dtype, name=name)
                else:
                    memo[n] = Node(n.op, ins, n.dims, n.dtype, n.attrs, n.name)
        return memo[n]
    return to_autograd(rebuild(loss), env, sizes)


def autograd_hessian(loss, params, data):
    """autograd.hessian of the loss re-expressed in autograd.numpy, split into blocks."""
    arrays, sizes = bind([loss], data)
    shapes = [np.shape(data[p.name]) for p in params]
    splits = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]

    def f(theta):
        env = {k: np.asarray(v) for k, v in data.items()}
        for p, piece, shape in zip(params, anp.split(theta, splits), shapes):
            env[p.name] = anp.reshape(piece, shape)
        return ag_value(loss, env, sizes)

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


@pytest.mark.parametrize("op", sorted(CASES))
def test_every_registry_op_has_second_derivatives(op, rng):
    """sum(f(params) * R) for each registry case: Hessian blocks against finite
    differences of the gradient and against autograd's hessian; HVPs against autograd's
    Hessian times the vectors."""
    loss, params, data = CASES[op](rng)
    got = hessian_values(loss, params, data)
    _close(got, fd_hessian(loss, params, data), 1e-5, 1e-6, op)
    H = autograd_hessian(loss, params, data)
    _close(got, H, 1e-9, 1e-9, op)
    vectors = {p.name: rng.normal(size=np.shape(data[p.name])) for p in params}
    hv = hvp_values(loss, params, data, vectors)
    for q in params:
        want = sum(np.tensordot(H[q.name, p.name], vectors[p.name],
                                axes=np.ndim(data[p.name])) for p in params)
        np.testing.assert_allclose(hv[q.name], want, rtol=1e-9, atol=1e-9, err_msg=op)


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
    sq_loss, (A,), _ = square_param()
    assert SecondOrder(sq_loss, [A]).block(A, A).dims == ("d" + "'" * 3, "d''", "d'", "d")
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

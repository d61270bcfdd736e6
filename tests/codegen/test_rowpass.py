"""Row passes: X @ w, the loops over its rows and X.T @ g in one pass over X's rows.

The kernels against NumPy on every tail shape; the models whose step is a row pass
against the NumPy reference (loss, gradients, training); the models whose step must not
be one (a reduction of the pass read inside it) stay correct and unblocked.
"""
import numpy as np
import pytest

import symgrad as sg
from symgrad.codegen import compile
from symgrad.codegen.trainloop import call_run_epochs_with
from symgrad.train.optimizers import OptimizerState
from symgrad.train.reference import NumpyModel
from tests.codegen.test_train_loop import numpy_sgd


def _linear(loss_of):
    X, t, w = sg.tensor("X", ("N", "D")), sg.tensor("t", ("N",)), sg.param("w", ("D",))
    return loss_of(X, t, w), [w]


def _data(n, d, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    t = (rng.random(n) > 0.5).astype(dtype)
    return X, t, (0.3 * rng.standard_normal(d)).astype(dtype)


SSE = lambda X, t, w: sg.sum((t - sg.sigmoid(X @ w)) ** 2)
BIAS, WEIGHT = sg.param("b", ()), sg.tensor("c", ("N",))
P = lambda X, w: sg.sigmoid(X @ w + BIAS)
MODELS = {
    "sigmoid_sse": SSE,
    "logistic": lambda X, t, w: sg.mean(sg.softplus(X @ w) - t * (X @ w)),
    "mse_bias": lambda X, t, w: sg.mean((t - (X @ w + BIAS)) ** 2),
    "exp_penalty": lambda X, t, w: sg.mean(sg.exp(0.1 * (X @ w) - t)) + 0.01 * sg.sum(w ** 2),
    # textbook forms: a scalar of the pass's sum (L = -S) and dot products over the rows
    "bce_by_hand": lambda X, t, w: -sg.mean(t * sg.log(P(X, w)) + (1 - t) * sg.log(1 - P(X, w))),
    "bce_two_sums": lambda X, t, w: -(sg.sum(t * sg.log(P(X, w)))
                                      + sg.sum((1 - t) * sg.log(1 - P(X, w)))),
    "weighted_sse": lambda X, t, w: sg.sum(WEIGHT * (t - P(X, w)) ** 2),
}


def _leaves(loss):
    return {n.name for n in sg.graph.traverse.topo_order(loss) if n.op in ("param", "input")}


def _params(loss, w0):
    return {"w": w0, **({"b": np.array(0.2)} if "b" in _leaves(loss) else {})}


def _rows(loss, X, t):
    weights = np.linspace(0.5, 1.5, len(t))
    return {"X": X, "t": t, **({"c": weights} if "c" in _leaves(loss) else {})}


@pytest.fixture(scope="module")
def kernels():
    loss, params = _linear(SSE)
    return {dt: compile(loss, params, dtype=dt).module for dt in (np.float64, np.float32)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernels_match_numpy_on_every_tail(kernels, dtype):
    """Column counts around the vector width (4 or 8 lanes), the 8-vector panels and the
    4-, 2- and 1-vector rests (28 = 4 + 2 + 1 vectors of 4; 120 = 64 + 4 + 2 + 1 of 8),
    row counts around the 8-row groups; rows from an offset; out and g block-relative."""
    m, rng = kernels[dtype], np.random.default_rng(1)
    tol = 1e-12 if dtype == np.float64 else 1e-4
    for d in (0, 1, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 24, 28, 31, 32, 33, 56, 64, 100, 120):
        for rows in (0, 1, 7, 8, 9, 17, 48):
            X = rng.standard_normal((rows + 5, d)).astype(dtype)
            x, g = rng.standard_normal(d).astype(dtype), rng.standard_normal(rows).astype(dtype)
            z = np.full(rows + 3, 7.0, dtype)
            m._sg_rows_dot(X, 2, 2 + rows, x, z)
            block = X[2:2 + rows].astype(np.float64)
            np.testing.assert_allclose(z[:rows], block @ x, rtol=tol, atol=tol)
            assert (z[rows:] == 7.0).all()                  # nothing past the block
            out = rng.standard_normal(d).astype(dtype)
            want = out + block.T @ g
            m._sg_rows_tdot(X, 2, 2 + rows, g, out)         # accumulates
            np.testing.assert_allclose(out, want, rtol=tol, atol=tol)


def test_kernels_read_strided_operands_and_reject_other_dtypes(kernels):
    m, rng = kernels[np.float64], np.random.default_rng(2)
    X = rng.standard_normal((20, 30))[:, ::2]           # rows not contiguous: copied
    x, z = rng.standard_normal(15)[::-1], np.zeros(20)
    m._sg_rows_dot(X, 0, 20, x, z)
    np.testing.assert_allclose(z, X @ x, rtol=1e-12)
    with pytest.raises(Exception, match="_sg_rows_tdot needs"):
        m._sg_rows_tdot(X, 0, 20, np.ones(20), np.zeros(15, np.float32))


def _offset(a, offset):
    """A copy of ``a`` whose data starts ``offset`` bytes past a 32-byte boundary."""
    raw = np.empty(a.size + 8, a.dtype)
    start = (-raw.ctypes.data % 32 + offset) // a.itemsize
    out = raw[start:start + a.size].reshape(a.shape)
    out[...] = a
    assert out.ctypes.data % 32 == offset
    return out


def test_full_batch_data_is_aligned_for_the_kernels_when_the_run_is_long(kernels):
    """NumPy's 16-byte alignment makes every other 256-bit load straddle two cache lines:
    a run of 4 or more full-batch steps copies such data once to a 32-byte boundary."""
    m = kernels[np.float64]
    X = _offset(np.random.default_rng(7).standard_normal((50, 64)), 16)
    copy = m._sg_aligned(X, 4)
    assert copy.ctypes.data % 32 == 0 and not np.shares_memory(copy, X)
    assert np.array_equal(copy, X)
    assert m._sg_aligned(X, 3).ctypes.data == X.ctypes.data      # too short to pay
    A = _offset(X, 0)
    assert m._sg_aligned(A, 100).ctypes.data == A.ctypes.data    # aligned already
    # training on either gives the same bits
    loss, params = _linear(SSE)
    fn = compile(loss, params)
    X, t, w0 = _data(1000, 64, seed=8)
    got = []
    for offset in (16, 0):
        P = {"w": w0.copy()}
        fn.run_epochs(P, {"X": _offset(X, offset), "t": t}, None, np.full(6, 1e-3), None)
        got.append(P["w"])
    assert np.array_equal(*got)
    assert "X = _sg_aligned(X, lrs.shape[0])" in fn.source


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("n, d", [(1000, 7), (100, 500), (5, 3)])
def test_row_pass_models_match_the_reference(name, n, d):
    """Several blocks with a short last one (1000 x 7: 438-row blocks; 100 x 500: 8-row
    blocks), and a single block smaller than a block (5 x 3)."""
    loss, params = _linear(MODELS[name])
    params += [BIAS] if "b" in _leaves(loss) else []
    fn = compile(loss, params)
    grad_src = fn.source[fn.source.index("def loss_and_grad"):fn.source.index("def loss(")]
    assert "_sg_rows_dot(X" in grad_src and "_sg_rows_tdot(X" in grad_src
    assert "_sg_gemv" not in grad_src and grad_src.count("for blk in") == 1   # one pass
    X, t, w0 = _data(n, d)
    params0, rows = _params(loss, w0), _rows(loss, X, t)
    ref = NumpyModel(loss, params)
    value, grads = fn.loss_and_grad(params0, **rows)
    assert value == pytest.approx(ref.loss(params0, **rows), rel=1e-12)
    for k, g in ref.grad(params0, **rows).items():
        np.testing.assert_allclose(grads[k], g, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("batch_size", [None, 64])
def test_training_through_a_row_pass_matches_the_numpy_loop(batch_size):
    loss, params = _linear(MODELS["mse_bias"])
    params.append(BIAS)
    fn = compile(loss, params)
    X, t, w0 = _data(700, 9, seed=3)
    data = {"X": X, "t": t, "w": w0, "b": np.array(0.2)}
    rng = np.random.default_rng(4)
    orders = np.stack([rng.permutation(700) for _ in range(5)])
    lrs = np.full(5, 0.05)
    want, want_losses = numpy_sgd(loss, params, data, orders, lrs, batch_size)
    P = {"w": w0.copy(), "b": np.array(0.2)}
    losses, done = fn.run_epochs(P, {"X": X, "t": t}, orders, lrs, batch_size)
    assert done == 5
    np.testing.assert_allclose(losses, want_losses, rtol=1e-10)
    np.testing.assert_allclose(P["w"], want["w"], rtol=1e-10, atol=1e-13)


def test_alternating_blocks_follow_the_step_count_across_calls():
    """Odd steps visit the blocks backwards (their sums round differently); the direction
    follows the optimizer's step count, so a run in two calls equals a run in one,
    bit for bit, as fit's chunked calls need."""
    loss, params = _linear(SSE)
    fn = compile(loss, params)
    X, t, w0 = _data(3000, 16, seed=5)        # 16 columns: 192-row blocks, 16 of them
    lrs = np.full(6, 1e-3)
    one, state = {"w": w0.copy()}, OptimizerState({"w": w0})
    fn.run_epochs(one, {"X": X, "t": t}, None, lrs, None)
    two = {"w": w0.copy()}
    hyper = np.zeros(4)
    call_run_epochs_with(fn, two, {"X": X, "t": t}, None, lrs[:3], None, "sgd", hyper, state)
    call_run_epochs_with(fn, two, {"X": X, "t": t}, None, lrs[3:], None, "sgd", hyper, state)
    assert state.step == 6
    assert np.array_equal(one["w"], two["w"])
    ref = {"w": w0.copy()}
    for _ in range(6):
        ref["w"] -= 1e-3 * NumpyModel(loss, params).grad(ref, X=X, t=t)["w"]
    np.testing.assert_allclose(one["w"], ref["w"], rtol=1e-12)


def test_float32_row_pass_agrees_with_float64():
    loss, params = _linear(SSE)
    X, t, w0 = _data(2000, 64, seed=6)
    out = {}
    for dt in (np.float64, np.float32):
        fn = compile(loss, params, dtype=dt)
        P = {"w": w0.astype(dt)}
        fn.run_epochs(P, {"X": X.astype(dt), "t": t.astype(dt)}, None, np.full(20, 1e-3), None)
        out[dt] = P["w"].astype(np.float64)
    np.testing.assert_allclose(out[np.float32], out[np.float64], rtol=2e-4, atol=1e-5)


@pytest.mark.parametrize("loss_of", [
    # the pass's own reduction read inside it: z centred by its mean
    lambda X, t, w: sg.sum((t - sg.sigmoid((X @ w) - sg.mean(X @ w))) ** 2),
    # a scalar of the pass's results that the gradient needs: L^2
    lambda X, t, w: sg.sum((t - sg.sigmoid(X @ w)) ** 2) ** 2,
], ids=["centred", "squared_loss"])
def test_steps_that_are_not_row_passes_stay_unblocked(loss_of):
    loss, params = _linear(loss_of)
    fn = compile(loss, params)
    assert "_sg_rows_dot" not in fn.source
    X, t, w0 = _data(300, 5, seed=7)
    value, grads = fn.loss_and_grad({"w": w0}, X=X, t=t)
    ref = NumpyModel(loss, params)
    assert value == pytest.approx(ref.loss({"w": w0}, X=X, t=t), rel=1e-12)
    np.testing.assert_allclose(grads["w"], ref.grad({"w": w0}, X=X, t=t)["w"], rtol=1e-10)


def test_two_paths_to_a_param_share_one_product():
    """``softplus(z) - t * z`` reaches ``w`` through ``z`` twice: the two gradient products
    ``X.T @ g1 + X.T @ g2`` are emitted as one ``X.T @ (g1 + g2)`` (prepare.py), in a row
    pass and with BLAS (a matrix param, where the step is gemm)."""
    loss, params = _linear(MODELS["logistic"])
    src = compile(loss, params).source
    grad_src = src[src.index("def loss_and_grad"):src.index("def loss(")]
    assert grad_src.count("_sg_rows_tdot(") == 1
    X, T = sg.tensor("X", ("N", "D")), sg.tensor("T", ("N", "C"))
    W = sg.param("W", ("D", "C"))
    loss = sg.mean(sg.softplus(X @ W) - T * (X @ W))
    fn = compile(loss, [W])
    grad_src = fn.source[fn.source.index("def loss_and_grad"):fn.source.index("def loss(")]
    assert grad_src.count("_sg_gemm(") == 2          # X @ W and one X.T @ (...)
    rng = np.random.default_rng(8)
    Xd, Td, W0 = rng.standard_normal((30, 4)), rng.random((30, 3)), rng.standard_normal((4, 3))
    ref = NumpyModel(loss, [W]).grad({"W": W0}, X=Xd, T=Td)["W"]
    np.testing.assert_allclose(fn.grad({"W": W0}, X=Xd, T=Td)["W"], ref, rtol=1e-12)


def test_forward_functions_with_the_pattern_use_blas_and_are_right():
    """loss and output functions take no row pass (their buffers are full-length and may
    be lent): a forward graph that is X @ w, row loops, X.T @ ... itself computes right."""
    X, t, w = sg.tensor("X", ("N", "D")), sg.tensor("t", ("N",)), sg.param("w", ("D",))
    C = sg.tensor("C", ("N",))
    loss = sg.sum((X.T @ sg.sigmoid(X @ w)) ** 2) + sg.sum(sg.sigmoid(X @ w) * C)
    grad_out = X.T @ (sg.sigmoid(X @ w) - t)
    fn = compile(sg.mean((t - sg.sigmoid(X @ w)) ** 2) + 0.0 * sg.sum(C) + loss, [w],
                 outputs=[grad_out])
    Xd, td, w0 = _data(300, 5, seed=9)
    Cd = np.linspace(-1.0, 1.0, 300)
    ref = NumpyModel(fn.loss_node, [w])
    data = {"X": Xd, "t": td, "C": Cd}
    assert fn.loss({"w": w0}, **data) == pytest.approx(ref.loss({"w": w0}, **data), rel=1e-12)
    value, grads = fn.loss_and_grad({"w": w0}, **data)
    assert value == pytest.approx(ref.loss({"w": w0}, **data), rel=1e-12)
    np.testing.assert_allclose(grads["w"], ref.grad({"w": w0}, **data)["w"], rtol=1e-10)
    want = Xd.T @ (1 / (1 + np.exp(-Xd @ w0)) - td)
    np.testing.assert_allclose(fn.output(grad_out, {"w": w0}, X=Xd, t=td), want, rtol=1e-12)

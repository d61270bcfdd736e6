"""A param's gradient product added into the param in the SGD update (fused_update.py):
which products move, where they go, and that training gives the same numbers."""
import numpy as np
import pytest

import symgrad as sg
from symgrad.codegen import fused_update
from symgrad.train import NumpyModel
from tests.codegen.test_reuse import mlp   # relu MLP; its buffers' names are checked there too


def _data(rng, n=48, d=7, hdim=6, c=3):
    params = {"W1": 0.5 * rng.standard_normal((d, hdim)), "b1": rng.standard_normal(hdim),
              "W2": 0.5 * rng.standard_normal((hdim, c)), "b2": rng.standard_normal(c)}
    return params, {"X": rng.standard_normal((n, d)), "y": rng.integers(0, c, n)}


def _loop(fn):
    return fn.source[fn.source.index("def run_epochs_with("):fn.source.index("def run_epochs(")]


def _unfused(loss, params, monkeypatch, tmp_path, **kw):
    with monkeypatch.context() as m:      # another cache dir: its graph index is empty
        m.setattr(fused_update, "fusable", lambda *a: {})
        m.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
        return sg.compile(loss, params=params, **kw)


def _train(model, params0, data, optimizer=None, epochs=3, batch=8):
    """Params and epoch losses after ``epochs`` of minibatch training (``optimizer``:
    None for run_epochs' SGD, else (name, keywords) of check_optimizer)."""
    from symgrad.codegen.trainloop import call_run_epochs_with
    from symgrad.train.optimizers import OptimizerState, check_optimizer
    p = {k: v.copy() for k, v in params0.items()}
    orders = np.stack([np.random.default_rng(e).permutation(len(data["X"]))
                       for e in range(epochs)])
    lrs = np.full(epochs, 0.1)
    if optimizer is None:
        losses, _ = model.run_epochs(p, data, orders, lrs, batch)
        return p, np.asarray(losses)
    opt, state = check_optimizer(optimizer[0], **optimizer[1]), OptimizerState(p)
    if isinstance(model, NumpyModel):
        losses, _ = model.run_epochs_with(p, data, orders, lrs, batch, opt, state)
    else:
        losses, _ = call_run_epochs_with(model, p, data, orders, lrs, batch, opt.name,
                                         opt.hyper(), state)
    return p, np.asarray(losses)


def test_the_mlp_adds_both_weight_gradients_into_the_weights(monkeypatch, tmp_path):
    loss, params = mlp()
    fn = sg.compile(loss, params=params)
    loop = _loop(fn)
    plain, other = loop.split("            else:\n", 1)
    plain = plain[plain.index("# SGD: p <- p - lr g"):]
    assert "_sg_gemm_add(X, g_z2, W1, _SG_TN, -lr)" in plain
    assert "_sg_gemm_add(h, g_z4, W2, _SG_TN, -lr)" in plain
    assert "W1[j, k] -= lr" not in plain and "b1[k] -= lr * g_b1[k]" in plain
    # other optimizers: the products run into the gradient buffers before the updates
    assert other.index("_sg_gemm(X, g_z2, g_W1, _SG_TN)") < other.index("_sg_update(W1")
    # the step itself no longer computes them; loss_and_grad still does
    step = loop[:loop.index("# SGD: p <- p - lr g")]
    assert "g_W1, _SG_TN)" not in step and "g_W2, _SG_TN)" not in step
    lag = fn.source[fn.source.index("def loss_and_grad("):]
    assert "_sg_gemm(X, g_z2, g_W1, _SG_TN)" in lag[:lag.index("return")]
    # operands of a moved product give no memory to later nodes; the rest still reuse
    assert "h = z1  # reuses" in loop and "g_z2 = g_h  # reuses" in loop
    assert "_sg_gemm_add" not in _loop(_unfused(loss, params, monkeypatch, tmp_path))


@pytest.mark.parametrize("optimizer", [None, "momentum", "adam"])
def test_training_matches_the_loop_update_and_the_reference(optimizer, monkeypatch, tmp_path):
    loss, params = mlp()
    params0, data = _data(np.random.default_rng(0))
    opt = {"momentum": ("sgd", {"momentum": 0.9}), "adam": ("adam", {})}.get(optimizer)
    fused = _train(sg.compile(loss, params=params), params0, data, opt)
    loops = _train(_unfused(loss, params, monkeypatch, tmp_path), params0, data, opt)
    ref = _train(NumpyModel(loss, params), params0, data, opt)
    for k in params0:
        # BLAS adds alpha * product to C as the loop does (same bits with OpenBLAS here;
        # a BLAS that fuses the multiply-add may differ in the last bit)
        np.testing.assert_allclose(fused[0][k], loops[0][k], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(fused[0][k], ref[0][k], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fused[1], ref[1], rtol=1e-10)


def test_float32_fuses_in_float32():
    loss, params = mlp()
    params0, data = _data(np.random.default_rng(1))
    fn = sg.compile(loss, params=params, dtype=np.float32)
    assert "_sg_gemm_add(X, g_z2, W1, _SG_TN, -np.float32(lr))" in _loop(fn)
    assert "scale = np.full(1, alpha, np.float32)" in fn.source
    p32, _ = _train(fn, {k: v.astype(np.float32) for k, v in params0.items()},
                    {"X": data["X"].astype(np.float32), "y": data["y"]})
    p64, _ = _train(sg.compile(loss, params=params), params0, data)
    for k in params0:
        assert p32[k].dtype == np.float32
        np.testing.assert_allclose(p32[k], p64[k], rtol=1e-4, atol=1e-5)


def test_a_product_that_reads_a_param_stays_in_the_step(monkeypatch, tmp_path):
    # g_A = g_z1 @ B.T and g_B = A.T @ g_z1 read the other param, which the same branch
    # updates: adding them into A and B there would read an updated B (or A)
    X, Y = sg.tensor("X", ("N", "I")), sg.tensor("Y", ("N", "K"))
    A, B = sg.param("A", ("I", "J")), sg.param("B", ("J", "K"))
    loss = sg.mean((X @ (A @ B) - Y) ** 2)
    fn = sg.compile(loss, params=[A, B])
    assert "_sg_gemm_add" not in fn.source
    assert "A[j, k] -= lr * g_A[j, k]" in _loop(fn)
    rng = np.random.default_rng(2)
    params0 = {"A": rng.standard_normal((4, 3)), "B": rng.standard_normal((3, 2))}
    data = {"X": rng.standard_normal((32, 4)), "Y": rng.standard_normal((32, 2))}
    got, ref = _train(fn, params0, data), _train(NumpyModel(loss, [A, B]), params0, data)
    for k in params0:
        np.testing.assert_allclose(got[0][k], ref[0][k], rtol=1e-10)


def _softmax_l2():
    X, y = sg.tensor("X", ("N", "D")), sg.tensor("y", ("N",), dtype=int)
    W, b = sg.param("W", ("D", "C")), sg.param("b", ("C",))
    return sg.cross_entropy(X @ W + b, y) + 1e-2 * sg.l2(W), [W, b]


def test_an_elementwise_gradient_is_computed_in_its_update_loop():
    # with the l2 term W's gradient is 2e-2 W + X.T @ g_z: a loop, computed in the update
    loss, params = _softmax_l2()
    fn = sg.compile(loss, params=params)
    loop = _loop(fn)
    plain, other = loop.split("            else:\n", 1)
    step, plain = plain.split("# SGD: p <- p - lr g", 1)
    assert "W[j, k] -= lr * (mul2 + mm[j, k])" in plain and "g_W[" not in plain
    assert "g_W[j, k] =" not in step and "u1[j, k] = (W[j, k] * W[j, k])" in step
    assert "g_W[j, k] = (mul2 + mm[j, k])  # dL/dW" in other
    assert other.index("g_W[j, k] =") < other.index("_sg_update(W")
    assert "_sg_gemm(X, g_z2, mm, _SG_TN)" in step     # its product is read, not moved


@pytest.mark.parametrize("optimizer", [None, ("sgd", {"momentum": 0.9}), ("adam", {})])
def test_elementwise_moves_train_as_before(optimizer, monkeypatch, tmp_path):
    loss, params = _softmax_l2()
    rng = np.random.default_rng(3)
    params0 = {"W": 0.3 * rng.standard_normal((5, 3)), "b": rng.standard_normal(3)}
    data = {"X": rng.standard_normal((40, 5)), "y": rng.integers(0, 3, 40)}
    fused = _train(sg.compile(loss, params=params), params0, data, optimizer)
    loops = _train(_unfused(loss, params, monkeypatch, tmp_path), params0, data, optimizer)
    ref = _train(NumpyModel(loss, params), params0, data, optimizer)
    for k in params0:
        assert np.array_equal(fused[0][k], loops[0][k])     # the same statements, moved
        np.testing.assert_allclose(fused[0][k], ref[0][k], rtol=1e-10, atol=1e-12)


def test_a_gradient_reading_another_param_stays():
    X, t = sg.tensor("X", ("N", "D")), sg.tensor("t", ("N",))
    w, v = sg.param("w", ("D",)), sg.param("v", ("D",))
    # g_w = ... + 2e-2 * v * w reads v, which the same branch updates first; g_v reads
    # only the buffer of w ** 2, so it moves
    loss = sg.mean((X @ w - t) ** 2) + 1e-2 * sg.sum(v * w ** 2)
    fn = sg.compile(loss, params=[v, w])
    plain = _loop(fn).split("# SGD: p <- p - lr g", 1)[1].split("            else:", 1)[0]
    assert "w[j] -= lr * g_w[j]" in plain
    assert "# v -= lr * dL/dv, its gradient computed in the update" in plain
    rng = np.random.default_rng(4)
    params0 = {"w": rng.standard_normal(4), "v": rng.standard_normal(4)}
    data = {"X": rng.standard_normal((24, 4)), "t": rng.standard_normal(24)}
    got, ref = _train(fn, params0, data), _train(NumpyModel(loss, [v, w]), params0, data)
    for k in params0:
        np.testing.assert_allclose(got[0][k], ref[0][k], rtol=1e-10)

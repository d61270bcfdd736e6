"""The BLAS helper of the generated code: every transpose combination, on both sides of
the small-k shortcut (a @ b.T as NN on a copy of b.T), in float64 and float32."""
import numpy as np
import pytest

import symgrad as sg
from symgrad.codegen import compile
from symgrad.train.reference import NumpyModel


def _mlp_module(dtype):
    X, y = sg.tensor("X", ("N", "D")), sg.tensor("y", ("N",), dtype=int)
    W1, W2 = sg.param("W1", ("D", "H")), sg.param("W2", ("H", "C"))
    return compile(sg.cross_entropy(sg.relu(X @ W1) @ W2, y), params=[W1, W2], dtype=dtype)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-13), (np.float32, 1e-5)])
@pytest.mark.parametrize("m, k, n", [(32, 10, 64), (256, 10, 256), (7, 1, 5),     # shortcut
                                     (300, 10, 300), (32, 13, 64), (64, 64, 64)])  # BLAS NT
def test_gemm_every_transpose_matches_numpy(dtype, rtol, m, k, n):
    fn = _mlp_module(dtype)
    mod, rng = fn.module, np.random.default_rng(m * k + n)
    assert "_SG_NT" in fn.source and "k <= 12 and m * n <= 65536" in fn.source
    a, b = rng.normal(size=(m, k)).astype(dtype), rng.normal(size=(n, k)).astype(dtype)
    for t, lhs, rhs in ((mod._SG_NT, a, b), (mod._SG_NN, a, b.T.copy()),
                        (mod._SG_TN, a.T.copy(), b.T.copy()), (mod._SG_TT, a.T.copy(), b)):
        out = np.full((m, n), np.nan, dtype)
        mod._sg_gemm(lhs, rhs, out, t)
        np.testing.assert_allclose(out, a @ b.T, rtol=rtol, atol=rtol * 10)


def test_small_class_count_gradients_match_the_evaluator():
    # g_h = g_z @ W2.T with k = C = 3 takes the shortcut inside the training step
    rng = np.random.default_rng(0)
    fn = _mlp_module(np.float64)
    data = {"X": rng.normal(size=(40, 6)), "y": rng.integers(0, 3, 40)}
    params = {"W1": rng.normal(size=(6, 9)), "W2": rng.normal(size=(9, 3))}
    ref = NumpyModel(fn.loss_node, fn.params)
    loss, grads = fn.loss_and_grad(params, **data)
    ref_loss, ref_grads = ref.loss_and_grad(params, **data)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for name in params:
        np.testing.assert_allclose(grads[name], ref_grads[name], rtol=1e-11, atol=1e-13)

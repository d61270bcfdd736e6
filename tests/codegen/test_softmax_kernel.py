"""The softmax / cross-entropy kernel: exp over the whole buffer in one vectorised pass,
the loss's logs taken once per 1e250 of product of row sums (integer labels).

Checked against NumPy's stable spellings for integer and one-hot labels, the loss
alone and loss with gradients, batch dims of rank 0-2, a batch long enough that the
product is flushed to the log several times, and logits large enough that a naive
exp would overflow.
"""
import numpy as np
import pytest

import symgrad as sg
from symgrad.ops.reductions import np_log_softmax, np_softmax


def _ce_model(batch_dims, onehot):
    s = sg.tensor("s", batch_dims + ("C",))
    s_param = sg.param("S", batch_dims + ("C",))
    if onehot:
        y = sg.tensor("Y", batch_dims + ("C",))
    else:
        y = sg.tensor("y", batch_dims, dtype=int)
    return sg.cross_entropy(s + s_param, y), s_param, y.name


def _reference(logits, labels, onehot):
    logp = np_log_softmax(logits, -1)
    if onehot:
        rows = -(labels * logp).sum(-1)
    else:
        rows = -np.take_along_axis(logp, labels[..., None], -1)[..., 0]
    p = np_softmax(logits, -1)
    grad = (p - labels if onehot else p - np.eye(logits.shape[-1])[labels]) / max(rows.size, 1)
    return rows.mean(), grad


@pytest.mark.parametrize("onehot", [False, True], ids=["int labels", "one-hot"])
@pytest.mark.parametrize("shape", [(10,), (7, 10), (700, 10), (3, 5, 4)],
                         ids=["no batch", "7 rows", "700 rows", "two batch dims"])
def test_loss_and_gradient_match_numpy(shape, onehot):
    rng = np.random.default_rng(len(shape) + shape[0])
    loss, S, yname = _ce_model(("N", "M")[:len(shape) - 1], onehot)
    fn = sg.compile(loss, params=[S])
    s = 30.0 * rng.standard_normal(shape)
    zeros = np.zeros(shape)
    if onehot:
        y = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1]) if len(shape) > 1 \
            else rng.dirichlet(np.ones(shape[-1]))
    else:
        y = rng.integers(0, shape[-1], shape[:-1])
    want, want_grad = _reference(s, y, onehot)
    data = {"s": s, yname: y}
    assert fn.loss({"S": zeros}, **data) == pytest.approx(want, rel=1e-13, abs=1e-13)
    got, grads = fn.loss_and_grad({"S": zeros}, **data)
    assert got == pytest.approx(want, rel=1e-13, abs=1e-13)
    np.testing.assert_allclose(grads["S"], want_grad, rtol=1e-12, atol=1e-15)


def test_equal_logits_flush_the_product_many_times():
    # every row sum is exactly 10: the product passes 1e250 every 251 rows
    n = 2000
    X = sg.tensor("X", ("N", "C"))
    y = sg.tensor("y", ("N",), dtype=int)
    b = sg.param("b", ("C",))
    fn = sg.compile(sg.cross_entropy(X + b, y), params=[b])
    loss = fn.loss({"b": np.zeros(10)}, X=np.full((n, 10), 3.0), y=np.zeros(n, int))
    assert loss == pytest.approx(np.log(10.0), rel=1e-14)


def test_huge_logits_stay_finite():
    X = sg.tensor("X", ("N", "C"))
    y = sg.tensor("y", ("N",), dtype=int)
    b = sg.param("b", ("C",))
    fn = sg.compile(sg.cross_entropy(X + b, y), params=[b])
    logits = np.array([[1e300, -1e300, 0.0], [800.0, 799.0, -800.0]])
    loss, grads = fn.loss_and_grad({"b": np.zeros(3)}, X=logits, y=np.array([0, 1]))
    want, want_grad = _reference(logits, np.array([0, 1]), False)
    assert np.isfinite(loss) and loss == pytest.approx(want, rel=1e-14)
    np.testing.assert_allclose(grads["b"], want_grad.sum(0), rtol=1e-12, atol=1e-15)


def test_generated_code_vectorises_exp_once_per_buffer():
    X = sg.tensor("X", ("N", "D"))
    y = sg.tensor("y", ("N",), dtype=int)
    W = sg.param("W", ("D", "C"))
    fn = sg.compile(sg.cross_entropy(X @ W, y), params=[W])
    train = fn.source[fn.source.index("def run_epochs_with("):]
    train = train[:train.index("\n\n\n")]
    assert "_sg_exp_all(" in train and "math.exp" not in train
    assert train.count("math.log(") == 2        # the flush and the final log, not per row


@pytest.mark.parametrize("axis", ["N", "C"])
def test_softmax_along_either_axis(axis):
    rng = np.random.default_rng(5)
    X = sg.tensor("X", ("N", "C"))
    W = sg.param("W", ("N", "C"))
    p = sg.softmax(X * W, axis=axis).named("p")
    fn = sg.compile(sg.sum(p * p), params=[W], outputs=[p])
    x = 5.0 * rng.standard_normal((6, 4))
    got = fn.output(p, {"W": np.ones((6, 4))}, X=x)
    np.testing.assert_allclose(got, np_softmax(x, 0 if axis == "N" else 1), rtol=1e-14)

"""Which loops use the vectorisable exp/sigmoid, and the sums split out of fused loops.

Schedule.Plan.vector holds the loops LLVM can vectorise once their serial sums are
moved out (Plan.summed, emitted as ``_sg_sum``); only those use the ops' ``vector``
templates (scalar, the polynomial exp is slower than libm's). The numbers must not
change beyond rounding.
"""
import numpy as np
import pytest

import symgrad as sg
from symgrad.codegen.emit import SUM
from symgrad.codegen.module import Source
from symgrad.codegen.schedule import Plan


def perceptron():
    X, t, w = sg.tensor("X", ("N", "D")), sg.tensor("t", ("N",)), sg.param("w", ("D",))
    return sg.sum((t - sg.sigmoid(X @ w)) ** 2), [w]


def function(source, name):
    start = source.index(f"def {name}(")
    return source[start:source.index("\n\n\n", start) if "\n\n\n" in source[start:] else None]


def test_gradient_loop_vectorises_and_the_loss_sum_moves_out():
    loss, params = perceptron()
    src = Source(loss, params)
    text = src.text("perceptron")
    body = function(text, "loss_and_grad")
    assert "_sg_vsigmoid(" in body and "math.exp" not in body
    assert "_sg_sum(" in body                        # the loss, summed apart
    plan = src.step_plan
    assert len(plan.vector) == 1 and len(plan.summed) == 1
    (loop,) = plan.vector
    assert all(m.op != "sum" for m in loop.members)
    # the forward-only loss loop computes nothing else: one scalar loop, libm's sigmoid
    fwd = function(text, "loss")
    assert "_sg_sigmoid(" in fwd and "_sg_vsigmoid(" not in fwd and "_sg_sum" not in fwd
    for helper in ("def _sg_vexp(", "def _sg_f64_bits(", "def _sg_vsigmoid(", "def _sg_sum("):
        assert helper in text


def test_a_loop_with_a_libm_call_keeps_the_scalar_templates():
    X, t, w = sg.tensor("X", ("N", "D")), sg.tensor("t", ("N",)), sg.param("w", ("D",))
    s = sg.sigmoid(X @ w)
    loss = -sg.sum(t * sg.log(s) + (1 - t) * sg.log(1 - s))    # log: a libm call
    src = Source(loss, [w])
    src.text("bce by hand")
    assert not src.step_plan.vector
    assert "_sg_vsigmoid" not in function(src.text("bce by hand"), "loss_and_grad")


def test_l2_penalty_sum_is_split_from_the_gradient_loop():
    X, y = sg.tensor("X", ("N", "D")), sg.tensor("y", ("N",), dtype=int)
    W, b = sg.param("W", ("D", "C")), sg.param("b", ("C",))
    loss = sg.cross_entropy(X @ W + b, y) + 1e-4 * sg.l2(W)
    src = Source(loss, [W, b])
    body = function(src.text("softmax"), "loss_and_grad")
    assert "_sg_sum(" in body and ".reshape(-1)" in body
    assert not src.step_plan.vector                   # no exp in that loop: nothing to vectorise


@pytest.mark.parametrize("model", ["perceptron", "softmax"])
def test_compiled_values_match_numpy(model):
    rng = np.random.default_rng(0)
    if model == "perceptron":
        loss, params = perceptron()
        data = {"X": rng.standard_normal((37, 5)) * 30, "t": (rng.random(37) > 0.5) * 1.0}
        p = {"w": rng.standard_normal(5)}
        z = data["X"] @ p["w"]
        s = 1 / (1 + np.exp(-z))
        want_loss = np.sum((data["t"] - s) ** 2)
        want = {"w": data["X"].T @ (-2 * (data["t"] - s) * s * (1 - s))}
    else:
        X, y = sg.tensor("X", ("N", "D")), sg.tensor("y", ("N",), dtype=int)
        W, b = sg.param("W", ("D", "C")), sg.param("b", ("C",))
        loss, params = sg.cross_entropy(X @ W + b, y) + 1e-4 * sg.l2(W), [W, b]
        data = {"X": rng.standard_normal((19, 6)), "y": rng.integers(0, 3, 19)}
        p = {"W": rng.standard_normal((6, 3)), "b": rng.standard_normal(3)}
        z = data["X"] @ p["W"] + p["b"]
        e = np.exp(z - z.max(1, keepdims=True))
        P = e / e.sum(1, keepdims=True)
        onehot = np.eye(3)[data["y"]]
        want_loss = -np.mean(np.log(P[np.arange(19), data["y"]])) + 1e-4 * np.sum(p["W"] ** 2)
        want = {"W": data["X"].T @ (P - onehot) / 19 + 2e-4 * p["W"], "b": (P - onehot).sum(0) / 19}
    fn = sg.compile(loss, params=params)
    value, grads = fn.loss_and_grad(p, **data)
    assert value == pytest.approx(want_loss, rel=1e-13)
    for k in want:
        np.testing.assert_allclose(grads[k], want[k], rtol=1e-12, atol=1e-14)


def test_sum_helper_adds_every_element_in_a_fixed_order():
    from numba import njit
    ns = {}
    exec(SUM, ns)
    total = njit(ns["_sg_sum"])
    rng = np.random.default_rng(0)
    for n in [0, 1, 7, 8, 9, 15, 16, 17, 100]:
        a = rng.standard_normal(n)
        assert total(a) == pytest.approx(float(np.sum(a)), abs=1e-13)
        assert total(a) == total(a.copy())
    assert np.isnan(total(np.array([1.0, np.nan] * 5)))
    assert total(np.array([np.inf] * 3 + [1.0] * 6)) == np.inf


def test_plan_without_vector_ops_is_unchanged():
    x, w = sg.tensor("x", ("N",)), sg.param("w")
    plan = Plan([sg.sum((x - w) ** 2)])
    assert not plan.vector and not plan.summed


def test_float32_perceptron_trains_to_the_float64_params():
    """The vector sigmoid in a float32 module (it computes in float64, stores float32)."""
    loss, params = perceptron()
    rng = np.random.default_rng(1)
    data = {"X": rng.standard_normal((256, 8)), "t": (rng.random(256) > 0.5) * 1.0}
    trained = {}
    for dtype in (np.float64, np.float32):
        fn = sg.compile(loss, params=params, dtype=dtype)
        p = {"w": np.full(8, 0.05)}
        fn.run_epochs(p, data, None, np.full(50, 1e-3), None)
        trained[dtype] = p["w"]
    assert np.abs(trained[np.float64] - 0.05).max() > 1e-3          # it trained
    np.testing.assert_allclose(trained[np.float32], trained[np.float64], rtol=1e-4, atol=1e-5)


def test_float32_literals_are_typed_float32_and_names_are_left_alone():
    """Numba types a bare literal float64, which widens a float32 loop to float64 (half
    the lanes): float32 modules write their literals np.float32(...)."""
    from symgrad.codegen.emit import float32_literals
    assert float32_literals("(2.0 * z2[i, k2])") == "(np.float32(2.0) * z2[i, k2])"
    assert float32_literals("(1e-10 + x) if x > 0.0 else -math.inf") == \
        "(np.float32(1e-10) + x) if x > np.float32(0.0) else -np.float32(math.inf)"
    assert float32_literals("g_1e5x + a1.0b") == "g_1e5x + a1.0b"     # parts of names
    # out of float32's range: left float64 rather than turned into inf or 0
    assert float32_literals("(1e39 * x) + (1e-46 * x) + (0.0 * x)") == \
        "(1e39 * x) + (1e-46 * x) + (np.float32(0.0) * x)"
    X, t, w = sg.tensor("X", ("N", "D")), sg.tensor("t", ("N",)), sg.param("w", ("D",))
    loss = sg.mean((t - sg.relu(X @ w)) ** 2) + 1e-4 * sg.sum(w ** 2)
    src = sg.compile(loss, params=[w], dtype=np.float32).source
    step = function(src, "run_epochs_with")
    assert "np.float32(0.0) if " in step and "np.float32(0.0001)" in step
    assert "-= np.float32(lr) * " in step                 # the SGD update, not widened
    assert "np.float32(0.0001)" not in function(
        sg.compile(loss, params=[w]).source, "run_epochs_with")   # float64: as before

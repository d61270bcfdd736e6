"""Compiled second order: fn.hessian and fn.hvp against autograd's hessian and the
NumPy evaluator of the same graphs; logistic regression's block is one gemm."""
import numpy as np
import pytest

import symgrad as sg
from symgrad.diff.hessian import hessian_values
from tests import cases
from tests.diff.test_hessian import autograd_hessian, logistic_l2

MODELS = {
    "logistic_w_b": cases.logistic_regression,
    "softmax_matrix": lambda: cases.softmax_regression(seed=3, n=7, d=3, c=3),
}
# a 2-layer net's Hessian function is long (four params, ten blocks): slow to compile
MODELS["mlp2_tanh"] = lambda: cases.mlp(2, "tanh", n=5, sizes=[3, 4, 3])
CASES = [pytest.param(n, marks=pytest.mark.slow) if n == "mlp2_tanh" else n for n in MODELS]


def _split(params, data):
    names = {p.name for p in params}
    return ({k: v for k, v in data.items() if k in names},
            {k: v for k, v in data.items() if k not in names})


@pytest.mark.parametrize("name", CASES)
def test_compiled_hessian_and_hvp_match_autograd(name, rng):
    loss, params, data = MODELS[name]()
    fn = sg.compile(loss, params, hessian=True)
    values, inputs = _split(params, data)
    got = fn.hessian(values, **inputs)
    want = autograd_hessian(loss, params, data)
    assert set(got) == set(want)
    for key in want:
        assert got[key].shape == want[key].shape
        np.testing.assert_allclose(got[key], want[key], rtol=1e-9, atol=1e-9, err_msg=str(key))
    vectors = {p.name: rng.normal(size=np.shape(data[p.name])) for p in params}
    hv = fn.hvp(values, vectors, **inputs)
    for q in params:
        expect = sum(np.tensordot(want[q.name, p.name], vectors[p.name],
                                  axes=np.ndim(data[p.name])) for p in params)
        np.testing.assert_allclose(hv[q.name], expect, rtol=1e-9, atol=1e-9)
    assert np.isfinite(fn.loss(values, **inputs))        # first order unchanged


def test_logistic_hessian_is_one_gemm_and_matches_the_closed_form():
    loss, params, data = logistic_l2(n=50, d=6)
    fn = sg.compile(loss, params, hessian=True)
    body = fn.source[fn.source.index("def hessian("):fn.source.index("def hvp(")]
    assert body.count("_sg_gemm(") == 1 and "_sg_gemv(" in body      # X^T (D X), X @ w
    X, t, w = data["X"], data["t"], data["w"]
    s = 1.0 / (1.0 + np.exp(-X @ w))
    closed = X.T @ (X * (s * (1 - s))[:, None]) / len(X) + 0.02 * np.eye(len(w))
    H = fn.hessian({"w": w}, X=X, t=t)
    np.testing.assert_allclose(H["w", "w"], closed, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(H["w", "w"], hessian_values(loss, params, data)["w", "w"],
                               rtol=1e-12, atol=1e-14)
    v = np.arange(6.0)
    np.testing.assert_allclose(fn.hvp({"w": w}, {"w": v}, X=X, t=t)["w"], closed @ v,
                               rtol=1e-12, atol=1e-13)
    with pytest.raises(sg.DataError, match="'w'"):
        fn.hvp({"w": w}, {"w": v[:3]}, X=X, t=t)
    with pytest.raises(sg.DataError, match="direction for param 'w'"):
        fn.hvp({"w": w}, {}, X=X, t=t)


def test_hessian_needs_compile_with_hessian_true():
    loss, params, data = cases.linear_regression()
    fn = sg.compile(loss, params)
    with pytest.raises(sg.DeclarationError, match="hessian=True"):
        fn.hessian({"w": data["w"]}, x=data["x"], y=data["y"])


def test_hostile_param_names_stay_in_comments():
    """A name that would close a docstring or start code is only ever in a comment."""
    X = sg.tensor("X", ("N", "d"))
    w = sg.param('w"""; import os; """', ("d",))
    fn = sg.compile(sg.sum(sg.exp(X @ w)), [w], hessian=True)
    code = [line.split("#", 1)[0] for line in fn.source.splitlines()]
    assert not any("import os" in line for line in code)
    r = np.random.default_rng(0)
    Xd, wd = r.normal(size=(4, 2)), r.normal(size=2)
    H = fn.hessian({w.name: wd}, X=Xd)[w.name, w.name]
    np.testing.assert_allclose(H, (Xd * np.exp(Xd @ wd)[:, None]).T @ Xd, rtol=1e-12)


def test_a_param_with_zero_hessian_rows():
    """b enters linearly: its blocks are zeros and its direction is not read."""
    X, w, b = sg.tensor("X", ("N", "d")), sg.param("w", ("d",)), sg.param("b")
    fn = sg.compile(sg.sum(sg.exp(X @ w)) + 3.0 * b, [w, b], hessian=True)
    r = np.random.default_rng(0)
    Xd, wd, v = r.normal(size=(4, 2)), r.normal(size=2), r.normal(size=2)
    params = {"w": wd, "b": np.array(0.5)}
    H = fn.hessian(params, X=Xd)
    assert H["b", "b"].shape == () and H["b", "b"] == 0 and np.all(H["w", "b"] == 0)
    hv = fn.hvp(params, {"w": v, "b": np.array(2.0)}, X=Xd)
    np.testing.assert_allclose(hv["w"], H["w", "w"] @ v, rtol=1e-12)
    assert hv["b"] == 0


def test_hessian_flag_must_be_a_bool():
    loss, params, _ = cases.linear_regression()
    with pytest.raises(TypeError, match="hessian must be True or False, got str 'yes'"):
        sg.compile(loss, params, hessian="yes")

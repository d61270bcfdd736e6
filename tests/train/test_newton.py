"""fit(..., optimizer="newton"): damped Newton on the compiled Hessian."""
import numpy as np
import pytest

import symgrad as sg
from symgrad.train.newton import newton_direction


@pytest.fixture(scope="module")
def cancer_model():
    """Logistic regression on standardized breast cancer, with an L2 term."""
    from sklearn.datasets import load_breast_cancer
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    Xt, t = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",))
    w, b = sg.param("w", ("d",)), sg.param("b")
    loss = sg.binary_cross_entropy(sg.sigmoid(Xt @ w + b), t) + 1e-3 * sg.l2(w)
    fn = sg.compile(loss, [w, b], hessian=True)
    init = {"w": np.zeros(X.shape[1]), "b": np.array(0.0)}
    return fn, init, {"X": X, "t": y.astype(float)}


def test_newton_reaches_gradient_norm_1e_8_on_breast_cancer(cancer_model):
    fn, init, data = cancer_model
    hist = sg.fit(fn, init, data=data, optimizer="newton", epochs=12)
    g = fn.grad(hist.params, **data)
    norm = np.sqrt(sum(np.sum(v ** 2) for v in g.values()))
    assert norm < 1e-8
    assert len(hist) <= 12 and hist.stop_reason == "converged"
    assert np.all(np.diff(hist.loss) < 0)                 # a descent method
    assert hist.lr[-1] == 1.0                             # full Newton steps at the end
    assert np.all(init["w"] == 0)                         # the caller's params untouched
    lbfgs = sg.fit(fn, init, data=data, optimizer="lbfgs", epochs=500, tol=1e-10)
    assert hist.loss[-1] <= lbfgs.loss[-1] + 1e-12


def test_newton_falls_back_to_a_gradient_step_when_not_positive_definite():
    g = np.array([1.0, -2.0])
    saddle = np.diag([1.0, -1.0])
    step, kind = newton_direction(saddle, g)
    assert kind == "gradient" and np.array_equal(step, -g)
    step, kind = newton_direction(np.diag([2.0, 4.0]), g)
    assert kind == "newton" and np.allclose(step, [-0.5, 0.5])


def test_newton_on_a_nonconvex_loss_still_descends():
    """A saddle at the start: the gradient fallback gets away from it."""
    x = sg.param("x", ("d",))
    loss = sg.sum(x ** 4) / 4.0 - sg.sum(x ** 2) / 2.0 + 0.0 * sg.sum(x * sg.tensor("u", ("d",)))
    fn = sg.compile(loss, [x], hessian=True)
    hist = sg.fit(fn, {"x": np.array([0.1, -0.05])}, data={"u": np.zeros(2)},
                  optimizer="newton", epochs=40)
    assert np.allclose(np.abs(hist.params["x"]), 1.0, atol=1e-8)
    assert "gradient step" in hist.message


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 10}, "full batch.*drop batch_size"),
    ({"lr": 0.1}, "line search; drop lr"),
    ({"momentum": 0.9}, "no momentum"),
    ({"betas": (0.9, 0.99)}, "Adam"),
])
def test_bad_newton_options_fail_before_any_work(kwargs, match):
    x = sg.param("x", ("d",))
    loss = sg.sum(x * x)
    with pytest.raises(ValueError, match=match):
        sg.fit(loss, {"x": np.ones(3)}, optimizer="newton", **kwargs)


def test_newton_needs_a_model_compiled_with_hessian(monkeypatch):
    import symgrad.codegen.model as model
    x, u = sg.param("x", ("d",)), sg.tensor("u", ("d",))
    loss = sg.sum((x - u) ** 2)
    monkeypatch.setattr(model, "Source", None)          # no compile may start
    with pytest.raises(ValueError, match=r"sg.compile\(loss, params, hessian=True\)"):
        sg.fit(loss, {"x": np.ones(3)}, data={"u": np.zeros(3)}, optimizer="newton")
    fake = type("Compiled", (), {"has_hessian": False, "params": [x]})()
    from symgrad.train import newton
    with pytest.raises(ValueError, match="compiled without hessian=True"):
        newton.check_newton_model(fake)


def test_newton_records_validation_and_stops_early(cancer_model):
    fn, init, data = cancer_model
    half = {k: v[:280] for k, v in data.items()}
    val = {k: v[280:] for k, v in data.items()}
    hist = sg.fit(fn, init, data=half, validation_data=val, optimizer="newton", epochs=12,
                  early_stopping={"patience": 1, "min_delta": 1e-3})
    assert len(hist.metrics["val_loss"]) == len(hist) >= 2
    assert hist.stop_reason in ("early_stopping", "converged")
    assert np.all(np.isfinite(hist.metrics["val_loss"]))

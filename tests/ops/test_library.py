"""The math library (symgrad/ops/library.py): values against NumPy/SciPy, gradients against
HIPS autograd at 1e-9, stability at +-1000 and +-1e300, kink conventions, SymPy scalars,
derivations that print the functions by name, and one small compiled model."""
import autograd
import autograd.numpy as anp
import numpy as np
import pytest
import scipy.special
import sympy as sp
from autograd.scipy.special import erf as ag_erf

import symgrad as sg
from symgrad.errors import DeclarationError


def _np_huber(r, delta=1.0):
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


# name: (symgrad function, NumPy/SciPy reference, autograd formula, domain)
REFERENCE = {
    "sin": (sg.sin, np.sin, anp.sin, "any"),
    "cos": (sg.cos, np.cos, anp.cos, "any"),
    "log1p": (sg.log1p, np.log1p, anp.log1p, "positive"),
    "expm1": (sg.expm1, np.expm1, anp.expm1, "any"),
    "square": (sg.square, np.square, lambda x: x * x, "any"),
    "erf": (sg.erf, scipy.special.erf, ag_erf, "any"),
    "gelu": (sg.gelu, lambda x: x * scipy.special.ndtr(x),
             lambda x: x * 0.5 * (1 + ag_erf(x / np.sqrt(2))), "any"),
    "silu": (sg.silu, lambda x: x * scipy.special.expit(x),
             lambda x: x * 0.5 * (anp.tanh(0.5 * x) + 1), "any"),
    "elu": (sg.elu, lambda x: np.where(x > 0, x, np.expm1(x)),
            lambda x: anp.where(x > 0, x, anp.expm1(x)), "away"),
    "leaky_relu": (sg.leaky_relu, lambda x: np.where(x > 0, x, 0.01 * x),
                   lambda x: anp.where(x > 0, x, 0.01 * x), "away"),
}


def _points(rng, domain, shape=(5, 4)):
    x = rng.normal(scale=2.0, size=shape)
    if domain == "positive":
        return np.abs(x) + 0.1
    if domain == "away":
        return np.sign(x) * (np.abs(x) + 0.1)
    return x


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_value_matches_numpy_and_scipy(name, rng):
    f, ref, _, domain = REFERENCE[name]
    a = sg.tensor("a", ("N", "C"))
    x = _points(rng, domain)
    np.testing.assert_allclose(sg.evaluate(f(a), {"a": x}), ref(x), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_gradient_matches_autograd(name, rng):
    f, _, ag_f, domain = REFERENCE[name]
    a, R = sg.param("a", ("N", "C")), sg.tensor("R", ("N", "C"))
    loss = sg.sum(f(a) * R)
    x, r = _points(rng, domain), rng.normal(size=(5, 4))
    got = sg.evaluate(sg.gradients(loss, [a])[0], {"a": x, "R": r}, context=loss)
    want = autograd.grad(lambda v: anp.sum(ag_f(v) * r))(x)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_huber_is_torchs_mean_huber_loss(rng):
    """huber(pred, target, delta) = mean over all elements, as torch's huber_loss."""
    P, T = sg.param("P", ("N", "C")), sg.tensor("T", ("N", "C"))
    p, t = rng.normal(scale=2, size=(5, 4)), rng.normal(size=(5, 4))
    for delta in (1.0, 0.3, 2.5):
        loss = sg.huber(P, T, delta=delta)
        assert loss.dims == ()
        np.testing.assert_allclose(sg.evaluate(loss, {"P": p, "T": t}),
                                   _np_huber(p - t, delta).mean(), rtol=1e-14)

        def ag_loss(v):
            r = v - t
            return anp.mean(anp.where(anp.abs(r) <= delta, 0.5 * r * r,
                                      delta * (anp.abs(r) - 0.5 * delta)))
        got = sg.evaluate(sg.gradients(loss, [P])[0], {"P": p, "T": t}, context=loss)
        np.testing.assert_allclose(got, autograd.grad(ag_loss)(p), rtol=1e-9, atol=1e-12)


LARGE = np.array([-1e300, -1000.0, -800.0, 0.0, 800.0, 1000.0, 1e300])


@pytest.mark.parametrize("name", ["sin", "cos", "erf", "gelu", "silu", "elu", "leaky_relu",
                                  "huber", "log1p"])
def test_stable_at_large_arguments(name):
    """No NaN (and no overflow to inf where the function is finite) at +-1000 and +-1e300."""
    a, R = sg.param("a", ("N",)), sg.tensor("R", ("N",))
    x = np.abs(LARGE) if name == "log1p" else LARGE
    y = sg.huber(a, 0.0) if name == "huber" else sg.sum(getattr(sg, name)(a) * R)
    with np.errstate(over="ignore"):   # erf' squares 1e300 to inf; exp(-inf) is then 0
        value, grad = sg.evaluate([y, sg.gradients(y, [a])[0]], {"a": x, "R": np.ones(7)})
    assert np.all(np.isfinite(grad)), grad
    if name not in ("leaky_relu", "huber"):   # sums of +-1e300 overflow, honestly
        assert np.isfinite(value)


def test_large_argument_values():
    a = sg.tensor("a", ("N",))
    values = {f: sg.evaluate(getattr(sg, f)(a), {"a": LARGE}) for f in
              ("gelu", "silu", "elu", "erf", "expm1")}
    np.testing.assert_array_equal(values["gelu"], [0, 0, 0, 0, 800, 1000, 1e300])
    np.testing.assert_array_equal(values["silu"], [0, 0, 0, 0, 800, 1000, 1e300])
    np.testing.assert_array_equal(values["elu"], [-1, -1, -1, 0, 800, 1000, 1e300])
    np.testing.assert_array_equal(values["erf"], [-1, -1, -1, 0, 1, 1, 1])
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(values["expm1"], np.expm1(LARGE))   # inf, as NumPy


def test_gelu_keeps_its_digits_for_negative_arguments():
    """x Phi(x) with Phi by erfc: 1 + erf(x / sqrt 2) would cancel to 0 below x = -8."""
    a = sg.tensor("a", ("N",))
    x = np.array([-30.0, -10.0, -5.0])
    np.testing.assert_allclose(sg.evaluate(sg.gelu(a), {"a": x}), x * scipy.special.ndtr(x),
                               rtol=1e-13)
    assert float(sg.gelu(sp.Float(-10.0))) == pytest.approx(-10 * scipy.special.ndtr(-10.0),
                                                            rel=1e-13)


def test_kink_conventions_are_the_left_derivative():
    """At 0: relu' = 0, leaky_relu' = slope, elu' = alpha; huber' = +-delta at |r| = delta."""
    a = sg.param("a", ("N",))
    zero = {"a": np.zeros(1)}
    for y, want in ((sg.relu(a), 0.0), (sg.leaky_relu(a), 0.01),
                    (sg.leaky_relu(a, slope=0.2), 0.2), (sg.elu(a), 1.0),
                    (sg.elu(a, alpha=0.5), 0.5)):
        assert sg.evaluate(sg.gradients(sg.sum(y), [a])[0], zero, context=y)[0] == want
    t = sg.tensor("t", ("N",))
    loss = sg.huber(a, t, delta=0.5)
    g = sg.evaluate(sg.gradients(loss, [a])[0], {"a": np.array([0.5, -0.5]), "t": np.zeros(2)})
    np.testing.assert_array_equal(g, [0.25, -0.25])   # mean over 2 elements of +-delta


def test_sympy_scalars_give_sympy_expressions():
    x, t = sp.symbols("x t", real=True)
    assert sg.sin(x) == sp.sin(x) and sg.cos(x) == sp.cos(x) and sg.erf(x) == sp.erf(x)
    assert sg.square(x) == x ** 2 and sg.square(3) == 9
    assert sp.diff(sg.log1p(x), x) == 1 / (x + 1) and sp.diff(sg.expm1(x), x) == sp.exp(x)
    assert str(sg.gelu(x)) == "gelu(x)" and str(sp.diff(sg.gelu(x), x)) == "gelu'(x)"
    assert str(sg.leaky_relu(x, slope=0.2)) == "leaky_relu(x, slope=0.2)"
    assert sp.expand_func(sg.silu(x)) == x * sg.sigmoid(x)
    assert str(sg.huber(x, t)) == "huber(-t + x, delta=1)"
    assert float(sg.gelu(sp.Float(1.5))) == pytest.approx(1.5 * scipy.special.ndtr(1.5),
                                                            rel=1e-15)
    assert float(sg.silu(2.0)) == pytest.approx(2.0 * scipy.special.expit(2.0), rel=1e-15)


def test_derivation_prints_the_functions_by_name():
    X, t = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",))
    W, v = sg.param("W", ("d", "H")), sg.param("v", ("H",))
    der = sg.derive(sg.huber(sg.gelu(X @ W) @ v, t), [W, v])
    rule = "\n".join(map(str, der.update_rule()))
    assert "gelu'(z1_ik)" in rule and "gelu(z1_ik)" in rule, rule
    assert "huber'(" in rule, rule
    assert r"\operatorname{gelu}'\left(" in der.to_latex()


@pytest.mark.parametrize("call, match", [
    (lambda a: sg.huber(a, a, delta=0.0), "delta must be a positive number"),
    (lambda a: sg.leaky_relu(a, slope="big"), "slope must be a finite real number"),
    (lambda a: sg.leaky_relu(a, alpha=1.0), r"unknown parameter\(s\) \['alpha'\]"),
    (lambda a: sg.sin("a"), "sin: expected a symgrad node or a SymPy expression"),
    (lambda a: sg.gelu([1.0]), "gelu: expected a symgrad node or a SymPy expression"),
    (lambda a: sg.erf(sg.tensor("y", ("N",), dtype=int)), "erf"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises((DeclarationError, sg.DimError), match=match):
        call(sg.param("a", ("N",)))


@pytest.mark.slow
def test_compiled_library_model_matches_the_evaluator(rng):
    """One compile exercises every library function's emitted code (and their helpers),
    also at +-1000 where only the stable forms stay finite."""
    X, t = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",))
    W = sg.param("W", ("d", "H"))
    z = X @ W
    h = (sg.gelu(z) + sg.silu(z) + sg.elu(z) + sg.leaky_relu(z, slope=0.1) + sg.sin(z)
         + sg.cos(z) * sg.erf(z) + sg.log1p(sg.square(z)) + sg.expm1(-sg.square(z)))
    loss = sg.huber(sg.sum(h, axis="H"), t, delta=0.7)
    fn = sg.compile(loss, params=[W])
    for scale in (1.0, 1000.0):
        data = {"X": scale * rng.normal(size=(6, 3)), "t": rng.normal(size=6)}
        p = {"W": rng.normal(size=(3, 4))}
        want = sg.evaluate([loss, sg.gradients(loss, [W])[0]], {**p, **data})
        value, grads = fn.loss(p, **data), fn.grad(p, **data)
        assert np.isfinite(value) and np.all(np.isfinite(grads["W"]))
        np.testing.assert_allclose(value, want[0], rtol=1e-12)
        np.testing.assert_allclose(grads["W"], want[1], rtol=1e-12, atol=1e-12)


def test_sympy_expressions_of_generated_functions_pickle():
    import pickle
    x = sp.Symbol("x", real=True)
    expr = sp.diff(sg.gelu(x) * sg.leaky_relu(x, slope=0.2), x, 2)
    assert pickle.loads(pickle.dumps(expr)) == expr


def test_huber_with_a_symbolic_delta(rng):
    """delta as a hyperparameter symbol: the same values and gradients as a number."""
    delta = sp.Symbol("delta", positive=True)
    P, T = sg.param("P", ("N",)), sg.tensor("T", ("N",))
    p, t = rng.normal(scale=2, size=9), rng.normal(size=9)
    symbolic, numeric = sg.huber(P, T, delta=delta), sg.huber(P, T, delta=0.8)
    data = {"P": p, "T": t}
    got = sg.evaluate([symbolic, sg.gradients(symbolic, [P])[0]], {**data, "delta": 0.8})
    want = sg.evaluate([numeric, sg.gradients(numeric, [P])[0]], data)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-14)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-14)
    assert "delta" in str(sg.derive(symbolic, P).update_rule())

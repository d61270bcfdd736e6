"""Numerical stability at extreme inputs: values and gradients are finite and correct
(or, at documented singularities, the documented infinity) in every place symgrad
computes them: the NumPy evaluator (forward), the backward graph, the printed
derivation formulas, the scalar backprop path and (once landed) compiled code.

Conventions (documented in docs/guarantees.md):
  * sigmoid, softplus, logsumexp, softmax, log_softmax, cross-entropy and binary
    cross-entropy from logits never overflow: they are computed from ``exp(-|x|)``,
    ``log1p`` and the row max (the result saturates exactly, e.g. sigmoid(-1000) = 0).
  * binary_cross_entropy of probabilities clamps each log at -100 (as PyTorch's
    BCELoss does), so p = 0 or 1 gives a finite loss; where the clamp is active the
    gradient is that of the clamped function, 0.
  * log(0) = -inf with log'(0) = +inf; sqrt(0) = 0 with sqrt'(0) = +inf (IEEE, no
    exception, no warning). Training detects the resulting non-finite loss.
"""
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from tests.reliability._support import api, need, split

INF = math.inf


@dataclass
class Case:
    id: str
    build: object      # () -> (loss, [params])
    data: dict
    value: float       # the exact loss
    grads: dict        # param name -> exact gradient
    formula: bool = True   # also check the printed derivation formula


def _p(name, dims=("N",)):
    return sg.param(name, dims)


def _ce_int():
    z, y = _p("z", ("N", "C")), sg.tensor("y", ("N",), dtype=int)
    return sg.cross_entropy(z, y), [z]


def _ce_onehot():
    z, y = _p("z", ("N", "C")), sg.tensor("Y", ("N", "C"))
    return sg.cross_entropy(z, y), [z]


def _unary(fn):
    def build():
        x = _p("x")
        return sg.sum(fn(x)), [x]
    return build


def _weighted(fn, **kw):
    """sum(A * fn(z)) with fixed weights A, so every output element's gradient matters."""
    def build():
        z, a = _p("z", ("N", "C")), sg.tensor("A", ("N", "C"))
        return sg.sum(a * fn(z, **kw)), [z]
    return build


def _lse():
    z = _p("z", ("N", "C"))
    return sg.sum(sg.logsumexp(z, axis="C")), [z]


def _bce_probs():
    p, t = _p("p"), sg.tensor("t", ("N",))
    return sg.binary_cross_entropy(p, t), [p]


def _bce_sigmoid():
    z, t = _p("z"), sg.tensor("t", ("N",))
    return sg.binary_cross_entropy(sg.sigmoid(z), t), [z]


def _bce_logits():
    z, t = _p("z"), sg.tensor("t", ("N",))
    return sg.binary_cross_entropy(z, t, from_logits=True), [z]


def _a(*rows):
    return np.array(rows, dtype=float)


BIG, HUGE = 1e4, 1e300
CASES = [
    # cross-entropy: p = softmax(z) saturates to a one-hot, gradient (p - onehot(y)) / N.
    Case("ce-int-1e4-wrong-label", _ce_int, {"z": _a([BIG, 0.0, -BIG]), "y": np.array([1])},
         BIG, {"z": _a([1.0, -1.0, 0.0])}),
    Case("ce-int-1e4-right-label", _ce_int, {"z": _a([BIG, 0.0, -BIG]), "y": np.array([0])},
         0.0, {"z": _a([0.0, 0.0, 0.0])}),
    Case("ce-int-minus-1e4", _ce_int, {"z": _a([-BIG, 0.0, -BIG], [BIG, BIG, 0.0]), "y": np.array([0, 2])},
         (BIG + BIG + math.log(2)) / 2, {"z": _a([-0.5, 0.5, 0.0], [0.25, 0.25, -0.5])}),
    # at the 1e300 scale the log n term must survive: lse - s_y = log 2 here, not 0.
    Case("ce-int-1e300-ties", _ce_int, {"z": _a([HUGE, HUGE, -HUGE]), "y": np.array([0])},
         math.log(2), {"z": _a([-0.5, 0.5, 0.0])}),
    Case("ce-onehot-1e300-ties", _ce_onehot, {"z": _a([HUGE, HUGE, -HUGE]), "Y": _a([0.0, 1.0, 0.0])},
         math.log(2), {"z": _a([0.5, -0.5, 0.0])}),
    Case("ce-onehot-1e4", _ce_onehot, {"z": _a([BIG, 0.0, -BIG]), "Y": _a([0.0, 1.0, 0.0])},
         BIG, {"z": _a([1.0, -1.0, 0.0])}),
    Case("ce-onehot-minus-1e4", _ce_onehot, {"z": _a([-BIG, -BIG, 0.0]), "Y": _a([1.0, 0.0, 0.0])},
         BIG, {"z": _a([-1.0, 0.0, 1.0])}),
    # activations at +-1000: saturate exactly, gradients exactly 0 or 1.
    Case("sigmoid-pm1000", _unary(sg.sigmoid), {"x": np.array([1000.0, -1000.0])},
         1.0, {"x": np.array([0.0, 0.0])}),
    Case("softplus-pm1000", _unary(sg.softplus), {"x": np.array([1000.0, -1000.0])},
         1000.0, {"x": np.array([1.0, 0.0])}),
    Case("tanh-pm1000", _unary(sg.tanh), {"x": np.array([1000.0, -1000.0])},
         0.0, {"x": np.array([0.0, 0.0])}),
    Case("relu-pm1000-and-kink", _unary(sg.relu), {"x": np.array([1000.0, -1000.0, 0.0])},
         1000.0, {"x": np.array([1.0, 0.0, 0.0])}),          # relu'(0) = 0
    Case("abs-kink", _unary(sg.abs), {"x": np.array([-2.0, 0.0, 3.0])},
         5.0, {"x": np.array([-1.0, 0.0, 1.0])}),            # sign(0) = 0
    Case("exp-minus-1000", _unary(sg.exp), {"x": np.array([-1000.0, 0.0])},
         1.0, {"x": np.array([0.0, 1.0])}),
    # log-sum-exp at the 1e300 scale: the max is subtracted first.
    Case("logsumexp-1e300", _lse, {"z": _a([HUGE, HUGE / 2, 0.0], [-HUGE, -HUGE, -HUGE])},
         HUGE + (-HUGE + math.log(3)), {"z": _a([1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3])}),
    Case("logsumexp-1e300-ties", _lse, {"z": _a([HUGE, HUGE])}, HUGE, {"z": _a([0.5, 0.5])}),
    Case("softmax-1e300", _weighted(sg.softmax, axis="C"),
         {"z": _a([HUGE, HUGE / 2, 0.0]), "A": _a([1.0, 2.0, 3.0])}, 1.0, {"z": _a([0.0, 0.0, 0.0])}),
    Case("log-softmax-1e300-ties", _weighted(sg.log_softmax, axis="C"),
         {"z": _a([HUGE, HUGE]), "A": _a([1.0, 3.0])}, -4 * math.log(2), {"z": _a([1.0 - 2.0, 3.0 - 2.0])}),
    Case("log-softmax-1e300", _weighted(sg.log_softmax, axis="C"),
         {"z": _a([HUGE, 0.0, -HUGE]), "A": _a([1.0, 2.0, 3.0])},
         2 * -HUGE + 3 * -2 * HUGE, {"z": _a([1.0 - 6.0, 2.0, 3.0])}),
    # binary cross-entropy of probabilities at 0 and 1: clamped logs (floor -100).
    Case("bce-probs-0-and-1", _bce_probs, {"p": np.array([0.0, 1.0, 0.0, 1.0]),
                                           "t": np.array([0.0, 1.0, 1.0, 0.0])},
         (0 + 0 + 100 + 100) / 4, {"p": np.array([0.25, -0.25, 0.0, 0.0])},
         formula=False),  # the printed formula shows the unclamped log (1/p at p = 0)
    # ... and from logits at +-1000 (sigmoid inside is rewritten to the logits form).
    Case("bce-sigmoid-pm1000", _bce_sigmoid, {"z": np.array([1000.0, -1000.0, 1000.0, -1000.0]),
                                             "t": np.array([0.0, 1.0, 1.0, 0.0])},
         (1000 + 1000 + 0 + 0) / 4, {"z": np.array([0.25, -0.25, 0.0, 0.0])}),
    Case("bce-from-logits-pm1000", _bce_logits, {"z": np.array([1000.0, -1000.0, 1000.0, -1000.0]),
                                                "t": np.array([0.0, 1.0, 1.0, 0.0])},
         500.0, {"z": np.array([0.25, -0.25, 0.0, 0.0])}),
    # documented singularities: log(0) = -inf, log'(0) = inf; sqrt(0) = 0, sqrt'(0) = inf.
    Case("log-at-0", _unary(sg.log), {"x": np.array([0.0, 1.0])}, -INF, {"x": np.array([INF, 1.0])},
         formula=False),
    Case("sqrt-at-0", _unary(sg.sqrt), {"x": np.array([0.0, 4.0])}, 2.0, {"x": np.array([INF, 0.25])},
         formula=False),
]


def _close(got, want, what):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape or got.size == want.size, what
    got = got.reshape(want.shape)
    same_inf = np.isinf(want) & (got == want)
    ok = same_inf | np.isclose(got, want, rtol=1e-12, atol=1e-12)
    assert ok.all() and not np.isnan(got).any(), f"{what}: got {got}, want {want}"


@pytest.fixture(autouse=True)
def _no_floating_point_warnings():
    """Stable forms never overflow: no RuntimeWarning, and no NumPy error state changes."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_evaluator_and_backward_graph(case):
    loss, params = case.build()
    _close(sg.evaluate(loss, case.data), case.value, f"{case.id} value")
    grads = sg.evaluate(sg.gradients(loss, params), case.data, context=loss)
    for p, g in zip(params, grads):
        _close(np.broadcast_to(g, case.data[p.name].shape), case.grads[p.name], f"{case.id} d/d{p.name}")


@pytest.mark.parametrize("case", [c for c in CASES if c.formula], ids=lambda c: c.id)
def test_printed_formula(case):
    loss, params = case.build()
    der = sg.derive(loss, params)
    for p in params:
        got = der.evaluate_formula(der.gradients[p.name], case.data, free=p.name)
        _close(got, case.grads[p.name], f"{case.id} formula d/d{p.name}")


@need("compile")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_compiled_code(case, dtype):
    loss, params = case.build()
    if dtype == np.float32 and any(np.abs(v[np.isfinite(v)]).max(initial=0) > 1e38
                                   for v in case.data.values() if np.asarray(v).dtype.kind == "f"):
        pytest.skip("beyond float32's range: the data cast itself overflows")
    model = api("compile")(loss, params=params, dtype=dtype)
    p, d = split(case.data, params)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    value = model.loss(p, **d)
    grads = model.grad(p, **d)
    for got, want, what in [(value, case.value, "value")] + [
            (grads[q.name], case.grads[q.name], f"d/d{q.name}") for q in params]:
        got, want = np.asarray(got, dtype=float).reshape(np.shape(want)), np.asarray(want, dtype=float)
        same_inf = np.isinf(want) & (got == want)
        ok = same_inf | np.isclose(got, want, rtol=tol, atol=tol * max(1.0, np.abs(want[np.isfinite(want)]).max(initial=0)))
        assert ok.all() and not np.isnan(got).any(), f"{case.id} compiled {dtype.__name__} {what}: {got} vs {want}"


# -- the scalar (SymPy) path: sg.backprop and sg.grad -------------------------------------------
X = sg.scalars("x")


@pytest.mark.parametrize("f, at, value, grad", [
    (sg.sigmoid(X), -800, 0.0, 0.0),
    (sg.sigmoid(X), 800, 1.0, 0.0),
    (sg.softplus(X), 1000, 1000.0, 1.0),
    (sg.softplus(X), -1000, 0.0, 0.0),
    (sg.relu(X), 0, 0.0, 0.0),
    (sg.tanh(X), -1000, -1.0, 0.0),
])
def test_scalar_backprop_is_stable(f, at, value, grad):
    run = sg.backprop(f, {X: at})
    assert run.value == value and run.grads[X] == grad
    (g,) = sg.grad(f, [X])
    assert float(g.subs(X, sp.Float(at))) == grad     # sigma' written as sigma (1 - sigma)
    assert "exp" not in str(g)


@pytest.mark.parametrize("f", [sp.log(X), sp.sqrt(X), 1 / X])
def test_scalar_backprop_singularity_is_a_clear_error(f):
    with pytest.raises(sg.DataError, match="not a real number at these values"):
        sg.backprop(f, {X: 0})

"""The model corpus: symgrad's gradients agree with HIPS autograd to 1e-9 (float64),
with finite differences, and with the printed formulas."""
import numpy as np
import pytest
from autograd import grad as ag_grad

import symgrad as sg
from tests.autograd_ref import to_autograd
from tests.cases import corpus


CORPUS = corpus()


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_gradients_agree_with_autograd(name):
    loss, params, data = CORPUS[name]()
    ours = sg.evaluate(sg.gradients(loss, params), data, context=loss)
    for p, mine in zip(params, ours):
        def f(value, p=p):
            return to_autograd(loss, {**data, p.name: value}, None)
        theirs = ag_grad(f)(np.asarray(data[p.name], dtype=float))
        scale = max(1.0, np.max(np.abs(theirs)))
        assert np.max(np.abs(mine - theirs)) <= 1e-9 * scale, (name, p.name)
    assert float(sg.evaluate(loss, data)) == pytest.approx(float(to_autograd(loss, data, None)), rel=1e-12)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_gradients_agree_with_finite_differences(name):
    loss, params, data = CORPUS[name]()
    check = sg.check_grad(loss, params, data, tolerance=1e-6)
    assert check.ok, check


@pytest.mark.parametrize("name", ["sigmoid_perceptron", "softmax_regression", "mlp2_tanh",
                                  "mlp3_relu", "logistic_regression", "mlp2_hinge"])
def test_printed_formulas_agree_with_backward_graph(name):
    loss, params, data = CORPUS[name]()
    der = sg.derive(loss, params)
    for p in params:
        formula = der.evaluate_formula(der.gradients[p.name], data, free=p.name)
        graph = sg.evaluate(der.backward_graph[p.name], data, context=loss)
        assert np.allclose(formula, graph, rtol=1e-10, atol=1e-12), (name, p.name)

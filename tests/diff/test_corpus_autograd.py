"""The model corpus: symgrad's gradients agree with HIPS autograd to 1e-9 (float64),
with finite differences, and with the printed formulas."""
import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad as ag_grad

import symgrad as sg
from symgrad.graph import topo_order
from tests.cases import corpus


def _ag_sigmoid(x):
    return 0.5 * (anp.tanh(0.5 * x) + 1.0)


def _ag_lse(x, axis):
    m = anp.max(x, axis=axis, keepdims=True)
    return anp.log(anp.sum(anp.exp(x - m), axis=axis, keepdims=True)) + m


def to_autograd(node, env, sizes):
    """Re-express a symgrad graph with autograd.numpy, independently of symgrad's rules."""
    cache = {}
    for n in topo_order(node):
        a = [cache[x] for x in n.inputs]
        ax = lambda name: n.inputs[0].dims.index(name)  # noqa: E731
        cache[n] = {
            "input": lambda: env[n.name], "param": lambda: env[n.name],
            "const": lambda: n.attrs["value"],
            "add": lambda: a[0] + a[1], "sub": lambda: a[0] - a[1], "mul": lambda: a[0] * a[1],
            "div": lambda: a[0] / a[1], "neg": lambda: -a[0], "pow": lambda: a[0] ** n.attrs["exponent"],
            "exp": lambda: anp.exp(a[0]), "log": lambda: anp.log(a[0]),
            "clog": lambda: anp.maximum(anp.log(a[0]), -100.0),
            "sqrt": lambda: anp.sqrt(a[0]), "abs": lambda: anp.abs(a[0]),
            "sigmoid": lambda: _ag_sigmoid(a[0]), "tanh": lambda: anp.tanh(a[0]),
            "relu": lambda: anp.maximum(a[0], 0.0), "softplus": lambda: anp.logaddexp(0.0, a[0]),
            "sum": lambda: anp.sum(a[0], axis=tuple(map(ax, n.attrs["axes"]))),
            "mean": lambda: anp.mean(a[0], axis=tuple(map(ax, n.attrs["axes"]))),
            "matmul": lambda: anp.dot(a[0], a[1]), "transpose": lambda: anp.transpose(a[0]),
            "cross_entropy": lambda: _ag_ce(n, a),
            "bce_logits": lambda: anp.mean(anp.logaddexp(0.0, a[0]) - a[1] * a[0]),
        }[n.op]()
    return cache[node]


def _ag_ce(n, a):
    s, y = a
    lse = _ag_lse(s, -1)[..., 0]
    if n.attrs["onehot"]:
        per = anp.sum(y, axis=-1) * lse - anp.sum(y * s, axis=-1)
    else:
        per = lse - s[np.arange(len(y)), y]
    return anp.mean(per)


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

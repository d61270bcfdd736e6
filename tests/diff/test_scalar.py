"""Scalar graphs: SymPy expressions, gradients and backprop runs."""
import math

import pytest
import sympy as sp

import symgrad as sg
from symgrad.errors import DataError


def test_grad_returns_sympy_in_order():
    x, y, z = sg.scalars("x y z")
    assert sg.grad((x + y) * z, [z, x]) == [x + y, z]
    assert all(s.is_real for s in (x, y, z))


def test_activations_accept_sympy_and_numbers():
    x = sg.scalars("x")
    assert sg.grad(sg.relu(x), [x])[0].func.__name__ == "step"
    assert sg.grad(sg.softplus(x), [x])[0] == sg.sigmoid(x)
    assert sg.grad(sg.tanh(x), [x])[0] == 1 - sp.tanh(x) ** 2
    assert float(sg.sigmoid(-800.0)) >= 0.0 and math.isfinite(float(sg.sigmoid(-800.0)))
    assert float(sg.softplus(1000.0)) == pytest.approx(1000.0)


def test_neuron_backprop_matches_lecture_numbers():
    w0, x0, w1, x1, w2 = sg.scalars("w0 x0 w1 x1 w2")
    run = sg.backprop(sg.sigmoid(w0 * x0 + w1 * x1 + w2), {w0: 2, x0: -1, w1: -3, x1: -2, w2: -3})
    assert run.value == pytest.approx(0.7310585786300049, rel=1e-14)
    assert run.grads[w0] == pytest.approx(-0.19661193324148185, rel=1e-12)
    assert run.grads[x0] == pytest.approx(0.3932238664829637, rel=1e-12)
    assert run.grads[w2] == pytest.approx(0.19661193324148185, rel=1e-12)
    assert any("f (1 - f)" in s.text for s in run.steps)


def test_shared_subexpression_accumulates():
    x = sg.scalars("x")
    run = sg.backprop(x * x + x, {x: 3})
    assert run.grads[x] == 7.0


def test_backprop_views():
    x, y, z = sg.scalars("x y z")
    run = sg.backprop((x + y) * z, {"x": -2, "y": 5, "z": -4})
    dot = run.to_dot()
    assert dot.startswith("digraph") and "value 3 | grad -4" in dot and "local z = -4" in dot
    latex = run.to_latex()
    assert r"\frac{\partial f}{\partial x}" in latex and run._repr_latex_().startswith("$$")


def test_backprop_errors():
    x, y = sg.scalars("x y")
    with pytest.raises(DataError, match="missing a value for 'y'"):
        sg.backprop(x * y, {x: 1})
    with pytest.raises(DataError, match="'w' is not a variable"):
        sg.backprop(x * y, {x: 1, y: 2, "w": 3})

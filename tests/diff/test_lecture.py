"""Every numbered result of the lecture, reproduced (reference/lecture-derivations.md)."""
import math

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.explain.printing import to_latex, to_text
from tests import cases


# -- 2. softmax classifier and cross-entropy -----------------------------------------------
SCORES = np.array([3.2, 5.1, -1.7])


def _softmax_example():
    s = sg.tensor("s", ("C",))
    y = sg.tensor("y", (), dtype=int)
    return s, y, sg.cross_entropy(s, y)


def test_softmax_table_to_printed_digits():
    s = sg.tensor("s", ("C",))
    p = sg.evaluate(sg.softmax(s), {"s": SCORES})
    e = sg.evaluate(sg.exp(s), {"s": SCORES})
    assert np.round(e, 4).tolist() == [24.5325, 164.0219, 0.1827]
    assert np.round(p, 5).tolist() == [0.12998, 0.86905, 0.00097]
    assert math.isclose(p.sum(), 1.0, rel_tol=1e-15)


def test_cross_entropy_value_is_2_0404():
    s, y, L = _softmax_example()
    value = sg.evaluate(L, {"s": SCORES, "y": 0})
    assert round(float(value), 4) == 2.0404
    assert value == pytest.approx(-math.log(math.exp(3.2) / np.exp(SCORES).sum()), rel=1e-14)


def test_cross_entropy_gradient_is_p_minus_onehot():
    s, y, L = _softmax_example()
    s_param = sg.param("s", ("C",))
    L = sg.cross_entropy(s_param, y)
    g = sg.evaluate(sg.gradients(L, [s_param])[0], {"s": SCORES, "y": 0})
    p = np.exp(SCORES) / np.exp(SCORES).sum()
    assert np.max(np.abs(g - (p - [1, 0, 0]))) < 1e-12
    assert np.round(g, 5).tolist() == [-0.87002, 0.86905, 0.00097]
    # and the derivation states it symbolically: dL/ds_c = p_c - [y = c]
    der = sg.derive(L, s_param)
    assert to_text(der.gradient) == "p_i - [y = i]"


def test_four_pixel_three_class_classifier_end_to_end():
    x = sg.tensor("x", ("D",))                 # an image of 4 pixels
    y = sg.tensor("y", (), dtype=int)          # cat / dog / ship
    W, b = sg.param("W", ("C", "D")), sg.param("b", ("C",))
    s = (W @ x + b).named("s")
    L = sg.cross_entropy(s, y)
    data = {"x": np.array([56.0, 231.0, 24.0, 2.0]), "y": 2,
            "W": np.array([[0.2, -0.5, 0.1, 2.0], [1.5, 1.3, 2.1, 0.0], [0.0, 0.25, 0.2, -0.3]]),
            "b": np.array([1.1, 3.2, -1.2])}
    scores = sg.evaluate(s, data)
    assert np.allclose(scores, [-96.8, 437.9, 60.75]) and np.allclose(scores, data["W"] @ data["x"] + data["b"])
    gW, gb = sg.evaluate(sg.gradients(L, [W, b]), data)
    p = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
    assert np.allclose(gb, p - [0, 0, 1], atol=1e-12)
    assert np.allclose(gW, np.outer(p - [0, 0, 1], data["x"]), atol=1e-12)
    assert sg.check_grad(L, [W, b], data, eps=1e-7, tolerance=1e-5)
    rules = sg.derive(L, [W, b]).update_rule()
    assert str(rules[0]).splitlines()[0] == "W_ji <- W_ji - alpha (p_j - [y = j]) x_i"


# -- 3. regularisation ----------------------------------------------------------------------
def test_l2_and_l1_terms_and_their_subgradients():
    W = sg.param("W", ("D", "C"))
    Wd = np.array([[0.5, -2.0], [0.0, 3.0]])
    lam = 0.1
    assert sg.evaluate(lam * sg.l2(W), {"W": Wd}) == pytest.approx(lam * 13.25, rel=1e-15)
    assert sg.evaluate(lam * sg.l1(W), {"W": Wd}) == pytest.approx(lam * 5.5, rel=1e-15)
    g2 = sg.evaluate(sg.gradients(lam * sg.l2(W), [W])[0], {"W": Wd})
    g1 = sg.evaluate(sg.gradients(lam * sg.l1(W), [W])[0], {"W": Wd})
    assert np.array_equal(g2, 2 * lam * Wd)
    assert np.array_equal(g1, lam * np.sign(Wd))  # subgradient 0 at W = 0
    assert to_text(sg.derive(sg.l1(W), W).gradient) == "sign(W_ij)"
    assert to_text(sg.derive(sg.l2(W), W).gradient) == "2 W_ij"


# -- 5. linear regression -----------------------------------------------------------------
def test_linear_regression_rule():
    loss, (w,), data = cases.linear_regression()
    der = sg.derive(loss, w)
    S = der.symbols
    i, j, N = S["i"], S["j"], S["N"]
    expected = -2 * sp.Sum(S["delta"][i] * S["x"][i, j], (i, 0, N - 1))
    assert sp.simplify(der.gradient - expected) == 0
    rule = der.update_rule()
    assert str(rule).splitlines()[0] == "w_j <- w_j + 2 alpha sum_i delta_i x_ij"
    assert "delta_i = y_i - sum_j w_j x_ij" in str(rule)
    assert rule.to_latex().splitlines()[1] == (
        r"w_{j} &\leftarrow w_{j} + 2 \alpha \sum_{i} \delta_{i} x_{ij} \\")
    assert np.allclose(der.evaluate_formula(der.gradient, data), sg.evaluate(der.backward_graph["w"], data))


# -- 6. the sigmoid perceptron ------------------------------------------------------------
def test_sigmoid_derivative_identity():
    x = sg.scalars("x")
    assert sp.simplify(sg.grad(sg.sigmoid(x), [x])[0] - sg.sigmoid(x) * (1 - sg.sigmoid(x))) == 0
    assert sg.grad(sg.sigmoid(x), [x])[0] == sg.sigmoid(x) * (1 - sg.sigmoid(x))


def test_sigmoid_perceptron_rule_symbolically_equal_to_lecture():
    loss, (w,), data = cases.sigmoid_perceptron()
    der = sg.derive(loss, w)
    S = der.symbols
    i, j, N = S["i"], S["j"], S["N"]
    sigma, delta, x = S["sigma"], S["delta"], S["x"]
    lecture = -2 * sp.Sum(delta[i] * sigma[i] * (1 - sigma[i]) * x[i, j], (i, 0, N - 1))
    assert sp.simplify(der.gradient - lecture) == 0
    rule = der.update_rule()
    alpha = S["alpha"]
    assert sp.simplify(rule.rhs - (S["w"][j] + 2 * alpha * sp.Sum(
        delta[i] * sigma[i] * (1 - sigma[i]) * x[i, j], (i, 0, N - 1)))) == 0


def test_sigmoid_perceptron_rule_printed_in_lecture_form():
    loss, (w,), _ = cases.sigmoid_perceptron()
    rule = sg.derive(loss, w).update_rule()
    lines = str(rule).splitlines()
    assert lines[0] == "w_j <- w_j + 2 alpha sum_i delta_i sigma_i (1 - sigma_i) x_ij"
    assert lines[1].strip() == "where sigma_i = sigmoid(sum_j w_j x_ij)"
    assert lines[2].strip() == "delta_i = y_i - sigma_i"
    latex = rule.to_latex()
    assert (r"w_{j} &\leftarrow w_{j} + 2 \alpha \sum_{i} \delta_{i} \sigma_{i} "
            r"\left(1 - \sigma_{i}\right) x_{ij}") in latex
    assert r"\sigma_{i} &= \sigma\left(\sum_{j} w_{j} x_{ij}\right)" in latex
    assert "exp" not in str(rule) and "exp" not in latex


def test_sigmoid_perceptron_formula_matches_numbers():
    loss, (w,), data = cases.sigmoid_perceptron()
    der = sg.derive(loss, w)
    x, y, wv = data["x"], data["y"], data["w"]
    s = 1 / (1 + np.exp(-x @ wv))
    by_hand = -2 * ((y - s) * s * (1 - s)) @ x
    assert np.max(np.abs(der.evaluate_formula(der.gradient, data) - by_hand)) < 1e-12
    assert np.max(np.abs(sg.evaluate(der.backward_graph["w"], data) - by_hand)) < 1e-12


# -- 7. the 2-layer network ---------------------------------------------------------------------
def _two_layer():
    x = sg.tensor("x", ("N", "D"))
    y = sg.tensor("y", ("N",), dtype=int)
    W1, b1 = sg.param("W1", ("H", "D")), sg.param("b1", ("H",))
    W2, b2 = sg.param("W2", ("C", "H")), sg.param("b2", ("C",))
    h = sg.sigmoid(x @ W1.T + b1).named("h")
    out = (h @ W2.T + b2).named("s")
    r = np.random.default_rng(7)
    data = {"x": r.normal(size=(5, 4)), "y": np.array([0, 2, 1, 2, 0]),
            "W1": r.normal(size=(3, 4)), "b1": r.normal(size=3),
            "W2": r.normal(size=(3, 3)), "b2": r.normal(size=3)}
    return sg.cross_entropy(out, y), [W1, b1, W2, b2], data


def test_two_layer_network_gradients_for_all_four_params():
    loss, params, data = _two_layer()
    der = sg.derive(loss, params)
    x, y = data["x"], data["y"]
    h = 1 / (1 + np.exp(-(x @ data["W1"].T + data["b1"])))
    s = h @ data["W2"].T + data["b2"]
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    ds = (p - np.eye(3)[y]) / len(y)
    dz = (ds @ data["W2"]) * h * (1 - h)
    by_hand = {"W2": ds.T @ h, "b2": ds.sum(0), "W1": dz.T @ x, "b1": dz.sum(0)}
    for name, expected in by_hand.items():
        formula = der.evaluate_formula(der.gradients[name], data, free=name)
        graph = sg.evaluate(der.backward_graph[name], data)
        assert np.max(np.abs(formula - expected)) < 1e-12, name
        assert np.max(np.abs(graph - expected)) < 1e-12, name
    rules = {r.param.name: str(r) for r in der.update_rule()}
    assert rules["W1"].splitlines()[0] == "W1_kj <- W1_kj - alpha sum_i bar_h_ik h_ik (1 - h_ik) x_ij"
    assert "bar_h_ik = sum_m (p_im - [y_i = m]) W2_mk / N" in rules["W1"]
    assert rules["W2"].splitlines()[0] == "W2_mk <- W2_mk - alpha sum_i (p_im - [y_i = m]) h_ik / N"


# -- 9. backpropagation: (x + y) z ----------------------------------------------------------
def test_backprop_example_numbers_and_steps():
    x, y, z = sg.scalars("x y z")
    f = (x + y) * z
    assert sg.grad(f, [x, y, z]) == [z, z, x + y]
    run = sg.backprop(f, {x: -2, y: 5, z: -4})
    assert run.values["q"] == 3.0 and run.value == -12.0
    assert run.grads == {x: -4.0, y: -4.0, z: 3.0}
    text = [s.text for s in run.steps]
    assert "q = x + y = 3" in text and "f = q z = -12" in text
    assert "df/dz = df/df x df/dz = 1 x q = 1 x 3 = 3" in text
    assert "df/dq = df/df x df/dq = 1 x z = 1 x -4 = -4" in text
    assert "df/dx = df/dq x dq/dx = -4 x 1 = -4" in text
    assert "df/dy = df/dq x dq/dy = -4 x 1 = -4" in text
    # forward before backward, backward in topological order from the output
    kinds = [s.kind for s in run.steps]
    assert kinds == sorted(kinds, key=lambda k: k != "forward")
    assert text.index("df/dq = df/df x df/dq = 1 x z = 1 x -4 = -4") < text.index(
        "df/dx = df/dq x dq/dx = -4 x 1 = -4")

"""Derivations as a teacher would show them: steps, text, LaTeX, Jupyter display."""
import numpy as np
import pytest

import symgrad as sg
from bench.derive_scaling import mlp
from symgrad.diff.reverse import backward
from symgrad.graph import topo_order
from tests import cases


@pytest.fixture
def perceptron():
    loss, (w,), data = cases.sigmoid_perceptron()
    return sg.derive(loss, w)


def test_steps_cover_model_loss_chain_local_simplify_update(perceptron):
    kinds = [s.kind for s in perceptron.steps]
    for kind in ("declare", "model", "loss", "chain", "local", "result", "simplify", "update"):
        assert kind in kinds, kind
    text = str(perceptron)
    assert "sigma_i = sigmoid(z_i)" in text
    assert "local: dsigma_i/dz_i = sigma_i (1 - sigma_i)" in text
    assert "bar_z_i = -2 delta_i sigma_i (1 - sigma_i)" in text
    assert "bar_w_j = -2 sum_i delta_i sigma_i (1 - sigma_i) x_ij" in text
    # the chain runs from the loss down: delta's adjoint before sigma's before z's
    assert text.index("bar_delta_i =") < text.index("bar_sigma_i =") < text.index("bar_z_i =")


def test_latex_block_and_document(perceptron):
    block = perceptron.to_latex()
    assert block.startswith("\\begin{aligned}") and block.endswith("\\end{aligned}")
    assert r"\frac{\partial \sigma_{i}}{\partial z_{i}} = \sigma_{i} \left(1 - \sigma_{i}\right)" in block
    assert block.count("\\begin{aligned}") == 1
    doc = perceptron.to_latex(document=True)
    assert doc.startswith("\\documentclass") and "\\end{document}" in doc
    assert perceptron._repr_latex_().startswith("$$")
    assert perceptron.update_rule()._repr_latex_().startswith("$$")


def test_network_rules_share_where_block():
    loss, params = mlp(3, width=8)
    rules = sg.derive(loss, params).update_rule()
    assert len(rules) == 6
    text = str(rules)
    assert text.count("where") == 1
    # each backpropagated adjoint is defined once
    assert text.count("bar_h1_ik =") == 1 and text.count("bar_h2_im =") == 1
    assert "step(" in text  # relu' written as a step function


def test_relu_local_gradient_and_softmax_symbols():
    loss, params, data = cases.mlp(2, "relu")
    der = sg.derive(loss, params)
    latex = der.to_latex()
    assert r"\mathbb{1}\left[" in latex      # step(z) and [y_i = c]
    assert "p_{i" in latex                      # the softmax inside cross-entropy, named p


def test_symbols_let_users_build_expected_forms(perceptron):
    S = perceptron.symbols
    for name in ("x", "y", "w", "sigma", "delta", "i", "j", "N", "d", "alpha", "bar_z"):
        assert name in S, name


def test_backward_graph_grows_linearly_with_depth():
    sizes = {}
    for layers in (2, 4, 8):
        loss, params = mlp(layers)
        grads, _ = backward(loss, params)
        sizes[layers] = len(topo_order(list(grads.values())))
    per_layer = (sizes[4] - sizes[2]) / 2
    assert sizes[8] - sizes[4] == 4 * per_layer


def test_deep_derivation_has_one_definition_per_layer():
    loss, params = mlp(10)
    der = sg.derive(loss, params)
    latex = der.to_latex()
    for k in range(1, 10):
        assert latex.count(r"\bar{h}^{(%d)}_{" % k) >= 1
    defs = der.definitions.order
    assert len(defs) == len(set(defs))


def test_hostile_names_are_escaped_in_latex():
    X = sg.tensor("x%}{#", ("N",))
    w = sg.param("w_&$", ())
    der = sg.derive(sg.sum((X * w) ** 2), w)
    latex = der.to_latex()
    assert r"\%" in latex and r"\}" in latex and r"\#" in latex and r"\&" in latex and r"\$" in latex


def test_evaluate_formula_matches_numbers():
    loss, params, data = cases.softmax_regression()
    der = sg.derive(loss, params)
    for p in params:
        formula = der.evaluate_formula(der.gradients[p.name], data, free=p.name)
        assert np.allclose(formula, sg.evaluate(der.backward_graph[p.name], data), atol=1e-12)

"""sg.hessian: the symbolic Hessian in the lecture's terms, its matrix form, and the
printed formulas evaluated against the numeric Hessian (reverse over reverse)."""
import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.diff.hessian import hessian_values
from symgrad.explain.matrix import MatrixFormError
from tests.diff.test_hessian import CORPUS

LAM = sp.Symbol("lambda", positive=True)


def _logistic(bias=False):
    X, t, w = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",)), sg.param("w", ("d",))
    b = sg.param("b")
    z = X @ w + b if bias else X @ w
    loss = sg.binary_cross_entropy(sg.sigmoid(z), t) + LAM * sg.l2(w)
    return loss, ([w, b] if bias else w)


def test_logistic_regression_hessian_in_sigma_form():
    loss, w = _logistic()
    hes = sg.hessian(loss, w)
    assert str(hes) == (
        "d2L/dw_j dw_k = sum_i sigma_i (1 - sigma_i) X_ij X_ik / N + 2 lambda delta_jk\n"
        "  where sigma_i = sigmoid(sum_j w_j X_ij)")
    assert hes.to_latex() == (
        "\\begin{aligned}\n"
        "\\frac{\\partial^2 L}{\\partial w_{j} \\partial w_{k}} &= \\frac{\\sum_{i} \\sigma_{i} "
        "\\left(1 - \\sigma_{i}\\right) X_{ij} X_{ik}}{N} + 2 \\lambda \\delta_{j k} \\\\\n"
        "\\text{where } \\sigma_{i} &= \\sigma\\left(\\sum_{j} w_{j} X_{ij}\\right)\n"
        "\\end{aligned}")


def test_steps_show_the_chain_rule_for_each_auxiliary():
    loss, w = _logistic()
    hes = sg.hessian(loss, w)
    assert hes.to_text(steps=True).splitlines()[0] == "dsigma_i/dw_k = sigma_i (1 - sigma_i) X_ik"
    assert r"\frac{\partial \sigma_{i}}{\partial w_{k}} &= \sigma_{i} \left(1 - \sigma_{i}\right) " \
        r"X_{ik}" in hes.to_latex(steps=True)
    loss, params, _ = CORPUS["mlp2_tanh"]()
    text = sg.hessian(loss, params).to_text(steps=True)
    assert "dp_im/dW2_rs = p_im (delta_ms - p_is) h_ir" in text
    assert "dh_ik/dW1_ln = (1 - h_ik^2) X_il delta_kn" in text


def test_logistic_regression_hessian_in_matrix_form():
    loss, w = _logistic()
    m = sg.hessian(loss, w, form="matrix")
    assert str(m) == ("d2L/dw dw = X^T diag(sigma (1 - sigma)) X / N + 2 lambda I\n"
                      "  where sigma = sigmoid(X w)")
    assert r"X^{\top} \operatorname{diag}\left(\sigma \odot \left(1 - \sigma\right)\right) X" \
        in m.to_latex()
    assert str(sg.hessian(*_logistic(bias=True), form="matrix")).splitlines()[1:3] == [
        "d2L/dw db = X^T (sigma * (1 - sigma)) / N",
        "d2L/db db = 1^T (sigma * (1 - sigma)) / N"]


def test_softmax_regression_hessian_reads_p_delta_minus_p():
    """The softmax's own derivative p (delta - p), not the quotient rule on exp / sum."""
    loss, params, _ = CORPUS["softmax_matrix"]()
    lines = str(sg.hessian(loss, params)).splitlines()
    assert lines[0] == ("d2L/dW_jk dW_lm = sum_i p_ik (delta_km - p_im) X_ij X_il / N "
                        "+ 0.02 delta_jl delta_km")
    assert lines[2] == "d2L/db_k db_n = sum_i p_ik (delta_kn - p_in) / N"
    steps = sg.hessian(loss, params).to_text(steps=True).splitlines()
    assert steps[0] == "dp_ik/dW_lm = p_ik (delta_km - p_im) X_il"     # as the README says


def test_expanded_leaves_only_data_params_and_hyperparameters():
    loss, w = _logistic()
    expanded = sg.hessian(loss, w).expanded()
    names = {str(s.base.label) for s in expanded.atoms(sp.Indexed)}
    assert names == {"X", "w"}
    assert {str(s) for s in expanded.free_symbols if not s.is_integer} >= {"lambda"}
    assert "sigma" not in str(expanded)


def test_every_block_of_several_params():
    loss, params = _logistic(bias=True)
    hes = sg.hessian(loss, params)
    assert set(hes.blocks) == {("w", "w"), ("w", "b"), ("b", "b")}
    assert str(hes).splitlines()[1:3] == ["d2L/dw_j db = sum_i sigma_i (1 - sigma_i) X_ij / N",
                                          "d2L/db db = sum_i sigma_i (1 - sigma_i) / N"]
    j, k = (sp.Symbol(c, integer=True) for c in "jk")
    # symmetric: d2L/db dw_k is d2L/dw_j db at j = k (w's second index is k)
    assert hes.block("b", "w") == hes.block("w", "b").xreplace({j: k})
    with pytest.raises(KeyError, match="params"):
        hes.block("w", "X")


def _printed_equals_numeric(label, loss, params, data, rtol, atol):
    """Every printed Hessian block, evaluated, against reverse mode over the backward graph."""
    got, want = sg.hessian(loss, params).evaluate(data), hessian_values(loss, params, data)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=rtol, atol=atol,
                                   err_msg=f"{label} {key}")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n.startswith("mlp")
                                  else n for n in sorted(CORPUS)])   # a net: many elements
def test_printed_blocks_equal_the_numeric_hessian(name):
    """The formulas as printed, evaluated, against reverse mode over the backward graph."""
    _printed_equals_numeric(name, *CORPUS[name](), rtol=1e-10, atol=1e-12)


def test_no_matrix_form_is_a_clear_error():
    X, W = sg.tensor("X", ("N", "d")), sg.param("W", ("d", "C"))
    loss = sg.sum(sg.tanh(X @ W) ** 2)
    with pytest.raises(MatrixFormError, match=r"\(W, W\).*four|4 indices"):
        sg.hessian(loss, W, form="matrix")
    with pytest.raises(ValueError, match="'index' or 'matrix'"):
        sg.hessian(loss, W, form="tensor")


def _readme_second_order():
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.split("## Second order", 1)[1].split("\n## ", 1)[0]
    code = re.findall(r"```python\n(.+?)\n```", section, re.S)
    shown = re.findall(r"```text\n(.+?)\n```", section, re.S)
    return section, code, shown


def test_readme_second_order_prints_what_it_shows(capsys):
    section, code, shown = _readme_second_order()
    exec(compile(code[0], "README.md", "exec"), {})  # the README's own example code
    assert capsys.readouterr().out.strip() == shown[0].strip()
    loss, w = _logistic()
    assert sg.hessian(loss, w).to_latex().split("\n", 1)[1].rsplit("\n", 1)[0] in section


@pytest.mark.slow
def test_readme_newton_prints_what_it_shows(capsys):
    _, code, shown = _readme_second_order()
    namespace = {}
    exec(compile(code[0], "README.md", "exec"), namespace)  # the README's own example code
    capsys.readouterr()
    exec(compile(code[1], "README.md", "exec"), namespace)
    assert capsys.readouterr().out.strip() == shown[1].strip()


def _registry_cases():
    from tests.ops.test_registry import CASES
    return CASES


@pytest.mark.parametrize("op", sorted(_registry_cases()))
def test_printed_hessian_of_every_registry_op(op, rng):
    """sum(f(params) * R) for each registry case: the printed blocks, evaluated, against
    the numeric Hessian (masks, steps and signs held constant, as the backward graph)."""
    _printed_equals_numeric(op, *_registry_cases()[op](rng), rtol=1e-9, atol=1e-10)


def test_relu_regression_and_a_linear_loss():
    X, t, w = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",)), sg.param("w", ("d",))
    relu = sg.mse(sg.relu(X @ w), t)
    assert str(sg.hessian(relu, w)).splitlines()[0] == \
        "d2L/dw_j dw_k = 2 sum_i step(z_i) X_ij X_ik / N"          # step^2 = step
    assert str(sg.hessian(relu, w, form="matrix")).splitlines()[0] == \
        "d2L/dw dw = 2 X^T diag(step(z)) X / N"
    linear = sg.sum(X @ w - t)
    assert str(sg.hessian(linear, w)) == "d2L/dw_j dw_k = 0"
    assert str(sg.hessian(linear, w, form="matrix")) == "d2L/dw dw = 0"


def test_an_empty_params_list_is_refused_as_derive_refuses_it():
    loss, w = _logistic()
    with pytest.raises(ValueError, match="non-empty list"):
        sg.hessian(loss, [])

"""Update rules in matrix notation: the lecture's forms, and the same numbers as the index form."""
import numpy as np
import pytest

import symgrad as sg
from symgrad import cli, nn
from symgrad.explain.matrix import MatrixFormError
from tests import cases


def rules_of(model):
    return cli.explain(model).update_rule(form="matrix")


def test_perceptron_and_linear_regression_read_as_the_lecture_writes_them():
    rule = rules_of("perceptron")
    assert rule.line() == "w <- w + 2 alpha X^T (delta * sigma * (1 - sigma))"
    assert str(rule).splitlines()[1:] == ["  where sigma = sigmoid(X w)",
                                          "        delta = t - sigma"]
    assert rules_of("linear-regression").line() == "w <- w + 2 alpha X^T delta"


def test_softmax_rules_use_transposes_and_sums_over_the_batch():
    text = str(rules_of("softmax"))
    assert "W <- W - alpha X^T (p - onehot(y)) / N" in text
    assert "b <- b - alpha 1^T (p - onehot(y)) / N" in text
    assert "s = X W + 1 b" in text and "p = softmax(s)" in text


def test_two_layer_backpropagates_through_a_transpose():
    text = str(rules_of("two-layer"))
    assert "W2 <- W2 + 2 alpha h^T delta" in text
    assert "W1 <- W1 - alpha X^T (bar_h * h * (1 - h))" in text
    assert "bar_h = - 2 delta W2^T" in text


def test_latex_and_jupyter_forms():
    latex = rules_of("two-layer").to_latex()
    assert latex.startswith("\\begin{aligned}") and latex.endswith("\\end{aligned}")
    for token in (r"X^{\top}", r"\odot", r"\mathbf{1}^{\top}", r"{W^{(2)}}^{\top}",
                  r"&\leftarrow"):
        assert token in latex, token
    assert rules_of("perceptron")._repr_latex_().startswith("$$\\begin{aligned}")


def _gallery():
    """The test corpus (linear and logistic models, softmax with L2 or L1, 2- and
    3-layer networks with every activation, cross-entropy, squared error and hinge)."""
    for name, build in cases.corpus().items():
        yield name, build()
    yield "mlp3-relu-mse", cases.mlp(3, "relu", loss="mse")


@pytest.mark.parametrize("name, case", list(_gallery()), ids=[n for n, _ in _gallery()])
def test_matrix_form_gives_the_index_form_numbers(name, case):
    loss, params, data = case
    der = sg.derive(loss, params)
    rules = der.update_rule(form="matrix")
    values, sizes = der.symbol_values(data)
    values["alpha"] = 0.1
    listed = rules if isinstance(rules, list) else [rules]
    namespace = rules.arrays(values, sizes)
    exec(rules.to_numpy(), namespace)  # the printed NumPy, run as printed
    for rule, p in zip(listed, der.params):
        grad = der.evaluate_formula(der.gradients[p.name], data, free=p.name)
        want = data[p.name] - 0.1 * grad
        assert np.allclose(rule.evaluate(values, sizes), want, atol=1e-12), (name, p.name)
        printed = np.asarray(namespace[p.name]).reshape(np.shape(want))
        assert np.allclose(printed, want, atol=1e-12), (name, p.name)


def test_three_layer_network_with_l2_on_every_layer():
    model = nn.mlp((4, 5, 5, 3), activation="tanh", l2=1e-3)
    text = str(sg.derive(model.loss, model.params).update_rule(form="matrix"))
    lines = {line.split(" <- ")[0]: line for line in text.splitlines() if " <- " in line}
    for k in (1, 2, 3):   # the L2 term of every layer sits beside its data term
        line = lines[f"W{k}"]
        assert line.startswith(f"W{k} <- W{k} - alpha (") and line.count(f"W{k}") == 3, line
    assert "bar_h1 = (bar_h2 * (1 - h2**2)) W2^T" in text


def test_a_rule_without_matrix_form_says_which_and_why():
    X, w = sg.tensor("X", ("N", "d")), sg.param("w", ("d",))
    der = sg.derive(sg.max(X @ w), w)
    assert "w_j <-" in str(der.update_rule())          # the index form is still there
    with pytest.raises(MatrixFormError, match="no matrix form"):
        der.update_rule(form="matrix")


def test_a_gather_by_label_has_no_matrix_form():
    X, y = sg.tensor("X", ("N", "D")), sg.tensor("y", ("N",), dtype=int)
    W = sg.param("W", ("D", "C"))
    loss = sg.sum(sg.sigmoid(sg.take(X @ W, y, axis="C")))   # sigma_i = sigmoid(X_i W_{:, y_i})
    with pytest.raises(MatrixFormError, match="definition of sigma .* gather by label"):
        sg.derive(loss, W).update_rule(form="matrix")


def test_unknown_form_is_an_error():
    with pytest.raises(ValueError, match="'index' or 'matrix'"):
        cli.explain("perceptron").update_rule(form="tensor")


def test_readme_shows_the_rules_as_printed():
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for model in ("perceptron", "softmax"):
        assert str(rules_of(model)) in readme, model

"""Hand-written formulas derive to the rules a textbook prints (issue: textbook rules).

Each blackboard formula of the gallery is derived and its update rule compared with the
textbook text; every rule is also evaluated through ``der.expanded()`` (only data,
params, hyperparameters and dims left) against HIPS autograd on the written loss, and
scanned for undefined symbols and generic names.
"""
import re

import numpy as np
import pytest
import sympy as sp
from autograd import grad as ag_grad

import symgrad as sg
from symgrad.diff.index_eval import eval_index_expr
from symgrad.graph import topo_order
from tests.autograd_ref import to_autograd

X, t = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",))
w = sg.param("w", ("d",))
lam = sp.Symbol("lambda", positive=True)
SIZES = {"N": 4, "d": 3, "C": 3, "K": 2, "H": 2, "T": 3, "e": 2}


def _W(name="W", dims=("d", "C")):
    return sg.param(name, dims)


def bce_sum():
    p = sg.sigmoid(X @ w)
    return -sg.sum(t * sg.log(p) + (1 - t) * sg.log(1 - p)), w


def bce_mean_sigmoid_twice():
    return -sg.mean(t * sg.log(sg.sigmoid(X @ w)) + (1 - t) * sg.log(1 - sg.sigmoid(X @ w))), w


def softmax_ce_by_hand():
    W, Y = _W(), sg.tensor("Y", ("N", "C"), onehot="C")
    Z = X @ W
    P = sg.exp(Z) / sg.sum(sg.exp(Z), axis="C")
    return -sg.mean(sg.sum(Y * sg.log(P), axis="C")), W


def softmax_ce_onehot_labels():
    W, y = _W(), sg.tensor("y", ("N",), dtype=int)
    return -sg.mean(sg.sum(sg.onehot(y, "C") * sg.log_softmax(X @ W, axis="C"), axis="C")), W


def poisson_two_terms():
    return sg.sum(sg.exp(X @ w)) - sg.sum(t * (X @ w)), w


def gaussian_learned_variance():
    s = sg.param("s", ())
    r = t - X @ w
    return sg.sum(0.5 * sg.exp(-2 * s) * r ** 2 + s), [w, s]


def ridge():
    return sg.sse(X @ w, t) + lam * sg.l2(w), w


def ridge_half_lambda():
    return sg.sse(X @ w, t) + lam / 2 * sg.l2(w), w


def lasso():
    return sg.sse(X @ w, t) + lam * sg.l1(w), w


def logistic_small_l2():
    return sg.binary_cross_entropy(sg.sigmoid(X @ w), t) + 0.001 * sg.l2(w), w


def svm_hinge():
    return sg.hinge(X @ _W(), sg.tensor("y", ("N",), dtype=int)), None


def svm_by_gather():
    y = sg.tensor("y", ("N",), dtype=int)
    S = X @ _W()
    return sg.mean(sg.sum(sg.relu(S - sg.take(S, y, axis="C") + 1), axis="C") - 1), None


def kmeans():
    M, a = sg.param("M", ("K", "d")), sg.tensor("a", ("N",), dtype=int)
    return sg.sum(sg.onehot(a, "K") * sg.sum((X - M) ** 2, axis="d")), M


def batchnorm_by_hand():
    g, b, T = sg.param("g", ("d",)), sg.param("b", ("d",)), sg.tensor("T", ("N", "d"))
    mu = sg.mean(X, axis="N")
    v = sg.mean((X - mu) ** 2, axis="N")
    xhat = (X - mu) / sg.sqrt(v + 1e-5)
    return sg.sse(g * xhat + b, T), [g, b]


def batchnorm_after_a_layer():
    W, T = _W("W", ("d", "H")), sg.tensor("T", ("N", "H"))
    h = X @ W
    mu = sg.mean(h, axis="N")
    v = sg.mean((h - mu) ** 2, axis="N")
    return sg.sse((h - mu) / sg.sqrt(v + 1e-5), T), W


def huber_by_where():
    r = X @ w - t
    return sg.mean(sg.where(sg.abs(r) <= 1.0, 0.5 * r ** 2, sg.abs(r) - 0.5)), w


def huber_by_relu():
    a = sg.abs(X @ w - t)
    return sg.sum(a - sg.relu(a - 1.0)), w


def tied_autoencoder():
    W = _W("W", ("d", "H"))
    return sg.sse(sg.sigmoid(X @ W) @ W.T, X), W


def rnn_two_steps():
    Wx, Wh = _W("Wx", ("d", "H")), _W("Wh", ("H", "H"))
    h0, T = sg.tensor("h0", ("N", "H")), sg.tensor("T", ("N", "H"))
    h = h0
    for _ in range(2):
        h = sg.tanh(X @ Wx + h @ Wh)
    return sg.mse(h, T), Wh


def attention():
    Q, K = sg.param("Q", ("T", "e")), sg.tensor("K", ("T", "e"))
    V, R = sg.tensor("V", ("T", "e")), sg.tensor("R", ("T", "e"))
    return sg.sum((sg.softmax(Q @ K.T, axis=-1) @ V) * R), Q


def bishop_sigmoid_output():
    W1, W2 = _W("W1", ("d", "H")), sg.param("W2", ("H",))
    p = sg.sigmoid(sg.tanh(X @ W1) @ W2)
    return -sg.sum(t * sg.log(p) + (1 - t) * sg.log(1 - p)), [W1, W2]


def bishop_regression():
    W1, W2 = _W("W1", ("d", "H")), sg.param("W2", ("H",))
    return 0.5 * sg.sse(sg.tanh(X @ W1) @ W2, t), [W1, W2]


TEXTBOOK = {
    bce_sum: "w_j <- w_j - alpha sum_i (sigma_i - t_i) X_ij",
    bce_mean_sigmoid_twice: "w_j <- w_j - alpha sum_i (sigma_i - t_i) X_ij / N",
    softmax_ce_by_hand: "W_jk <- W_jk - alpha sum_i (p_ik - Y_ik) X_ij / N",
    softmax_ce_onehot_labels: "W_jk <- W_jk - alpha sum_i (p_ik - Y_ik) X_ij / N",
    poisson_two_terms: "w_j <- w_j - alpha sum_i (e_i - t_i) X_ij",
    gaussian_learned_variance: "w_j <- w_j + alpha e sum_i delta_i X_ij\n"
                               "s <- s - alpha (N - e sum_i delta_i^2)",
    ridge: "w_j <- w_j - alpha (2 lambda w_j - 2 sum_i delta_i X_ij)",
    ridge_half_lambda: "w_j <- w_j - alpha (lambda w_j - 2 sum_i delta_i X_ij)",
    lasso: "w_j <- w_j - alpha (lambda sign(w_j) - 2 sum_i delta_i X_ij)",
    logistic_small_l2: "w_j <- w_j - alpha (0.002 w_j + sum_i (sigma_i - t_i) X_ij / N)",
    svm_hinge: "W_jk <- W_jk - alpha sum_i (bar_s_i [k = y_i] + step(margin_ik) (1 - [y_i = k]) / N) X_ij",
    svm_by_gather: "W_jk <- W_jk - alpha sum_i (step(margin_ik) / N + bar_s_i [k = y_i]) X_ij",
    kmeans: "M_kj <- M_kj + 2 alpha sum_i delta_ijk Y_ik",
    batchnorm_by_hand: "g_j <- g_j + 2 alpha sum_i delta2_ij xhat_ij\n"
                       "b_j <- b_j + 2 alpha sum_i delta2_ij",
    batchnorm_after_a_layer: "W_jk <- W_jk - alpha sum_i (bar_mu_k / N + bar_r_k delta1_ik / (N r_k) "
                             "- 2 delta2_ik / r_k) X_ij",
    huber_by_where: "w_j <- w_j - alpha sum_i ((1 - m_i) sign(delta_i) + m_i delta_i) X_ij / N",
    huber_by_relu: "w_j <- w_j - alpha sum_i (1 - step(margin_i)) sign(r_i) X_ij",
    tied_autoencoder: "W_jk <- W_jk - alpha (sum_i bar_sigma_ik sigma_ik (1 - sigma_ik) X_ij "
                      "- 2 sum_i delta_ij sigma_ik)",
    rnn_two_steps: "Wh_mk <- Wh_mk - alpha (sum_i bar_h1_ik (1 - h1_ik^2) h0_im "
                   "- 2 sum_i delta_ik (1 - h2_ik^2) h1_im / (H N))",
    attention: "Q_ij <- Q_ij - alpha sum_i' bar_z1_ii' K_i'j",
    bishop_sigmoid_output: "W1_jk <- W1_jk - alpha W2_k sum_i (sigma_i - t_i) (1 - h1_ik^2) X_ij\n"
                           "W2_k <- W2_k - alpha sum_i (sigma_i - t_i) h1_ik",
    bishop_regression: "W1_jk <- W1_jk + alpha W2_k sum_i delta_i (1 - h_ik^2) X_ij\n"
                       "W2_k <- W2_k + alpha sum_i delta_i h_ik",
}
WHERE = {   # definitions a textbook would print next to the rule
    bce_sum: ["sigma_i = sigmoid(sum_j w_j X_ij)"],
    poisson_two_terms: ["e_i = exp(sum_j w_j X_ij)"],
    gaussian_learned_variance: ["e = exp(-2 s)", "delta_i = t_i - sum_j w_j X_ij"],
    batchnorm_by_hand: ["mu_j = sum_i X_ij / N", "v_j = sum_i (X_ij - mu_j)^2 / N",
                        "xhat_ij = (X_ij - mu_j) / sqrt(1e-05 + v_j)"],
    huber_by_where: ["m_i = [|delta_i| <= 1]"],
    # sum_i (h_ik - mu_k) = 0: the term it multiplies is gone from bar_mu
    batchnorm_after_a_layer: ["bar_mu_k = 2 sum_i delta2_ik / r_k"],
    svm_hinge: ["margin_ik = 1 + sum_j W_jk X_ij - sum_j' W_j',y_i X_ij'"],
}
CASES = {f.__name__: f for f in TEXTBOOK}


def _model(name):
    loss, params = CASES[name]()
    if params is None:
        params = [n for n in topo_order(loss) if n.op == "param"]
    return loss, params if isinstance(params, list) else [params]


def _data(loss, rng):
    data = {}
    for n in topo_order(loss):
        shape = tuple(SIZES[d.rstrip("'")] for d in n.dims)
        if n.op == "param":
            data[n.name] = rng.normal(size=shape)
        elif n.op == "input" and n.dtype == "int":
            data[n.name] = rng.integers(0, SIZES["C" if n.name == "y" else "K"], size=shape)
        elif n.op == "input" and "onehot" in n.attrs:
            data[n.name] = np.eye(shape[-1])[rng.integers(0, shape[-1], size=shape[0])]
        elif n.op == "input":
            data[n.name] = 0.3 if "symbol" in n.attrs else rng.normal(size=shape)
    return data


def _rule_lines(der):
    rules = der.update_rule()
    rules = rules if isinstance(rules, list) else [rules]
    return "\n".join(r.line() for r in rules), str(der.update_rule())


@pytest.mark.parametrize("name", sorted(CASES))
def test_prints_the_textbook_rule(name):
    loss, params = _model(name)
    lines, full = _rule_lines(sg.derive(loss, params))
    assert lines == TEXTBOOK[CASES[name]], full
    for definition in WHERE.get(CASES[name], []):
        assert definition in full, full


@pytest.mark.parametrize("name", sorted(CASES))
def test_expanded_rule_equals_autograd(name):
    loss, params = _model(name)
    data = _data(loss, np.random.default_rng(3))
    der = sg.derive(loss, params)
    expanded = der.expanded()                      # params given as a list: a dict
    for p in params:
        idx = der.notation.canonical(p)
        shape = np.shape(data[p.name])
        ours = np.empty(shape)
        for pos in np.ndindex(*shape):
            env = {idx[d]: v for d, v in zip(p.dims, pos)}
            ours[pos] = eval_index_expr(expanded[p.name], data, SIZES, env)
        theirs = ag_grad(lambda v: to_autograd(loss, {**data, p.name: v}, SIZES))(
            np.asarray(data[p.name], dtype=float))
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9, err_msg=f"{name} {p.name}")


def _symbols(text):
    return set(re.findall(r"\b(bar_[A-Za-z]+\d*|[A-Za-z]+\d*)_[A-Za-z']+|\b([A-Za-z]+\d*)\b", text))


@pytest.mark.parametrize("name", sorted(CASES) + ["builtin:" + m for m in
                                                    ("perceptron", "linear-regression", "softmax",
                                                     "softmax-l2", "two-layer")])
def test_rules_are_self_contained_and_use_no_generic_names(name):
    if name.startswith("builtin:"):
        from symgrad.cli import MODELS
        loss, params = MODELS[name.split(":")[1]][0](sg)
    else:
        loss, params = _model(name)
    der = sg.derive(loss, params)
    text = str(der.update_rule())
    assert not re.search(r"\bu\d*_|\bu\d+\b|\bS\d+\b|bar_S", text), text
    known = {n.name for n in topo_order(der.loss) if n.op in ("input", "param")}
    known |= {str(k).split("[")[0] for k in der.where} | {"alpha", "sum", "sigmoid", "tanh",
                                                         "exp", "log", "sqrt", "sign", "step"}
    known |= {d for n in topo_order(der.loss) for d in n.dims}
    used = {a or b for a, b in _symbols(text)}
    undefined = {u for u in used if u not in known and not u.isdigit()
                 and not re.fullmatch(r"[ijkmnpqrs]'*|e|N|where", u)}
    assert not undefined, (undefined, text)

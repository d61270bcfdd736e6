"""Blackboard formulas as students write them (issue: "symgrad writes any formula").

Each model is declared the way a course exercise writes it (dims broadcast by name,
square tensors, labels as indices, masks, symbolic hyperparameters) and checked three
ways: against HIPS autograd on an independent NumPy spelling of the same formula
(1e-9), against finite differences, and compiled (loss and gradients equal to the
NumPy evaluator, 1e-12).
"""
import autograd.numpy as anp
import numpy as np
import pytest
import sympy as sp
from autograd import grad as ag_grad

import symgrad as sg

N, D, C, H, T, K = 6, 4, 3, 5, 4, 3


def _rng():
    return np.random.default_rng(7)


def softmax_by_hand():
    X, W, b = sg.tensor("X", ("N", "D")), sg.param("W", ("D", "C")), sg.param("b", ("C",))
    Y = sg.tensor("Y", ("N", "C"))
    Z = X @ W + b
    P = sg.exp(Z) / sg.sum(sg.exp(Z), axis="C")
    loss = -sg.mean(sg.sum(Y * sg.log(P), axis="C"))
    r = _rng()
    data = {"X": r.normal(size=(N, D)), "Y": np.eye(C)[r.integers(0, C, N)],
            "W": r.normal(size=(D, C)), "b": r.normal(size=C)}

    def ref(X, Y, W, b):
        Z = X @ W + b
        P = anp.exp(Z) / anp.sum(anp.exp(Z), axis=1, keepdims=True)
        return -anp.mean(anp.sum(Y * anp.log(P), axis=1))
    return loss, [W, b], data, ref


def _svm_data():
    r = _rng()
    return {"X": r.normal(size=(N, D)), "y": r.integers(0, C, N), "W": r.normal(size=(D, C))}


def _svm_ref(X, y, W):
    S = X @ W
    margins = anp.maximum(0.0, S - S[np.arange(len(y)), y][:, None] + 1.0)
    return anp.mean(anp.sum(margins * (1.0 - np.eye(W.shape[1])[y]), axis=1))


def svm_by_gather():
    X, W, y = sg.tensor("X", ("N", "D")), sg.param("W", ("D", "C")), sg.tensor("y", ("N",), int)
    S = X @ W
    s_y = sg.take(S, y, axis="C")
    loss = sg.mean(sg.sum(sg.relu(S - s_y + 1), axis="C") - 1)   # the j = y_i term is 1
    return loss, [W], _svm_data(), _svm_ref


def svm_by_hinge():
    X, W, y = sg.tensor("X", ("N", "D")), sg.param("W", ("D", "C")), sg.tensor("y", ("N",), int)
    return sg.hinge(X @ W, y), [W], _svm_data(), _svm_ref


def kmeans_distances():
    X, M, a = sg.tensor("X", ("N", "D")), sg.param("M", ("K", "D")), sg.tensor("a", ("N",), int)
    d2 = sg.sum((X - M) ** 2, axis="D")                   # (N, K): every point to every centroid
    loss = sg.sum(sg.onehot(a, "K") * d2) / N
    r = _rng()
    data = {"X": r.normal(size=(N, D)), "M": r.normal(size=(K, D)), "a": r.integers(0, K, N)}

    def ref(X, a, M):
        d2 = anp.sum((X[:, None, :] - M[None, :, :]) ** 2, axis=2)
        return anp.sum(np.eye(K)[a] * d2) / N
    return loss, [M], data, ref


def rnn_three_steps():
    Xs = [sg.tensor(f"X{k}", ("N", "D")) for k in range(3)]
    Wx, Wh, bh = sg.param("Wx", ("D", "H")), sg.param("Wh", ("H", "H")), sg.param("bh", ("H",))
    h0, t = sg.tensor("h0", ("N", "H")), sg.tensor("t", ("N", "H"))
    h = h0
    for X in Xs:
        h = sg.tanh(X @ Wx + h @ Wh + bh)
    loss = sg.mse(h, t)
    r = _rng()
    data = {f"X{k}": r.normal(size=(N, D)) for k in range(3)}
    data.update(h0=r.normal(size=(N, H)), t=r.normal(size=(N, H)), Wx=r.normal(size=(D, H)),
                Wh=0.5 * r.normal(size=(H, H)), bh=r.normal(size=H))

    def ref(X0, X1, X2, h0, t, Wx, Wh, bh):
        h = h0
        for X in (X0, X1, X2):
            h = anp.tanh(X @ Wx + h @ Wh + bh)
        return anp.mean((t - h) ** 2)
    return loss, [Wx, Wh, bh], data, ref


def attention():
    X = sg.tensor("X", ("T", "D"))
    Wq, Wk, Wv = (sg.param(n, ("D", "H")) for n in ("Wq", "Wk", "Wv"))
    R = sg.tensor("R", ("T", "H"))
    Q, Kx, V = X @ Wq, X @ Wk, X @ Wv
    A = sg.softmax(Q @ Kx.T / np.sqrt(H), axis=-1)          # (T, T) scores
    loss = sg.sum((A @ V) * R)
    r = _rng()
    data = {"X": r.normal(size=(T, D)), "R": r.normal(size=(T, H)),
            **{n: r.normal(size=(D, H)) for n in ("Wq", "Wk", "Wv")}}

    def ref(X, R, Wq, Wk, Wv):
        s = (X @ Wq) @ (X @ Wk).T / np.sqrt(H)
        e = anp.exp(s - anp.max(s, axis=1, keepdims=True))
        A = e / anp.sum(e, axis=1, keepdims=True)
        return anp.sum((A @ (X @ Wv)) * R)
    return loss, [Wq, Wk, Wv], data, ref


def sequence_model():
    S, W, v = sg.tensor("S", ("N", "T", "D")), sg.param("W", ("D", "H")), sg.param("v", ("H",))
    t = sg.tensor("t", ("N",))
    pooled = sg.mean(sg.tanh(S @ W), axis="T")               # (N, H)
    loss = sg.binary_cross_entropy(sg.sigmoid(pooled @ v), t)
    r = _rng()
    data = {"S": r.normal(size=(N, T, D)), "t": r.integers(0, 2, N).astype(float),
            "W": r.normal(size=(D, H)) * 0.5, "v": r.normal(size=H)}

    def ref(S, t, W, v):
        z = anp.mean(anp.tanh(anp.einsum("ntd,dh->nth", S, W)), axis=1) @ v
        return anp.mean(anp.logaddexp(0.0, z) - t * z)
    return loss, [W, v], data, ref


def huber_by_where():
    X, w, t = sg.tensor("X", ("N", "D")), sg.param("w", ("D",)), sg.tensor("t", ("N",))
    r_ = X @ w - t
    loss = sg.mean(sg.where(sg.abs(r_) <= 1.0, 0.5 * r_ ** 2, sg.abs(r_) - 0.5))
    r = _rng()
    data = {"X": r.normal(size=(N, D)), "t": r.normal(size=N), "w": 2 * r.normal(size=D)}

    def ref(X, t, w):
        e = X @ w - t
        return anp.mean(anp.where(anp.abs(e) <= 1.0, 0.5 * e ** 2, anp.abs(e) - 0.5))
    return loss, [w], data, ref


def ridge_symbolic_lambda():
    X, w, t = sg.tensor("X", ("N", "D")), sg.param("w", ("D",)), sg.tensor("t", ("N",))
    lam = sp.Symbol("lambda", positive=True)
    loss = sg.sse(X @ w, t) + lam * sg.l2(w)
    r = _rng()
    data = {"X": r.normal(size=(N, D)), "t": r.normal(size=N), "w": r.normal(size=D),
            "lambda": 0.3}

    def ref(X, t, w, lam):
        return anp.sum((t - X @ w) ** 2) + lam * anp.sum(w ** 2)
    return loss, [w], data, ref


MODELS = {f.__name__: f for f in (softmax_by_hand, svm_by_gather, svm_by_hinge, kmeans_distances,
                                  rnn_three_steps, attention, sequence_model, huber_by_where,
                                  ridge_symbolic_lambda)}


def _ref_args(ref, data):
    import inspect
    names = list(inspect.signature(ref).parameters)
    return [data["lambda" if n == "lam" else n] for n in names], names


@pytest.mark.parametrize("name", sorted(MODELS))
def test_value_and_gradients_agree_with_autograd(name):
    loss, params, data, ref = MODELS[name]()
    args, names = _ref_args(ref, data)
    assert float(sg.evaluate(loss, data)) == pytest.approx(float(ref(*args)), rel=1e-12)
    ours = sg.evaluate(sg.gradients(loss, params), data, context=loss)
    for p, mine in zip(params, ours):
        k = names.index(p.name)
        theirs = ag_grad(lambda v: ref(*args[:k], v, *args[k + 1:]))(np.asarray(args[k], float))
        assert np.max(np.abs(np.broadcast_to(mine, theirs.shape) - theirs)) <= \
            1e-9 * max(1.0, np.max(np.abs(theirs))), (name, p.name)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_gradients_agree_with_finite_differences(name):
    loss, params, data, _ = MODELS[name]()
    check = sg.check_grad(loss, params, data, tolerance=1e-6)
    assert check.ok, check


@pytest.mark.parametrize("name", sorted(MODELS))
def test_printed_formulas_agree_with_backward_graph(name):
    loss, params, data, _ = MODELS[name]()
    der = sg.derive(loss, params)
    for p in params:
        formula = der.evaluate_formula(der.gradients[p.name], data, free=p.name)
        graph = sg.evaluate(der.backward_graph[p.name], data, context=loss)
        assert np.allclose(formula, np.broadcast_to(graph, formula.shape), rtol=1e-10,
                           atol=1e-12), (name, p.name)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_compiled_equals_evaluator(name):
    loss, params, data, _ = MODELS[name]()
    fn = sg.compile(loss, params=params)
    values = {p.name: data[p.name] for p in params}
    rest = {k: v for k, v in data.items() if k not in values}
    assert fn.loss(values, **rest) == pytest.approx(float(sg.evaluate(loss, data)), rel=1e-12)
    grads = fn.grad(values, **rest)
    for p, g in zip(params, sg.evaluate(sg.gradients(loss, params), data, context=loss)):
        np.testing.assert_allclose(grads[p.name], np.broadcast_to(g, grads[p.name].shape),
                                   rtol=1e-12, atol=1e-12)


def test_rank3_sequence_model_trains_with_fit():
    loss, params, data, _ = sequence_model()
    fn = sg.compile(loss, params=params)
    init = {p.name: data[p.name] for p in params}
    rows = {k: v for k, v in data.items() if k not in init}
    hist = sg.fit(fn, init, data=rows, lr=0.5, epochs=30, batch_size=3, seed=0, progress=False)
    assert hist.loss[-1] < 0.8 * hist.loss[0]
    assert hist.params["W"].shape == (D, H)


def test_ridge_with_symbolic_lambda_trains_to_the_closed_form():
    loss, params, data, _ = ridge_symbolic_lambda()
    fn = sg.compile(loss, params=params)
    X, t = data["X"], data["t"]
    for lam in (0.3, 3.0):                     # a new value of lambda never recompiles
        hist = sg.fit(fn, {"w": np.zeros(D)}, data={"X": X, "t": t, "lambda": lam},
                      lr=0.02, epochs=3000, progress=False)
        exact = np.linalg.solve(X.T @ X + lam * np.eye(D), X.T @ t)
        np.testing.assert_allclose(hist.params["w"], exact, atol=1e-8)
    assert "2 lambda w_j" in str(sg.derive(loss, params[0]).update_rule())

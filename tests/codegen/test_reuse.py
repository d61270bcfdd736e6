"""Buffer reuse (codegen/reuse.py): a fused loop writes its result over an input that
dies there, and only then; the numbers are bitwise those without reuse."""
import numpy as np
import pytest

import symgrad as sg
from symgrad.codegen import module


def mlp():
    X, y = sg.tensor("X", ("N", "D")), sg.tensor("y", ("N",), dtype=int)
    W1, b1 = sg.param("W1", ("D", "H")), sg.param("b1", ("H",))
    W2, b2 = sg.param("W2", ("H", "C")), sg.param("b2", ("C",))
    h = sg.relu(X @ W1 + b1).named("h")
    return sg.cross_entropy(h @ W2 + b2, y), [W1, b1, W2, b2]


def _data(rng, n=40, d=6, hdim=5, c=3):
    params = {"W1": rng.standard_normal((d, hdim)), "b1": rng.standard_normal(hdim),
              "W2": rng.standard_normal((hdim, c)), "b2": rng.standard_normal(c)}
    return params, {"X": rng.standard_normal((n, d)), "y": rng.integers(0, c, n)}


def _train_both(loss, params, monkeypatch, params0, data, tmp_path):
    fn = sg.compile(loss, params=params)
    with monkeypatch.context() as m:      # another cache dir: its graph index is empty
        m.setattr(module, "reusable", lambda plan, keep=(), hold=(): {})
        m.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
        plain = sg.compile(loss, params=params)
    assert fn.source != plain.source and "reuses" not in plain.source
    out = []
    for model in (fn, plain):
        p = {k: v.copy() for k, v in params0.items()}
        orders = np.stack([np.random.default_rng(e).permutation(len(data["X"])) for e in range(3)])
        losses = model.run_epochs(p, data, orders, np.full(3, 0.1), 8)
        out.append((p, losses, model.loss_and_grad(params0, **data)))
    return fn, out


def test_the_mlp_writes_h_over_z1_and_gives_the_same_bits(monkeypatch, tmp_path):
    loss, params = mlp()
    params0, data = _data(np.random.default_rng(0))
    fn, ((p1, l1, g1), (p2, l2, g2)) = _train_both(loss, params, monkeypatch, params0, data,
                                                         tmp_path)
    step = fn.source[fn.source.index("def run_epochs_with("):]
    assert "h = z1  # reuses z1's memory" in step
    assert "g_z2 = g_h  # reuses g_h's memory" in step
    assert all(np.array_equal(p1[k], p2[k]) for k in p1)
    assert np.array_equal(np.asarray(l1[0]), np.asarray(l2[0]))
    assert g1[0] == g2[0] and all(np.array_equal(g1[1][k], g2[1][k]) for k in g1[1])


def test_no_reuse_of_a_buffer_read_later():
    # z is read again by the penalty after the loop that computes h from it
    X, w = sg.tensor("X", ("N", "D")), sg.param("W", ("D", "H"))
    z = (X @ w).named("z")
    h = sg.tanh(z).named("h")
    fn = sg.compile(sg.sum(h @ sg.tensor("v", ("H",))) + sg.sum(sg.exp(z)), params=[w])
    assert "h = z  #" not in fn.source
    rng = np.random.default_rng(1)
    x, W, v = rng.standard_normal((7, 3)), rng.standard_normal((3, 4)), rng.standard_normal(4)
    zz = x @ W
    want = np.sum(np.tanh(zz) @ v) + np.sum(np.exp(zz))
    assert fn.loss({"W": W}, X=x, v=v) == pytest.approx(want, rel=1e-13)
    _, g = fn.loss_and_grad({"W": W}, X=x, v=v)
    want_g = x.T @ (np.outer(np.ones(7), v) * (1 - np.tanh(zz) ** 2) + np.exp(zz))
    np.testing.assert_allclose(g["W"], want_g, rtol=1e-12)


def test_no_reuse_when_the_loop_reads_the_input_transposed():
    # A + A.T over a square tensor reads A at [k, i] while writing [i, k]
    X = sg.tensor("X", ("H", "H"))
    W = sg.param("W", ("H", "H"))
    A = (X @ W).named("A")
    B = (A + A.T).named("B")
    fn = sg.compile(sg.sum(B * B), params=[W])
    assert "B = A  #" not in fn.source
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    a = x @ w
    assert fn.loss({"W": w}, X=x) == pytest.approx(np.sum((a + a.T) ** 2), rel=1e-13)
    _, g = fn.loss_and_grad({"W": w}, X=x)
    b = a + a.T
    np.testing.assert_allclose(g["W"], x.T @ (2 * b + 2 * b.T), rtol=1e-12)


def test_forward_functions_reuse_and_give_the_same_bits(monkeypatch, tmp_path):
    # the loss alone (W4's final loss: 8192 x 256 buffers) writes h over z1 as the step
    # does; an output function never lends or borrows the array it returns
    loss, params = mlp()
    h = next(n for n in sg.graph.topo_order(loss) if n.name == "h")
    params0, data = _data(np.random.default_rng(3))
    fn = sg.compile(loss, params=params, outputs=[h])
    with monkeypatch.context() as m:
        m.setattr(module, "reusable", lambda plan, keep=(), hold=(): {})
        m.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
        plain = sg.compile(loss, params=params, outputs=[h])
    start = fn.source.index("def loss(")
    forward = fn.source[start:fn.source.index("\n@njit", start)]
    assert "h = z1  # reuses z1's memory" in forward
    assert fn.loss(params0, **data) == plain.loss(params0, **data)
    out, again = fn.output(h, params0, **data), fn.output(h, params0, **data)
    assert np.array_equal(out, plain.output(h, params0, **data))
    assert not np.shares_memory(out, again) and np.array_equal(out, again)

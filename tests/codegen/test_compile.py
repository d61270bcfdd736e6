"""Compiled loss and gradients equal the NumPy evaluator on the model corpus."""
import numpy as np
import pytest

import symgrad as sg
from symgrad.codegen import compile
from symgrad.diff.reverse import backward
from symgrad.errors import DataError, DimError
from symgrad.graph.evaluate import evaluate
from tests.cases import corpus, sigmoid_perceptron, softmax_regression

CORPUS = corpus()
FLOAT32_CASES = ["sigmoid_perceptron", "logistic_regression", "softmax_regression", "mlp2_relu"]


def split(params, data):
    names = {p.name for p in params}
    return ({k: v for k, v in data.items() if k in names},
            {k: v for k, v in data.items() if k not in names})


def reference(loss, params, data):
    grads, _ = backward(loss, params)
    values = evaluate([loss] + [grads[p] for p in params], data)
    return float(values[0]), [np.asarray(v) for v in values[1:]]


def rel_err(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300))


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_float64_matches_evaluator(case):
    loss, params, data = CORPUS[case]()
    fn = compile(loss, params)
    p, d = split(params, data)
    value, grads = fn.loss_and_grad(p, **d)
    want_value, want_grads = reference(loss, params, data)
    assert rel_err(value, want_value) <= 1e-12
    for param, want in zip(params, want_grads):
        assert grads[param.name].shape == np.shape(data[param.name])
        assert rel_err(grads[param.name], want) <= 1e-12, param.name


@pytest.mark.parametrize("case", FLOAT32_CASES)
def test_float32_matches_evaluator(case):
    loss, params, data = CORPUS[case]()
    fn = compile(loss, params, dtype=np.float32)
    p, d = split(params, data)
    value, grads = fn.loss_and_grad(p, **d)
    want_value, want_grads = reference(loss, params, data)
    assert rel_err(value, want_value) <= 1e-5
    for param, want in zip(params, want_grads):
        assert grads[param.name].dtype == np.float32
        assert rel_err(grads[param.name], want) <= 2e-5, param.name


def test_forward_loss_and_outputs():
    loss, params, data = softmax_regression()
    X, W, b = [n for n in sg.graph.topo_order(loss) if n.name in ("X", "W", "b")]
    logits = sg.graph.topo_order(loss)
    z = next(n for n in logits if n.op == "add" and n.dims == ("N", "C"))
    fn = compile(loss, params, outputs=[z])
    p, d = split(params, data)
    assert rel_err(fn.loss(p, **d), reference(loss, params, data)[0]) <= 1e-12
    got = fn.predict(p, X=d["X"])                       # labels are not needed for the logits
    assert rel_err(got, data["X"] @ data["W"] + data["b"]) <= 1e-12


def test_named_node_output_and_errors():
    X, t, w = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",)), sg.param("w", ("d",))
    y = sg.sigmoid(X @ w).named("y hat")                # a name that is not an identifier
    fn = compile(sg.sum((t - y) ** 2), [w])
    rng = np.random.default_rng(0)
    Xd, wd = rng.normal(size=(5, 3)), rng.normal(size=3)
    assert rel_err(fn.output("y hat", {"w": wd}, X=Xd), 1 / (1 + np.exp(-Xd @ wd))) <= 1e-12
    code = [line.split("#", 1)[0] for line in fn.source.splitlines()]
    assert not any("y hat" in line for line in code)     # user text only in comments
    with pytest.raises(DimError, match="'X'"):
        fn.loss({"w": wd}, X=rng.normal(size=(5, 4)), t=np.zeros(5))
    with pytest.raises(DataError, match="'t'"):
        fn.loss({"w": wd}, X=Xd)


def test_hostile_names_stay_out_of_code():
    X = sg.tensor('len("abc")#', ("N", "d"))
    w = sg.param("np", ("d",))
    fn = compile(sg.sum(sg.exp(X @ w)), [w])
    assert not any('len("abc")' in line.split("#", 1)[0] for line in fn.source.splitlines())
    rng = np.random.default_rng(1)
    Xd, wd = rng.normal(size=(4, 2)), rng.normal(size=2)
    g = fn.grad({"np": wd}, **{'len("abc")#': Xd})
    assert rel_err(g["np"], Xd.T @ np.exp(Xd @ wd)) <= 1e-12


def test_perceptron_source_is_short_and_mirrors_the_rule():
    loss, params, _ = sigmoid_perceptron()
    src = compile(loss, params).source
    gradient = src[src.index("def loss_and_grad"):src.index("def loss(")]
    assert len(gradient.splitlines()) <= 36
    assert "_sg_vsigmoid(" in gradient and "(1.0 - " in gradient   # sigma (1 - sigma)
    # one pass over x's rows, a block at a time: z = x @ w, the loop, g_w += x_block^T g_z
    assert "_sg_rows_dot(x, start, stop, w, z)" in gradient
    assert "_sg_rows_tdot(x, start, stop, g_z, g_w)" in gradient
    assert "L += _sg_sum(u[:stop - start])" in gradient   # summed apart: the loop vectorises
    # named as in the derivation: z, sigma, delta and their adjoints
    for name in ("sigma = _sg_vsigmoid(z[i - start])", "delta = (y_rows[i - start] - sigma)",
                 "g_z[i - start] = (g_sigma"):
        assert name in gradient, name
    # y read through a view of the block's rows (no negative-index check in the loop)
    assert "y_rows = y[start:stop]  # this block's rows" in gradient
    # the zeroing of g_w, the blocks, and one fused loop over each block's rows
    assert "for i in range(start, stop):" in gradient and gradient.count("for ") == 3


def test_every_op_family_in_one_model():
    """max, logsumexp, log_softmax, softmax along the batch, mean along an axis, sqrt, abs,
    log, division, a cube, a transpose in a loop, vector products and a scalar param."""
    rng = np.random.default_rng(0)
    X, Y = sg.tensor("X", ("N", "d")), sg.tensor("Y", ("N", "C"))
    w, W, V, b = sg.param("w", ("d",)), sg.param("W", ("d", "C")), sg.param("V", ("C", "d")), \
        sg.param("b")
    z, u = X @ W, X @ w
    loss = (sg.sum(sg.max(z, axis="C")) + sg.mean(sg.logsumexp(z, axis="C"))
            - sg.sum(Y * sg.log_softmax(z, axis="C")) + sg.sum(sg.softmax(z, axis="N") * Y)
            + sg.sum(sg.mean(z, axis="N") ** 2) + sg.max(u) + (w @ w) + sg.sum(w @ W)
            + sg.sum(sg.sqrt(sg.abs(u) + 1.0) + sg.log(sg.exp(u) + 2.0))
            + sg.sum(-(u ** 3) / (1.0 + u * u)) + sg.sum((W + V.T) ** 2) * 0.5 + b * b)
    params = [w, W, V, b]
    data = {"X": rng.normal(size=(6, 4)), "Y": rng.random((6, 3)), "w": rng.normal(size=4),
            "W": rng.normal(size=(4, 3)), "V": rng.normal(size=(3, 4)), "b": np.array(0.2)}
    fn = compile(loss, params)
    p, d = split(params, data)
    value, grads = fn.loss_and_grad(p, **d)
    want_value, want_grads = reference(loss, params, data)
    assert rel_err(value, want_value) <= 1e-12 and rel_err(fn.loss(p, **d), want_value) <= 1e-12
    for param, want in zip(params, want_grads):
        assert rel_err(grads[param.name], want) <= 1e-12, param.name
    assert grads["b"].shape == ()


def test_read_only_arrays_are_read_again_on_every_call():
    """A read-only data array is read where it is on each call, never from an earlier
    call: its memory can change through a writable view (a loader refilling one buffer).
    A read-only param is copied, and run_epochs trains the copy in place."""
    X, t, w = sg.tensor("X", ("N", "D")), sg.tensor("t", ("N",)), sg.param("w", ("D",))
    fn = compile(sg.sum((t - sg.sigmoid(X @ w)) ** 2), [w])
    buffer = np.random.default_rng(0).standard_normal((6, 3))
    batch = buffer.view()
    batch.setflags(write=False)
    t0, w0 = np.zeros(6), np.ones(3)
    first = fn.loss({"w": w0}, X=batch, t=t0)
    buffer[:] = 0.0                                     # the loader's next batch
    assert fn.loss({"w": w0}, X=batch, t=t0) == pytest.approx(6 * 0.25, rel=1e-15) != first
    data = {"X": np.random.default_rng(1).standard_normal((6, 3)), "t": np.ones(6)}
    frozen = np.zeros(3)
    frozen.setflags(write=False)
    before = fn.loss({"w": frozen}, **data)
    params = {"w": frozen}
    fn.run_epochs(params, data, None, np.full(5, 0.5), None)
    assert not np.array_equal(params["w"], frozen) and np.array_equal(frozen, np.zeros(3))
    assert fn.loss(params, **data) < before == fn.loss({"w": frozen}, **data)

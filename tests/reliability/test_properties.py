"""Property tests: random models built from the registry's ops, over random dim sizes
and values, checked three (four, once compiled code lands) independent ways.

A model is drawn as a small expression tree (:class:`Expr`) whose ``repr`` is the
formula, so a failing example shrinks to a readable model such as
``sum(softmax(p_NC, axis='C') * x_NC)``. Leaves are named by their dims: ``p_NK`` is a
param with dims (N, K), ``x_NK`` data, ``y_N`` integer labels, ``t_N`` targets.

Runs are reproducible (``derandomize=True``, no example database) and bounded
(``max_examples`` per property, below), so CI sees the same examples every time;
``SYMGRAD_PROPERTY_SCALE`` multiplies the counts for a deeper search.
"""
import math
import os
from dataclasses import dataclass

import numpy as np
import pytest
from autograd import grad as ag_grad
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.graph import topo_order
from tests.autograd_ref import to_autograd
from tests.reliability._support import api, need, split

# Examples per property per run; SYMGRAD_PROPERTY_SCALE=10 (say) for a deeper, slower hunt.
_SCALE = float(os.environ.get("SYMGRAD_PROPERTY_SCALE", "1"))
EXAMPLES = {k: max(1, int(v * _SCALE)) for k, v in
            {"autograd_fd": 300, "formula": 100, "compiled": 25, "training": 12}.items()}
DIMS = ("N", "K", "C")
SETTINGS = dict(deadline=None, derandomize=True, database=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])


# -- model descriptions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Expr:
    op: str
    args: tuple = ()
    attr: object = None       # axis, exponent, leaf kind, ...
    dims: tuple = ()

    def _repr_pretty_(self, printer, cycle):   # hypothesis prints failing examples with this
        printer.text(repr(self))

    def __repr__(self):
        a = self.args
        if self.op == "leaf":
            return f"{self.attr}_{''.join(self.dims) or 's'}"
        if self.op in ("add", "sub", "mul", "div", "matmul"):
            sym = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@"}[self.op]
            return f"({a[0]!r} {sym} {a[1]!r})"
        if self.op == "pos":
            return f"(softplus({a[0]!r}) + 0.5)"
        if self.op == "pow":
            return f"{a[0]!r} ** {self.attr}"
        if self.op == "neg":
            return f"-{a[0]!r}"
        if self.op == "T":
            return f"{a[0]!r}.T"
        inner = ", ".join(repr(x) for x in a)
        if self.attr is not None:
            inner += f", axis={self.attr!r}"
        return f"{self.op}({inner})"


UNARY = ("sigmoid", "tanh", "softplus", "relu", "abs", "neg", "exp", "log", "sqrt")
BINARY = ("add", "sub", "mul", "div")
REDUCE = ("sum", "mean", "max", "logsumexp")


def _leaf(draw, dims, kind=None):
    kind = kind or draw(st.sampled_from(("p", "p", "x")))
    return Expr("leaf", attr=kind, dims=dims)


def _pos(e):
    return Expr("pos", (e,), dims=e.dims)


@st.composite
def expr(draw, dims, depth):
    kinds = ["leaf"]
    if depth > 0:
        kinds += ["unary", "unary", "binary", "binary", "reduce", "pow", "matmul"]
        if dims:
            kinds.append("normalise")
        if len(dims) == 2:
            kinds.append("transpose")
    kind = draw(st.sampled_from(kinds))
    sub = lambda d: expr(d, depth - 1)  # noqa: E731
    if kind == "leaf":
        return _leaf(draw, dims)
    if kind == "unary":
        op = draw(st.sampled_from(UNARY))
        child = draw(sub(dims))
        if op == "exp":
            child = Expr("tanh", (child,), dims=dims)      # keep exp bounded
        if op in ("log", "sqrt"):
            child = _pos(child)
        return Expr(op, (child,), dims=dims)
    if kind == "binary":
        op = draw(st.sampled_from(BINARY))
        k = draw(st.integers(0, len(dims)))
        short = dims[len(dims) - k:]                        # broadcast: a suffix of the dims
        a, b = draw(sub(dims)), draw(sub(short))
        if draw(st.booleans()) and op != "div":
            a, b = b, a
        if op == "div":
            b = _pos(b)
        return Expr(op, (a, b), dims=dims)
    if kind == "pow":
        c = draw(st.sampled_from((2, 3, 0.5, -1, -1.5)))
        child = draw(sub(dims))
        return Expr("pow", (child if c in (2, 3) else _pos(child),), attr=c, dims=dims)
    if kind == "transpose":
        return Expr("T", (draw(sub(dims[::-1])),), dims=dims)
    if kind == "normalise":
        op = draw(st.sampled_from(("softmax", "log_softmax")))
        return Expr(op, (draw(sub(dims)),), attr=draw(st.sampled_from(dims)), dims=dims)
    free = [d for d in DIMS if d not in dims]
    if kind == "matmul":
        if not free:
            return _leaf(draw, dims)
        k = draw(st.sampled_from(free))
        if len(dims) == 2:
            a_dims, b_dims = (dims[0], k), (k, dims[1])
        elif len(dims) == 1:
            a_dims, b_dims = draw(st.sampled_from([((dims[0], k), (k,)), ((k,), (k, dims[0]))]))
        else:
            a_dims, b_dims = (k,), (k,)
        return Expr("matmul", (draw(sub(a_dims)), draw(sub(b_dims))), dims=dims)
    # reductions: insert one reduced dim (or reduce everything to a scalar)
    op = draw(st.sampled_from(REDUCE))
    if not dims and op != "logsumexp" and draw(st.booleans()):      # reduce everything
        child_dims = draw(st.sampled_from([("N",), ("N", "K"), ("K", "C")]))
        return Expr(op, (draw(sub(child_dims)),), dims=())
    if not free:
        return _leaf(draw, dims)
    e = draw(st.sampled_from(free))
    pos = draw(st.integers(0, len(dims)))
    parent = dims[:pos] + (e,) + dims[pos:]
    axis = e if draw(st.booleans()) else (pos if draw(st.booleans()) else pos - len(parent))
    return Expr(op, (draw(sub(parent)),), attr=axis, dims=dims)


LOSSES = ("sum", "mean", "mse", "ce_int", "ce_soft", "bce_sigmoid", "bce_logits", "bce_probs",
          "hinge")


@st.composite
def model(draw):
    loss = draw(st.sampled_from(LOSSES))
    depth = draw(st.integers(1, 3))
    if loss in ("sum", "mean"):
        dims = draw(st.sampled_from([(), ("N",), ("K",), ("N", "K"), ("N", "C"), ("K", "N")]))
        body = draw(expr(dims, depth))
    elif loss in ("ce_int", "ce_soft"):
        body = draw(expr(("N", "C"), depth))
    else:
        body = draw(expr(("N",), depth))
    reg = draw(st.sampled_from((None, "l1", "l2")))
    sizes = {"N": draw(st.integers(1, 4)), "K": draw(st.integers(1, 4)), "C": draw(st.integers(2, 4))}
    seed = draw(st.integers(0, 2**16))
    return Model(loss, body, reg, sizes, seed)


@dataclass(frozen=True)
class Model:
    loss: str
    body: Expr
    reg: str
    sizes: dict
    seed: int

    def _repr_pretty_(self, printer, cycle):
        printer.text(repr(self))

    def __repr__(self):
        head = {"sum": "sum({})", "mean": "mean({})", "mse": "mse({}, t_N)",
                "ce_int": "cross_entropy({}, y_N)", "ce_soft": "cross_entropy({}, Y_NC)",
                "bce_sigmoid": "binary_cross_entropy(sigmoid({}), b_N)",
                "bce_logits": "binary_cross_entropy({}, b_N, from_logits=True)",
                "bce_probs": "binary_cross_entropy(sigmoid({}).named('prob'), b_N)",
                "hinge": "hinge({}, s_N)"}[self.loss].format(repr(self.body))
        reg = f" + 0.01 * {self.reg}(p_K)" if self.reg else ""
        return f"L = {head}{reg}   sizes={self.sizes} seed={self.seed}"

    # -- the symgrad graph and its data ------------------------------------------------------
    def build(self):
        leaves = {}

        def leaf(kind, dims, dtype=float):
            key = f"{kind}_{''.join(dims) or 's'}"
            if key not in leaves:
                leaves[key] = (sg.param(key, dims) if kind == "p" else sg.tensor(key, dims, dtype=dtype))
            return leaves[key]

        def go(e):
            a = [go(x) for x in e.args]
            op = e.op
            if op == "leaf":
                return leaf(e.attr, e.dims)
            if op in ("sigmoid", "tanh", "softplus", "relu", "abs", "exp", "log", "sqrt"):
                return getattr(sg, op)(a[0])
            if op == "neg":
                return -a[0]
            if op == "pos":
                return sg.softplus(a[0]) + 0.5
            if op == "add":
                return a[0] + a[1]
            if op == "sub":
                return a[0] - a[1]
            if op == "mul":
                return a[0] * a[1]
            if op == "div":
                return a[0] / a[1]
            if op == "pow":
                return a[0] ** e.attr
            if op == "matmul":
                return a[0] @ a[1]
            if op == "T":
                return a[0].T
            if op in ("softmax", "log_softmax", "logsumexp"):
                return getattr(sg, op)(a[0], axis=e.attr)
            if op in ("sum", "mean", "max"):
                return getattr(sg, op)(a[0], axis=e.attr)
            raise AssertionError(op)

        body = go(self.body)
        if self.loss == "sum":
            L = sg.sum(body)
        elif self.loss == "mean":
            L = sg.mean(body)
        elif self.loss == "mse":
            L = sg.mse(body, leaf("t", ("N",)))
        elif self.loss == "ce_int":
            L = sg.cross_entropy(body, leaf("y", ("N",), int))
        elif self.loss == "ce_soft":
            L = sg.cross_entropy(body, leaf("Y", ("N", "C")))
        elif self.loss == "bce_sigmoid":
            L = sg.binary_cross_entropy(sg.sigmoid(body), leaf("b", ("N",)))
        elif self.loss == "bce_logits":
            L = sg.binary_cross_entropy(body, leaf("b", ("N",)), from_logits=True)
        elif self.loss == "bce_probs":
            L = sg.binary_cross_entropy(sg.sigmoid(body).named("prob"), leaf("b", ("N",)))
        else:
            L = sg.hinge(body, leaf("s", ("N",)))
        params = [n for n in topo_order(L) if n.op == "param"]
        if self.reg or not params:
            pk = leaf("p", ("K",))
            L = L + 0.01 * (sg.l1(pk) if self.reg == "l1" else sg.l2(pk))
            params = [n for n in topo_order(L) if n.op == "param"]
        return L, params, self.data(L)

    def data(self, L):
        r = np.random.default_rng(self.seed)
        out = {}
        for n in topo_order(L):
            if n.op not in ("input", "param"):
                continue
            shape = tuple(self.sizes[d] for d in n.dims)
            kind = n.name.split("_")[0]
            if kind == "y":
                out[n.name] = r.integers(0, self.sizes["C"], size=shape)
            elif kind == "Y":
                w = r.random(shape) + 0.1
                out[n.name] = w / w.sum(axis=-1, keepdims=True)
            elif kind == "b":
                out[n.name] = (r.random(shape) > 0.5) * 1.0
            elif kind == "s":
                out[n.name] = np.where(r.random(shape) > 0.5, 1.0, -1.0)
            else:
                out[n.name] = 0.8 * r.normal(size=shape)
        return out


def _setup(m):
    note(repr(m))
    L, params, data = m.build()
    value = float(sg.evaluate(L, data))
    assume(math.isfinite(value) and abs(value) < 1e6)
    grads = sg.evaluate(sg.gradients(L, params), data, context=L)
    assume(all(np.all(np.isfinite(g)) and np.max(np.abs(g), initial=0) < 1e6 for g in grads))
    return L, params, data, value, grads


def _kinks_nearby(L, data, margin=1e-4):
    """True if a relu/abs/max input sits within ``margin`` of its kink or a tie: finite
    differences (and the max subgradient convention) are not comparable there."""
    from symgrad.graph.evaluate import run_graph
    from symgrad.graph.bind import bind
    arrays, sizes = bind([L], data)
    values = run_graph([L], arrays, sizes)
    for n in topo_order(L):
        if n.op in ("relu", "abs") and np.any(np.abs(values[n.inputs[0]]) < margin):
            return True
        if n.op == "max":
            x = np.asarray(values[n.inputs[0]])
            axes = [n.inputs[0].dims.index(d) for d in n.attrs["axes"]]
            x = np.moveaxis(x, axes, list(range(x.ndim - len(axes), x.ndim)))
            x = np.sort(x.reshape(x.shape[:x.ndim - len(axes)] + (-1,)), axis=-1)
            if x.shape[-1] > 1 and np.any(x[..., -1] - x[..., -2] < margin):
                return True
    return False


@settings(max_examples=EXAMPLES["autograd_fd"], **SETTINGS)
@given(model())
def test_backward_graph_agrees_with_autograd_and_finite_differences(m):
    L, params, data, value, grads = _setup(m)
    assume(not _kinks_nearby(L, data))
    assert value == pytest.approx(float(to_autograd(L, data, m.sizes)), rel=1e-12, abs=1e-12)
    for p, mine in zip(params, grads):
        def f(v, p=p):
            return to_autograd(L, {**data, p.name: v}, m.sizes)
        theirs = ag_grad(f)(np.asarray(data[p.name], dtype=float))
        mine = np.broadcast_to(mine, np.shape(theirs))
        scale = max(1.0, float(np.max(np.abs(theirs), initial=0)))
        assert np.max(np.abs(mine - theirs), initial=0) <= 1e-8 * scale, (p.name, mine, theirs)
    check = sg.check_grad(L, params, data, tolerance=1e-5)
    assert check.ok, check


@settings(max_examples=EXAMPLES["formula"], **SETTINGS)
@given(model())
def test_printed_formula_agrees_with_backward_graph(m):
    L, params, data, value, grads = _setup(m)
    der = sg.derive(L, params)
    for p, g in zip(params, grads):
        formula = der.evaluate_formula(der.gradients[p.name], data, free=p.name)
        g = np.broadcast_to(g, formula.shape)
        scale = max(1.0, float(np.max(np.abs(g), initial=0)))
        assert np.max(np.abs(formula - g), initial=0) <= 1e-9 * scale, (p.name, formula, g)


@need("compile")
@settings(max_examples=EXAMPLES["compiled"], **SETTINGS)
@given(model())
def test_compiled_code_agrees_with_evaluator(m):
    L, params, data, value, grads = _setup(m)
    compiled = api("compile")(L, params=params)
    p, d = split(data, params)
    assert compiled.loss(p, **d) == pytest.approx(value, rel=1e-10, abs=1e-12)
    got = compiled.grad(p, **d)
    for prm, g in zip(params, grads):
        g = np.broadcast_to(g, np.shape(data[prm.name]))
        np.testing.assert_allclose(got[prm.name], g, rtol=1e-9, atol=1e-11 * max(1.0, np.abs(g).max()))


@need("compile")
@need("fit")
@settings(max_examples=EXAMPLES["training"], **SETTINGS)
@given(model(), st.sampled_from([None, 1, 2, 3]), st.sampled_from([0.0, 0.9]), st.integers(0, 9))
def test_compiled_training_loop_agrees_with_reference_loop(m, batch_size, momentum, seed):
    from symgrad.train import NumpyModel
    from symgrad.train.reference import infer_batch_dim
    L, params, data, value, grads = _setup(m)
    dim = infer_batch_dim(L)
    if dim is None:
        batch_size = None
    elif batch_size is not None:
        batch_size = min(batch_size, m.sizes[dim])
    note(f"batch_size={batch_size} momentum={momentum} seed={seed}")
    p, d = split(data, params)
    kw = dict(lr=0.05, epochs=3, batch_size=batch_size, momentum=momentum, seed=seed,
              progress=False, on_divergence="stop", metrics=())
    compiled = api("compile")(L, params=params)
    odd = [n for n in topo_order(L) if n.op in ("input", "param") and dim in n.dims
           and (n.op == "param" or n.dims[0] != dim)]
    if batch_size is not None and odd:
        # minibatches cannot slice a param, or a tensor along a non-leading dim: refused
        with pytest.raises(sg.DataError, match="cannot take minibatches along dim"):
            api("fit")(compiled, p, d, **kw)
        return
    ref = api("fit")(NumpyModel(L, params), p, d, **kw)
    got = api("fit")(compiled, p, d, **kw)
    np.testing.assert_allclose(got.loss, ref.loss, rtol=1e-9, atol=1e-12)
    for name in ref.params:
        np.testing.assert_allclose(got.params[name], ref.params[name], rtol=1e-9, atol=1e-12)

"""Every registry op's derivative rule against finite differences, generated from the registry.

A new op must add a case here (or be listed as having no gradient), or
``test_every_op_has_a_case`` fails: no op can skip its check. Each case is also
derived symbolically and the printed formula evaluated, so the three views of a
gradient (formula, backward graph, finite differences) are compared.
"""
import numpy as np
import pytest

import symgrad as sg
from symgrad.errors import MissingRuleError
from symgrad.graph import OPS, apply
from symgrad.ops.custom import CUSTOM


def _swish():
    """Made when a test needs it, not at import (see tests/ops/conftest.py)."""
    return sg.elementwise("swish", lambda x: x * sg.sigmoid(x))


# Ops without a gradient of their own: leaves, piecewise-constant derivatives, helpers.
NO_GRADIENT = {"input", "param", "const", "count", "step", "sign", "equal", "onehot", "clog_grad",
               "less", "less_equal"}


def _data(r, shape, positive=False, away_from_zero=False, unit=False):
    if unit:
        return r.uniform(0.05, 0.95, size=shape)
    x = r.normal(size=shape)
    if positive:
        x = np.abs(x) + 0.5
    if away_from_zero:
        x = np.sign(x) * (np.abs(x) + 0.2)
    return x


SIZES = {"N": 4, "C": 3, "K": 2}


def _case(build, shapes, **kinds):
    """build(*params) -> node; shapes: param name -> dims. The loss is sum(out * R)."""
    def make(r):
        params = {n: sg.param(n, dims) for n, dims in shapes.items()}
        out = build(*params.values())
        weights = sg.tensor("R", out.dims)
        loss = sg.sum(out * weights) if out.dims else out * weights
        data = {n: _data(r, tuple(SIZES[d.rstrip("'")] for d in dims), **kinds.get(n, {}))
                for n, dims in shapes.items()}
        data["R"] = r.normal(size=tuple(SIZES[d.rstrip("'")] for d in out.dims))
        return loss, list(params.values()), data
    return make


M = {"a": ("N", "C"), "b": ("C",)}
V = {"a": ("N", "C")}

CASES = {
    "add": _case(lambda a, b: a + b, M),
    "sub": _case(lambda a, b: a - b, M),
    "mul": _case(lambda a, b: a * b, M),
    "div": _case(lambda a, b: a / b, M, b={"positive": True}),
    "neg": _case(lambda a: -a, V),
    "pow": _case(lambda a: a ** 3 + a ** 2 + a ** 0.5, V, a={"positive": True}),
    "exp": _case(sg.exp, V),
    "log": _case(sg.log, V, a={"positive": True}),
    "sqrt": _case(sg.sqrt, V, a={"positive": True}),
    "abs": _case(sg.abs, V, a={"away_from_zero": True}),
    "sigmoid": _case(sg.sigmoid, V),
    "tanh": _case(sg.tanh, V),
    "relu": _case(sg.relu, V, a={"away_from_zero": True}),
    "softplus": _case(sg.softplus, V),
    "sum": _case(lambda a: sg.sum(a, axis=0) + sg.sum(a, axis="C").sum() + sg.sum(a), V),
    "mean": _case(lambda a: sg.mean(a, axis="N") + sg.mean(a, axis=-1).mean(), V),
    "max": _case(lambda a: sg.max(a, axis=1) + sg.max(a), V),
    "softmax": _case(lambda a: sg.softmax(a, axis=-1) + sg.softmax(a, axis=0), V),
    "log_softmax": _case(lambda a: sg.log_softmax(a) + sg.log_softmax(a, axis="N"), V),
    "logsumexp": _case(lambda a: sg.logsumexp(a) + sg.logsumexp(a, axis=0).sum(), V),
    "expand": _case(lambda b: apply("expand", b, dims=("N", "C")) * 1.5,
                    {"b": ("C",)}),
    "matmul": _case(lambda A, B, u, v: sg.sum(A @ B) + (A @ v) @ u + sg.sum(u @ A) * (v @ v),
                    {"A": ("N", "C"), "B": ("C", "K"), "u": ("N",), "v": ("C",)}),
    "transpose": _case(lambda A: A.T @ A.sum(axis=1), {"A": ("N", "C")}),
    "clog": _case(lambda a: sg.binary_cross_entropy(a, 0.3 + 0 * a), V, a={"unit": True}),
    "cross_entropy": _case(lambda a: sg.cross_entropy(a, sg.softmax(a * 0.5)), V),
    "where": _case(lambda a, b: sg.where(a > b, a * b, sg.exp(a)) + sg.where(a <= 0.1, 2.0, b),
                   M, a={"away_from_zero": True}),
    "maximum": _case(lambda a, b: sg.maximum(a, b) + sg.maximum(a, 0.05), M,
                     a={"away_from_zero": True}),
    "minimum": _case(lambda a, b: sg.minimum(b, a) * sg.clip(a, -0.1, 0.1), M,
                     a={"away_from_zero": True}),
    "take": lambda r: _take_case(r),
    # a square tensor: its transpose and its row sums are relabelled axes
    "relabel": _case(lambda A: (A.T * 2.0 + A) * sg.sum(A, axis=-1), {"A": ("C", "C")}),
    "bce_logits": _case(lambda a: sg.binary_cross_entropy(a, sg.sigmoid(a * 0.3), from_logits=True), V),
    # the math library (symgrad/ops/library.py)
    "sin": _case(sg.sin, V),
    "cos": _case(sg.cos, V),
    "log1p": _case(sg.log1p, V, a={"positive": True}),
    "expm1": _case(sg.expm1, V),
    "erf": _case(sg.erf, V),
    "gelu": _case(sg.gelu, V),
    "silu": _case(sg.silu, V),
    "elu": _case(lambda a: sg.elu(a) + sg.elu(a, alpha=0.5), V, a={"away_from_zero": True}),
    "leaky_relu": _case(lambda a: sg.leaky_relu(a) + sg.leaky_relu(a, slope=0.3), V,
                        a={"away_from_zero": True}),
    "huber": _case(lambda a, b: sg.huber(a, b) + sg.huber(a, 0.1, delta=0.4), M),
    # made by sg.elementwise (symgrad/ops/custom.py); test_generated_ops covers the rest
    "swish": _case(lambda a: _swish()(a), V),
}


def _take_case(r):
    """Gather by integer labels: S[i, y_i] for every i, and S[y_k, c] along the other axis."""
    S, y = sg.param("S", ("N", "C")), sg.tensor("y", ("N",), dtype=int)
    k = sg.tensor("k", ("C",), dtype=int)
    loss = sg.sum(sg.take(S, y, axis="C") ** 2) + sg.sum(sg.take(S, k, axis=0) * 1.5)
    data = {"S": r.normal(size=(4, 3)), "y": r.integers(0, 3, 4), "k": r.integers(0, 4, 3)}
    return loss, [S], data


def test_every_op_has_a_case():
    missing = set(OPS) - set(CASES) - NO_GRADIENT - set(CUSTOM)
    assert not missing, f"ops without a derivative test: {sorted(missing)}"


def _generated_case(op, r):
    """sum(f(a) * R) for a generated op f at its default parameters, where f is finite."""
    a = sg.param("a", V["a"])
    out = apply(op.name, a, **op.params)
    loss = sg.sum(out * sg.tensor("R", out.dims))
    x = _data(r, (4, 3), away_from_zero=True)
    if not np.all(np.isfinite(op.numpy(x, *op.params.values()))):
        x = _data(r, (4, 3), positive=True)
    return loss, [a], {"a": x, "R": r.normal(size=(4, 3))}


def test_generated_ops_match_finite_differences(rng):
    """Every op made by sg.elementwise, including the derivative ops made on first use
    (swish', swish'', gelu', ...), checked against finite differences: no generated op
    can escape the table's check, whichever test file made it."""
    for f in (_swish(), sg.gelu, sg.silu, sg.elu, sg.leaky_relu):
        f.op.derivative().derivative()          # second derivatives are ops too
    for name in sorted(CUSTOM):
        op = CUSTOM[name]
        if OPS[name].constant:
            continue
        loss, params, data = _generated_case(op, rng)
        check = sg.check_grad(loss, params, data, eps=1e-6, tolerance=1e-6)
        assert check.ok, (name, check)


@pytest.mark.parametrize("op", sorted(CASES))
def test_rule_matches_finite_differences(op, rng):
    loss, params, data = CASES[op](rng)
    check = sg.check_grad(loss, params, data, eps=1e-6, tolerance=1e-6)
    assert check.ok, check


@pytest.mark.parametrize("op", sorted(CASES))
def test_printed_formula_matches_backward_graph(op, rng):
    loss, params, data = CASES[op](rng)
    der = sg.derive(loss, params)
    for p in params:
        formula = der.evaluate_formula(der.gradients[p.name], data, free=p.name)
        graph = np.broadcast_to(sg.evaluate(der.backward_graph[p.name], data, context=loss),
                                formula.shape)
        assert np.allclose(formula, graph, rtol=1e-10, atol=1e-12), (op, p.name)


def test_cross_entropy_integer_labels_rule(rng):
    s, y = sg.param("s", ("N", "C")), sg.tensor("y", ("N",), dtype=int)
    data = {"s": rng.normal(size=(5, 4)), "y": rng.integers(0, 4, size=5)}
    assert sg.check_grad(sg.cross_entropy(s, y), [s], data)


PIECEWISE_CONSTANT = sorted(n for n in NO_GRADIENT if n in OPS and OPS[n].constant and n != "onehot")


@pytest.mark.parametrize("op", PIECEWISE_CONSTANT)
def test_masks_pass_no_gradient(op, rng):
    """Masks and steps are piecewise constant: a param reached only through one has a
    zero gradient (not an error, not None)."""
    a = sg.param("a", ("N",))
    node = apply(op, a) if len(OPS[op].vjp) == 1 else apply(op, a, 0.5 * a)
    loss = sg.sum(node)
    g = sg.evaluate(sg.gradients(loss, [a])[0], {"a": rng.normal(size=4)}, context=loss)
    np.testing.assert_array_equal(np.broadcast_to(g, (4,)), 0.0)


def test_missing_rule_names_the_op():
    from symgrad.graph.registry import OpDef, register
    if "no_rule_yet" not in OPS:
        register(OpDef("no_rule_yet", "elementwise", OPS["exp"].infer, OPS["exp"].element,
                       OPS["exp"].numpy, (None,)))
    a = sg.param("a", ("N",))
    try:
        with pytest.raises(MissingRuleError, match="'no_rule_yet'"):
            sg.gradients(sg.sum(apply("no_rule_yet", a)), [a])
    finally:
        OPS.pop("no_rule_yet")

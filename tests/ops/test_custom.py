"""sg.elementwise(name, body) (symgrad/ops/custom.py, symgrad/ops/body.py): the generated
registry entry's meaning, derivative (first and second), stability, printed code, safety
against hostile bodies and names, derivations, and a compiled swish network trained by fit."""
import re

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.errors import DeclarationError
from symgrad.graph import OPS
from symgrad.ops import body as B
from symgrad.ops import body_code as BC

def make_swish():
    """swish, made when a test first needs it (not at import: see tests/ops/conftest.py)."""
    return sg.elementwise("swish", lambda x: x * sg.sigmoid(x))


def swish(x):
    return make_swish()(x)


def _ag_swish(x):
    return x * 0.5 * (anp.tanh(0.5 * x) + 1)


def _value_and_grads(f, x):
    """f(a), d sum(f(a)) / da and the diagonal second derivative, by symgrad's graphs."""
    a, R = sg.param("a", ("N",)), sg.tensor("R", ("N",))
    loss = sg.sum(f(a) * R)
    g = sg.gradients(loss, [a])[0]
    g2 = sg.gradients(sg.sum(g * R), [a])[0]
    return sg.evaluate([f(a), g, g2], {"a": x, "R": np.ones_like(x)}, context=loss)


def test_node_and_sympy_scalar():
    x = sp.Symbol("x", real=True)
    assert isinstance(swish(sg.param("w", ("d",))), sg.Node)
    assert str(swish(x)) == "swish(x)" and str(sp.diff(swish(x), x)) == "swish'(x)"
    assert str(sp.diff(swish(x), x, 2)) == "swish''(x)"
    assert sp.expand_func(swish(x)) == x * sg.sigmoid(x)
    assert sp.latex(sp.diff(swish(x), x)) == r"\operatorname{swish}'\left(x\right)"
    assert float(swish(sp.Float(2.0))) == pytest.approx(2.0 / (1 + np.exp(-2.0)), rel=1e-15)


def test_same_body_returns_the_same_function_and_a_new_body_is_refused():
    f = make_swish()
    assert sg.elementwise("swish", lambda x: x * sg.sigmoid(x)) is f
    # written with exp, the body is rewritten to the same stable form: the same op
    assert sg.elementwise("swish", lambda x: x / (1 + sp.exp(-x))) is f
    with pytest.raises(DeclarationError, match="elementwise 'swish' is already defined"):
        sg.elementwise("swish", lambda x: x * sg.tanh(x))
    with pytest.raises(DeclarationError, match="'exp' is a built-in op"):
        sg.elementwise("exp", lambda x: sp.exp(x))


def test_values_and_derivatives_match_autograd(rng):
    x = rng.normal(scale=3, size=20)
    value, g, g2 = _value_and_grads(swish, x)
    np.testing.assert_allclose(value, _ag_swish(x), rtol=1e-12)
    d1 = autograd.elementwise_grad(_ag_swish)
    np.testing.assert_allclose(g, d1(x), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(g2, autograd.elementwise_grad(d1)(x), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name, body, stable", [
    ("swish_exp", lambda x: x / (1 + sp.exp(-x)), "x*sigmoid(x)"),
    ("swish_exp2", lambda x: x * sp.exp(x) / (1 + sp.exp(x)), "x*sigmoid(x)"),
    ("softplus_log", lambda x: sp.log(1 + sp.exp(x)), "softplus(x)"),
    ("logsig", lambda x: sp.log(1 / (1 + sp.exp(-x))), "-softplus(-x)"),
    ("sigmoid_prime_raw", lambda x: sp.exp(-x) / (1 + sp.exp(-x)) ** 2,
     "sigmoid(-x)*sigmoid(x)"),
    ("relu_max", lambda x: sp.Max(x, 0), "relu(x)"),
    ("sigmoid_scaled", lambda x: 3 * x / (6 + 6 * sp.exp(-2 * x)), "x*sigmoid(2*x)/2"),
    ("logcosh", lambda x: sp.log(sp.cosh(x)), "x + softplus(-2*x) - log(2)"),
    ("mish", lambda x: x * sp.tanh(sp.log(1 + sp.exp(x))), "x*tanh(softplus(x))"),
])
def test_exp_forms_are_rewritten_stably(name, body, stable):
    """SymPy's raw derivative of x / (1 + exp(-x)) is inf/inf = NaN at x = -800; after the
    rewrite neither the function nor its first two derivatives are ever NaN."""
    f = sg.elementwise(name, body)
    assert str(f.op.expr) == stable
    x = np.array([-1e300, -800.0, -30.0, -1.0, 0.0, 1.0, 30.0, 800.0, 1e300])
    for values in _value_and_grads(f, x):
        assert not np.any(np.isnan(values)), (name, values)


def test_the_raw_derivative_would_be_nan():
    """The problem the rewrite solves, shown with SymPy's own derivative in floats."""
    x = sp.Symbol("x", real=True)
    raw = sp.diff(x / (1 + sp.exp(-x)), x)
    with np.errstate(all="ignore"):
        v = B.numpy_value(raw, {x: np.array([-800.0])})
    assert np.isnan(v[0])
    assert _value_and_grads(sg.elementwise("swish_exp", lambda x: x / (1 + sp.exp(-x))),
                            np.array([-800.0]))[1][0] == 0.0


def test_numba_helper_is_printed_with_common_subexpressions():
    f = sg.elementwise("bump", lambda x: x * sp.exp(-x ** 2) + sp.exp(-x ** 2) / (1 + x ** 2))
    src = OPS["bump"].code["helpers"]["_sg_f_bump"]
    lines = src.strip().splitlines()
    assert lines[0] == "def _sg_f_bump(x):" and lines[-1].startswith("    return ")
    assert sum(line.count("math.exp") for line in lines) == 1        # exp(-x^2) once
    assert all(re.fullmatch(r"    t\d+ = .+", line) for line in lines[1:-1])
    x = np.linspace(-3, 3, 7)
    np.testing.assert_allclose(f.op.numpy(x), x * np.exp(-x ** 2) + np.exp(-x ** 2) / (1 + x ** 2),
                               rtol=1e-15)


def test_vector_forms_only_where_every_piece_vectorises():
    """A second helper with the vectorisable sigmoid/exp, only for bodies made of
    arithmetic, selects and those (no libm call, no **)."""
    from symgrad.ops.custom import VECTOR_HELPERS
    if VECTOR_HELPERS is None:
        pytest.skip("this code generator has no vectorisable helpers")
    make_swish().op.derivative()
    src = OPS["swish_prime"].code["vector_helpers"]["_sg_fv1_swish"]
    assert "_sg_vsigmoid(x)" in src and "math." not in src
    assert "_sg_vexp" in OPS["swish"].code["vector_helpers"]       # what vsigmoid calls
    for name in ("gelu", "elu"):                                     # erfc, expm1: libm
        assert "vector" not in OPS[name].code
    f = sg.elementwise("vec_test", lambda x: sp.Piecewise((x ** 3, x > 0), (-x, True)))
    assert "vector" not in OPS[f.op.name].code                       # ** 3


def test_generated_code_uses_only_symgrads_identifiers():
    """Every identifier in a helper is x, p_<param>, t<k>, math.<fn>, a _sg_ helper or a
    literal."""
    f = sg.elementwise("mixture", lambda x, k: sp.Piecewise(
        (k * sp.tanh(x) + sp.erf(x) * sp.sqrt(sp.Abs(x)), (x > -1) & (x < 2)),
        (sg.softplus(x) - sp.log(1 + x ** 2), True)), params={"k": 0.5})
    for src in OPS["mixture"].code["helpers"].values():
        if not src.startswith("def _sg_f"):
            continue
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", src))
        odd = {w for w in words if not re.fullmatch(
            r"def|return|if|else|and|or|not|abs|max|min|x|p_k|t\d+|_sg_\w+|math\.\w+|e", w)}
        assert not odd, (odd, src)
    x = np.array([-3.0, -0.5, 0.0, 1.5, 4.0])
    want = np.where((x > -1) & (x < 2), 0.5 * np.tanh(x) + np.vectorize(__import__("math").erf)(x)
                    * np.sqrt(np.abs(x)), np.logaddexp(0, x) - np.log1p(x ** 2))
    np.testing.assert_allclose(f.op.numpy(x, 0.5), want, rtol=1e-14)


@pytest.mark.parametrize("body, match", [
    (lambda x: sp.Function("os.system")(x), "'os.system'"),
    (lambda x: sp.Function("__import__('os').getcwd")(x), "getcwd"),
    (lambda x: sp.Function("f")(x) + x, "'f', which symgrad cannot evaluate and print"),
    (lambda x: x * sp.Symbol("y"), "the symbol 'y'"),
    (lambda x: sp.Symbol("x") + x, "the symbol 'x'"),        # not the body's argument
    (lambda x: sp.gamma(x), "'gamma'"),
    (lambda x: sp.Integral(x, x), "Integral"),
    (lambda x: "x + 1", "must return a SymPy expression"),
    (lambda x: sp.nan * x, "the number nan"),
])
def test_bodies_symgrad_cannot_print_safely_are_refused(body, match):
    with pytest.raises(DeclarationError, match=re.escape(match) if "'" in match else match):
        sg.elementwise("hostile", body)
    assert "hostile" not in OPS


@pytest.mark.parametrize("name", ["a'b", "x; import os", "f\nx", 'q"', "1abc", "",
                                  "exp_prime", "_sg_x", "lambda", 3])
def test_bad_names_are_refused(name):
    with pytest.raises(DeclarationError, match="name"):
        sg.elementwise(name, lambda x: x)


def test_bad_parameters_and_calls():
    with pytest.raises(DeclarationError, match="parameter name"):
        sg.elementwise("p1", lambda x, **k: x, params={"a b": 1.0})
    with pytest.raises(DeclarationError, match="must be a finite real number"):
        sg.elementwise("p2", lambda x, s: s * x, params={"s": "one"})
    scaled = sg.elementwise("scaled", lambda x, s: s * x, params={"s": 2.0})
    with pytest.raises(DeclarationError, match="must be a finite real number"):
        scaled(sg.param("w", ("d",)), s=[1.0])
    with pytest.raises(DeclarationError, match="expected a symgrad node or a SymPy"):
        swish("w")
    with pytest.raises(DeclarationError, match="must be a function"):
        sg.elementwise("notfn", 3)


def test_parameters_derivative_and_constant_ops(rng):
    scaled = sg.elementwise("scaled", lambda x, s: s * x, params={"s": 2.0})
    a = sg.param("a", ("N",))
    y = sg.sum(scaled(a, s=3.0))
    np.testing.assert_array_equal(sg.evaluate(sg.gradients(y, [a])[0], {"a": np.ones(3)},
                                              context=y), 3.0)
    one = sg.elementwise("one", lambda x: 1 + 0 * x)
    np.testing.assert_array_equal(sg.evaluate(one(a), {"a": np.ones(3)}), 1.0)
    assert OPS["one"].constant        # a constant body passes no gradient


def test_composition_of_generated_functions(rng):
    sq_swish = sg.elementwise("sq_swish", lambda x: swish(x) ** 2 + swish(2 * x))
    helpers = OPS["sq_swish"].code["helpers"]
    assert {"_sg_f_sq_swish", "_sg_f_swish", "_sg_sigmoid"} <= set(helpers)
    x = rng.normal(size=8)
    value, g, _ = _value_and_grads(sq_swish, x)
    ag = lambda v: _ag_swish(v) ** 2 + _ag_swish(2 * v)
    np.testing.assert_allclose(value, ag(x), rtol=1e-13)
    np.testing.assert_allclose(g, autograd.elementwise_grad(ag)(x), rtol=1e-9)


def test_derivation_prints_swish_prime():
    X, t = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",))
    W, v = sg.param("W", ("d", "H")), sg.param("v", ("H",))
    der = sg.derive(sg.sse(swish(X @ W) @ v, t), [W, v])
    rule = "\n".join(map(str, der.update_rule()))
    assert "swish'(z1_ik) X_ij" in rule and "swish(z1_ik)" in rule, rule
    latex = der.to_latex()
    assert r"\operatorname{swish}'\left(z^{(1)}_{ik}\right)" in latex


def _swish_mlp():
    X, y = sg.tensor("X", ("N", "d")), sg.tensor("y", ("N",), dtype=int)
    W1, b1 = sg.param("W1", ("d", "H")), sg.param("b1", ("H",))
    W2, b2 = sg.param("W2", ("H", "C")), sg.param("b2", ("C",))
    loss = sg.cross_entropy(swish(X @ W1 + b1) @ W2 + b2, y)
    return loss, [W1, b1, W2, b2]


@pytest.mark.slow
def test_compiled_swish_network_matches_the_evaluator_and_trains(rng):
    loss, params = _swish_mlp()
    fn = sg.compile(loss, params=params)
    # the helpers printed from swish and swish' (the vectorisable forms in loops that
    # the code generator vectorises)
    assert re.search(r"def _sg_fv?_swish\(x\):", fn.source), fn.source
    assert re.search(r"def _sg_fv?1_swish\(x\):", fn.source), fn.source
    data = {"X": rng.normal(size=(40, 5)), "y": rng.integers(0, 3, size=40)}
    init = {"W1": 0.5 * rng.normal(size=(5, 8)), "b1": np.zeros(8),
            "W2": 0.5 * rng.normal(size=(8, 3)), "b2": np.zeros(3)}
    want = sg.evaluate([loss] + sg.gradients(loss, params), {**init, **data})
    np.testing.assert_allclose(fn.loss(init, **data), want[0], rtol=1e-12)
    got = fn.grad(init, **data)
    for p, w in zip(params, want[1:]):
        np.testing.assert_allclose(got[p.name], w, rtol=1e-12, atol=1e-12)
    hist = sg.fit(fn, init, data=data, lr=0.5, epochs=15, batch_size=8, progress=False)
    assert hist.loss[-1] < 0.8 * hist.loss[0]


def test_readme_example_prints_what_the_readme_shows(capsys):
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.split("### Your own functions", 1)[1].split("\n## ", 1)[0]
    code, shown = re.findall(r"```(?:python|text)\n(.+?)\n```", section, re.S)[:2]
    exec(compile(code, "README.md", "exec"), {})   # the README's own example code
    assert capsys.readouterr().out.strip() == shown.strip()


def test_hostile_bodies_run_nothing(tmp_path):
    """A body whose function names are code is refused before anything is printed or run:
    the marker file its 'name' would create never appears."""
    marker = tmp_path / "MARKER"
    names = [f"__import__('os').system('touch {marker}')", f"open('{marker}', 'w')",
             f"x); open('{marker}', 'w'); (x"]
    for name in names:
        with pytest.raises(DeclarationError, match="cannot evaluate and print safely"):
            sg.elementwise("hostile", lambda x, n=name: x + sp.Function(n)(x))
    with pytest.raises(DeclarationError, match="plain identifier"):
        sg.elementwise(f"x; open('{marker}', 'w')", lambda x: x)
    assert not marker.exists() and "hostile" not in OPS


def test_threads_differentiating_at_once_make_one_derivative_op():
    from concurrent.futures import ThreadPoolExecutor
    f = sg.elementwise("threaded", lambda x: x * sp.tanh(x))
    with ThreadPoolExecutor(8) as pool:
        ops = list(pool.map(lambda _: f.op.derivative(), range(16)))
    assert all(o is ops[0] for o in ops) and OPS["threaded_prime"] is not None


def test_the_op_alone_fills_and_checks_its_parameters():
    """apply() without the user function (as a generated test would) gets the defaults."""
    from symgrad.graph import apply
    a = sg.param("a", ("N",))
    node = apply("leaky_relu", a)
    assert node.attrs == {"slope": 0.01}
    np.testing.assert_allclose(sg.evaluate(node, {"a": np.array([-2.0, 3.0])}), [-0.02, 3.0])
    with pytest.raises(DeclarationError, match="leaky_relu: slope must be a finite real number"):
        apply("leaky_relu", a, slope=None)
    with pytest.raises(DeclarationError, match=r"unknown parameter\(s\) \['beta'\]"):
        apply("leaky_relu", a, beta=1.0)
    with pytest.raises(DeclarationError, match="slope must be a finite real number"):
        sg.leaky_relu(a, slope=float("nan"))


# -- property: the printed helper computes what the interpreter computes ---------------------
from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from sympy.codegen.cfunctions import expm1, log1p  # noqa: E402

_X = sp.Symbol("x", real=True)
_UNARY = [sp.sin, sp.cos, sp.tanh, sp.erf, sp.Abs, sg.sigmoid, sg.softplus, sg.relu, sp.atan,
          lambda u: sp.exp(sp.sin(u)), lambda u: sp.log(1 + u ** 2), lambda u: sp.sqrt(1 + u ** 2),
          lambda u: -u, lambda u: u ** 3, lambda u: log1p(u ** 2), lambda u: expm1(sp.cos(u))]
_BINARY = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b,
           lambda a, b: a / (1 + b ** 2), lambda a, b: sp.Max(a, b), lambda a, b: sp.Min(a, b),
           lambda a, b: sp.Piecewise((a, _X > sp.Rational(1, 2)), (b, _X < -1), (a * b, True))]
_LEAVES = st.sampled_from([_X, _X, sp.Integer(2), sp.Rational(-3, 2), sp.pi, sp.Float(0.25)])


def _bodies():
    return st.recursive(
        _LEAVES, lambda inner: st.one_of(
            st.tuples(st.sampled_from(_UNARY), inner).map(lambda t: t[0](t[1])),
            st.tuples(st.sampled_from(_BINARY), inner, inner).map(lambda t: t[0](t[1], t[2]))),
        max_leaves=6)


def _run_printed(expr, xs, vector=False):
    """The printed helper run as plain Python (the same math functions Numba calls; the
    vectorisable exp and sigmoid, which need Numba, stand in as math.exp and the stable
    sigmoid)."""
    import math
    from symgrad.ops.elementwise import HELPERS
    src, _ = BC.numba_source("_sg_f_prop", expr, [_X], vector=vector)
    env = {"math": math}
    for helper in HELPERS.values():
        exec(helper, env)                     # symgrad's own helper sources
    env["_sg_vexp"], env["_sg_vsigmoid"] = math.exp, env["_sg_sigmoid"]
    exec(src, env)                            # the source printed from the body
    return np.array([env["_sg_f_prop"](float(v)) for v in xs])


@settings(max_examples=150, deadline=None)
@given(_bodies(), st.booleans(), st.booleans())
def test_printed_helper_agrees_with_the_interpreter(expr, derivative, vector):
    """Random bodies (and their derivatives: Heaviside, sign, Piecewise) print to helpers
    that compute what the NumPy interpreter computes."""
    expr = B.stabilize(expr if isinstance(expr, sp.Expr) else sp.Integer(0))
    if derivative:
        expr = B.drop_deltas(B.stabilize(sp.diff(expr, _X)))
    assume(expr.has(_X))
    try:
        B.check_body(expr, {_X}, "property")
    except DeclarationError:     # SymPy writes |f|' with re/im where f is not known real
        assume(False)            # (softplus, relu lack _eval_is_real); refused, not printed
    xs = np.linspace(-2.5, 2.5, 11)
    try:
        printed = _run_printed(expr, xs, vector)
    except BC.NoVectorForm:
        assume(False)                         # a piece with no vectorisable form
    except (OverflowError, ValueError, ZeroDivisionError):
        assume(False)                         # plain Python raises where Numba gives inf/nan
    interpreted = np.broadcast_to(B.numpy_value(expr, {_X: xs}), xs.shape)
    np.testing.assert_allclose(printed, interpreted, rtol=1e-12, atol=1e-12, equal_nan=True,
                               err_msg=str(expr))


def test_symbolic_parameters_inline_the_body(rng):
    """A real SymPy symbol as a parameter (a hyperparameter): the body is written with
    where/comparisons, with the same values and gradients as the number."""
    a = sp.Symbol("a", positive=True)
    z = sg.param("z", ("N",))
    x = rng.normal(size=7)
    for f, p in ((sg.leaky_relu, "slope"), (sg.elu, "alpha")):
        sym, num = sg.sum(f(z, **{p: a}) ** 2), sg.sum(f(z, **{p: 0.3}) ** 2)
        got = sg.evaluate([sym, sg.gradients(sym, [z])[0]], {"z": x, "a": 0.3})
        want = sg.evaluate([num, sg.gradients(num, [z])[0]], {"z": x})
        np.testing.assert_allclose(got[0], want[0], rtol=1e-14)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-14)
        assert "a" in str(sg.derive(sym, z).update_rule()).split("<-")[1]
    assert str(sg.leaky_relu(sp.Symbol("x"), slope=a)) == "leaky_relu(x, slope=a)"
    with pytest.raises(DeclarationError, match="must be a real symbol"):
        sg.leaky_relu(z, slope=sp.Symbol("c"))


@pytest.mark.slow
def test_symbolic_parameter_is_a_run_time_input_of_the_compiled_model(rng):
    a = sp.Symbol("a", positive=True)
    X, t, w = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",)), sg.param("w", ("d",))
    loss = sg.huber(sg.leaky_relu(X @ w, slope=a), t, delta=0.5)
    fn = sg.compile(loss, params=[w])
    data, p = {"X": rng.normal(size=(6, 3)), "t": rng.normal(size=6)}, {"w": rng.normal(size=3)}
    for slope in (0.2, 0.05):          # a new value, the same module
        want = sg.evaluate([loss, sg.gradients(loss, [w])[0]], {**p, **data, "a": slope})
        np.testing.assert_allclose(fn.loss(p, **data, a=slope), want[0], rtol=1e-12)
        np.testing.assert_allclose(fn.grad(p, **data, a=slope)["w"], want[1], rtol=1e-12)

"""User functions and hyperparameters are user text on its way to generated code.

``sg.elementwise(name, body)`` prints a SymPy body into the generated module, and a SymPy
symbol in a graph is a hyperparameter named by the user. Each test below hands symgrad
text that, if it were ever executed, would create a marker file, and checks through
every path from that text to running code (``sg.compile`` and the compiled functions,
``fit``, ``fn.export`` and running the exported file, ``symgrad derive FILE``) that the
text is refused with an error naming it, or mangled, and that the marker never appears.
"""
import ast
import io
import os
import subprocess
import sys
import textwrap
import tokenize

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.errors import DeclarationError
from symgrad.graph.names import comment_text
from symgrad.graph.registry import OPS
from tests.reliability._support import ROOT, api, need


def _payloads(marker):
    """Text that creates ``marker`` if run: as an expression, and breaking out of a string,
    a call's parentheses, a statement and a comment."""
    m = str(marker)
    return [f"__import__('pathlib').Path({m!r}).touch()",
            f"a'); open({m!r}, 'w'); ('",
            f'b"); open({m!r}, "w"); ("',
            f"c; open({m!r}, 'w')",
            f"d #\nopen({m!r}, 'w')",
            f"e)\nopen({m!r}, 'w')\n(",
            f"f\\'); open({m!r}, 'w'); #"]


def _code_outside_comments(source):
    return "\n".join(tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                     if tok.type != tokenize.COMMENT)


# -- bodies: refused before anything is printed, naming what is refused -----------------------
def _hostile_bodies(marker):
    m = str(marker)
    yield "os.system", lambda x: sp.Function("os.system")(x)
    yield "getcwd", lambda x: sp.Function("__import__('os').getcwd")(x)
    for text in _payloads(marker):
        shown = repr(comment_text(text))               # errors show a line break as '?'
        yield shown, lambda x, t=text: x + sp.Function(t)(x)
        yield shown, lambda x, t=text: x * sp.Symbol(t, real=True)
    yield "Integral", lambda x: sp.Integral(sp.Function(f"open({m!r}, 'w')")(x), x)
    yield "os.system", lambda x: sp.Lambda(x, x)(x) + sp.Function("os.system")(x)


@pytest.mark.parametrize("case", range(len(list(_hostile_bodies("M")))))
def test_hostile_bodies_are_refused_naming_them(tmp_path, case):
    marker = tmp_path / "ran"
    shown, body = list(_hostile_bodies(marker))[case]
    with pytest.raises(DeclarationError) as err:
        sg.elementwise("hostile_body", body)
    assert shown in str(err.value), str(err.value)
    assert "hostile_body" not in OPS and not marker.exists()


@pytest.mark.parametrize("index", range(7))
def test_hostile_parameter_and_op_names_are_refused(tmp_path, index):
    marker = tmp_path / "ran"
    text = _payloads(marker)[index]
    with pytest.raises(DeclarationError, match="name"):
        sg.elementwise(text, lambda x: x)
    with pytest.raises(DeclarationError, match="parameter name"):
        sg.elementwise("hostile_params", lambda x, **p: x * sum(p.values()), params={text: 1.0})
    assert "hostile_params" not in OPS and not marker.exists()


@pytest.mark.parametrize("name", ["a\n", "slope\n", "a\r", "a\t", "a b", "é", "x"])
def test_parameter_names_are_plain_identifiers(name):
    # "a\n" passed an identifier regex anchored with `$` (which matches before a final
    # line break) and reached the helper's signature: def _sg_f_...(x, p_a\n)
    with pytest.raises(DeclarationError, match="parameter name"):
        sg.elementwise("odd_params", lambda x, **p: x * sum(p.values()), params={name: 1.0})
    assert "odd_params" not in OPS


# -- undefined functions in a graph ------------------------------------------------------------
@pytest.mark.parametrize("fname", ["os.system", "__import__('os').getcwd", "exp", "sigmoid",
                                   "elu", "a'); import os; #"])
def test_undefined_sympy_functions_in_a_graph_are_refused(fname):
    """An undefined SymPy function of a hyperparameter is not one of symgrad's ops, even
    when it is called ``exp``: it is refused, naming it."""
    X, lam = sg.tensor("X", ("N",)), sp.Symbol("lam_undef")
    with pytest.raises(DeclarationError) as err:
        X * sp.Function(fname)(lam)
    assert fname in str(err.value)


# -- hyperparameters with hostile names: compile, run, fit, export --------------------------------
@pytest.mark.parametrize("index", [4, 5])
def test_hyperparameter_names_with_line_breaks_are_refused_naming_them(tmp_path, index):
    text = _payloads(tmp_path / "ran")[index]
    X = sg.tensor("X", ("N",))
    with pytest.raises(DeclarationError, match="hyperparameter name") as err:
        X * sp.Symbol(text)
    assert repr(text) in str(err.value)


SWISHY = sg.elementwise("swishy", lambda x, beta: x * sg.sigmoid(beta * x), params={"beta": 1.5})


def _hyper_model(names):
    X, t = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",))
    w = sg.param("w", ("d",))
    lam, mu, nu = (sp.Symbol(n, positive=True) for n in names[:3])
    z = SWISHY(X @ w, beta=0.5)
    loss = sg.mse(z, t) + lam * sg.l2(w) + sp.sqrt(mu) / 2 * sg.sum(sg.sin(w)) + nu * sg.l1(w)
    return loss, w


def _hyper_data(names):
    r = np.random.default_rng(0)
    data = {"X": r.normal(size=(6, 3)), "t": r.normal(size=6)}
    data.update({n: v for n, v in zip(names, (0.1, 0.3, 0.02))})
    return data, {"w": r.normal(size=3)}


@need("compile")
@need("fit")
def test_hostile_hyperparameter_names_run_nothing(tmp_path):
    marker = tmp_path / "ran"
    names = [_payloads(marker)[k] for k in (1, 2, 6)]
    loss, w = _hyper_model(names)
    data, params = _hyper_data(names)
    fn = api("compile")(loss, params=[w])
    ast.parse(fn.source)
    code = _code_outside_comments(fn.source)
    for n in names:
        assert n not in code and n.split("\n")[0] not in code, n
    want = float(sg.evaluate(loss, {**data, **params}))
    assert fn.loss(params, **data) == pytest.approx(want, rel=1e-12)
    grad = sg.evaluate(sg.gradients(loss, [w]), {**data, **params}, context=loss)[0]
    np.testing.assert_allclose(fn.grad(params, **data)["w"], grad, rtol=1e-11)
    assert sg.check_grad(loss, [w], {**data, **params}, tolerance=1e-6).ok
    history = api("fit")(fn, params, data=data, lr=0.05, epochs=3, progress=False)
    assert np.all(np.isfinite(history.loss))
    with pytest.raises(sg.DataError, match="missing hyperparameter"):
        fn.loss(params, **{k: v for k, v in data.items() if k != names[0]})
    assert not marker.exists(), "a hyperparameter name was executed"


@pytest.mark.slow
@need("compile")
def test_exported_module_with_hostile_names_runs_nothing(tmp_path):
    """The exported file is imported and trained in a fresh interpreter (its own top level,
    its helpers and its plain-Python ``train``, which looks data up by name)."""
    marker = tmp_path / "ran"
    names = [_payloads(marker)[k] for k in (0, 3, 2)]
    loss, w = _hyper_model(names)
    data, params = _hyper_data(names)
    fn = api("compile")(loss, params=[w])
    path = tmp_path / "exported_model.py"
    fn.export(str(path))
    text = path.read_text(encoding="utf-8")
    ast.parse(text)
    for n in names:
        assert n not in _code_outside_comments(text), n
    np.savez(tmp_path / "data.npz", **{f"d{k}": v for k, v in enumerate(data.values())},
             w=params["w"])
    script = textwrap.dedent(f"""
        import sys, numpy as np
        sys.path.insert(0, {str(tmp_path)!r})
        import exported_model as m
        arrays = np.load({str(tmp_path / 'data.npz')!r})
        keys = {list(data)!r}
        data = {{k: arrays[f"d{{i}}"] for i, k in enumerate(keys)}}
        out, losses = m.train({{"w": arrays["w"]}}, data, epochs=3, lr=0.05)
        assert np.all(np.isfinite(losses)) and len(losses) == 3, losses
        print(repr(float(losses[0])))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "nb")})
    assert done.returncode == 0, done.stderr[-3000:]
    first = api("fit")(fn, params, data=data, lr=0.05, epochs=1, progress=False).loss[0]
    assert float(done.stdout.strip().splitlines()[-1]) == pytest.approx(first, rel=1e-9)
    assert not marker.exists(), "a name was executed by the exported module"


# -- the CLI: symgrad derive FILE ----------------------------------------------------------------
def _cli():
    script = os.path.join(os.path.dirname(sys.executable), "symgrad")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "symgrad.cli"]


def _run_cli(args, cwd):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(_cli() + args, capture_output=True, text=True, timeout=600, cwd=cwd,
                          env=env)


@pytest.mark.slow
def test_cli_derive_with_hostile_hyperparameters_and_a_user_function(tmp_path):
    marker = tmp_path / "ran"
    names = [_payloads(marker)[k] for k in (1, 3, 6)]
    model = tmp_path / "model.py"
    model.write_text(textwrap.dedent(f"""
        import sympy as sp
        import symgrad as sg
        swishy = sg.elementwise("swishy", lambda x, beta: x * sg.sigmoid(beta * x),
                                params={{"beta": 1.5}})
        X, t, w = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",)), sg.param("w", ("d",))
        lam, mu, nu = (sp.Symbol(n, positive=True) for n in {names!r})
        loss = sg.mse(swishy(X @ w, beta=0.5), t) + lam * sg.l2(w) + mu * sg.sum(w) + nu * sg.l1(w)
        params = [w]
    """))
    for args in (["derive", str(model)], ["derive", str(model), "--latex"],
                 ["derive", str(model), "--output", str(tmp_path / "doc.tex")]):
        done = _run_cli(args, tmp_path)
        assert done.returncode == 0, (args, done.stderr[-3000:])
        assert "swishy" in (done.stdout if "--output" not in args
                            else (tmp_path / "doc.tex").read_text())
    assert not marker.exists(), "symgrad derive executed a name"


def test_cli_derive_refuses_a_hostile_body_naming_it(tmp_path):
    marker = tmp_path / "ran"
    model = tmp_path / "model.py"
    model.write_text(textwrap.dedent(f"""
        import sympy as sp
        import symgrad as sg
        bad = sg.elementwise("bad", lambda x: x + sp.Function({_payloads(marker)[1]!r})(x))
        X, w = sg.tensor("X", ("N", "d")), sg.param("w", ("d",))
        loss = sg.sum(bad(X @ w))
    """))
    done = _run_cli(["derive", str(model)], tmp_path)
    assert done.returncode != 0
    assert "cannot evaluate and print safely" in done.stderr and "open(" in done.stderr
    assert not marker.exists()

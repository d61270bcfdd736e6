"""User names are display text, never code.

Names are accepted verbatim for display (only empty names, line breaks and NUL are
rejected); generated code uses identifiers made by ``safe_identifier`` and shows user
names only in escaped comments; derivation LaTeX and DOT escape them; and nothing in
the package evaluates user text (a source scan below proves it).
"""
import ast
import io
import keyword
import os
import re
import tokenize

import numpy as np
import pytest

import symgrad as sg
from symgrad.errors import DeclarationError, DimError
from symgrad.graph.names import RESERVED_NAMES, RESERVED_PREFIX, comment_text, safe_identifier
from tests.reliability._support import ROOT, api, need, split

HOSTILE = [
    "x; import os", "__import__('os')", 'len("abc")', "x#y", "lambda", "class", "def", "None",
    "α", "x²", "np", "numba", "math", "range", "len", "_sg_t0", "_sg_out", "self", "__class__",
    "50%", "a}b{c", "a_b", "a&b$c", "\\alpha", "~^", "x y", "'", '"', "\\", "$(rm -rf /)",
    "{0}", "%s", "x[0]", "a.b", "1x", "Ω_1", "__builtins__", "print", "w", "W",
]
# One name per model that, if ever executed as code, leaves a file behind.
def _marker_names(path):
    p = str(path)
    return [f"__import__('pathlib').Path({p!r}).touch()",
            f"x\\\" or open({p!r}, 'w') or \\\"",
            f"y'); open({p!r}, 'w'); ('",
            f"z #\\nopen({p!r}, 'w')"]


# -- declaration -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_display_names_are_accepted_verbatim(name):
    x, p = sg.tensor(name, ("N",)), sg.param(name + "!", ("N",))
    assert x.name == name and p.name == name + "!"
    assert (x * p).named(name).name == name


@pytest.mark.parametrize("name", ["", "   ", "a\nb", "a\rb", "a\0b"])
def test_unprintable_names_are_rejected(name):
    with pytest.raises(DeclarationError, match="name"):
        sg.tensor(name, ("N",))


@pytest.mark.parametrize("dim", ["x; import os", "a b", "x#y", "1x", "", "x-y", "x.y"])
def test_dim_names_must_be_identifiers(dim):
    with pytest.raises(DimError, match=re.escape(repr(dim))):
        sg.tensor("A", ("N", dim))


@pytest.mark.parametrize("dim", ["lambda", "class", "α", "np", "_sg_n", "range", "N"])
def test_keyword_and_unicode_dims_are_accepted(dim):
    assert sg.tensor("A", (dim,)).dims == (dim,)


# -- safe identifiers and comments --------------------------------------------------------------
def test_safe_identifier_is_a_plain_unique_identifier():
    names = HOSTILE + [n + "!" for n in HOSTILE] + ["lambda_", "np_", "x_y", "x y", "x-y"]
    made = {}
    for name in names:
        ident = safe_identifier(name)
        assert ident.isidentifier() and ident.isascii(), name
        assert not keyword.iskeyword(ident) and not keyword.issoftkeyword(ident), name
        assert ident not in RESERVED_NAMES and not ident.startswith(RESERVED_PREFIX), name
        assert ident not in dir(__builtins__) or ident == name, name
        assert made.setdefault(ident, name) == name, f"{name!r} and {made[ident]!r} collide"


@pytest.mark.parametrize("name", HOSTILE + ["a\u2028b", "a\x1bb", "a\tb"])
def test_comment_text_is_one_printable_ascii_line(name):
    text = comment_text(name)
    assert text.isascii() and text.isprintable() and "\n" not in text and "\r" not in text


# -- derivations: LaTeX and DOT escape names ----------------------------------------------------------
def _model(xname, wname):
    X, w = sg.tensor(xname, ("N", "d")), sg.param(wname, ("d",))
    t = sg.tensor("t", ("N",))
    z = (X @ w).named(xname + " z")
    return sg.sum((t - sg.sigmoid(z)) ** 2), w


def _specials(latex):
    """Per line, the sequence of LaTeX-structural characters left after removing escapes."""
    stripped = re.sub(r"\\[{}$&#_%]|\\text[a-z]+\{\}|\\[A-Za-z]+", "", latex)
    return ["".join(ch for ch in line if ch in "{}$&#%") for line in stripped.splitlines()]


def _benign(name):
    """A plain name rendered the same way: Greek letter, single letter, or \\mathrm with
    the same trailing layer number."""
    from symgrad.diff.notation import split_name
    from symgrad.explain.printing import _GREEK
    stem, layer = split_name(name)
    if stem in _GREEK:
        return "theta" + layer
    if len(stem) == 1 and stem.isalpha():
        return "Q" + layer
    return "Qq" + layer


@pytest.mark.parametrize("name", HOSTILE)
def test_latex_escapes_names(name):
    benign = sg.derive(*_model(_benign(name), "vw"))
    hostile = sg.derive(*_model(name, name + "w"))
    want, got = benign.to_latex(), hostile.to_latex()
    assert len(want.splitlines()) == len(got.splitlines())
    # the same structure as with a benign name: no unescaped $ & # % from a name, and
    # braces that never close a group the name did not open
    for a, b in zip(_specials(want), _specials(got)):
        assert b == a, (name, got)


def test_latex_structure_check_catches_unescaped_names():
    assert _specials(r"&\text{data a}b{c: N}") != _specials(r"&\text{data Q: N}")
    assert _specials(r"&\text{data 50%: N}") != _specials(r"&\text{data Q: N}")
    assert _specials(r"&\text{data a\}b\{c: N}") == _specials(r"&\text{data Q: N}")


def _dot_ok(dot):
    for line in dot.splitlines():
        bare = re.sub(r"\\.", "", line)
        assert bare.count('"') % 2 == 0, line
        outside = re.sub(r'"[^"]*"', "", bare)
        assert outside.count("[") == outside.count("]"), line
        assert "->" not in outside or outside.count("->") == 1, line
        assert ";" not in outside.rstrip(";").replace("; labelloc=t", ""), line


@pytest.mark.parametrize("name", HOSTILE)
def test_dot_escapes_names(name):
    from symgrad.explain.graphview import graph_dot
    loss, w = _model(name, name + "w")
    data = {name: np.ones((2, 3)), name + "w": np.ones(3), "t": np.ones(2)}
    _dot_ok(graph_dot(loss, data))
    _dot_ok(graph_dot(sg.derive(loss, w), data))


# -- nothing evaluates user text -------------------------------------------------------------------
FORBIDDEN = {"eval", "exec", "compile", "sympify", "S", "parse_expr", "lambdify", "__import__",
             "exec_module", "import_module", "execfile", "run_path", "run_module", "loads",
             "system", "popen", "Popen", "call", "run", "check_output", "parse_latex"}
# (file, called name) -> (number of calls, why each is safe). Adding a call means adding a row.
ALLOWED = {
    ("symgrad/__init__.py", "import_module"): (2, "lazy exports: module names from a constant table"),
    ("symgrad/ops/_lazy.py", "import_module"): (
        1, "SymPy on first use: the module names are constants of symgrad.ops"),
    ("symgrad/codegen/cache.py", "exec_module"): (
        1, "imports a generated module from its file (the documented, exec-free import: Numba "
           "needs a real file); its text contains only generated identifiers"),
    ("symgrad/ops/api.py", "sympify"): (1, "numbers only (guarded by isinstance numbers.Real)"),
    ("symgrad/diff/index_eval.py", "sympify"): (1, "strict=True after rejecting str"),
    ("symgrad/explain/rules.py", "sympify"): (2, "SymPy expressions built by symgrad"),
    ("symgrad/diff/symbolic.py", "sympify"): (1, "index values: ints and SymPy symbols"),
    ("symgrad/train/sweep_run.py", "loads"): (
        1, "a sweep's payload, pickled by this sweep's own process and keyed by its SHA-256"),
    ("symgrad/explain/render.py", "run"): (1, "runs Graphviz's dot with DOT text on stdin"),
    ("symgrad/cli.py", "call"): (1, "`symgrad bench` runs python -m bench.<module> (fixed names)"),
    ("symgrad/cli.py", "run_path"): (1, "`symgrad derive FILE` runs the user's own model file, "
                                        "by explicit request, like `python FILE`"),
}
# Method names shared with harmless APIs: only flagged when called on these modules.
AMBIGUOUS = {"compile": {"re", "_re"}, "loads": {"pickle", "marshal", "json", "dill"},
             "call": {"subprocess"}, "run": {"subprocess"}, "system": {"os"},
             "popen": {"os"}, "S": {"sp", "sympy"}}


def _calls(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), filename=path)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
        if name not in FORBIDDEN:
            continue
        if name in AMBIGUOUS and isinstance(f, ast.Attribute):
            base = f.value.id if isinstance(f.value, ast.Name) else None
            if name == "compile" and base in AMBIGUOUS["compile"]:
                continue   # re.compile
            if name != "compile" and base not in AMBIGUOUS[name] and base is not None:
                continue   # e.g. model.run(...), json-free .loads on other objects
        if name == "compile" and isinstance(f, ast.Attribute):
            continue       # sg_compile / model.compile: symgrad's own compile, not builtins
        yield name, node.lineno


def test_package_never_evaluates_text():
    found = {}
    pkg = os.path.join(ROOT, "symgrad")
    for dirpath, _, files in os.walk(pkg):
        for fname in files:
            if fname.endswith(".py"):
                path = os.path.join(dirpath, fname)
                rel = os.path.relpath(path, ROOT).replace(os.sep, "/")
                for name, line in _calls(path):
                    found.setdefault((rel, name), []).append(line)
    unexpected = {k: v for k, v in found.items() if k not in ALLOWED}
    assert not unexpected, f"new eval-like calls (add a row to ALLOWED with a reason): {unexpected}"
    for key, lines in found.items():
        assert len(lines) <= ALLOWED[key][0], f"{key} is called {len(lines)} times at {lines}"


def test_formulas_are_never_parsed_from_text(tmp_path):
    loss, w = _model("X", "w")
    der = sg.derive(loss, w)
    marker = tmp_path / "ran"
    with pytest.raises(TypeError, match="not a string"):
        der.evaluate_formula(f"__import__('pathlib').Path({str(marker)!r}).touch()",
                             {"X": np.ones((2, 3)), "w": np.ones(3), "t": np.ones(2)})
    assert not marker.exists()


def test_scalar_api_does_not_sympify_strings(tmp_path):
    marker = tmp_path / "ran"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    for call in (lambda: sg.sigmoid(code), lambda: sg.grad(code, []),
                 lambda: sg.backprop(code, {})):
        with pytest.raises(DeclarationError):
            call()
    assert not marker.exists()


# -- compiled code with hostile names ------------------------------------------------------------
def _hostile_model(names):
    """A classifier whose tensors, params, dims and named nodes all carry hostile names."""
    a, b, c, d, e = names[:5]
    X = sg.tensor(a, ("lambda", "α"))
    y = sg.tensor(b, ("lambda",), dtype=int)
    W1, b1 = sg.param(c, ("α", "class")), sg.param(d, ("class",))
    W2 = sg.param(e, ("class", "np"))
    h = sg.tanh(X @ W1 + b1).named(names[5])
    logits = (h @ W2).named(names[6])
    return sg.cross_entropy(logits, y) + 1e-3 * sg.l2(W1), [W1, b1, W2], (X, y)


def _non_comment_text(source):
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.COMMENT:
            out.append(tok.string)
    return "\n".join(out)


@need("compile")
def test_compiled_hostile_names_run_no_injected_code(tmp_path):
    marker = tmp_path / "injected"
    names = _marker_names(marker) + ["x#y", "lambda", "np", "_sg_t0", "len(\"abc\")"]
    names = names[:7] if len(names) >= 7 else names
    loss, params, (X, y) = _hostile_model(names)
    model = api("compile")(loss, params=params)
    source = model.source
    ast.parse(source)                               # valid Python
    body = _non_comment_text(source)
    for n in names:
        if not n.isidentifier():
            assert n not in body, f"user name {n!r} reached generated code outside a comment"
    r = np.random.default_rng(0)
    data = {X.name: r.normal(size=(6, 4)), y.name: r.integers(0, 3, size=6),
            params[0].name: r.normal(size=(4, 5)), params[1].name: r.normal(size=5),
            params[2].name: r.normal(size=(5, 3))}
    p, d = split(data, params)
    value = model.loss(p, **d)
    grads = model.grad(p, **d)
    assert value == pytest.approx(float(sg.evaluate(loss, data)), rel=1e-10)
    want = sg.evaluate(sg.gradients(loss, params), data, context=loss)
    for prm, g in zip(params, want):
        np.testing.assert_allclose(grads[prm.name], g, rtol=1e-9, atol=1e-12)
    if hasattr(model, "export"):
        out = tmp_path / "exported.py"
        model.export(str(out))
        text = out.read_text(encoding="utf-8")
        ast.parse(text)
        for n in names:
            if not n.isidentifier():
                assert n not in _non_comment_text(text)
    if api("fit") is not None:
        api("fit")(model, p, d, lr=0.1, epochs=2, progress=False)
    assert not marker.exists(), "a user name was executed as code"


@pytest.mark.parametrize("name", [n for n in HOSTILE if n not in ("lambda",) and not n[-1].isdigit()])
def test_scalar_backprop_latex_and_dot_escape_names(name):
    import sympy as sp
    a, b = sp.Symbol(name, real=True), sp.Symbol(name + "w", real=True)
    q, v = sp.Symbol(_benign(name), real=True), sp.Symbol("vw", real=True)
    run, plain = sg.backprop((a + 2) * b, {a: 1.0, b: 3.0}), sg.backprop((q + 2) * v, {q: 1.0, v: 3.0})
    assert _specials(run.to_latex()) == _specials(plain.to_latex()), run.to_latex()
    _dot_ok(run.to_dot())

"""Bad input: one row per case, each rejected before any work with a specific exception
whose message names the tensor, dim, op or argument at fault.

Rows cover declaration (``sg.tensor``/``sg.param``/operators), ``sg.evaluate``,
``sg.check_grad``, ``sg.derive``, ``sg.compile`` (and a compiled model's ``loss``/``grad``)
and ``sg.fit``. Rows for stages that have not landed are skipped until they do.

Below the table: inputs that must be *accepted* and never give a wrong answer
(non-contiguous, read-only, Fortran-ordered, lists, integer data, float32), the dtype
rule, and the promise that user data and params are never modified.
"""
import re
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
import pytest

import symgrad as sg
from symgrad.errors import DataError, DeclarationError, DimError
from symgrad.graph import topo_order
from tests.reliability._argument_rows import argument_rows
from tests.reliability._support import (C, D, N, api, classifier, cls_data, need, no_work,
                                        reg_data, regression, split)

REG, REG_PARAMS = regression()
CLS, CLS_PARAMS = classifier()
X = next(n for n in topo_order(REG) if n.name == "X")
W = CLS_PARAMS[0]


def _tensor(name, dims, dtype=float):
    return sg.tensor(name, dims, dtype=dtype)


def _reg(**changes):
    """Regression data (params included) with some entries replaced or (None) removed."""
    data = reg_data()
    for k, v in changes.items():
        if v is None:
            data.pop(k)
        else:
            data[k] = v
    return data


def _cls(**changes):
    data = cls_data()
    for k, v in changes.items():
        if v is None:
            data.pop(k)
        else:
            data[k] = v
    return data


@dataclass
class Row:
    id: str
    call: object          # call(env) -> anything; env holds prepared models
    exc: type
    match: str            # regex the message must contain (names what is at fault)
    needs: tuple = ()     # public names the row needs ("compile", "fit")
    model: str = None     # env key of a model that must not compute (fit rows)
    marks: list = field(default_factory=list)


def _nan(shape):
    a = np.ones(shape)
    a.flat[1] = np.nan
    return a


# -- declaration ---------------------------------------------------------------------------
DECLARE = [
    Row("dims-not-names", lambda e: sg.tensor("A", ("N", 3)), DimError, r"dim 3 of tensor 'A'"),
    Row("dims-not-identifiers", lambda e: sg.tensor("A", ("N", "a b")), DimError,
        r"dim 'a b' of tensor 'A'"),
    Row("dims-bad-label", lambda e: sg.tensor("A", ("N", "N'x")), DimError,
        r"dim \"N'x\" of tensor 'A' must be a name"),
    Row("dims-not-iterable", lambda e: sg.param("p", 3), DimError, r"dims of param 'p'"),
    Row("dtype-complex", lambda e: sg.tensor("A", ("N",), dtype=complex), DeclarationError,
        r"tensor 'A': dtype must be float or int"),
    Row("name-empty", lambda e: sg.tensor("", ("N",)), DeclarationError, r"tensor name must not be empty"),
    Row("name-blank", lambda e: sg.param("  ", ("N",)), DeclarationError, r"param name must not be empty"),
    Row("name-not-str", lambda e: sg.tensor(3, ("N",)), DeclarationError, r"tensor name must be a str.*int"),
    Row("name-newline", lambda e: sg.tensor("a\nb", ("N",)), DeclarationError, r"line break"),
    Row("name-nul", lambda e: sg.param("a\0b", ()), DeclarationError, r"line break or NUL"),
    Row("rename-leaf", lambda e: X.named("Z"), DeclarationError, r"'X' is a input; its name is fixed"),
    Row("rename-node-badly", lambda e: (X @ W).named("a\nb"), DeclarationError, r"node name 'a\\nb' contains"),
    Row("where-int-mask", lambda e: sg.where(_tensor("y", ("N",), int), X, X), DimError,
        r"op 'where' takes floating-point tensors, but 'y'"),
    Row("matmul-contracted-dims", lambda e: X @ sg.param("v", ("e",)), DimError,
        r"cannot matmul 'X'.*'v'.*contracted dims 'd' and 'e' differ"),
    Row("matmul-3d", lambda e: _tensor("T", ("a", "b", "d")) @ sg.param("v", ("e",)), DimError,
        r"cannot matmul 'T'.*'v'.*contracted dims 'd' and 'e' differ"),
    Row("take-float-labels", lambda e: sg.take(X, _tensor("k", ("N",)), axis="d"), DimError,
        r"take: labels 'k' must be an integer tensor"),
    Row("take-labels-dims", lambda e: sg.take(X, _tensor("y", ("M",), int), axis="d"), DimError,
        r"take: labels 'y' have dims \('M',\), but 'X'"),
    Row("onehot-dim-not-name", lambda e: sg.onehot(_tensor("y", ("N",), int), 3), DimError,
        r"onehot: dim must be a dim name"),
    Row("clip-bounds", lambda e: sg.clip(X, 1.0, -1.0), DeclarationError,
        r"clip: lo=1.0 is larger than hi=-1.0"),
    Row("sympy-function-of-node", lambda e: sp.sin(X), TypeError,
        r"'X' is a symgrad tensor node.*sg\.sin.*sg\.elementwise"),
    Row("sympy-unknown-in-graph", lambda e: X * sp.Function("f")(sp.Symbol("a")), DeclarationError,
        r"cannot put the SymPy expression f\(a\) into a graph"),
    Row("hyper-complex-symbol", lambda e: X * sp.Symbol("z", real=False), DeclarationError,
        r"hyperparameter 'z' must be a real symbol"),
    Row("node-indexing", lambda e: X[0], TypeError, r"'X' cannot be indexed; .*sg\.take"),
    Row("axis-unknown-name", lambda e: sg.sum(X, axis="Q"), DimError, r"sum: 'X' has no dim 'Q'"),
    Row("axis-out-of-range", lambda e: sg.mean(X, axis=5), DimError, r"mean: axis 5 is out of range for 'X'"),
    Row("axis-not-int", lambda e: sg.max(X, axis=1.5), DimError, r"max: axis must be an int or a dim name"),
    Row("axis-twice", lambda e: sg.sum(X, axis=("d", 1)), DimError, r"sum: axis .* names a dim of 'X' twice"),
    Row("softmax-of-scalar", lambda e: sg.softmax(sg.param("s")), DimError,
        r"softmax needs a tensor with at least one dim, got scalar 's'"),
    Row("ce-label-dims", lambda e: sg.cross_entropy(X @ W, _tensor("yy", ("M",), int)), DimError,
        r"cross_entropy: integer labels 'yy' have dims \('M',\)"),
    Row("ce-onehot-dims", lambda e: sg.cross_entropy(X @ W, _tensor("Y", ("N", "K"))), DimError,
        r"cross_entropy: one-hot labels 'Y'"),
    Row("ce-scalar-logits", lambda e: sg.cross_entropy(sg.param("s"), _tensor("y0", (), int)),
        DimError, r"cross_entropy: logits 's' must have a class dim"),
    Row("bce-dims", lambda e: sg.binary_cross_entropy(sg.sigmoid(X @ sg.param("w", ("d",))),
                                                      _tensor("tt", ("M",))),
        DimError, r"binary_cross_entropy: prediction .* but target 'tt' has dims \('M',\)"),
    Row("int-tensor-in-float-op", lambda e: sg.exp(_tensor("y", ("N",), int)), DimError,
        r"op 'exp' takes floating-point tensors, but 'y' is an integer tensor"),
    Row("hinge-int-labels-dims", lambda e: sg.hinge(X, _tensor("y", ("M",), int)), DimError,
        r"hinge: integer labels 'y' with dims \('M',\) must have every dim"),
    Row("array-in-graph", lambda e: X + np.ones(3), DeclarationError,
        r"arrays cannot be mixed into a graph.*shape \(3,\)"),
    Row("tensor-exponent", lambda e: X ** X, DeclarationError, r"'X' \*\* 'X': the exponent must be a number"),
    Row("string-exponent", lambda e: X ** "2", DeclarationError, r"exponent must be a real number, got '2'"),
    Row("bool-constant", lambda e: X * True, DeclarationError, r"constant must be a real number, got True"),
    Row("reduce-non-node", lambda e: sg.sum(np.ones(3)), DeclarationError, r"sum takes a symgrad tensor node"),
    Row("activation-of-string", lambda e: sg.sigmoid("x"), DeclarationError,
        r"sigmoid: expected a symgrad node or a SymPy expression"),
    Row("truth-value", lambda e: bool(X), TypeError, r"'X' is symbolic; it has no truth value"),
]

# -- sg.evaluate -------------------------------------------------------------------------------
EVALUATE = [
    Row("eval-take-label-out-of-range", lambda e: sg.evaluate(
        sg.take(_tensor("S", ("N", "C")), _tensor("y", ("N",), int), axis="C"),
        {"S": np.ones((3, 4)), "y": [0, 1, 4]}), DataError,
        r"labels 'y' contain 4, outside the 4 classes of dim 'C'"),
    Row("eval-hinge-label-negative", lambda e: sg.evaluate(
        sg.hinge(_tensor("S", ("N", "C")), _tensor("y", ("N",), int)),
        {"S": np.ones((3, 4)), "y": [0, -1, 2]}), DataError, r"labels 'y' contain -1"),
    Row("eval-onehot-rows", lambda e: sg.evaluate(
        _tensor("S", ("N", "C")) * sg.tensor("Y", ("N", "C"), onehot="C"),
        {"S": np.ones((2, 2)), "Y": np.ones((2, 2))}), DataError,
        r"tensor 'Y' is declared one-hot along 'C'"),
    Row("eval-missing-hyperparameter", lambda e: sg.evaluate(
        _tensor("S", ("N",)) * sp.Symbol("lambda"), {"S": np.ones(2)}), DataError,
        r"missing hyperparameter 'lambda'"),
    Row("eval-wrong-ndim", lambda e: sg.evaluate(REG, _reg(X=np.ones(N))), DimError,
        r"'X' has dims \('N', 'd'\) \(2-D\) but got an array of shape \(5,\)"),
    Row("eval-dim-size-clash", lambda e: sg.evaluate(REG, _reg(t=np.ones(N + 1))), DimError,
        r"dim 'N' is \d in '\w' but \d in '\w'"),
    Row("eval-param-wrong-shape", lambda e: sg.evaluate(REG, _reg(w=np.ones(D + 1))), DimError,
        r"dim 'd' is 3 in 'X' but 4 in 'w'"),
    Row("eval-scalar-param-got-vector", lambda e: sg.evaluate(REG, _reg(b=np.ones(2))), DimError,
        r"'b' has dims \(\) \(0-D\) but got an array of shape \(2,\)"),
    Row("eval-missing-tensor", lambda e: sg.evaluate(REG, _reg(t=None)), DataError,
        r"missing tensor 't' \(dims \('N',\)\)"),
    Row("eval-missing-param", lambda e: sg.evaluate(REG, _reg(w=None)), DataError,
        r"missing param 'w'"),
    Row("eval-float-labels", lambda e: sg.evaluate(CLS, _cls(y=np.full(N, 0.5))), DataError,
        r"tensor 'y' holds integer labels but got non-integer floats"),
    Row("eval-nan-labels", lambda e: sg.evaluate(CLS, _cls(y=_nan(N))), DataError,
        r"tensor 'y' holds integer labels but got non-integer floats"),
    Row("eval-bool-labels", lambda e: sg.evaluate(CLS, _cls(y=np.ones(N, bool))), DataError,
        r"tensor 'y' holds integer labels, got dtype bool"),
    Row("eval-int-labels-for-onehot", lambda e: sg.evaluate(
        sg.cross_entropy(X @ W, _tensor("Y", ("N", "C"))), {**_cls(y=None), "Y": np.zeros(N, int)}),
        DimError, r"'Y' has dims \('N', 'C'\) \(2-D\) but got an array of shape \(5,\)"),
    Row("eval-labels-too-big", lambda e: sg.evaluate(CLS, _cls(y=np.full(N, C))), DataError,
        r"labels 'y' contain 4, outside the 4 classes of dim 'C' \(0..3\)"),
    Row("eval-labels-negative", lambda e: sg.evaluate(CLS, _cls(y=np.full(N, -1))), DataError,
        r"labels 'y' contain -1, outside the 4 classes of dim 'C'"),
    Row("eval-nan-in-data", lambda e: sg.evaluate(REG, _reg(X=_nan((N, D)))), DataError,
        r"tensor 'X' contains NaN or inf \(first at index \(0, 1\)\)"),
    Row("eval-inf-in-param", lambda e: sg.evaluate(REG, _reg(w=np.array([1, np.inf, 1.]))), DataError,
        r"param 'w' contains NaN or inf"),
    Row("eval-empty-data", lambda e: sg.evaluate(REG, _reg(X=np.ones((0, D)), t=np.ones(0))),
        DataError, r"dim 'N' has size 0"),
    Row("eval-string-dtype", lambda e: sg.evaluate(REG, _reg(w=np.array(["a", "b", "c"]))), DataError,
        r"param 'w' must be numeric, got dtype <U1"),
    Row("eval-complex-dtype", lambda e: sg.evaluate(REG, _reg(X=np.ones((N, D)) * 1j)), DataError,
        r"tensor 'X' must be numeric, got dtype complex128"),
    Row("eval-object-dtype", lambda e: sg.evaluate(REG, _reg(w=[1.0, None, 2.0])), DataError,
        r"param 'w' must be numeric, got dtype object"),
    Row("eval-data-not-dict", lambda e: sg.evaluate(REG, [1, 2]), TypeError,
        r"data must be a dict of name -> array, got list"),
    Row("eval-output-not-node", lambda e: sg.evaluate("x + 1", {}), DeclarationError,
        r"evaluate takes symgrad nodes, got str"),
    Row("eval-duplicate-leaf-names", lambda e: sg.evaluate(
        sg.sum(_tensor("A", ("N",))) + sg.sum(_tensor("A", ("M",))), {"A": np.ones(2)}),
        DeclarationError, r"two different leaves are named 'A'"),
]

# -- sg.check_grad -----------------------------------------------------------------------------
CHECK = [
    Row("check-unknown-name", lambda e: sg.check_grad(REG, REG_PARAMS, _reg(Z=np.ones(2))), DataError,
        r"unknown data 'Z'"),
    Row("check-missing-param", lambda e: sg.check_grad(REG, REG_PARAMS, _reg(w=None)), DataError,
        r"missing param 'w'"),
    Row("check-wrong-shape", lambda e: sg.check_grad(REG, REG_PARAMS, _reg(X=np.ones((N, D, 1)))),
        DimError, r"'X' has dims"),
    Row("check-labels-out-of-range", lambda e: sg.check_grad(CLS, CLS_PARAMS, _cls(y=np.full(N, 9))),
        DataError, r"labels 'y' contain 9"),
    Row("check-eps-zero", lambda e: sg.check_grad(REG, REG_PARAMS, _reg(), eps=0), ValueError,
        r"check_grad: eps must be a finite number > 0, got 0"),
    Row("check-tolerance-negative", lambda e: sg.check_grad(REG, REG_PARAMS, _reg(), tolerance=-1),
        ValueError, r"check_grad: tolerance must be a finite number > 0"),
    Row("check-directions", lambda e: sg.check_grad(REG, REG_PARAMS, _reg(), directions=-1),
        ValueError, r"check_grad: directions must be an int >= 0"),
    Row("check-param-not-in-loss", lambda e: sg.check_grad(REG, [sg.param("w", ("d",))], _reg()),
        DeclarationError, r"'w' does not appear in the loss"),
    Row("check-loss-not-scalar", lambda e: sg.check_grad(X @ REG_PARAMS[0], REG_PARAMS[:1], _reg()),
        DimError, r"the loss must be a scalar, but .* has dims \('N',\)"),
    Row("check-nan-data", lambda e: sg.check_grad(REG, REG_PARAMS, _reg(t=_nan(N))), DataError,
        r"tensor 't' contains NaN"),
]

# -- sg.derive ---------------------------------------------------------------------------------
DERIVE = [
    Row("derive-loss-not-node", lambda e: sg.derive("x**2", REG_PARAMS), DeclarationError,
        r"the loss must be a symgrad node, got str"),
    Row("derive-loss-not-scalar", lambda e: sg.derive(X @ REG_PARAMS[0], REG_PARAMS[0]), DimError,
        r"the loss must be a scalar, but .* has dims \('N',\)"),
    Row("derive-param-not-in-loss", lambda e: sg.derive(REG, sg.param("v", ("d",))), DeclarationError,
        r"'v' does not appear in the loss"),
    Row("derive-wrt-int-labels", lambda e: sg.derive(CLS, CLS.inputs[1]), DeclarationError,
        r"'y' is an integer tensor \(labels\); it has no gradient"),
    Row("derive-wrt-array", lambda e: sg.derive(REG, np.ones(3)), DeclarationError,
        r"params must be a param node or a list of them, got ndarray"),
    Row("derive-wrt-name", lambda e: sg.derive(REG, "w"), DeclarationError,
        r"params must be a param node or a list of them, got str: 'w'"),
    Row("derive-wrt-list-of-names", lambda e: sg.derive(REG, ["w"]), DeclarationError,
        r"can only differentiate with respect to declared params or tensors, got 'w'"),
    Row("derive-update-rule-unknown", lambda e: sg.derive(REG, REG_PARAMS).update_rule("q"), KeyError,
        r"'q' is not one of the derived params \(w, b\)"),
    Row("derive-formula-from-text", lambda e: sg.derive(REG, REG_PARAMS[0]).evaluate_formula(
        "__import__('os').getcwd()", reg_data()), TypeError, r"not a string"),
    Row("derive-formula-bad-data", lambda e: sg.derive(REG, REG_PARAMS[0]).evaluate_formula(
        sg.derive(REG, REG_PARAMS[0]).gradient, _reg(X=np.ones((N, D + 1)))), DimError, r"dim 'd'"),
    Row("gradients-params-twice", lambda e: sg.gradients(REG, [REG_PARAMS[1], REG_PARAMS[1]]),
        DeclarationError, r"'b' is listed twice in params"),
    Row("derive-params-not-list", lambda e: sg.derive(REG, {"w": REG_PARAMS[0]}), DeclarationError,
        r"params must be a param node or a list of them, got dict"),
    Row("gradients-wrt-unrelated", lambda e: sg.gradients(REG, [W]), DeclarationError,
        r"'W' does not appear in the loss"),
]


# -- sg.compile and compiled models --------------------------------------------------------------
def _compiled(e, which="reg"):
    return e[f"compiled_{which}"]


def _p(data, params):
    return split(data, params)


def _model_call(method, which, data):
    def call(e):
        params = REG_PARAMS if which == "reg" else CLS_PARAMS
        p, d = split(data(), params)
        return getattr(_compiled(e, which), method)(p, **d)
    return call


COMPILE = [
    Row("compile-wrt-data", lambda e: api("compile")(REG, params=[X]), DeclarationError,
        r"compile differentiates with respect to params .*'X'", ("compile",)),
    Row("compile-int-dtype", lambda e: api("compile")(REG, params=REG_PARAMS, dtype=np.int32),
        DeclarationError, r"dtype must be np.float64 or np.float32, got int32", ("compile",)),
    Row("compile-float16", lambda e: api("compile")(REG, params=REG_PARAMS, dtype=np.float16),
        DeclarationError, r"dtype must be np.float64 or np.float32, got float16", ("compile",)),
    Row("compile-loss-not-scalar", lambda e: api("compile")(X @ REG_PARAMS[0], params=REG_PARAMS[:1]),
        DimError, r"the loss must be a scalar", ("compile",)),
    Row("compile-param-not-in-loss", lambda e: api("compile")(REG, params=[sg.param("v", ("d",))]),
        DeclarationError, r"'v' does not appear in the loss", ("compile",)),
    Row("compile-loss-not-node", lambda e: api("compile")("sum(X)", params=[]), DeclarationError,
        r"the loss must be a symgrad node", ("compile",)),
    Row("compile-params-none", lambda e: api("compile")(REG, params=None), DeclarationError,
        r"params must be a param node or a list of them, got NoneType", ("compile",)),
    Row("compile-params-twice", lambda e: api("compile")(REG, params=[REG_PARAMS[0], REG_PARAMS[0]]),
        DeclarationError, r"'w' is listed twice in params", ("compile",)),
    Row("compile-outputs-not-nodes", lambda e: api("compile")(REG, params=REG_PARAMS, outputs=["X"]),
        DeclarationError, r"outputs must be graph nodes, got 'X'", ("compile",)),
    Row("compiled-params-not-dict", lambda e: _compiled(e).loss([1.0, 2.0], **split(reg_data(), REG_PARAMS)[1]),
        TypeError, r"params must be a dict of name -> array, got list", ("compile",)),
    Row("compiled-unknown-name", _model_call("loss", "reg", lambda: _reg(Z=np.ones(3))), DataError,
        r"unknown data 'Z'", ("compile",)),
    Row("compiled-unknown-param", lambda e: _compiled(e).loss(
        {"ww": np.ones(D), **split(reg_data(), REG_PARAMS)[0]}, **split(reg_data(), REG_PARAMS)[1]),
        DataError, r"unknown param 'ww'; the model's params are \[", ("compile",)),
    Row("compiled-scalar-param-vector", _model_call("grad", "reg", lambda: _reg(b=np.ones(1))), DimError,
        r"'b' has dims \(\) \(0-D\) but got an array of shape \(1,\)", ("compile",)),
    Row("compiled-output-unknown", lambda e: _compiled(e).output("nope", split(reg_data(), REG_PARAMS)[0],
                                                                  **split(reg_data(), REG_PARAMS)[1]),
        DataError, r"no node named 'nope' in the model", ("compile",)),
    Row("compiled-wrong-ndim", _model_call("loss", "reg", lambda: _reg(X=np.ones(N))), DimError,
        r"'X' has dims \('N', 'd'\)", ("compile",)),
    Row("compiled-dim-clash", _model_call("grad", "reg", lambda: _reg(t=np.ones(N + 2))), DimError,
        r"dim 'N' is", ("compile",)),
    Row("compiled-param-shape", _model_call("grad", "reg", lambda: _reg(w=np.ones((D, 1)))), DimError,
        r"'w' has dims \('d',\)", ("compile",)),
    Row("compiled-missing-data", _model_call("loss", "reg", lambda: _reg(t=None)), DataError,
        r"missing tensor 't'|'t'", ("compile",)),
    Row("compiled-missing-param", _model_call("loss", "reg", lambda: _reg(b=None)), DataError,
        r"'b'", ("compile",)),
    Row("compiled-float-labels", _model_call("loss", "cls", lambda: _cls(y=np.full(N, 1.5))), DataError,
        r"'y' holds integer labels", ("compile",)),
    Row("compiled-labels-out-of-range", _model_call("grad", "cls", lambda: _cls(y=np.full(N, C))),
        DataError, r"labels 'y' contain 4", ("compile",)),
    Row("compiled-nan", _model_call("grad", "reg", lambda: _reg(X=_nan((N, D)))), DataError,
        r"tensor 'X' contains NaN", ("compile",)),
    Row("compiled-empty", _model_call("loss", "reg", lambda: _reg(X=np.ones((0, D)), t=np.ones(0))),
        DataError, r"dim 'N' has size 0", ("compile",)),
    Row("compiled-string-param", _model_call("loss", "reg", lambda: _reg(w=np.array(list("abc")))),
        DataError, r"'w' must be numeric", ("compile",)),
]


# -- sg.fit ------------------------------------------------------------------------------------
def _fit(model_key="ref_reg", which="reg", **kw):
    def call(e):
        params = REG_PARAMS if which == "reg" else CLS_PARAMS
        data = kw.pop("data_fn", None)
        p, d = split((data or (reg_data if which == "reg" else cls_data))(), params)
        p = kw.pop("params", p)
        d = kw.pop("data", d)
        args = dict(lr=0.1, epochs=2, progress=False)
        args.update(kw)
        return api("fit")(e[model_key], p, d, **args)
    return call


def _fit_rows(model_key, needs, suffix):
    def row(rid, exc, match, **kw):
        which = "cls" if "cls" in rid else "reg"
        key = model_key.replace("reg", which)
        return Row(f"fit{suffix}-{rid}", _fit(key, which, **kw), exc, match, needs, key)
    return [
        row("lr-zero", ValueError, r"lr must be a finite number > 0, got 0", lr=0),
        row("lr-negative", ValueError, r"lr must be a finite number > 0, got -0.1", lr=-0.1),
        row("lr-nan", ValueError, r"lr must be a finite number > 0, got nan", lr=float("nan")),
        row("lr-missing", ValueError, r"lr is required", lr=None),
        row("epochs-zero", ValueError, r"epochs must be an int >= 1, got 0", epochs=0),
        row("epochs-float", ValueError, r"epochs must be an int >= 1, got 2.5", epochs=2.5),
        row("batch-size-too-big", ValueError, r"batch_size \(dim 'N' has 5 rows\) must be .*<= 5, got 6",
            batch_size=N + 1),
        row("batch-size-zero", ValueError, r"batch_size .* got 0", batch_size=0),
        row("batch-size-negative", ValueError, r"batch_size .* got -2", batch_size=-2),
        row("batch-size-float", ValueError, r"batch_size .* got 2.0", batch_size=2.0),
        row("momentum-one", ValueError, r"momentum must be a number in \[0, 1\), got 1.0", momentum=1.0),
        row("param-wrong-shape", DimError, r"'w'", params={"w": np.zeros(D + 1), "b": np.array(0.)}),
        row("param-wrong-dtype", DataError, r"param 'w' must be numeric",
            params={"w": np.array(list("abc")), "b": np.array(0.)}),
        row("param-nan", DataError, r"param 'b' contains NaN",
            params={"w": np.zeros(D), "b": np.array(np.nan)}),
        row("params-missing", DataError, r"params is missing \['b'\]", params={"w": np.zeros(D)}),
        row("params-unknown", DataError, r"params has unknown names \['v'\]",
            params={"w": np.zeros(D), "b": np.array(0.), "v": np.zeros(2)}),
        row("params-not-dict", TypeError, r"params must be a dict", params=[np.zeros(D), 0.0]),
        row("data-not-dict", TypeError, r"data must be a dict", data=[1, 2]),
        row("data-unknown", DataError, r"unknown data 'Z'",
            data={"X": np.ones((N, D)), "t": np.ones(N), "Z": np.ones(N)}),
        row("data-holds-params", DataError, r"data contains \['w', 'b'\], which are params",
            data=reg_data()),
        row("data-missing", DataError, r"missing tensor 't'", data={"X": np.ones((N, D))}),
        row("data-wrong-ndim", DimError, r"'X' has dims \('N', 'd'\)",
            data={"X": np.ones((N, D, 2)), "t": np.ones(N)}),
        row("data-dim-clash", DimError, r"dim 'N' is", data={"X": np.ones((N, D)), "t": np.ones(N + 1)}),
        row("data-nan", DataError, r"tensor 't' contains NaN", data={"X": np.ones((N, D)), "t": _nan(N)}),
        row("data-empty", DataError, r"dim 'N' has size 0", data={"X": np.ones((0, D)), "t": np.ones(0)}),
        row("validation-dims", DimError, r"validation_data: .*'X'",
            validation_data={"X": np.ones((2, D + 1)), "t": np.ones(2)}),
        row("cls-float-labels", DataError, r"tensor 'y' holds integer labels",
            data={"X": np.ones((N, D)), "y": np.full(N, 0.5)}),
        row("cls-labels-out-of-range", DataError, r"labels 'y' contain 7",
            data={"X": np.ones((N, D)), "y": np.full(N, 7)}),
    ]


FIT = _fit_rows("ref_reg", ("fit",), "") + _fit_rows("compiled_reg", ("fit", "compile"), "-compiled")
# every entry point's plain arguments (flags, seeds, choices, dtypes, estimators, the CLI)
ARGUMENTS = argument_rows(Row, _fit)

ROWS = DECLARE + EVALUATE + CHECK + DERIVE + COMPILE + FIT + ARGUMENTS


def _param(row):
    marks = [need(n) for n in row.needs] + list(row.marks)
    return pytest.param(row, id=row.id, marks=marks)


@pytest.fixture(scope="module")
def env():
    """Models the rows call, built once (outside the no-work guard)."""
    out = {}
    fit_available = api("fit") is not None
    if fit_available:
        from symgrad.train import NumpyModel
        out["ref_reg"] = NumpyModel(REG, REG_PARAMS)
        out["ref_cls"] = NumpyModel(CLS, CLS_PARAMS)
    if api("compile") is not None:
        out["compiled_reg"] = api("compile")(REG, params=REG_PARAMS)
        out["compiled_cls"] = api("compile")(CLS, params=CLS_PARAMS)
    return out


def test_row_ids_are_unique():
    ids = [r.id for r in ROWS]
    assert len(ids) == len(set(ids))
    assert len(ROWS) >= 100


@pytest.mark.parametrize("row", [_param(r) for r in ROWS])
def test_bad_input_is_rejected_first(row, env, monkeypatch):
    model = env.get(row.model) if row.model else None
    # Fit rows own a model that must not compute; other compiled-model rows must not
    # generate code. (A compiled model's own ``loss``/``grad`` check the data and are
    # the thing under test, so they are left callable.)
    with no_work(monkeypatch, model):
        with pytest.raises(row.exc) as info:
            row.call(env)
    message = str(info.value.args[0]) if isinstance(info.value, KeyError) else str(info.value)
    assert re.search(row.match, message), f"{row.id}: {message!r} does not match {row.match!r}"


def test_errors_subclass_the_builtin_a_user_expects():
    assert issubclass(DimError, ValueError) and issubclass(DataError, ValueError)
    assert issubclass(DeclarationError, ValueError)
    assert issubclass(sg.SymgradError, Exception)
    for exc in (DimError, DataError, DeclarationError, sg.MissingRuleError, sg.DivergenceError):
        assert issubclass(exc, sg.SymgradError)


# -- accepted inputs: never a wrong answer ------------------------------------------------------
def _variants(arr):
    """The same values as a non-contiguous view, Fortran order, read-only, a list."""
    wide = np.zeros(arr.shape[:-1] + (2 * arr.shape[-1],)) if arr.ndim else None
    out = {"read-only": arr.copy(), "list": arr.tolist()}
    out["read-only"].setflags(write=False)
    if arr.ndim:
        wide[..., ::2] = arr
        out["strided"] = wide[..., ::2]
        out["fortran"] = np.asfortranarray(arr)
        out["reversed"] = arr[::-1].copy()[::-1]
    return out


def _reference(loss, params, data):
    value = float(sg.evaluate(loss, data))
    grads = sg.evaluate(sg.gradients(loss, params), data, context=loss)
    return value, grads


@pytest.mark.parametrize("which", ["reg", "cls"])
def test_unusual_layouts_are_accepted_and_exact(which):
    loss, params = (REG, REG_PARAMS) if which == "reg" else (CLS, CLS_PARAMS)
    data = reg_data() if which == "reg" else cls_data()
    want_v, want_g = _reference(loss, params, data)
    compiled = api("compile")(loss, params=params) if api("compile") else None
    for name, arr in data.items():
        for kind, alt in _variants(np.asarray(arr)).items():
            trial = {**data, name: alt}
            got_v, got_g = _reference(loss, params, trial)
            # equal up to BLAS summation order (a Fortran-ordered X may change it by an ulp)
            assert got_v == pytest.approx(want_v, rel=1e-14, abs=1e-15), (name, kind)
            for a, b in zip(got_g, want_g):
                np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15, err_msg=f"{name} {kind}")
            if compiled is not None:
                p, d = split(trial, params)
                assert compiled.loss(p, **d) == pytest.approx(want_v, rel=1e-12, abs=1e-12)
                got = compiled.grad(p, **d)
                for prm, g in zip(params, want_g):
                    np.testing.assert_allclose(got[prm.name], np.broadcast_to(g, np.shape(data[prm.name])),
                                               rtol=1e-10, atol=1e-12, err_msg=f"{name} {kind}")


def test_integer_data_and_integral_float_labels_are_cast():
    data = reg_data()
    data_int = {**data, "X": np.rint(data["X"] * 10).astype(np.int32)}
    want = float(sg.evaluate(REG, {**data, "X": data_int["X"].astype(float)}))
    assert float(sg.evaluate(REG, data_int)) == want
    cdata = cls_data()
    assert float(sg.evaluate(CLS, {**cdata, "y": cdata["y"].astype(float)})) == \
        float(sg.evaluate(CLS, cdata))
    assert float(sg.evaluate(CLS, {**cdata, "y": cdata["y"].astype(np.uint8)})) == \
        float(sg.evaluate(CLS, cdata))


def test_integer_and_bool_params_are_cast_to_float():
    data = reg_data()
    as_int = {**data, "w": np.array([1, -2, 3])}
    want = float(sg.evaluate(REG, {**data, "w": np.array([1.0, -2.0, 3.0])}))
    assert float(sg.evaluate(REG, as_int)) == want
    g = sg.evaluate(sg.gradients(REG, REG_PARAMS), as_int, context=REG)[0]
    assert g.dtype == np.float64


def test_dtype_rule_evaluator():
    """The evaluator computes in float64 unless told otherwise; float32 inputs are cast up."""
    data = reg_data()
    d32 = {k: np.asarray(v, dtype=np.float32) for k, v in data.items()}
    out = sg.evaluate(REG, d32)
    assert out.dtype == np.float64
    assert float(out) == float(sg.evaluate(REG, {k: v.astype(np.float64) for k, v in d32.items()}))
    mixed = {**data, "X": d32["X"]}
    assert sg.evaluate(REG, mixed).dtype == np.float64
    assert sg.evaluate(REG, data, float_dtype=np.float32).dtype == np.float32


@need("compile")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dtype_rule_compiled(dtype):
    """Compute dtype is chosen at compile; every float input (float32 or float64) is cast to it."""
    model = api("compile")(REG, params=REG_PARAMS, dtype=dtype)
    data = reg_data()
    p, d = split(data, REG_PARAMS)
    other = np.float32 if dtype == np.float64 else np.float64
    mixed = {k: np.asarray(v, dtype=other) for k, v in d.items()}
    mixed_p = {"w": np.asarray(p["w"], dtype=other), "b": p["b"]}
    cast = {k: np.asarray(v, dtype=other).astype(dtype) for k, v in d.items()}
    cast_p = {"w": np.asarray(p["w"], dtype=other).astype(dtype), "b": np.asarray(p["b"], dtype)}
    assert model.loss(mixed_p, **mixed) == model.loss(cast_p, **cast)
    g = model.grad(mixed_p, **mixed)
    assert g["w"].dtype == np.dtype(dtype)
    tol = 1e-12 if dtype == np.float64 else 1e-4
    ref = float(sg.evaluate(REG, {**cast, **cast_p}))
    assert model.loss(mixed_p, **mixed) == pytest.approx(ref, rel=tol)


@need("fit")
def test_dtype_rule_fit_casts_to_model_dtype():
    from symgrad.train import NumpyModel
    data = reg_data()
    p, d = split(data, REG_PARAMS)
    d32 = {k: v.astype(np.float32) for k, v in d.items()}
    hist = api("fit")(NumpyModel(REG, REG_PARAMS), p, d32, lr=0.1, epochs=2, progress=False)
    assert hist.params["w"].dtype == np.float64


# -- user arrays are never modified ----------------------------------------------------------
def _frozen(data):
    out = {}
    for k, v in data.items():
        a = np.array(v, copy=True)
        a.setflags(write=False)
        out[k] = a
    return out


def _assert_same(before, after):
    for k in before:
        np.testing.assert_array_equal(before[k], after[k], err_msg=k)


def test_evaluator_check_grad_and_derive_never_modify_inputs():
    for loss, params, data in ((REG, REG_PARAMS, reg_data()), (CLS, CLS_PARAMS, cls_data())):
        frozen, copy = _frozen(data), {k: np.array(v) for k, v in data.items()}
        _reference(loss, params, frozen)          # read-only arrays: a write would raise
        assert sg.check_grad(loss, params, frozen).ok
        der = sg.derive(loss, params)
        der.evaluate_formula(der.gradients[params[0].name], frozen, free=params[0].name)
        _assert_same(copy, frozen)


def _model_and_data(kind, loss, params, data):
    """The NumPy reference model or the compiled one, and the data split into params/data."""
    from symgrad.train import NumpyModel
    model = NumpyModel(loss, params) if kind == "reference" else api("compile")(loss, params=params)
    return (model, *split(data, params))


@need("fit")
@pytest.mark.parametrize("kind", ["reference", pytest.param("compiled", marks=need("compile"))])
def test_fit_and_compiled_models_never_modify_inputs(kind):
    model, p, d = _model_and_data(kind, REG, REG_PARAMS, reg_data())
    fp, fd = _frozen(p), _frozen(d)
    cp, cd = {k: v.copy() for k, v in fp.items()}, {k: v.copy() for k, v in fd.items()}
    model.loss(fp, **fd)
    model.grad(fp, **fd)
    hist = api("fit")(model, fp, fd, lr=0.1, epochs=3, batch_size=2, momentum=0.5, progress=False,
                      validation_data=fd)
    _assert_same(cp, fp)
    _assert_same(cd, fd)
    assert not np.array_equal(hist.params["w"], cp["w"])   # it did train, on a copy
    # writable inputs are not written either
    wp, wd = {k: v.copy() for k, v in cp.items()}, {k: v.copy() for k, v in cd.items()}
    api("fit")(model, wp, wd, lr=0.1, epochs=3, progress=False)
    _assert_same(cp, wp)
    _assert_same(cd, wd)


@need("fit")
@pytest.mark.parametrize("kind", ["reference", pytest.param("compiled", marks=need("compile"))])
def test_fit_accepts_unusual_layouts_with_identical_results(kind):
    model, p, d = _model_and_data(kind, CLS, CLS_PARAMS, cls_data())
    kw = dict(lr=0.5, epochs=4, batch_size=2, seed=3, progress=False)
    want = api("fit")(model, p, d, **kw)
    wide = np.zeros((N, 2 * D))
    wide[:, ::2] = d["X"]
    odd = {"X": wide[:, ::2], "y": d["y"].astype(np.int32)[::-1].copy()[::-1]}
    odd_p = {"W": np.asfortranarray(p["W"])}
    got = api("fit")(model, odd_p, odd, **kw)
    np.testing.assert_allclose(got.loss, want.loss, rtol=1e-13)
    np.testing.assert_allclose(got.params["W"], want.params["W"], rtol=1e-13)


# -- minibatches need a batch dim they can slice -------------------------------------------------
def _batch_dim_models():
    x, t = sg.tensor("x", ("K", "N")), sg.tensor("t", ("N",))
    p = sg.param("p", ("K",))
    q = sg.param("q", ("N",))
    return (sg.mse(x.T @ p, t), [p], {"x": np.ones((3, 4)), "t": np.ones(4)}, {"p": np.zeros(3)}), \
        (sg.mse(q, t), [q], {"t": np.ones(4)}, {"q": np.zeros(4)})


@need("fit")
@need("compile")
@pytest.mark.parametrize("which", [0, 1], ids=["batch-dim-not-leading", "param-on-batch-dim"])
def test_compiled_minibatches_refuse_unsliceable_layouts(which):
    loss, params, data, init = _batch_dim_models()[which]
    model = api("compile")(loss, params=params)
    with pytest.raises(DataError, match=r"cannot take minibatches along dim 'N'.*'[xq]'"):
        api("fit")(model, init, data, lr=0.1, epochs=2, batch_size=2, progress=False)
    api("fit")(model, init, data, lr=0.1, epochs=2, progress=False)   # full batch is fine


@need("fit")
def test_fit_refuses_minibatches_of_a_param_with_the_batch_dim(monkeypatch):
    from symgrad.train import NumpyModel
    loss, params, data, init = _batch_dim_models()[1]
    model = NumpyModel(loss, params)
    with no_work(monkeypatch, model):
        with pytest.raises((DataError, DeclarationError), match="'q'"):
            api("fit")(model, init, data, lr=0.1, epochs=2, batch_size=2, progress=False)

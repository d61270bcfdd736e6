"""Numbers from a matrix-form formula, to check it against the index form.

Vectors are two-dimensional here (a column or a row, as the formula reads them), so
a wrong transpose shows up as a shape error or a wrong number, not as broadcasting.
"""
import numpy as np
import sympy as sp

from symgrad.diff.index_eval import _function
from symgrad.explain.matrix import MatrixFormError, Mx


def shaped_arrays(values, orientation):
    out = {}
    for name, v in values.items():
        arr = np.asarray(v)
        if arr.ndim == 1 and name in orientation:
            arr = arr.reshape((1, -1) if orientation[name] == "row" else (-1, 1))
        out[name] = arr
    return out


def _flat(a):
    a = np.asarray(a, dtype=float)
    return a.reshape(-1) if a.ndim == 2 and 1 in a.shape and a.size == max(a.shape) and \
        a.shape != (1, 1) else (a.reshape(()) if a.size == 1 and a.ndim == 2 else a)


def _shaped(x, arr):
    arr = np.asarray(arr)
    if x.is_scalar:
        return arr
    if x.rows is None or x.cols is None:
        return arr.reshape(1, -1) if x.rows is None else arr.reshape(-1, 1)
    return arr


def evaluate(x, env, index_sizes, sizes):
    """NumPy value of matrix expression ``x`` (names looked up in ``env``)."""
    ev = lambda y: evaluate(y, env, index_sizes, sizes)  # noqa: E731
    if x.op == "scalar":
        subs = {s: env.get(s.name, sizes.get(s.name)) for s in x.args[0].free_symbols}
        return float(x.args[0].xreplace({k: sp.Float(v) for k, v in subs.items()}))
    if x.op == "name":
        return _shaped(x, env[x.args[0]])
    if x.op == "ones":
        return np.ones((sizes[str(index_sizes[x.args[0]])], 1))
    if x.op == "T":
        return ev(x.args[0]).T
    if x.op == "mm":
        a, b = (ev(y) for y in x.args)
        return a @ b
    if x.op == "had":
        out = ev(x.args[0])
        for y in x.args[1:]:
            out = out * ev(y)
        return out
    if x.op == "add":
        return sum(ev(y) for y in x.args)
    if x.op == "scale":
        return ev(Mx("scalar", (x.args[0],))) * ev(x.args[1])
    if x.op == "pow":
        return ev(x.args[0]) ** x.args[1]
    if x.op == "fn":
        return np.vectorize(_function(x.args[0]), otypes=[float])(ev(x.args[1]))
    if x.op == "softmax":
        s = ev(x.args[0])
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if x.op == "onehot":
        name, k = x.args
        return np.eye(sizes[str(index_sizes[k])])[np.asarray(env[name], dtype=int)]
    raise MatrixFormError(f"cannot evaluate {x.op}")

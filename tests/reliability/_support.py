"""Shared pieces of the reliability suite: the public entry points (some land later),
small models with good data, and a guard proving a call failed before doing any work."""
import contextlib
import importlib
import os

import numpy as np
import pytest

import symgrad as sg
from symgrad.graph.registry import OPS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def codegen_ready():
    """True once the compiler has landed: marked by ``.codegen-done`` while it is being
    written, then committed (in the git index); outside a checkout, always."""
    if os.path.exists(os.path.join(ROOT, ".codegen-done")):
        return True
    index = os.path.join(ROOT, ".git", "index")
    if not os.path.exists(index):
        return True
    with open(index, "rb") as f:
        return b"symgrad/codegen/model.py" in f.read()


def api(name):
    """``sg.<name>`` if the public API has it, else the stage's own export, else None."""
    if name == "compile" and not codegen_ready():
        return None
    try:
        return getattr(sg, name)   # compile and fit load lazily on first use
    except Exception:  # noqa: BLE001 - a stage being written may not import yet
        return None


def need(name):
    """A skip marker for rows and tests that need ``sg.<name>``."""
    return pytest.mark.skipif(api(name) is None, reason=f"sg.{name} has not landed yet")


# -- small models ---------------------------------------------------------------------------
N, D, C = 5, 3, 4


def regression():
    X, t = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",))
    w, b = sg.param("w", ("d",)), sg.param("b")
    return sg.mse(X @ w + b, t), [w, b]


def classifier():
    X, y = sg.tensor("X", ("N", "d")), sg.tensor("y", ("N",), dtype=int)
    W = sg.param("W", ("d", "C"))
    return sg.cross_entropy(X @ W, y), [W]


def reg_data(seed=0):
    r = np.random.default_rng(seed)
    return {"X": r.normal(size=(N, D)), "t": r.normal(size=N), "w": r.normal(size=D),
            "b": np.array(0.5)}


def cls_data(seed=0):
    r = np.random.default_rng(seed)
    return {"X": r.normal(size=(N, D)), "y": r.integers(0, C, size=N),
            "W": r.normal(size=(D, C))}


def split(data, params):
    names = {p.name for p in params}
    return ({k: v for k, v in data.items() if k in names},
            {k: v for k, v in data.items() if k not in names})


# -- "before any work" ---------------------------------------------------------------------
def _forbidden(what):
    def fail(*args, **kwargs):
        raise AssertionError(f"{what} ran before the bad input was rejected")
    return fail


@contextlib.contextmanager
def no_work(monkeypatch, model=None):
    """Inside: no op's NumPy meaning runs, no generated module is written, and ``model``
    (a compiled or reference model handed to fit) is never asked to compute."""
    with monkeypatch.context() as m:
        for op in OPS.values():
            m.setattr(op, "numpy", _forbidden(f"op {op.name!r}"))
        if codegen_ready():
            try:
                cache = importlib.import_module("symgrad.codegen.cache")
                m.setattr(cache, "store", _forbidden("code generation (cache.store)"))
            except Exception:  # noqa: BLE001
                pass
        if model is not None:
            for attr in ("run_epochs", "loss", "grad", "loss_and_grad"):
                if callable(getattr(model, attr, None)):
                    m.setattr(model, attr, _forbidden(f"model.{attr}"))
        yield

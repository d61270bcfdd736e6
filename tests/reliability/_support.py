"""Shared pieces of the reliability suite: the public entry points,
small models with good data, and a guard proving a call failed before doing any work."""
import contextlib
import importlib
import os

import numpy as np
import pytest

import symgrad as sg
from symgrad.graph.registry import OPS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def api(name):
    """``sg.<name>``: compile and fit load lazily on first use; an import failure is a
    test failure, never a skip."""
    return getattr(sg, name)


def need(name):
    """Marks rows and tests that use ``sg.<name>`` (for readability: it never skips, and a
    missing entry point fails here, loudly)."""
    api(name)
    return pytest.mark.uses(name)


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
        cache = importlib.import_module("symgrad.codegen.cache")
        m.setattr(cache, "store", _forbidden("code generation (cache.store)"))
        if model is not None:
            for attr in ("run_epochs", "loss", "grad", "loss_and_grad"):
                if callable(getattr(model, attr, None)):
                    m.setattr(model, attr, _forbidden(f"model.{attr}"))
        yield

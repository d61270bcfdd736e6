"""SymPy on first use: importing symgrad, declaring graphs and running a cached compiled
model never import it (it takes ~0.4 s); deriving, explaining and generating code do.

``sp`` stands for the ``sympy`` module and ``F`` for :mod:`symgrad.ops.functions` (the
SymPy function classes): each imports its module at the first attribute read, which
module-level code never does (it wraps such reads in :func:`deferred`). A value can be
a SymPy object only once SymPy is imported, so :func:`is_sympy` asks without importing.
"""
import importlib
import sys


class LazyModule:
    """A module imported at the first attribute read; attributes are then cached here."""

    def __init__(self, name):
        self.__dict__["_lazy_name"] = name

    def __getattr__(self, attr):
        value = getattr(importlib.import_module(self._lazy_name), attr)
        self.__dict__[attr] = value
        return value

    def __repr__(self):
        return f"<lazy module {self._lazy_name!r}>"


sp = LazyModule("sympy")
F = LazyModule("symgrad.ops.functions")


def deferred(module, attr):
    """A function calling ``module.attr``, looked up (and its module imported) at the
    first call."""
    def call(*args, **kwargs):
        return getattr(module, attr)(*args, **kwargs)
    call.__name__ = call.__qualname__ = attr
    return call


def is_sympy(value, kind="Basic"):
    """Whether ``value`` is an instance of ``sympy.<kind>``, without importing SymPy."""
    sympy = sys.modules.get("sympy")
    return sympy is not None and isinstance(value, getattr(sympy, kind))

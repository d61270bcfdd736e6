"""Compile: emit a readable Python module per model, cache it on disk, JIT it with Numba.

``compile(loss, params)`` -> :class:`CompiledModel` (loss, gradients, outputs, the
fused training loop ``run_epochs`` and ``export``). See docs/codegen.md.
"""
from symgrad.codegen.model import CompiledModel, compile  # noqa: A004

__all__ = ["CompiledModel", "compile"]

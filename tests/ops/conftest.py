"""Ops a test module makes with sg.elementwise (and the derivative ops its tests make) are
removed again when the module ends, so tests elsewhere that compare against the whole
registry (every op must have a case, every op must be reached) see only the ops that
importing symgrad and the test modules defines."""
import pytest

from symgrad.graph.registry import OPS
from symgrad.ops import body as B
from symgrad.ops import custom as C


@pytest.fixture(scope="module", autouse=True)
def forget_generated_ops():
    before = set(C.CUSTOM)
    yield
    made = set(C.CUSTOM) - before
    for name in made:
        op = C.CUSTOM.pop(name)
        OPS.pop(name, None)
        B.GENERATED.pop(op.func, None)
        C._HELPER_SOURCES.pop(op.helper_name, None)
        if getattr(C.CLASSES, op.display, None) is op.func:
            delattr(C.CLASSES, op.display)
    for op in C.CUSTOM.values():          # a kept op whose derivative went is remade on use
        if isinstance(op._derivative, C.Custom) and op._derivative.name in made:
            op._derivative = None

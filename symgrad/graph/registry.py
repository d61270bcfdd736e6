"""The op table: one :class:`OpDef` per operation, filled by ``symgrad.ops``.

The table lives in the declare layer so nodes can be built and validated
without knowing any particular op; the entries (meaning, shape rule, derivative
rule, NumPy meaning, emitted code) live together in ``symgrad/ops``.
"""
from dataclasses import dataclass, field
from typing import Callable, Optional

from symgrad.errors import MissingRuleError


@dataclass
class OpDef:
    """Everything symgrad knows about one operation.

    name     the op's name, as nodes store it.
    family   "leaf", "elementwise", "reduction", "linalg" or "loss".
    infer    (inputs, attrs) -> (dims, dtype); raises DimError naming tensors and dims.
    element  (ctx, node, idx) -> SymPy expression of one output element (index notation).
    numpy    (node, *arrays) -> ndarray: the reference meaning, numerically stable.
    vjp      one entry per input: (g, node) -> Node, the adjoint contribution built
             from other ops; None marks an input with no gradient (e.g. labels).
    local    optional (ctx, node, k, idx_out, idx_in) -> SymPy local gradient, for ops
             whose raw SymPy derivative is unreadable (softmax, cross-entropy).
    label    short text for graph pictures.
    code     codegen hooks (scalar templates, loop templates), read by symgrad.codegen.
    lower    optional (inputs, attrs) -> Node or None: a spelling of this op in other ops,
             used when it applies (e.g. ``@`` with a 3-D operand is a sum of a product).
    constant True for piecewise-constant ops (masks, comparisons, step): no gradient
             flows through them, so reverse mode treats their output as data.
    """

    name: str
    family: str
    infer: Callable
    element: Callable
    numpy: Callable
    vjp: tuple = ()
    local: Optional[Callable] = None
    label: str = ""
    code: dict = field(default_factory=dict)
    doc: str = ""
    constant: bool = False
    lower: Optional[Callable] = None


OPS: dict = {}


def register(opdef):
    """Add ``opdef`` to the table; names are unique."""
    if opdef.name in OPS:
        raise ValueError(f"op {opdef.name!r} is registered twice")
    OPS[opdef.name] = opdef
    return opdef


def get_op(name):
    try:
        return OPS[name]
    except KeyError:
        raise MissingRuleError(f"op {name!r} is not registered") from None


def vjp_rule(node, k):
    """The derivative rule of ``node``'s input ``k``; a clear error when there is none."""
    op = get_op(node.op)
    if k >= len(op.vjp) or op.vjp[k] is None:
        raise MissingRuleError(
            f"op {node.op!r} has no derivative rule for its input {k} "
            f"({node.inputs[k].display}); register one in symgrad/ops")
    return op.vjp[k]

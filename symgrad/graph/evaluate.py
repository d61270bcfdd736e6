"""The NumPy evaluator: the reference meaning of any graph, forward or backward.

It is deliberately plain (one NumPy call per node, in topological order) so it
can serve as the oracle compiled code is tested against.
"""
import numpy as np

from symgrad.errors import DeclarationError, DimError
from symgrad.graph.arguments import check_float_dtype, describe
from symgrad.graph.bind import bind
from symgrad.graph.node import Node
from symgrad.graph.registry import get_op
from symgrad.graph.traverse import topo_order


def run_graph(outputs, arrays, sizes, float_dtype=np.float64):
    """Evaluate ``outputs`` given leaf arrays (node -> ndarray) and dim sizes."""
    values = {}
    for node in topo_order(outputs):
        if node in arrays:
            values[node] = arrays[node]
        elif node.op == "const":
            values[node] = float_dtype(node.attrs["value"])
        elif node.op in ("input", "param"):
            raise KeyError(f"no value bound for {node.display}")
        else:
            args = [values[x] for x in node.inputs]
            try:
                out = get_op(node.op).numpy(node, sizes, *args)
            except KeyError as err:
                _check_sizes(node, sizes)
                raise err
            values[node] = np.asarray(out, dtype=float_dtype)
    return values


def evaluate(outputs, values, float_dtype=np.float64, context=None):
    """Evaluate one node (returns an array) or a list of nodes (returns a list).

    ``values`` maps tensor and param names (or nodes) to arrays; they are checked
    against the declared dims first. Names the outputs do not use are ignored, so
    one data dict serves every node of a model. ``context`` (a node or list, e.g. the
    loss) lends its tensors' dims to outputs that cannot bind them alone, such as a
    gradient that is a broadcast constant.
    """
    single = not isinstance(outputs, (list, tuple))
    outs = [outputs] if single else list(outputs)
    for o in outs:
        if not isinstance(o, Node):
            raise DeclarationError(f"evaluate takes symgrad nodes, got {type(o).__name__}: {o!r}")
    float_dtype = check_float_dtype(float_dtype, "float_dtype").type
    extra = [] if context is None else [context] if not isinstance(context, (list, tuple)) \
        else list(context)
    if not all(isinstance(c, Node) for c in extra):
        raise TypeError("context must be None, a node (the loss) or a list of nodes, got "
                        f"{describe(context)}")
    arrays, sizes = bind(outs + extra, values, float_dtype, strict=False)
    result = run_graph(outs, arrays, sizes, float_dtype)
    got = [result[o] for o in outs]
    return got[0] if single else got


def _check_sizes(node, sizes):
    """Turn a missing dim size into an error that names the dim and the node."""
    for d in node.dims + tuple(node.attrs.get("dims", ())):
        if d not in sizes:
            raise DimError(f"the size of dim {d!r} (used by {node.display}) is not known "
                           "from the data of these outputs; pass context=<the loss>")

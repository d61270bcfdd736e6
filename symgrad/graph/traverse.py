"""Walking graphs: topological order, consumers, leaves."""
import weakref
from collections import defaultdict


# root -> its order. A graph never changes once built (inputs are fixed at construction),
# so the walk of one root is done once: fit, sweeps and every compiled call ask again.
_ORDERS = weakref.WeakKeyDictionary()


def topo_order(outputs):
    """Every node the ``outputs`` depend on, inputs before consumers (iterative DFS)."""
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    if len(outputs) == 1:
        order = _ORDERS.get(outputs[0])
        if order is None:
            order = _ORDERS[outputs[0]] = tuple(_walk(outputs))
        return list(order)
    return _walk(outputs)


def _walk(outputs):
    order, seen = [], set()
    for root in outputs:
        if id(root) in seen:
            continue
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((x, False) for x in reversed(node.inputs) if id(x) not in seen)
    return order


def consumers(order):
    """node -> list of (consumer, input slot), for the nodes in ``order``."""
    table = defaultdict(list)
    for node in order:
        for k, x in enumerate(node.inputs):
            table[x].append((node, k))
    return table


def leaves(outputs, kind):
    """The leaves of one kind ("input" or "param") in first-use order."""
    return [n for n in topo_order(outputs) if n.op == kind]


def dim_names(outputs):
    """All dim names used by the graph, in first-use order."""
    seen = {}
    for node in topo_order(outputs):
        for d in node.dims:
            seen.setdefault(d, None)
    return list(seen)


def batch_dim(tensors):
    """The dim minibatches slice: one every data tensor has ("N" if it is one, else the
    first such dim of the first tensor); with no common dim, the first tensor's first
    dim; None without data. One rule for the compiled loop and the reference loop."""
    tensors = [n for n in tensors if n.dims]
    if not tensors:
        return None
    common = set(tensors[0].dims).intersection(*(n.dims for n in tensors[1:]))
    if "N" in common:
        return "N"
    return next((d for d in tensors[0].dims if d in common), tensors[0].dims[0])

"""Declare: nodes with named dims, data tensors, params and the op table."""
from symgrad.graph.node import FLOAT, INT, Node, apply, as_node, const, param, tensor
from symgrad.graph.registry import OPS, OpDef, get_op, register
from symgrad.graph.traverse import consumers, dim_names, leaves, topo_order

__all__ = ["FLOAT", "INT", "Node", "OPS", "OpDef", "apply", "as_node", "const", "consumers",
           "dim_names", "get_op", "leaves", "param", "register", "tensor", "topo_order"]

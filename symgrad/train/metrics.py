"""Metrics computed between training chunks: accuracy from the model's prediction node.

The prediction node and the labels are found in the loss graph itself (the inputs of
its ``cross_entropy`` or binary cross-entropy node), so ``fit`` can report accuracy for
any classifier a user declares, not only the ready-made ``symgrad.nn`` models.
"""
import numpy as np

from symgrad.graph.node import INT, Node
from symgrad.graph.traverse import topo_order


class Head:
    """What accuracy is measured on: a score node, the labels tensor, and their kind.

    ``kind`` is ``"multiclass"`` (argmax of scores vs integer or one-hot labels),
    ``"binary_logits"`` (score > 0 vs target > 0.5) or ``"binary_probs"`` (p > 0.5).
    """

    def __init__(self, scores, labels, kind):
        self.scores, self.labels, self.kind = scores, labels, kind

    def predict(self, scores):
        """Class predictions from the score node's values."""
        if self.kind == "multiclass":
            return np.argmax(scores, axis=-1)
        threshold = 0.0 if self.kind == "binary_logits" else 0.5
        return (scores > threshold).astype(np.int64)

    def truth(self, labels):
        labels = np.asarray(labels)
        if self.kind == "multiclass":
            return labels if self.labels.dtype == INT else np.argmax(labels, axis=-1)
        return (labels > 0.5).astype(np.int64)

    def accuracy(self, scores, labels):
        return float(np.mean(self.predict(scores) == self.truth(labels)))


def find_head(loss):
    """The classification head of ``loss``, or None for regression losses."""
    for node in reversed(topo_order(loss)):
        if node.op == "cross_entropy":
            return _leaf_labels(node.inputs[0], node.inputs[1], "multiclass")
        if node.op == "bce_logits":
            return _leaf_labels(node.inputs[0], node.inputs[1], "binary_logits")
        if node.op == "clog" and node.inputs[0].op != "sub":
            # binary_cross_entropy on probabilities: t * clog(p) + (1 - t) * clog(1 - p)
            target = _bce_target(loss, node)
            if target is not None:
                return Head(node.inputs[0], target, "binary_probs")
    return None


def _leaf_labels(scores, labels, kind):
    # Accuracy compares against the labels as passed in the data, so they must be a tensor.
    return Head(scores, labels, kind) if labels.op == "input" else None


def _bce_target(loss, clog_node):
    """The data tensor multiplying ``clog(p)`` in the probabilities form of BCE."""
    for node in topo_order(loss):
        if node.op == "mul" and clog_node in node.inputs:
            other = node.inputs[0] if node.inputs[1] is clog_node else node.inputs[1]
            if isinstance(other, Node) and other.op == "input":
                return other
    return None


def head_from(loss, output=None, labels=None):
    """The head to measure accuracy on: detected, or given as ``output``/``labels`` nodes."""
    head = find_head(loss)
    if output is None and labels is None:
        return head
    from symgrad.train.reference import find_node
    scores = find_node(loss, output) if output is not None else (head and head.scores)
    target = find_node(loss, labels) if labels is not None else (head and head.labels)
    if scores is None or target is None:
        return None
    multiclass = target.dtype == INT or len(scores.dims) > len(target.dims)
    binary = "binary_probs" if scores.op == "sigmoid" else "binary_logits"  # threshold 0.5 or 0
    kind = head.kind if head is not None else ("multiclass" if multiclass else binary)
    return Head(scores, target, kind)

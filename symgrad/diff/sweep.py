"""The symbolic sweep behind ``sg.derive``: chain-rule steps and closed forms.

Two adjoints are kept per node: the *step* form, written with the consumers'
adjoint symbols (what a derivation shows line by line), and the *closed* form,
with upstream adjoints substituted (what an update rule shows). A closed form
that would nest sums keeps that adjoint as a named symbol with a "where"
definition, so formulas stay the size a lecture writes.
"""
from dataclasses import dataclass, field

import sympy as sp

from symgrad.diff.notation import Notation
from symgrad.diff.reverse import check_loss, check_params, relevant_nodes
from symgrad.diff.symbolic import adjoint_step, combine, rename
from symgrad.graph.traverse import consumers

TRANSPARENT = ("transpose",)


@dataclass
class Sweep:
    loss: object
    params: list
    notation: Notation
    order: list                                  # relevant forward nodes, topological
    steps: dict = field(default_factory=dict)    # node -> AdjointStep (result: step form)
    closed: dict = field(default_factory=dict)   # node -> closed-form adjoint
    kept: list = field(default_factory=list)     # adjoints left named in closed forms
    aux: list = field(default_factory=list)      # helper nodes (softmax in cross-entropy)


def sweep(loss, params, notation=None):
    check_loss(loss)
    params = check_params(loss, params)
    notation = notation or Notation([loss], loss=loss)
    order = relevant_nodes(loss, params)
    used_by = consumers(order)
    s = Sweep(loss, params, notation, order)
    s.closed[loss] = sp.S.One
    for v in reversed(order[:-1] if order[-1] is loss else order):
        _visit(s, v, [(c, k) for c, k in used_by[v] if c in s.closed])
    return s


def _visit(s, v, consumer_list):
    step = adjoint_step(s.notation, v, consumer_list, s.aux)
    step.edges = _flatten_transparent(s, step.edges)
    step.result = sp.Add(*combine(s.notation, step, lambda c, idx: _step_upstream(s, c, idx)))
    closed = sp.Add(*combine(s.notation, step, lambda c, idx: _closed_upstream(s, c, idx)))
    s.steps[v] = step
    s.closed[v] = closed
    if closed.has(sp.Sum) and v not in s.params and v.op not in TRANSPARENT:
        s.kept.append(v)


def _flatten_transparent(s, edges):
    """Edges through a transpose are the transpose's own edges (indices match by name)."""
    out = []
    for e in edges:
        if e.consumer.op in TRANSPARENT:
            out.extend(s.steps[e.consumer].edges)
        else:
            out.append(e)
    return out


def _step_upstream(s, c, idx):
    return sp.S.One if c is s.loss else s.notation.adjoint(c, idx)


def _closed_upstream(s, c, idx):
    if c is s.loss:
        return sp.S.One
    if c in s.kept:
        return s.notation.adjoint(c, idx)
    return rename(s.closed[c], s.notation.canonical(c), idx)

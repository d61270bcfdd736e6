"""``sg.derive``: the derivation of a loss's gradients, as data, text and LaTeX.

The gradients shown are computed by the same reverse sweep that yields them
(:mod:`symgrad.diff.sweep`): nothing is re-derived for display.
"""
import numpy as np

import sympy as sp

from symgrad.diff.index_eval import eval_index_expr

from symgrad.diff.reverse import backward, check_params
from symgrad.diff.simplify import textbook
from symgrad.diff.sweep import sweep as run_sweep
from symgrad.explain.latex_doc import derivation_latex
from symgrad.graph.arguments import check_derive_params
from symgrad.explain.matrix_rules import matrix_rules
from symgrad.explain.rules import ALPHA, Definitions, UpdateRule, UpdateRules
from symgrad.explain.slides import derivation_slides
from symgrad.explain.where import Where, inline_generic, needed
from symgrad.explain.steps import (HEADINGS, Step, chain_steps, declare_steps, model_steps,
                                   section_of)
from symgrad.graph.bind import bind
from symgrad.graph.evaluate import run_graph
from symgrad.graph.traverse import topo_order


class Derivation:
    """The gradients of ``loss`` with respect to ``params``, with every step recorded."""

    def __init__(self, loss, params):
        single = not isinstance(params, (list, tuple))
        self.params = check_params(loss, params)
        # derived in textbook form: the identities a textbook would use, applied first
        self.written, (self.loss, self.identities) = loss, textbook(loss)
        self._single = single and len(self.params) == 1
        self._sweep = run_sweep(self.loss, self.params)
        self.notation = self._sweep.notation
        self.forward = topo_order(self.loss)
        self._steps = None
        self._grad_nodes = None
        self._definitions = None
        self._ranks = None
        self._inlined = None

    # -- results ------------------------------------------------------------------
    @property
    def gradients(self):
        """{param name: SymPy expression of dL/dparam in index notation}."""
        return dict(self._readable[0])

    @property
    def gradient(self):
        """dL/dparam for a single param (a dict of them for several)."""
        g = self.gradients
        return next(iter(g.values())) if self._single else g

    @property
    def backward_graph(self):
        """{param name: gradient node}: the numeric backward graph."""
        if self._grad_nodes is None:
            grads, _ = backward(self.loss, self.params)
            self._grad_nodes = {p.name: grads[p] for p in self.params}
        return self._grad_nodes

    @property
    def symbols(self):
        """Name -> SymPy object (IndexedBase, Symbol, index or dim size) used in the formulas."""
        out = {}
        for node, name in self.notation.names.items():
            out[name] = self.notation.base(name, not node.dims)
            out["bar_" + name] = self.notation.base("bar_" + name, not node.dims)
        for node in self.forward:
            for d in node.dims:
                out.setdefault(self.notation.letter(d), self.notation.index(d))
                out.setdefault(d, self.notation.size(d))
        out["alpha"] = ALPHA
        return out

    @property
    def ranks(self):
        """Display order of factors: nearest the loss first, params then data last."""
        if self._ranks is None:
            self._ranks = self._compute_ranks()
        return self._ranks

    def _compute_ranks(self):
        n = len(self.forward)
        ranks = {}
        for pos, node in enumerate(self.forward):
            name = self.notation.names.get(node)
            if name is None or "symbol" in node.attrs:
                continue          # hyperparameters print with the numbers, as alpha does
            ranks[name] = n - pos + (2 * n if node.op == "param" else 4 * n if node.op == "input" else 0)
        for node in self._sweep.aux:
            ranks[self.notation.names[node]] = 0.5
        return ranks

    def _param(self, param):
        if param is None:
            if len(self.params) != 1:
                raise ValueError("this derivation has several params; name one: "
                                 + ", ".join(p.name for p in self.params))
            return self.params[0]
        for p in self.params:
            if p is param or p.name == param:
                return p
        raise KeyError(f"{param!r} is not one of the derived params "
                       f"({', '.join(p.name for p in self.params)})")

    @property
    def definitions(self):
        """The shared "where" definitions of every symbol the gradients use."""
        if self._definitions is None:
            s = self._sweep
            self._definitions = Definitions(self.notation, [s.closed[p] for p in self.params],
                                            self.forward + s.aux, s.kept, s.closed)
        return self._definitions

    @property
    def where(self):
        """Mapping: each auxiliary the gradients use (``sigma[i]``, ``bar_h[i, k]``) -> its
        definition (also by name: ``der.where["sigma"]``)."""
        return Where(self._readable[1])

    @property
    def _readable(self):
        """The gradients and their where-definitions as printed: short definitions with
        generic names (u, S, e) written in where they are used."""
        if self._inlined is None:
            s = self._sweep
            grads = {p.name: s.closed[p] for p in self.params}
            pairs = self.definitions.needed_by(sp.Add(*grads.values()))
            self._inlined = inline_generic(grads, pairs)
        return self._inlined

    def expanded(self, param=None):
        """The gradient with every auxiliary substituted: only data, params,
        hyperparameters and dim sizes remain (a dict for several params)."""
        where = self.where
        if param is None and not self._single:
            return {name: where.expand(g) for name, g in self.gradients.items()}
        return where.expand(self.gradients[self._param(param).name])

    def update_rule(self, param=None, lr=ALPHA, form="index"):
        """``p <- p - lr dL/dp`` in the lecture's terms; several params give
        :class:`UpdateRules` (a list sharing one where-block).

        ``form="matrix"``: the same rules with transposes, Hadamard products and sums
        over the batch as products with ones (``w <- w + 2 alpha X^T delta``); raises
        :class:`~symgrad.explain.matrix.MatrixFormError` for a rule that has no matrix form.
        """
        if form not in ("index", "matrix"):
            raise ValueError(f"update_rule form must be 'index' or 'matrix', got {form!r}")
        if form == "matrix":
            return matrix_rules(self, self.update_rule(param, lr))
        if param is None and len(self.params) > 1:
            rules = [self.update_rule(p, lr) for p in self.params]
            where = needed(sp.Add(*[r.gradient for r in rules]), self._readable[1])
            return UpdateRules(rules, where, self.ranks)
        p = self._param(param)
        grad = self.gradients[p.name]
        where = needed(grad, self._readable[1])
        return UpdateRule(p, self.notation.symbol(p, self.notation.canonical(p)), grad, where,
                          self.ranks, lr)

    # -- numbers -------------------------------------------------------------------
    def symbol_values(self, data):
        """Arrays for every symbol the formulas use (nodes, adjoints ``bar_*``, dim sizes)."""
        arrays, sizes = bind([self.loss], data)
        _, adj = backward(self.loss, self.params)
        named = {n: name for n, name in self.notation.names.items() if n.op != "transpose"}
        bars = {n: adj.adjoint[n] for n in named if n in adj.adjoint}
        values = run_graph(list(named) + list(bars.values()), arrays, sizes)
        out = {name: values[n] for n, name in named.items()}
        out.update({"bar_" + named[n]: values[g] for n, g in bars.items()})
        return out, dict(sizes)

    def evaluate_formula(self, expr, data, free=None):
        """Evaluate a printed formula (e.g. ``gradient``) at ``data``; ``free`` names the
        node whose dims give the free indices (default: the single param)."""
        if isinstance(expr, str):
            raise TypeError("evaluate_formula takes a SymPy expression (e.g. der.gradient), "
                            "not a string: symgrad never parses text as code")
        arrays, sizes = self.symbol_values(data)
        node = self._param(free) if not hasattr(free, "dims") else free
        idx = self.notation.canonical(node)
        shape = [sizes[d] for d in node.dims]
        out = np.empty(shape)
        for pos in np.ndindex(*shape):
            env = {idx[d]: v for d, v in zip(node.dims, pos)}
            out[pos] = eval_index_expr(expr, arrays, sizes, env)
        return out

    # -- steps ---------------------------------------------------------------------
    @property
    def steps(self):
        if self._steps is None:
            self._steps = self._build_steps()
        return self._steps

    def _build_steps(self):
        ranks = self.ranks
        out = declare_steps(self.loss, self.notation) + model_steps(self.notation, self.forward, self.loss, ranks)
        for v in reversed(self._sweep.order):
            if v is self.loss or v.op == "transpose" or v not in self._sweep.steps:
                continue
            out += chain_steps(self.notation, self._sweep, v, ranks)
        out.append(_rule_step(self.update_rule()))
        return out

    # -- rendering -------------------------------------------------------------------
    def to_text(self):
        return "\n".join(_section_text(self.steps))

    __str__ = to_text

    def __repr__(self):
        names = ", ".join(p.name for p in self.params)
        return f"<Derivation of dL/d({names}): {len(self.steps)} steps>"

    def to_latex(self, document=False, title=None):
        """An ``aligned`` block (Jupyter, pasting), or with ``document=True`` a standalone
        article that pdflatex builds: sections, page breaks, lines that fit the page."""
        return derivation_latex(self, document=document, title=title)

    def _repr_latex_(self):
        return "$$" + self.to_latex() + "$$"

    def to_slides(self, title=None):
        """A Beamer deck: one frame per stage, the chain-rule steps revealed one by one."""
        return derivation_slides(self, title=title)

def _rule_step(rule):
    return Step("update", getattr(rule, "param", None), str(rule), rule.to_latex())


def _section_text(steps):
    last = None
    for step in steps:
        section = section_of(step)
        if section != last and section in HEADINGS:
            yield f"-- {HEADINGS[section]} --"
            last = section
        yield step.text


def derive(loss, params):
    """Derive dL/dparams by the chain rule; see :class:`Derivation`."""
    check_derive_params(params)
    return Derivation(loss, params)

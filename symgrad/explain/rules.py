"""Update rules and their "where" definitions, in the lecture's own terms."""
import sympy as sp

from symgrad.diff.symbolic import ElementContext
from symgrad.explain.printing import to_latex, to_text

ALPHA = sp.Symbol("alpha", positive=True)


def referenced_nodes(notation, exprs, candidates):
    """The candidate nodes whose symbols (or adjoint symbols) occur in ``exprs``."""
    names = set()
    for e in exprs:
        for atom in sp.sympify(e).atoms(sp.IndexedBase, sp.Symbol):
            names.add(str(atom.label) if isinstance(atom, sp.IndexedBase) else atom.name)
    return [n for n in candidates if notation.names.get(n) in names
            or f"bar_{notation.names.get(n)}" in names]


def definitions(notation, roots, forward, kept, closed):
    """(lhs, rhs) pairs defining every symbol ``roots`` use: kept adjoints, then nodes.

    Nodes that no formula refers to are written out inside the definitions that
    use them, so ``sigma_i = sigma(sum_j X_ij w_j)`` rather than ``sigma_i = sigma(z_i)``.
    """
    exprs = list(roots)
    adj = []
    frontier = referenced_nodes(notation, exprs, [k for k in kept])
    while frontier:
        node = frontier.pop(0)
        if node in adj or f"bar_{notation.names[node]}" not in _names(exprs):
            continue
        adj.append(node)
        exprs.append(closed[node])
        frontier.extend(referenced_nodes(notation, [closed[node]], kept))
    candidates = [n for n in forward if not n.is_leaf and n.op != "transpose"]
    # Nodes the user named are always shown by name, never written out.
    named = [n for n in candidates if n.name is not None]
    shown = _closure(notation, exprs + [notation.symbol(n, notation.canonical(n)) for n in named
                                        if _depends(n, exprs, notation)], candidates)
    inline = frozenset(n for n in candidates if n not in shown)
    pairs = [(notation.adjoint(n, notation.canonical(n)), closed[n]) for n in adj]
    for node in [n for n in candidates if n in shown]:
        ctx = ElementContext(notation, inline=inline)
        idx = notation.canonical(node)
        pairs.append((notation.symbol(node, idx), ctx.element(node, idx)))
    return pairs


def _depends(node, exprs, notation):
    """True if some symbol in ``exprs`` is computed from ``node``."""
    from symgrad.graph.traverse import topo_order
    names = _names(exprs)
    return any(notation.names.get(n) in names for n in notation.names
               if n is not node and node in topo_order(n))


def _names(exprs):
    out = set()
    for e in exprs:
        for atom in sp.sympify(e).atoms(sp.IndexedBase, sp.Symbol):
            out.add(str(atom.label) if isinstance(atom, sp.IndexedBase) else atom.name)
    return out


def _closure(notation, exprs, candidates):
    """Forward nodes referenced by ``exprs`` or by the definitions of referenced nodes."""
    shown = set(referenced_nodes(notation, exprs, candidates))
    todo = list(shown)
    while todo:
        node = todo.pop()
        inline = frozenset(n for n in candidates if n not in shown and n is not node)
        ctx = ElementContext(notation, inline=inline)
        expr = ctx.element(node, notation.canonical(node))
        for ref in referenced_nodes(notation, [expr], candidates):
            if ref not in shown:
                shown.add(ref)
                todo.append(ref)
    return shown


class UpdateRule:
    """``p <- p - alpha dL/dp`` for one parameter, with its where-definitions."""

    def __init__(self, param, lhs, gradient, where, ranks, lr=ALPHA):
        self.param = param
        self.lhs = lhs
        self.gradient = gradient
        self.lr = lr
        self.step = -lr * gradient
        self.rhs = lhs + self.step
        self.where = where
        self._ranks = ranks

    def _rhs(self, printer):
        step = self.step
        if step.could_extract_minus_sign():
            return f"{printer(self.lhs, self._ranks)} - {printer(-step, self._ranks)}"
        return f"{printer(self.lhs, self._ranks)} + {printer(step, self._ranks)}"

    def __str__(self):
        lines = [f"{to_text(self.lhs, self._ranks)} <- {self._rhs(to_text)}"]
        for k, (lhs, rhs) in enumerate(self.where):
            lead = "  where " if k == 0 else "        "
            lines.append(f"{lead}{to_text(lhs, self._ranks)} = {to_text(rhs, self._ranks)}")
        return "\n".join(lines)

    __repr__ = __str__

    def to_latex(self):
        rows = [r"%s &\leftarrow %s" % (to_latex(self.lhs, self._ranks), self._rhs(to_latex))]
        for k, (lhs, rhs) in enumerate(self.where):
            word = r"\text{where } " if k == 0 else ""
            rows.append(r"%s%s &= %s" % (word, to_latex(lhs, self._ranks), to_latex(rhs, self._ranks)))
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"

    def _repr_latex_(self):
        return "$$" + self.to_latex() + "$$"

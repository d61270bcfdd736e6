"""The steps of a derivation: model, loss, chain rule per node, local gradient,
simplification, result. Each step carries its text and LaTeX forms."""
import re
from dataclasses import dataclass

import sympy as sp

from symgrad.diff.symbolic import ElementContext
from symgrad.explain.printing import latex_name, latex_text, to_latex, to_text
from symgrad.graph.traverse import topo_order

FULL_LOSS_MAX_NODES = 12

# Sections of a derivation, in order, and the step kinds that belong to each.
HEADINGS = {"declare": "Declared", "model": "Model", "loss": "Loss",
            "chain": "Backward pass (chain rule, from the loss down)", "update": "Update rules"}
_SECTION_OF = {"local": "chain", "result": "chain", "simplify": "chain"}


def section_of(step):
    return _SECTION_OF.get(step.kind, step.kind)


@dataclass
class Step:
    kind: str      # "declare", "model", "loss", "chain", "local", "simplify", "gradient", "update"
    node: object
    text: str
    latex: str
    # For page layout (symgrad.explain.layout): the left side in LaTeX and the right side,
    # as a SymPy expression or as LaTeX pieces already split at top-level "+".
    lhs_latex: str = None
    rhs: object = None
    rhs_pieces: tuple = ()

    def __str__(self):
        return self.text


def _eq(lhs, rhs, ranks=None):
    """(text, latex, lhs_latex, rhs): the fields of a ``lhs = rhs`` step."""
    lhs_latex = to_latex(lhs, ranks)
    return (f"{to_text(lhs, ranks)} = {to_text(rhs, ranks)}",
            f"{lhs_latex} &= {to_latex(rhs, ranks)}", lhs_latex, rhs)


def declare_latex(node, notation=None):
    """``\text{data } X : N \times d`` (math mode; dims joined by a real times sign)."""
    kind = "data" if node.op == "input" else "parameter"
    kind = "hyperparameter" if "symbol" in node.attrs else kind
    name = notation.names.get(node, node.name) if notation is not None else node.name
    dims = r" \times ".join(dim_latex(d) for d in node.dims) if node.dims else r"\text{scalar}"
    extra = r" \ \text{(integer)}" if node.dtype == "int" else ""
    return r"\text{%s } %s : %s%s" % (kind, latex_name(name), dims, extra)


def dim_latex(dim):
    r"""A dim name in math: ``N``, ``D_{0}`` for ``D0``, ``\mathrm{batch}``."""
    m = re.fullmatch(r"([A-Za-z]+)(\d+)", dim)
    stem, sub = (m.group(1), m.group(2)) if m else (dim, "")
    body = stem if len(stem) == 1 and stem.isalpha() else r"\mathrm{%s}" % latex_text(stem)
    return body + (r"_{%s}" % sub if sub else "")


def declare_steps(loss, notation=None):
    out = []
    for node in topo_order(loss):
        if node.op in ("input", "param"):
            kind = "data" if node.op == "input" else "parameter"
            kind = "hyperparameter" if "symbol" in node.attrs else kind
            dims = " x ".join(node.dims) if node.dims else "scalar"
            text = f"{kind} {node.name}: {dims}{' (integer)' if node.dtype == 'int' else ''}"
            out.append(Step("declare", node, text, declare_latex(node, notation)))
    return out


def model_steps(notation, forward, loss, ranks):
    """One definition per forward node, then the loss written out in full."""
    out = []
    for node in forward:
        if node.is_leaf or node.op == "transpose" or node in notation.literal:
            continue
        idx = notation.canonical(node)
        rhs = ElementContext(notation).element(node, idx)
        out.append(Step("model", node, *_eq(notation.symbol(node, idx), rhs, ranks=ranks)))
    inline = frozenset(n for n in forward if not n.is_leaf and n is not loss)
    if len(inline) <= FULL_LOSS_MAX_NODES:
        # Written out in full only while it fits on a line or two; a deep network's
        # loss is read from the model definitions above.
        full = ElementContext(notation, inline=inline).element(loss, {})
        out.append(Step("loss", loss, *_eq(notation.symbol(loss, {}), full, ranks=ranks)))
    return out


def _display_local(edge, idx_v):
    """Replace consumer indices tied to the node's by Kronecker deltas; report the rest."""
    sub = {}
    for f in sp.Mul.make_args(edge.local):
        if isinstance(f, sp.KroneckerDelta):
            a, b = f.args
            if a in edge.idx_c.values() and b in idx_v.values():
                sub[a] = b
            elif b in edge.idx_c.values() and a in idx_v.values():
                sub[b] = a
    idx_c = {d: sub.get(s, s) for d, s in edge.idx_c.items()}
    summed = [s for s in edge.idx_c.values() if s not in sub]
    return idx_c, edge.local.xreplace(sub), summed


def chain_steps(notation, sweep, v, ranks):
    """bar_v = sum_c bar_c dc/dv (chain rule), the local gradients, and the results."""
    step = sweep.steps[v]
    idx_v = step.idx
    bar_v = notation.adjoint(v, idx_v)
    parts, locals_ = [], []
    for e in step.edges:
        idx_c, local, summed = _display_local(e, idx_v)
        up = sp.S.One if e.consumer is sweep.loss else notation.adjoint(e.consumer, idx_c)
        c_sym, v_sym = notation.symbol(e.consumer, idx_c), notation.symbol(v, idx_v)
        partial = sp.Derivative(c_sym, v_sym) if not v_sym.is_Number else sp.S.Zero
        parts.append((up, partial, summed))
        text, latex, lhs_l, rhs = _eq(partial, local, ranks=ranks)
        locals_.append(Step("local", v, "  local: " + text, latex, lhs_l, rhs))
    chain_text = " + ".join(_chain_text(up, d, s, ranks, to_text) for up, d, s in parts)
    pieces = [_chain_text(up, d, s, ranks, to_latex) for up, d, s in parts]
    pieces = pieces[:1] + ["+ " + p for p in pieces[1:]]
    lhs_t, lhs_l = to_text(bar_v, ranks), to_latex(bar_v, ranks)
    out = [Step("chain", v, f"{lhs_t} = {chain_text}", f"{lhs_l} &= {' '.join(pieces)}",
                lhs_l, None, tuple(pieces))]
    out += locals_
    out.append(Step("result", v, *_eq(bar_v, step.result, ranks=ranks)))
    closed = sweep.closed[v]
    if closed != step.result:
        out.append(Step("simplify", v, *_eq(bar_v, closed, ranks=ranks)))
    return out


def _chain_text(up, partial, summed, ranks, printer):
    body = printer(partial, ranks)
    if up != 1:
        body = f"{printer(up, ranks)} {body}" if printer is to_text else f"{printer(up, ranks)} \\, {body}"
    if not summed:
        return body
    if printer is to_text:
        return "".join(f"sum_{s} " for s in summed) + body
    return "".join(r"\sum_{%s} " % to_latex(s) for s in summed) + body

"""A derivation as LaTeX: an ``aligned`` block for notebooks, or a whole document.

The document is what a teacher hands out: numbered sections (Model, Loss, Backward
pass, Update rules), one ``align*`` per group of steps with ``\\allowdisplaybreaks``
so a long derivation continues on the next page, and right-hand sides broken at
their top-level operators (:mod:`symgrad.explain.layout`) so nothing runs into
the margin.
"""
from symgrad.explain.layout import aligned_rows, chunks, width_em
from symgrad.explain.matrix import MatrixFormError
from symgrad.explain.printing import aligned_block, to_latex
from symgrad.explain.steps import HEADINGS, section_of
from symgrad.graph.arguments import check_flag

# Room for a display line on an A4 page, 11pt type, 2.5cm margins (41 em), less a
# safety margin for the width estimate.
LINE_EM = 36.0
TAG_EM = 9.0       # a \tag*{local gradient} at the right margin

PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[a4paper,margin=2.5cm]{geometry}
\usepackage{amsmath,amssymb}
\usepackage{cmap}
\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.5ex}
"""

_TAGS = {"chain": "chain rule", "local": "local gradient", "simplify": "simplified"}
SECTION_TITLES = {"model": "Model", "loss": "Loss", "chain": "Backward pass",
                  "update": "Update rules"}


def derivation_latex(der, document=False, title=None):
    document = check_flag(document, "document")
    if document:
        return derivation_document(der, title)
    return derivation_fragment(der)


def derivation_fragment(der):
    """One ``aligned`` block: the form Jupyter's MathJax shows and users paste."""
    rows, last = [], None
    for step in der.steps:
        section = section_of(step)
        if section != last:
            rows.append(r"&\textbf{%s}" % HEADINGS.get(section, section))
            last = section
        if step.kind == "update":
            rows.append(step.latex.replace("\\begin{aligned}\n", "").replace("\n\\end{aligned}", ""))
        elif step.kind == "declare":
            rows.append("&" + step.latex)
        elif step.kind == "local":
            rows.append(r"&\qquad %s" % step.latex.replace("&=", "="))
        else:
            rows.append(step.latex if "&" in step.latex else "&" + step.latex)
    return aligned_block(rows)


# -- the document ---------------------------------------------------------------------------
def step_rows(step, ranks, budget=LINE_EM):
    """``align*`` rows of one step, broken to fit ``budget`` em."""
    tag = _TAGS.get(step.kind)
    room = budget - (TAG_EM if tag else 0.0)
    if step.rhs_pieces:
        rows = aligned_rows(step.lhs_latex, "=", list(step.rhs_pieces), room)
    elif step.rhs is not None:
        rows = aligned_rows(step.lhs_latex, "=", chunks(step.rhs, room - width_em(step.lhs_latex)
                                                        - 2, ranks), room)
    else:
        rows = [step.latex if "&" in step.latex else "&" + step.latex]
    if tag:
        rows[0] += r" \tag*{%s}" % tag
    return rows


def rule_rows(rule, ranks, budget=LINE_EM):
    """``W &\\leftarrow W - \\alpha (...)`` broken after the first term when too wide."""
    lhs = to_latex(rule.lhs, ranks)
    step = rule.step
    sign = "-" if step.could_extract_minus_sign() else "+"
    body = -step if sign == "-" else step
    room = budget - 2 * width_em(lhs) - 4
    pieces = [lhs] + chunks(body, room, ranks)
    pieces[1] = f"{sign} {pieces[1]}"
    return aligned_rows(lhs, r"\leftarrow", pieces, budget)


def where_rows(pairs, ranks, budget=LINE_EM):
    rows = []
    for lhs_expr, rhs_expr in pairs:
        lhs = to_latex(lhs_expr, ranks)
        rows += aligned_rows(lhs, "=", chunks(rhs_expr, budget - width_em(lhs) - 2, ranks),
                             budget)
    return rows


def align(rows):
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}\n"


def _declared(steps, notation):
    items = "\n".join(r"  \item $%s$" % s.latex for s in steps)
    return "\\begin{itemize}\n" + items + "\n\\end{itemize}\n"


def document_title(der):
    params = ", ".join(to_latex(der.notation.base(der.notation.names[p], not p.dims))
                       for p in der.params)
    loss = to_latex(der.notation.base(der.notation.names[der.loss], True))
    return r"The gradients of $%s$ with respect to $%s$" % (loss, params)


def derivation_document(der, title=None):
    """A standalone article: compiles with pdflatex and fits the page."""
    steps, ranks = der.steps, der.ranks
    out = [PREAMBLE, "\\begin{document}\n",
           "\\begin{center}\n{\\Large %s}\n\\end{center}\n" % (title or document_title(der))]
    out.append("\\section{Model}\n")
    declared = [s for s in steps if s.kind == "declare"]
    if declared:
        out.append("Declared tensors and their dims:\n" + _declared(declared, der.notation))
    out.append("One definition per node of the computation graph:\n")
    out.append(align([r for s in steps if s.kind == "model" for r in step_rows(s, ranks)]))
    loss_steps = [s for s in steps if s.kind == "loss"]
    if loss_steps:
        out.append("\\section{Loss}\nThe loss written out in full:\n")
        out.append(align([r for s in loss_steps for r in step_rows(s, ranks)]))
    out.append(_backward_section(der, steps, ranks))
    out.append(_update_section(der))
    out.append("\\end{document}\n")
    return "".join(out)


def _backward_section(der, steps, ranks):
    out = ["\\section{Backward pass}\n",
           "The chain rule, from the loss down: the adjoint "
           r"$\bar{v} = \partial L / \partial v$ of each node $v$ is the sum over the nodes $c$ "
           r"that use $v$ of $\bar{c}\,\partial c / \partial v$ (upstream times local gradient)."
           "\n"]
    block = []
    for step in steps:
        if section_of(step) != "chain":
            continue
        if step.kind == "chain" and block:
            out.append(align(block))
            block = []
        block += step_rows(step, ranks)
    if block:
        out.append(align(block))
    return "".join(out)


def _update_section(der):
    rules = der.update_rule()
    ranks = der.ranks
    listed = list(rules) if isinstance(rules, list) else [rules]
    rows = [r for rule in listed for r in rule_rows(rule, ranks)]
    where = where_rows(rules.where, ranks)
    text = ["\\section{Update rules}\n",
            r"Gradient descent with learning rate $\alpha$:" + "\n", align(rows)]
    if where:
        text += ["where\n", align(where)]
    return "".join(text + [_matrix_subsection(der)])


def _matrix_subsection(der):
    """The rules again in matrix notation, when they have one."""
    try:
        rules = der.update_rule(form="matrix")
    except MatrixFormError:
        return ""
    body = rules.to_latex().replace("\\begin{aligned}\n", "").replace("\n\\end{aligned}", "")
    return ("\\subsection*{In matrix form}\nOne row per example in the data and in every node "
            "over the batch; $A^{\\top}$ is a transpose, $\\odot$ the elementwise product, "
            "$\\mathbf{1}$ a vector of ones, and softmax is taken along each row.\n" + align(body.split(" \\\\\n")))


def backprop_document(run):
    """A scalar backprop run as an article: the forward pass, then the backward pass."""
    forward = ["&" + st.latex for st in run.steps if st.kind == "forward"]
    backward = ["&" + st.latex for st in run.steps if st.kind == "backward"]
    return "".join([PREAMBLE, "\\begin{document}\n",
                    "\\section{Forward pass}\nEvery node's value, inputs first:\n", align(forward),
                    "\\section{Backward pass}\nUpstream gradient times local gradient, "
                    "from the output down:\n", align(backward), "\\end{document}\n"])

"""A derivation as a Beamer deck: ``symgrad derive MODEL --slides deck.tex``.

One frame per stage: the declared tensors, the model, the loss, one frame per node of
the backward pass (its chain-rule step, then each local gradient, then the result,
revealed one at a time with ``\\pause``), the update rules, and their matrix form
when the model has one. A stage too long for one frame continues on the next.
"""
from symgrad.explain.latex_doc import document_title, rule_rows, step_rows, where_rows
from symgrad.explain.matrix import MatrixFormError
from symgrad.explain.printing import to_latex
from symgrad.explain.steps import section_of

LINE_EM = 30.0          # a 16:9 frame is about 36 em wide at the default size
FRAME_HEIGHT = 6.5      # in plain display rows, under a frame title

PREAMBLE = r"""\documentclass[aspectratio=169]{beamer}
\usepackage{amsmath,amssymb}
\setbeamertemplate{navigation symbols}{}
"""


def _frames(title, rows, reveal=False, intro=""):
    """Frames of at most ROWS_PER_FRAME rows; ``reveal`` pauses before each row."""
    out = []
    pages = _pages(rows)
    for n, page in enumerate(pages):
        heading = title if n == 0 else f"{title} (continued)"
        joiner = " \\\\ \\pause\n" if reveal else " \\\\\n"
        body = "\\begin{align*}\n" + joiner.join(page) + "\n\\end{align*}\n" if page else ""
        text = intro if n == 0 else ""
        out.append("\\begin{frame}{%s}\n%s%s\\end{frame}\n" % (heading, text, body))
    return out


def _row_height(row):
    """A row with a fraction or a sum's limits is taller than a plain one."""
    return 1.0 + (0.6 if ("\\frac" in row or "\\sum_" in row) else 0.0)


def _pages(rows):
    pages, current, used = [], [], 0.0
    for row in rows:
        if current and used + _row_height(row) > FRAME_HEIGHT:
            pages.append(current)
            current, used = [], 0.0
        current.append(row)
        used += _row_height(row)
    return pages + [current] if current else pages or [[]]


def _declared_frame(der):
    items = "\n".join(r"  \item $%s$" % s.latex for s in der.steps if s.kind == "declare")
    return ("\\begin{frame}{Declared}\n\\begin{itemize}\n%s\n\\end{itemize}\n\\end{frame}\n"
            % items)


def _backward_frames(der, budget):
    out, node, rows = [], None, []
    for step in der.steps:
        if section_of(step) != "chain":
            continue
        if step.kind == "chain":
            if rows:
                out += _node_frames(der, node, rows)
            node, rows = step.node, []
        rows += step_rows(step, der.ranks, budget)
    if rows:
        out += _node_frames(der, node, rows)
    return out


def _node_frames(der, node, rows):
    name = der.notation.names.get(node, "?")
    symbol = to_latex(der.notation.base("bar_" + name, not node.dims))
    return _frames(r"Backward pass: $%s$" % symbol, rows, reveal=True)


def _matrix_frames(der):
    try:
        rules = der.update_rule(form="matrix")
    except MatrixFormError:
        return []  # the index form is the whole story for this model
    body = rules.to_latex().replace("\\begin{aligned}\n", "").replace("\n\\end{aligned}", "")
    return _frames("Update rules in matrix form", body.split(" \\\\\n"))


def derivation_slides(der, title=None, budget=LINE_EM):
    """The Beamer source of ``der``'s deck; pdflatex builds it."""
    ranks = der.ranks
    frames = ["\\begin{frame}\n\\begin{center}\n{\\Large %s}\n\\end{center}\n\\end{frame}\n"
              % (title or document_title(der)), _declared_frame(der)]
    frames += _frames("Model", [r for s in der.steps if s.kind == "model"
                                for r in step_rows(s, ranks, budget)])
    loss = [r for s in der.steps if s.kind == "loss" for r in step_rows(s, ranks, budget)]
    if loss:
        frames += _frames("Loss", loss)
    frames += _backward_frames(der, budget)
    rules = der.update_rule()
    listed = list(rules) if isinstance(rules, list) else [rules]
    frames += _frames(r"Update rules (learning rate $\alpha$)",
                      [r for rule in listed for r in rule_rows(rule, ranks, budget)], reveal=True)
    if rules.where:
        frames += _frames("where", where_rows(rules.where, ranks, budget))
    frames += _matrix_frames(der)
    return PREAMBLE + "\\begin{document}\n" + "".join(frames) + "\\end{document}\n"


def backprop_slides(run):
    """A scalar backprop run as a deck: the forward pass, then the backward pass step by step."""
    forward = ["&" + st.latex for st in run.steps if st.kind == "forward"]
    backward = ["&" + st.latex for st in run.steps if st.kind == "backward"]
    frames = _frames("Forward pass", forward, reveal=True)
    frames += _frames("Backward pass: upstream times local", backward, reveal=True)
    return PREAMBLE + "\\begin{document}\n" + "".join(frames) + "\\end{document}\n"

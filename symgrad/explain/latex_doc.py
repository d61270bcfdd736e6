"""A derivation as LaTeX: an ``aligned`` block for notebooks, or a whole document."""

_HEADINGS = {"declare": "Declared", "model": "Model", "loss": "Loss",
             "chain": "Backward pass (chain rule, from the loss down)", "update": "Update rules"}
_SECTION = {"local": "chain", "result": "chain", "simplify": "chain"}


def derivation_latex(der, document=False):
    rows, last = [], None
    for step in der.steps:
        section = _SECTION.get(step.kind, step.kind)
        if section != last:
            rows.append(r"&\textbf{%s}" % _HEADINGS.get(section, section))
            last = section
        if step.kind == "update":
            rows.append(step.latex.replace("\\begin{aligned}\n", "").replace("\n\\end{aligned}", ""))
        elif step.kind == "declare":
            rows.append("&" + step.latex)
        elif step.kind == "local":
            rows.append(r"&\qquad %s" % step.latex.replace("&=", "="))
        else:
            rows.append(step.latex if "&" in step.latex else "&" + step.latex)
    body = "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"
    if not document:
        return body
    return ("\\documentclass{article}\n\\usepackage{amsmath,amssymb}\n\\begin{document}\n"
            "\\[\n" + body + "\n\\]\n\\end{document}\n")

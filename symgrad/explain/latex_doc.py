"""A derivation as LaTeX: an ``aligned`` block for notebooks, or a whole document."""
from symgrad.explain.steps import HEADINGS, section_of


def derivation_latex(der, document=False):
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
    body = "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"
    if not document:
        return body
    return ("\\documentclass{article}\n\\usepackage{amsmath,amssymb}\n\\begin{document}\n"
            "\\[\n" + body + "\n\\]\n\\end{document}\n")

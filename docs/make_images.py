"""Render the README's pictures: a derivation and an annotated computation graph.

    python docs/make_images.py          # writes docs/img/*.png

Uses only declared dependencies (matplotlib's mathtext for the formulas, symgrad's
own graph view, which falls back to matplotlib when Graphviz is missing).
"""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import symgrad as sg  # noqa: E402
from symgrad.explain.graphview import graph_view  # noqa: E402
from symgrad.explain.printing import to_latex  # noqa: E402

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "img")


def _mathtext(latex):
    """matplotlib's mathtext lacks a few amsmath commands; map them to what it has."""
    for a, b in ((r"\left(", "("), (r"\right)", ")"), (r"\left[", "["), (r"\right]", "]"),
                 (r"\mathbb{1}", r"\mathbf{1}"), (r"\operatorname", r"\mathrm"), ("&", ""),
                 (r"\leftarrow", r"\leftarrow"), (r"\,", r"\ ")):
        latex = latex.replace(a, b)
    return latex


def _rhs(latex):
    return latex.split("&=", 1)[1].strip()


def derivation_rows(der):
    """Headings and one row per node: chain rule = local gradients applied = closed form."""
    rows, by_node = [], {}
    for step in der.steps:
        if step.kind == "model":
            if not rows:
                rows.append(("heading", "Model"))
            rows.append(("math", step.latex))
        elif step.kind in ("chain", "result", "simplify"):
            if step.kind == "chain" and not by_node:
                rows.append(("heading", "Backward pass: upstream x local, from the loss down"))
            if step.kind == "chain":
                by_node[step.node] = len(rows)
                rows.append(("math", step.latex))
            else:
                kind, text = rows[by_node[step.node]]
                rows[by_node[step.node]] = (kind, text + " = " + _rhs(step.latex))
    rule = der.update_rule()
    rows.append(("heading", "Update rule"))
    rows.append(("math", rule.latex_line()))
    for k, (lhs, rhs) in enumerate(rule.where):
        word = r"\mathrm{where}\ " if k == 0 else r"\qquad\quad\ "
        rows.append(("math", word + to_latex(lhs, der.ranks) + " = " + to_latex(rhs, der.ranks)))
    matrix = der.update_rule(form="matrix")
    rows.append(("heading", "The same rule in matrix form"))
    rows.append(("math", matrix.latex_line()))
    return rows


def derivation_png(path):
    X, y = sg.tensor("x", ("N", "d")), sg.tensor("y", ("N",))
    w = sg.param("w", ("d",))
    der = sg.derive(sg.sum((y - sg.sigmoid(X @ w)) ** 2), w)
    rows = derivation_rows(der)
    fig = plt.figure(figsize=(8.5, 0.4 * len(rows) + 0.3))
    for k, (kind, text) in enumerate(rows):
        ypos = 1 - (k + 0.8) / (len(rows) + 0.4)
        if kind == "heading":
            fig.text(0.02, ypos, text, fontsize=12, weight="bold", color="#1f4e79")
        else:
            fig.text(0.05, ypos, "$" + _mathtext(text.rstrip(" \\")) + "$", fontsize=13)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def graph_png(path):
    x, y, z = sg.scalars("x y z")
    graph_view(sg.backprop((x + y) * z, {x: -2, y: 5, z: -4})).save(path)


if __name__ == "__main__":
    os.makedirs(HERE, exist_ok=True)
    derivation_png(os.path.join(HERE, "derivation.png"))
    graph_png(os.path.join(HERE, "backprop_graph.png"))
    print("wrote", HERE)

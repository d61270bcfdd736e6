"""``sg.backprop``: a backpropagation run on a scalar graph, shown as a lecture draws it."""
from dataclasses import dataclass

from symgrad.diff.scalar import run_backprop
from symgrad.explain.dot import scalar_graph_dot
from symgrad.explain.latex_doc import backprop_document
from symgrad.explain.printing import aligned_block, to_latex, to_text


def _num(v):
    return f"{v:.6g}"


@dataclass
class BackpropStep:
    kind: str     # "forward" or "backward"
    text: str
    latex: str

    def __str__(self):
        return self.text


class BackpropRun:
    """Forward values and gradients of every node of a scalar expression.

    ``value``: the output; ``grads``: {symbol: df/dsymbol}; ``values``: {name: value}
    of every node; ``steps``: forward then backward, each backward step being
    upstream x local = downstream on one edge.
    """

    def __init__(self, f, values, output_name="f"):
        self.expr = f
        self.nodes, self.edges = run_backprop(f, values, output_name)
        self.output = self.nodes[-1]
        self.value = self.output.value
        self.grads = {n.expr: n.grad for n in self.nodes if n.expr.is_Symbol}
        self.values = {n.name: n.value for n in self.nodes if not n.is_constant}
        self.steps = self._forward_steps() + self._backward_steps()

    def _forward_steps(self):
        out = []
        for n in self.nodes:
            if n.is_constant:
                continue
            if n.is_leaf:
                out.append(BackpropStep("forward", f"{n.name} = {_num(n.value)}",
                                        f"{to_latex(n.symbol)} = {_num(n.value)}"))
                continue
            out.append(BackpropStep(
                "forward", f"{n.name} = {to_text(n.formula)} = {_num(n.value)}",
                f"{to_latex(n.symbol)} = {to_latex(n.formula)} = {_num(n.value)}"))
        return out

    def _backward_steps(self):
        f = self.output.name
        tf = to_latex(self.output.symbol)      # names in LaTeX go through the escaping printer
        out = [BackpropStep("backward", f"d{f}/d{f} = 1",
                            r"\frac{\partial %s}{\partial %s} = 1" % (tf, tf))]
        for e in self.edges:
            c, x = e.consumer.name, e.input.name
            tc, tx = to_latex(e.consumer.symbol), to_latex(e.input.symbol)
            local = to_text(e.local_expr)
            if local != _num(e.local_value):
                local += f" = {_num(e.upstream)} x {_num(e.local_value)}"
            text = (f"d{f}/d{x} += d{f}/d{c} x d{c}/d{x} = {_num(e.upstream)} x {local} "
                    f"= {_num(e.downstream)}")
            latex = (r"\frac{\partial %s}{\partial %s} \mathrel{+}= \frac{\partial %s}{\partial %s}"
                     r"\frac{\partial %s}{\partial %s} = %s \times %s = %s"
                     % (tf, tx, tf, tc, tc, tx, _num(e.upstream), to_latex(e.local_expr),
                        _num(e.downstream)))
            out.append(BackpropStep("backward", text.replace("+=", "=") if self._single(e) else text,
                                    latex.replace(r"\mathrel{+}=", "=") if self._single(e) else latex))
        return out

    def _single(self, edge):
        return sum(1 for e in self.edges if e.input is edge.input) == 1

    def __str__(self):
        return "\n".join(["forward:"] + [f"  {s}" for s in self.steps if s.kind == "forward"]
                         + ["backward:"] + [f"  {s}" for s in self.steps if s.kind == "backward"])

    def __repr__(self):
        grads = ", ".join(f"d{self.output.name}/d{k} = {_num(v)}" for k, v in self.grads.items())
        return f"<BackpropRun {self.output.name} = {_num(self.value)}; {grads}>"

    def to_latex(self, document=False):
        """An ``aligned`` block; ``document=True``: an article pdflatex builds."""
        if document:
            return backprop_document(self)
        rows = [r"&\textbf{Forward}"] + ["&" + s.latex for s in self.steps if s.kind == "forward"]
        rows += [r"&\textbf{Backward}"] + ["&" + s.latex for s in self.steps if s.kind == "backward"]
        return aligned_block(rows)

    def _repr_latex_(self):
        return "$$" + self.to_latex() + "$$"

    def to_dot(self):
        """Graphviz DOT text: nodes labelled name | value | grad, edges with local gradients."""
        return scalar_graph_dot(self.nodes, self.edges)

    def _repr_svg_(self):
        from symgrad.explain.render import dot_to_svg
        return dot_to_svg(self.to_dot())


def backprop(f, values, output_name="f"):
    """Run forward and backward passes of scalar expression ``f`` at ``values``."""
    if not isinstance(values, dict):
        raise TypeError("values must be a dict of symbol -> number, got "
                        f"{type(values).__name__}")
    return BackpropRun(f, values, output_name)

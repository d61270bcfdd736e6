"""Annotated computation-graph pictures: ``sg.graph_view`` / ``sg.graph_dot``.

One picture model (:class:`GraphView`: boxes with fields, edges with labels) is built
from a tensor graph, a :class:`~symgrad.explain.derivation.Derivation` or a scalar
backprop run, and drawn two ways: as Graphviz DOT text (always available; SVG when
Graphviz's ``dot`` is installed) and with matplotlib (a declared dependency of the
``plots``/``test`` extras), so pictures work on a fresh machine without Graphviz.

Nodes look like micrograd's: ``name | dims | value | grad``; edges carry the lecture's
backprop annotation ``upstream x local = downstream`` where it is known.
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# The pictures read the records (derivations, backprop runs); the records never
# import the pictures: ``sg.graph_view(run)`` draws a run.
from symgrad.explain.backprop import BackpropRun
from symgrad.explain.derivation import Derivation
from symgrad.explain.dot import COLOURS as _COLOURS, _quote, _record
from symgrad.explain.printing import to_text
from symgrad.graph.node import Node

KINDS = ("data", "param", "op", "const", "loss")


@dataclass
class PictureNode:
    key: str
    fields: list          # first field is the title (the node's name)
    kind: str = "op"      # one of KINDS: decides the fill colour


@dataclass
class PictureEdge:
    src: str
    dst: str
    label: list = field(default_factory=list)   # lines


class GraphView:
    """A computation-graph picture: DOT text, SVG, PNG, or a file; Jupyter shows SVG."""

    def __init__(self, nodes, edges, title=None):
        self.nodes, self.edges, self.title = list(nodes), list(edges), title

    # -- text forms ---------------------------------------------------------------------
    def to_dot(self):
        """Graphviz DOT text (record nodes, labelled edges, left to right)."""
        lines = ["digraph symgrad {", "  rankdir=LR;",
                 '  node [fontname="Helvetica", shape=record, style=filled];',
                 '  edge [fontname="Helvetica", fontsize=10];']
        if self.title:
            lines.append(f"  label={_quote(self.title)}; labelloc=t;")
        for n in self.nodes:
            label = "{ " + " | ".join(_record(f) for f in n.fields) + " }"
            lines.append(f"  {n.key} [label={_quote(label)}, fillcolor=\"{_COLOURS[n.kind]}\"];")
        for e in self.edges:
            attr = f" [label={_quote(chr(10).join(e.label))}]" if e.label else ""
            lines.append(f"  {e.src} -> {e.dst}{attr};")
        lines.append("}")
        return "\n".join(lines)

    def __str__(self):
        names = {n.key: n.fields[0] for n in self.nodes}
        out = [" | ".join(n.fields) for n in self.nodes]
        for e in self.edges:
            note = f"  [{'; '.join(e.label)}]" if e.label else ""
            out.append(f"{names[e.src]} -> {names[e.dst]}{note}")
        return "\n".join(out)

    def __repr__(self):
        return f"<GraphView: {len(self.nodes)} nodes, {len(self.edges)} edges>"

    # -- pictures -----------------------------------------------------------------------
    def to_svg(self, engine="auto"):
        """SVG text; ``engine`` "graphviz", "matplotlib" or "auto" (Graphviz when installed)."""
        if engine in ("auto", "graphviz"):
            from symgrad.explain.render import dot_to_svg
            svg = dot_to_svg(self.to_dot())
            if svg is not None or engine == "graphviz":
                if svg is None:
                    raise RuntimeError("Graphviz's `dot` program is not installed; "
                                       "use engine='matplotlib' or 'auto'")
                return svg
        return self._draw("svg").decode()

    def to_png(self, dpi=110):
        """PNG bytes (matplotlib drawing; the node texts are also in the PNG's metadata)."""
        return self._draw("png", dpi=dpi)

    def save(self, path, engine="auto"):
        """Write ``.dot``/``.gv`` text, ``.svg``, ``.png`` or ``.pdf``, chosen by suffix."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix in (".dot", ".gv"):
            path.write_text(self.to_dot())
        elif suffix == ".svg":
            path.write_text(self.to_svg(engine))
        elif suffix in (".png", ".pdf"):
            path.write_bytes(self._draw(suffix[1:]))
        else:
            raise ValueError(f"cannot write {path.name!r}: use .dot, .gv, .svg, .png or .pdf")
        return path

    def _draw(self, fmt, dpi=110):
        from symgrad.explain.mpl_graph import draw
        return draw(self, fmt, dpi)

    def _repr_svg_(self):
        try:
            return self.to_svg()
        except ImportError:  # neither Graphviz nor matplotlib: Jupyter shows the text form
            return None


# -- value summaries ---------------------------------------------------------------------------
def _num(v):
    return f"{float(v):.4g}"


def summarize(value, width=3):
    """A short text for a value: ``-12``, or ``[0.1, -0.3, 2 ...] (4x3)`` for an array."""
    arr = np.asarray(value)
    if arr.ndim == 0:
        return _num(arr)
    flat = arr.ravel()
    head = ", ".join(_num(v) for v in flat[:width])
    more = " ..." if flat.size > width else ""
    return f"[{head}{more}] ({'x'.join(map(str, arr.shape))})"


# -- builders ------------------------------------------------------------------------------------
def graph_view(obj, data=None, title=None):
    """The annotated picture of ``obj``.

    ``obj``: a scalar loss node (or any node), a ``Derivation`` (edges carry the symbolic
    local gradients of the chain rule) or a ``BackpropRun`` (scalar graph, with numbers).
    ``data``: name -> array for every tensor and param; nodes then show ``value`` and
    (for the loss's params and the nodes between) ``grad``, and edges ``upstream``,
    ``local``-product ``downstream`` numbers.
    """
    if isinstance(obj, BackpropRun):
        return _backprop_view(obj, title)
    if isinstance(obj, Derivation):
        return _tensor_view(obj.loss, data, title, derivation=obj)
    if isinstance(obj, Node):
        return _tensor_view(obj, data, title)
    raise TypeError(f"graph_view draws a symgrad node, a Derivation or a BackpropRun, "
                    f"got {type(obj).__name__}")


def graph_dot(obj, data=None, title=None):
    """DOT text of :func:`graph_view` (``obj``, ``data``)."""
    return graph_view(obj, data, title).to_dot()


def _backprop_view(run, title):
    nodes, edges, keys = [], [], {}
    for k, n in enumerate(run.nodes):
        keys[id(n)] = f"n{k}"
        if n.is_constant:
            nodes.append(PictureNode(f"n{k}", [_num(n.value)], "const"))
            continue
        kind = "data" if n.is_leaf else ("loss" if n is run.output else "op")
        fields = [n.name if n.is_leaf else f"{n.name} = {to_text(n.formula)}",
                  f"value {_num(n.value)}", f"grad {_num(n.grad)}"]
        nodes.append(PictureNode(f"n{k}", fields, kind))
    local = {(id(e.consumer), id(e.input)): e for e in run.edges}
    for n in run.nodes:
        for x in dict.fromkeys(n.inputs):
            e = local.get((id(n), id(x)))
            label = [] if e is None else [
                f"upstream {_num(e.upstream)}",
                f"local {to_text(e.local_expr)} = {_num(e.local_value)}",
                f"downstream {_num(e.downstream)}"]
            edges.append(PictureEdge(keys[id(x)], keys[id(n)], label))
    return GraphView(nodes, edges, title)


def _tensor_view(loss, data, title, derivation=None):
    from symgrad.diff.notation import Notation
    from symgrad.graph.traverse import topo_order
    order = topo_order(loss)
    notation = derivation.notation if derivation is not None else Notation([loss], loss=loss)
    values, grads, contributions = ({}, {}, {}) if data is None else _numbers(loss, data)
    symbolic = _symbolic_edges(derivation) if derivation is not None else {}
    keys = {node: f"n{k}" for k, node in enumerate(order)}
    nodes = [PictureNode(keys[n], _node_fields(n, notation, values, grads), _kind(n, loss))
             for n in order]
    edges = []
    for node in order:
        for k, x in enumerate(node.inputs):
            label = list(symbolic.get((node, x), []))
            if (node, k) in contributions:
                up, down = (summarize(v) for v in contributions[(node, k)])
                if label:  # "upstream bar_z_i = [...]", local formula, "downstream ... = [...]"
                    label = [f"{label[0]} = {up}", label[1], f"{label[2]} = {down}"]
                else:
                    label = [f"upstream {up}", f"downstream {down}"]
            edges.append(PictureEdge(keys[x], keys[node], label))
    return GraphView(nodes, edges, title)


def _kind(node, loss):
    if node is loss:
        return "loss"
    return {"input": "data", "param": "param", "const": "const"}.get(node.op, "op")


def _node_fields(node, notation, values, grads):
    if node.op == "const":
        return [_num(node.attrs["value"])]
    name = notation.names.get(node, node.op)
    title = name if node.is_leaf or name == node.op else f"{name}: {node.op}"
    fields = [title, " x ".join(node.dims) if node.dims else "scalar"]
    if node in values:
        fields.append(f"value {summarize(values[node])}")
    if node in grads:
        fields.append(f"grad {summarize(grads[node])}")
    return fields


def _numbers(loss, data):
    """Forward values of every node, adjoints (grads) and per-edge upstream/downstream."""
    from symgrad.diff.reverse import backward
    from symgrad.graph.bind import bind
    from symgrad.graph.evaluate import run_graph
    from symgrad.graph.traverse import leaves, topo_order
    arrays, sizes = bind([loss], data)
    order = topo_order(loss)
    params = leaves(loss, "param")
    adjoint, edge_nodes = {}, {}
    if params and not loss.dims:
        _, adj = backward(loss, params)
        adjoint, edge_nodes = adj.adjoint, adj.edges
    wanted = order + list(adjoint.values()) + list(edge_nodes.values())
    out = run_graph(wanted, arrays, sizes)
    values = {n: out[n] for n in order}
    grads = {n: out[g] for n, g in adjoint.items()}
    contributions = {(c, k): (grads[c], out[g]) for (c, k), g in edge_nodes.items() if c in grads}
    return values, grads, contributions


def _symbolic_edges(der):
    """(consumer, input) -> label lines with the chain rule's local gradient on that edge."""
    from symgrad.diff.sweep import _step_upstream
    from symgrad.diff.symbolic import combine
    from symgrad.explain.steps import _display_local
    sweep, notation, ranks = der._sweep, der.notation, der.ranks
    out = {}
    for v, step in sweep.steps.items():
        # The same terms the derivation's chain-rule step adds up, one per edge.
        terms = combine(notation, step, lambda c, idx: _step_upstream(sweep, c, idx))
        for e, term in zip(step.edges, terms):
            idx_c, local, _ = _display_local(e, step.idx)
            c = e.consumer
            up = "1" if c is sweep.loss else to_text(notation.adjoint(c, idx_c), ranks)
            out[(c, v)] = [f"upstream {up}",
                           f"local d{notation.names.get(c, '?')}/d{notation.names.get(v, '?')}"
                           f" = {to_text(local, ranks)}",
                           f"downstream {to_text(term, ranks)}"]
    return out

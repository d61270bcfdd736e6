"""Graphviz DOT text for computation graphs (micrograd's picture: name | value | grad)."""
from symgrad.explain.printing import to_text

# Fill colours of the picture's node kinds, shared by the DOT and matplotlib drawings.
COLOURS = {"data": "#e8f1fb", "param": "#fff2cc", "op": "#ffffff", "const": "#f4f4f4",
           "loss": "#fde2e1"}


def _quote(text):
    """A DOT string literal: user text can never close the quote or inject attributes."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _record(text):
    """Escape record-label metacharacters so a name like 'a|b' stays one field."""
    out = str(text)
    for ch in "\\{}|<>\"":
        out = out.replace(ch, "\\" + ch)
    return out


def _num(v):
    return f"{v:.4g}"


def scalar_graph_dot(nodes, edges):
    """DOT for a scalar backprop run: value nodes, op nodes, and gradient-annotated edges."""
    lines = ["digraph backprop {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    ids = {id(n): f"n{k}" for k, n in enumerate(nodes)}
    for n in nodes:
        nid = ids[id(n)]
        if n.is_constant:
            lines.append(f"  {nid} [shape=plaintext, label={_quote(_num(n.value))}];")
            continue
        label = "{ %s | value %s | grad %s }" % (_record(n.name), _num(n.value), _num(n.grad))
        lines.append(f"  {nid} [shape=record, label={_quote(label)}];")
        if not n.is_leaf:
            op = n.expr.func.__name__
            symbol = {"Add": "+", "Mul": "×", "Pow": "^"}.get(op, op)
            lines.append(f"  {nid}_op [shape=circle, label={_quote(symbol)}];")
            lines.append(f"  {nid}_op -> {nid};")
    local = {(id(e.consumer), id(e.input)): e for e in edges}
    for n in nodes:
        for x in dict.fromkeys(n.inputs):
            e = local.get((id(n), id(x)))
            label = "" if e is None else (
                f"upstream {_num(e.upstream)}\\nlocal {to_text(e.local_expr)} = {_num(e.local_value)}"
                f"\\ndownstream {_num(e.downstream)}")
            lines.append(f"  {ids[id(x)]} -> {ids[id(n)]}_op [label={_quote(label)}, fontsize=10];"
                         .replace("\\\\n", "\\n"))
    lines.append("}")
    return "\n".join(lines)

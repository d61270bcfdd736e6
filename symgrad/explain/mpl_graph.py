"""Drawing a :class:`~symgrad.explain.graphview.GraphView` with matplotlib alone.

The fallback for machines without Graphviz: a layered left-to-right layout (a node's
column is its longest path from a leaf, as ``dot -Grankdir=LR`` would place it), rows
ordered by the mean row of their inputs to keep edges short. Sizes are in inches and
text in points, so the figure grows with the graph instead of shrinking the text.
"""
import io

FONT_PT = 9
EDGE_FONT_PT = 7
CHAR_IN = 0.62 * FONT_PT / 72       # average glyph width of DejaVu Sans, in inches
EDGE_CHAR_IN = 0.62 * EDGE_FONT_PT / 72
LINE_IN = 1.55 * FONT_PT / 72
PAD_IN = 0.12
ROW_GAP_IN = 0.35
MARGIN_IN = 0.3


WRAP = 36  # edge-label lines longer than this break at " = " (keeps the columns narrow)


def wrap_label(lines):
    """Break long ``name = value`` lines after the name, so gaps between columns stay small."""
    out = []
    for line in lines:
        head, sep, tail = line.partition(" = ")
        if len(line) > WRAP and sep:
            out += [head, "  = " + tail]
        else:
            out.append(line)
    return out


def _columns(view):
    """Node key -> column: one more than its furthest input; leaves just before first use."""
    inputs = {n.key: [] for n in view.nodes}
    for e in view.edges:
        inputs[e.dst].append(e.src)
    column = {}

    def depth(key, seen=()):
        if key not in column:
            if key in seen:  # a cycle cannot come from symgrad graphs; stay finite anyway
                return 0
            column[key] = 1 + max((depth(s, seen + (key,)) for s in inputs[key]), default=-1)
        return column[key]

    for n in view.nodes:
        depth(n.key)
    # Leaves sit just before their first consumer (data joining late stays out of the way).
    users = {}
    for e in view.edges:
        users.setdefault(e.src, []).append(column[e.dst])
    for key, srcs in inputs.items():
        if not srcs and key in users:
            column[key] = min(users[key]) - 1
    return column, inputs


def _order_rows(view, column, inputs):
    """Per column, node keys ordered by the barycentre of their inputs' rows."""
    n_cols = max(column.values(), default=-1) + 1
    cols = [[n.key for n in view.nodes if column[n.key] == c] for c in range(n_cols)]
    row = {k: i for col in cols for i, k in enumerate(col)}
    for c in range(1, n_cols):
        def centre(key):
            srcs = inputs[key]
            return sum(row[s] for s in srcs) / len(srcs) if srcs else row[key]
        cols[c].sort(key=centre)
        row.update({k: i for i, k in enumerate(cols[c])})
    return cols


def layout(view):
    """(positions {key: (x, y)} of box centres, sizes {key: (w, h)}, figure (W, H)) in inches."""
    column, inputs = _columns(view)
    cols = _order_rows(view, column, inputs)
    by_key = {n.key: n for n in view.nodes}
    size = {k: (max(len(f) for f in n.fields) * CHAR_IN + 2 * PAD_IN,
                len(n.fields) * LINE_IN + PAD_IN) for k, n in by_key.items()}
    gaps = [0.6] * len(cols)  # room after each column for the labels of edges leaving it
    for e in view.edges:
        if e.label:
            need = max(len(line) for line in wrap_label(e.label)) * EDGE_CHAR_IN + 0.4
            c = column[e.src]
            gaps[c] = max(gaps[c], need)
    heights = [sum(size[k][1] for k in col) + ROW_GAP_IN * (len(col) - 1) for col in cols]
    H = max(heights, default=1.0) + 2 * MARGIN_IN
    pos, x = {}, MARGIN_IN
    for c, col in enumerate(cols):
        width = max(size[k][0] for k in col)
        y = (H + heights[c]) / 2
        for k in col:
            w, h = size[k]
            pos[k] = (x + width / 2, y - h / 2)
            y -= h + ROW_GAP_IN
        x += width + (gaps[c] if c < len(cols) - 1 else 0)
    return pos, size, (x + MARGIN_IN, H)


def draw(view, fmt="svg", dpi=110):
    """The picture as bytes in ``fmt`` ("svg", "png" or "pdf")."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from symgrad.explain.dot import COLOURS as _COLOURS
    pos, size, (W, H) = layout(view)
    fig = Figure(figsize=(W, H))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, W)
    ax.set_ylim(0, H)
    ax.axis("off")
    for n in view.nodes:
        (x, y), (w, h) = pos[n.key], size[n.key]
        ax.add_patch(Rectangle((x - w / 2, y - h / 2), w, h, facecolor=_COLOURS[n.kind],
                               edgecolor="#333333", linewidth=0.8))
        top = y + h / 2 - PAD_IN / 2
        for i, text in enumerate(n.fields):
            if i:
                ax.plot([x - w / 2, x + w / 2], [top - i * LINE_IN] * 2, color="#999999", lw=0.5)
            ax.text(x, top - (i + 0.5) * LINE_IN, text, ha="center", va="center",
                    fontsize=FONT_PT, fontweight="bold" if i == 0 else "normal")
    for e in view.edges:
        (x0, y0), (x1, y1) = pos[e.src], pos[e.dst]
        start, end = (x0 + size[e.src][0] / 2, y0), (x1 - size[e.dst][0] / 2, y1)
        ax.annotate("", xy=end, xytext=start,
                    arrowprops=dict(arrowstyle="->", color="#555555", lw=0.8,
                                    shrinkA=0, shrinkB=0))
        if e.label:
            # Labels sit in the gap after the source column, nearer the source.
            lines = wrap_label(e.label)
            lx = start[0] + 0.5 * (max(len(s) for s in lines) * EDGE_CHAR_IN + 0.2)
            t = (lx - start[0]) / max(end[0] - start[0], 1e-9)
            ax.text(lx, start[1] + t * (end[1] - start[1]), "\n".join(lines),
                    ha="center", va="center", fontsize=EDGE_FONT_PT, color="#1f3b73",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
    if view.title:
        ax.text(W / 2, H - MARGIN_IN / 2, view.title, ha="center", va="center", fontsize=10)
    buf = io.BytesIO()
    # Keep text as <text> in SVG (searchable, selectable); PNGs carry it as metadata.
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        meta = {"Description": str(view)} if fmt == "png" else None
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
    return buf.getvalue()

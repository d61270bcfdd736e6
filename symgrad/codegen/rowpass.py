"""Row passes: ``z = X @ w``, the loops over ``z``'s rows and ``g_w = X.T @ g_z`` in one
pass over ``X``, a block of rows at a time.

A linear model's step reads its data matrix twice: forward (``X @ w``) and backward
(``X.T @ g_z``). Run as two BLAS calls, each streams the whole of ``X`` from memory
(W1: 4096 x 64 float64, 2 MB, more than L2). Between them lies only work on single
rows (the sigmoid, the residual, the loss term), so the step can instead go block by
block: the block's dot products (``_sg_rows_dot``), the fused loops over its rows, and
its share of the gradient (``_sg_rows_tdot``) while the block is still in L1. In the
training loop the blocks are also visited backwards on every other step, so a step
starts on the rows the previous one ended with, still in L2. W1's step: 70 -> 59 us.

A pass is the steps from the first product to the second when everything between is a
loop over exactly the rows (``N``), a full sum of such a loop's term, or a scalar
computed from nothing inside the pass; and nothing in it reads a reduction the pass
itself computes (that value exists only after the last block).
"""
from symgrad.codegen.rowkernels import ROWS

# Stands for the training loop's "this step runs backwards" until its names exist.
PARITY = "_SG_ROW_PARITY"
BLOCK_ELEMENTS = 3072   # 24 KB of float64 per block of rows: in L1 with room to spare


class RowPass:
    """Steps ``first`` to ``last`` (indices into ``plan.steps``) over rows of ``matrix``.

    ``members``: the nodes its steps compute; ``local``: those of them kept in
    block-sized buffers (rows of the pass's dim that nothing outside the pass reads),
    which stay in L1 where full-length ones would be fetched from L2 on every block.
    """

    def __init__(self, plan, first, last, matrix):
        self.first, self.last, self.matrix, self.dim = first, last, matrix, matrix.dims[0]
        steps = plan.steps[first:last + 1]
        self.members = {m for s in steps for m in s.members}
        outside = {x for s in plan.steps[:first] + plan.steps[last + 1:]
                   for m in s.members for x in plan.deps(m)}
        self.local = {n for n in self.members if n.dims == (self.dim,) and n in plan.buffered
                      and n not in plan.outputs and n not in outside}


def find(plan):
    """The row passes of ``plan``'s steps, by first step index."""
    passes, k = {}, 0
    while k < len(plan.steps):
        rp = _pass_from(plan, k)
        if rp:
            passes[k] = rp
            k = rp.last
        k += 1
    return passes


def block_rows(m, rp):
    """The line setting a pass's rows per block: ~24 KB of ``X``, at least 8 rows."""
    elements = BLOCK_ELEMENTS * (2 if m.dtype == "np.float32" else 1)
    return (f"{rp.rows} = max(8, {elements} // max({m.size[rp.matrix.dims[1]]}, 1))"
            f"  # rows per block of a row pass: ~24 KB of {m.names[rp.matrix]}")


def _matrix_of_forward(plan, node):
    """``X`` when ``node`` is ``X @ w`` with ``X`` a plain 2-D array and ``w`` 1-D."""
    if node.op != "matmul" or plan.kind[node] != "kernel":
        return None
    a, b = node.inputs
    src, view = plan.array_source(a)
    if a.ndim != 2 or b.ndim != 1 or view is not None or node.dims != a.dims[:1]:
        return None
    return src


def _is_backward(plan, node, matrix):
    """Whether ``node`` is ``X.T @ g`` (or ``g @ X``) for the pass's ``X``."""
    if node.op != "matmul" or plan.kind[node] != "kernel":
        return False
    a, b = node.inputs
    (sa, va), (sb, vb) = plan.array_source(a), plan.array_source(b)
    rows = matrix.dims[0]
    if a.ndim == 2 and b.ndim == 1:
        return sa is matrix and va is not None and b.dims == (rows,)
    return a.ndim == 1 and b.ndim == 2 and sb is matrix and vb is None and a.dims == (rows,)


def _pass_from(plan, k):
    steps = plan.steps
    if steps[k].kind != "kernel":
        return None
    matrix = _matrix_of_forward(plan, steps[k].members[0])
    if matrix is None or plan.kind[matrix] not in ("leaf", "kernel", "ew", "red"):
        return None
    rows = matrix.dims[0]
    inside = set(steps[k].members)
    for j in range(k + 1, len(steps)):
        step = steps[j]
        if step.kind == "kernel" and _is_backward(plan, step.members[0], matrix):
            return RowPass(plan, k, j, matrix) if j > k + 1 else None
        if step.kind != "group" or step.dims not in ((rows,), ()):
            return None
        reads = {x for m in step.members for x in plan.deps(m)}
        if not step.dims and reads & inside:
            return None       # a scalar of this pass's results: it needs every block first
        if any(x in inside and plan.kind[x] == "red" for x in reads):
            return None       # a reduction of this pass, read inside it
        inside.update(step.members)
    return None


def emit(body, rp):
    """The pass's lines: hoisted scalars, initial values, the block loop, the means."""
    plan, m = body.plan, body.m
    steps = plan.steps[rp.first:rp.last + 1]
    forward, backward = steps[0].members[0], steps[-1].members[0]
    groups = steps[1:-1]
    fresh, size = m.namer.fresh, m.size[rp.dim]
    blk, nblk, b0, b1 = (fresh(x) for x in ("blk", "n_blocks", "start", "stop"))
    rows = rp.rows = fresh("block_rows")   # set with the buffers (Source.step_allocs)
    m.helpers["_sg_rows"] = ROWS
    X, z, out = m.names[rp.matrix], m.names[forward], m.names[backward]
    fv, bv = _vector(body, forward), _vector(body, backward)
    lines = body.lines
    lines.append(f"# row pass over {rp.dim}: {z} = {X} @ {fv}, the loops over its rows, "
                 f"{out} = {X}.T @ {bv}:")
    lines.append(f"# a block of {X}'s rows at a time, so {X} is read from memory once")
    for g in groups:
        if not g.dims:
            body.group(g)                 # scalars of earlier results: before the blocks
    for g in groups:
        if g.dims:
            body.group_start(g)
    head, ind = body.loops(backward.dims)
    lines += head + [f"{ind}{out}[{body.idx(backward.dims)}] = 0.0  # accumulated block by block"]
    lines += [f"{nblk} = ({size} + {rows} - 1) // {rows}",
              f"for {blk} in range({nblk}):"]
    if body.row_parity:
        lines.append(f"    {b0} = ({nblk} - 1 - {blk} if {body.row_parity} else {blk}) * {rows}"
                     "  # odd steps backwards: start on rows still in cache")
    else:
        lines.append(f"    {b0} = {blk} * {rows}")
    lines.append(f"    {b1} = min({b0} + {rows}, {size})")
    block = _block_of(body, rp, b0, b1)
    inner = [f"_sg_rows_dot({X}, {b0}, {b1}, {fv}, {block(forward)})  # {z}: {m.note(forward)}"]
    body.rows, body.local = (rp.dim, b0, b1), {n: f"{m.index[rp.dim]} - {b0}" for n in rp.local}
    saved, body.lines = body.lines, []
    for g in groups:
        if g.dims:
            body.loop_comment(g)
            body.group_loop(g)
    inner += body.lines
    body.lines, body.rows, body.local = saved, None, {}
    grad = next(x for x in backward.inputs if x.ndim == 1)
    inner.append(f"_sg_rows_tdot({X}, {b0}, {b1}, {block(body.plan.array_source(grad)[0])}, "
                 f"{out})  # {out}: {m.note(backward)}")
    lines += ["    " + line for line in inner]
    for g in groups:
        if g.dims:
            body.group_end(g)


def _block_of(body, rp, b0, b1):
    """``node``'s rows of this block: a block-sized buffer itself, else a slice."""
    def block(node):
        name = body.m.names[node]
        return name if node in rp.local else f"{name}[{b0}:{b1}]"
    return block


def _vector(body, node):
    """The name of the 1-D operand of a row pass's product."""
    vec = next(x for x in node.inputs if x.ndim == 1)
    src, _ = body.plan.array_source(vec)
    return body.m.names[src] if src.dims else body.read(src)


def is_pass_matrix(plan, node):
    """Whether ``node`` is the matrix of a row pass in ``plan`` (it is read by rows)."""
    return any(rp.matrix is node for rp in plan.passes.values())


"""Row passes: ``z = X @ w``, the loops over ``z``'s rows and ``g_w = X.T @ g_z`` in one
pass over ``X``, a block of rows at a time.

A linear model's step reads its data matrix twice: forward (``X @ w``) and backward
(``X.T @ g_z``). Run as two BLAS calls, each streams the whole of ``X`` from memory
(W1: 4096 x 64 float64, 2 MB, more than L2). Between them lies only work on single
rows (the sigmoid, the residual, the loss term), so the step can instead go block by
block: the block's dot products (``_sg_rows_dot``), the fused loops over its rows, and
its share of the gradient (``_sg_rows_tdot``) while the block is still in L1. In the
training loop the blocks are also visited backwards on every other step, so a step
starts on the rows the previous one ended with, still in L2. W1's step: 70 -> 58-60 us.

A pass starts at the first product and takes, in schedule order, loops over exactly
the rows (``N``, with full sums such as the loss), dot products over the rows
(``sum(c * u)``), the second product, and scalars: those of earlier results are
computed before the blocks, those of the pass's sums (``L = -S``) after them. It stops
at the first step that is none of these or that reads a value only the whole pass
gives (a sum of the pass, ``z - mean(z)``, or a scalar of one, ``L ** 2``, feeding
the gradient).
"""
from symgrad.codegen.rowkernels import ROWS

# Stands for the training loop's "this step runs backwards" until its names exist.
PARITY = "_SG_ROW_PARITY"
BLOCK_ELEMENTS = 3072   # 24 KB of float64 per block of rows: in L1 with room to spare


class RowPass:
    """Steps ``first`` to ``last`` (indices into ``plan.steps``) over rows of ``matrix``.

    ``roles``: (step, role) for each, role one of ``forward`` (``X @ w``), ``row`` (a
    loop over the rows), ``dot`` (a dot product over the rows), ``backward``
    (``X.T @ g``), ``before`` (a scalar of earlier results: computed before the blocks)
    and ``after`` (a scalar of the pass's sums: computed after them). ``local``: nodes
    kept in block-sized buffers (rows that nothing outside the pass reads), which stay
    in L1 where full-length ones would be fetched from L2 on every block.
    """

    def __init__(self, plan, first, roles, matrix):
        self.first, self.last = first, first + len(roles) - 1
        self.roles, self.matrix, self.dim = roles, matrix, matrix.dims[0]
        blocked = [s for s, role in roles if role in BLOCKED]
        self.members = {m for s, _ in roles for m in s.members}
        inside = {m for s in blocked for m in s.members}
        outside = {x for s in plan.steps if s not in blocked
                   for m in s.members for x in plan.deps(m)}
        self.local = {n for n in inside if n.dims == (self.dim,) and n in plan.buffered
                      and n not in plan.outputs and n not in outside}
        self.forward = _with(self, "forward")[0].members[0]
        self.backward = [s.members[0] for s in _with(self, "backward")]    # X.T @ g, ...


BLOCKED = ("forward", "row", "dot", "backward")    # the roles done block by block


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
    elements = BLOCK_ELEMENTS * (2 if m.float32 else 1)
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


def _role(plan, step, matrix):
    rows = matrix.dims[0]
    if step.kind == "group":
        return {(rows,): "row", (): "scalar"}.get(step.dims)
    node = step.members[0] if step.kind == "kernel" else None
    if node is None or node.op != "matmul":
        return None
    if _is_backward(plan, node, matrix):
        return "backward"
    return "dot" if all(x.dims == (rows,) for x in node.inputs) else None


def _pass_from(plan, k):
    steps = plan.steps
    if steps[k].kind != "kernel":
        return None
    matrix = _matrix_of_forward(plan, steps[k].members[0])
    if matrix is None or plan.kind[matrix] not in ("leaf", "kernel", "ew", "red"):
        return None
    roles, inside = [(steps[k], "forward")], set(steps[k].members)
    whole, later = set(), set()   # values only the whole pass gives; scalars of them
    for step in steps[k + 1:]:
        role = _role(plan, step, matrix)
        reads = {x for m in step.members for x in plan.deps(m)}
        if role == "scalar":
            role = "after" if reads & (inside | later) else "before"
        elif role is None or reads & (whole | later):
            break     # not row by row, or it needs a value only the whole pass gives
        roles.append((step, role))
        (later if role == "after" else inside).update(step.members)
        whole.update(m for m in step.members if role in ("dot", "backward")
                     or plan.kind[m] == "red")
    while roles[-1][1] in ("before", "after"):
        roles.pop()           # the pass ends with its last blocked step
    kinds = [r for _, r in roles]
    if "backward" not in kinds or not any(r in ("row", "dot") for r in kinds):
        return None
    return RowPass(plan, k, roles, matrix)


def emit(body, rp):
    """The pass's lines: scalars before, initial values, the block loop, then the means
    and the scalars of the pass's sums."""
    m, forward, backward = body.m, rp.forward, rp.backward
    fresh, size = m.namer.fresh, m.size[rp.dim]
    blk, nblk, b0, b1 = (fresh(x) for x in ("blk", "n_blocks", "start", "stop"))
    rows = rp.rows = fresh("block_rows")   # set with the buffers (Source.step_allocs)
    m.helpers["_sg_rows"] = ROWS
    X, z = m.names[rp.matrix], m.names[forward]
    grads = ", ".join(f"{m.names[n]} = {X}.T @ {_vector(body, n)}" for n in backward)
    lines = body.lines
    lines.append(f"# row pass over {rp.dim}: {z} = {X} @ {_vector(body, forward)}, "
                 f"the loops over its rows, {grads}:")
    lines.append(f"# a block of {X}'s rows at a time, so {X} is read from memory once")
    for step in _with(rp, "before"):
        body.group(step)
    for step in _with(rp, "row"):
        body.group_start(step)
    lines += [f"{m.names[s.members[0]]} = 0.0" for s in _with(rp, "dot")]
    for node in backward:
        head, ind = body.loops(node.dims)
        lines += head + [f"{ind}{m.names[node]}[{body.idx(node.dims)}] = 0.0"
                         "  # accumulated block by block"]
    lines += [f"{nblk} = ({size} + {rows} - 1) // {rows}", f"for {blk} in range({nblk}):"]
    if body.row_parity:
        lines += ["    # odd steps go backwards: they start on the rows still in cache",
                  f"    {b0} = ({nblk} - 1 - {blk} if {body.row_parity} else {blk}) * {rows}"]
    else:
        lines.append(f"    {b0} = {blk} * {rows}")
    lines.append(f"    {b1} = min({b0} + {rows}, {size})")
    lines += ["    " + line for line in _block(body, rp, b0, b1)]
    for step in _with(rp, "row"):
        body.group_end(step)
    for step in _with(rp, "after"):
        body.group(step)


def _with(rp, role):
    return [s for s, r in rp.roles if r == role]


def _block(body, rp, b0, b1):
    """The lines of one block: the pass's blocked steps in their order."""
    m, block = body.m, _block_of(body, rp, b0, b1)
    saved, body.lines = body.lines, []
    body.rows = (rp.dim, b0, b1)
    body.local = {n: body.block_index() for n in rp.local}
    X = m.names[rp.matrix]
    for step, role in rp.roles:
        node = step.members[0]
        if role == "forward":
            body.lines.append(f"_sg_rows_dot({X}, {b0}, {b1}, {_vector(body, node)}, "
                              f"{block(node)})  # {m.names[node]}: {m.note(node)}")
        elif role == "row":
            body.loop_comment(step)
            body.group_loop(step)
        elif role == "dot":
            head, ind = body.loops((rp.dim,))
            a, b = (body.read(x) for x in node.inputs)
            body.lines += head + [f"{ind}{m.names[node]} += {a} * {b}  # {m.note(node)}"]
        elif role == "backward":
            grad = body.plan.array_source(_vector_node(node))[0]
            body.lines.append(f"_sg_rows_tdot({X}, {b0}, {b1}, {block(grad)}, "
                              f"{m.names[node]})  # {m.names[node]}: {m.note(node)}")
    lines, body.lines = body.lines, saved
    views = [f"{v} = {m.names[n]}[{b0}:{b1}]  # this block's rows"
             for n, v in body.views.items()]
    body.rows, body.local, body.views = None, {}, {}
    return views + lines


def _block_of(body, rp, b0, b1):
    """``node``'s rows of this block: a block-sized buffer itself, else a slice."""
    def block(node):
        name = body.m.names[node]
        return name if node in rp.local else f"{name}[{b0}:{b1}]"
    return block


def _vector_node(node):
    return next(x for x in node.inputs if x.ndim == 1)


def _vector(body, node):
    """The name of the 1-D operand of a row pass's product."""
    return body.m.names[body.plan.array_source(_vector_node(node))[0]]

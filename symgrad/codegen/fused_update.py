"""A param's gradient computed in its SGD update instead of a buffer of its own.

The hand-written way writes each gradient into a buffer, then runs ``W -= lr * g_W``
over it. symgrad's training loop does that too for every optimizer but plain SGD;
there, two kinds of gradient go straight into the param:

* a matrix product (``g_W1 = X.T @ g_z2``): one BLAS call with beta = 1,
  ``W1 <- W1 + (-lr) X^T g_z2`` (``_sg_gemm_add``). The loop over ``g_W1``, which read
  two arrays the size of ``W1`` and wrote one per step, is gone. Per round against the
  hand-written trainer, in one process: W3 0.96x -> 0.91x (float32 0.95x -> 0.90x),
  W4 0.98x -> 0.96x (float32 1.01x -> 0.97x); with two BLAS threads the update, which
  ran on one thread, runs on both. BLAS adds ``alpha`` times the product to ``C``: in
  float64 the trained params were bitwise the loop's here (OpenBLAS 0.3); float32's
  sgemm rounds ``alpha * acc + C`` once (a fused multiply-add), so its last bits differ.
* an elementwise gradient (the l2 term's ``g_W = 2 lambda W + mm``): its statement
  and the inlined ones it reads are written in the update loop, ``W[j, k] -= lr *
  (mul2 + mm[j, k])``, and leave the step's loop (where ``W * W`` for the loss stays).
  The same statements, so the same bits; no ``g_W`` stored and read back. W2 float32:
  1.00x -> 0.95x per round (float64 0.93x -> 0.92x).

The gradient leaves the step and is computed after the loss check (a non-finite loss
still stops the run before any update): under plain SGD in the update, under any other
optimizer into its buffer as before, just before the updates (``loss_and_grad`` keeps
it in place). It may move when it is written straight into the gradient's buffer, no
other node reads it, it is outside a row pass (``rowpass.py``), and

* a product: its op can add a multiple of it into an array (``code["add_into"]``: the
  matmul op's gemm) and neither operand is a param (the other params' updates in the
  same branch run first);
* elementwise: its loop is over exactly the param's dims, and what it inlines there is
  elementwise (not a sum the loop accumulates) and reads no param but this one, at
  the loop's own index (``inlined``).

What it reads must keep its value until the update, so those buffers give no memory
to later nodes (the ``hold`` of ``reuse.reusable``).
"""
from symgrad.codegen.reuse import INDEX_ALIASES
from symgrad.graph.registry import get_op


def fusable(plan, params, grads, in_pass):
    """``{gradient node: (param, inlined members)}`` for the gradients that can move into
    the update (see the module docstring); the members (``inlined``) are None for a
    product."""
    readers = {x for n in plan.order for x in plan.deps(n)}
    out = {}
    for p, g in zip(params, grads):
        if g is None or not g.dims or g.dims != p.dims or g in out or g in in_pass:
            continue
        if g not in plan.buffered or g in readers or sum(x is g for x in grads) != 1:
            continue
        if plan.kind.get(g) == "kernel" and _product_moves(plan, g):
            out[g] = (p, None)
        elif plan.kind.get(g) == "ew":
            chain = inlined(plan, g, p)
            if chain is not None:
                out[g] = (p, chain)
    return out


def _product_moves(plan, g):
    add_into = get_op(g.op).code.get("add_into")
    return (add_into is not None and add_into(g) is not None
            and not any(plan.array_source(x)[0].op == "param" for x in g.inputs))


def inlined(plan, g, p):
    """The members of ``g``'s fused loop that its statement inlines (``g`` last, in loop
    order), when all of ``g`` can be recomputed in ``p``'s update loop; else None.

    It can when the loop runs over exactly ``p``'s dims, and ``g`` depends there on
    elementwise nodes only (a sum the loop accumulates is not ready element by element)
    that read no param but ``p`` itself, at the loop's own index."""
    step = plan.step_of.get(g)
    if step is None or step.kind != "group" or step in plan.summed or step.dims != p.dims:
        return None
    found, todo = {g}, [g]
    while todo:
        node = todo.pop()
        if node.op in INDEX_ALIASES and node.inputs[0].op == "param":
            return None
        for x in node.inputs:
            if x.op == "param" and (x is not p or node.dims != p.dims):
                return None
            if plan.step_of.get(x) is step and x not in found:
                if plan.kind[x] != "ew":
                    return None
                if x not in plan.buffered:      # buffered members are read from memory
                    found.add(x)
                    todo.append(x)
    return [m for m in step.members if m in found]


def operands(plan, fused):
    """The nodes whose arrays the moved gradients (``fusable``'s answer) read: their
    memory must not be reused."""
    held = set()
    for g, (_, chain) in fused.items():
        if chain is None:
            held |= {plan.array_source(x)[0] for x in g.inputs}
        else:
            held |= {x for m in chain for x in m.inputs}
    return held


class Moved:
    """One gradient moved out of the step: its statements into the gradient buffer
    (``into_buffer``) and the update adding a multiple of it into the param
    (``update``). Kernel: its op's call; elementwise: a loop nest over the param."""

    def __init__(self, node, body, lines, ctx=None, expr=None):
        """``lines``: the kernel's statements, or the inlined members' (then ``expr`` is
        ``(expression, comment)`` of the gradient's element)."""
        self.node, self.body, self.lines, self.ctx = node, body, lines, ctx
        self.expr, self.note = expr or (None, None)

    def into_buffer(self):
        if self.ctx is not None:
            return self.lines
        head, ind = self.body.loops(self.node.dims)
        target = f"{self.body.m.names[self.node]}[{self.body.idx(self.node.dims)}]"
        return head + [ind + line for line in self.lines] + \
            [f"{ind}{target} = {self.expr}{self.note}"]

    def update(self, target, lr):
        """``target -= lr * (this gradient)``."""
        note = f"# {target} -= lr * dL/d{target}"
        if self.ctx is not None:
            add = get_op(self.node.op).code["add_into"](self.node)
            return [f"{note}: the product adds into {target} (BLAS beta 1)",
                    *add(self.ctx, target, f"-{lr}")]
        head, ind = self.body.loops(self.node.dims)
        at = f"{target}[{self.body.idx(self.node.dims)}]"
        return [f"{note}, its gradient computed in the update"] + head + \
            [ind + line for line in self.lines] + [f"{ind}{at} -= {lr} * {_grouped(self.expr)}"]


def _grouped(expr):
    """``expr`` in parentheses, unless one pair encloses it already."""
    depth = 0
    for k, ch in enumerate(expr):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and k < len(expr) - 1:
            return f"({expr})"
    return expr if expr.startswith("(") else f"({expr})"

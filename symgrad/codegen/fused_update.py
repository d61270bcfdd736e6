"""A param's gradient product added straight into the param in the SGD update.

Where a param's gradient is a matrix product (``g_W1 = X.T @ g_z2``), the plain-SGD
step ``W1 -= lr * g_W1`` is one BLAS call with beta = 1: ``W1 <- W1 + (-lr) X^T g_z2``.
The product then writes into ``W1`` itself, and the loop over ``g_W1`` (reading two
arrays the size of ``W1`` and writing one, per step) is gone. Measured in one process,
interleaved, per round against the hand-written trainer: W3 0.96x -> 0.91x (float32
0.95x -> 0.90x), W4 0.98x -> 0.96x (float32 1.01x -> 0.97x); with two BLAS threads
the update, which ran on one thread, now runs on both. BLAS adds ``alpha`` times the
product to ``C``: in float64 the trained params were bitwise those of the loop here
(OpenBLAS 0.3); in float32 OpenBLAS's sgemm rounds ``alpha * acc + C`` once (a fused
multiply-add), so the last bits differ from the loop's.

The product leaves the training loop's step and runs after the loss check (a
non-finite loss still stops the run before any update): under plain SGD adding into
the param, under any other optimizer into its gradient buffer as before, just before
the updates (``loss_and_grad`` keeps it in place). It may move when:

* the gradient is a kernel whose op can add a multiple of it into an array
  (``code["add_into"]``: the matmul op's gemm) and writes straight into the
  gradient's buffer;
* no other node reads it, and it is outside a row pass (``rowpass.py``);
* neither operand is a param: the other params' updates in the same branch run first.

Its operands must keep their values until the update, so their buffers give no
memory to later nodes (the ``hold`` of ``reuse.reusable``).
"""
from symgrad.graph.registry import get_op


def fusable(plan, params, grads, in_pass):
    """``{gradient node: param}`` for the gradients whose product can move into the
    update (see the module docstring)."""
    readers = {x for n in plan.order for x in plan.deps(n)}
    out = {}
    for p, g in zip(params, grads):
        if g is None or not g.dims or g.dims != p.dims or g in out or g in in_pass:
            continue
        add_into = get_op(g.op).code.get("add_into")
        if add_into is None or add_into(g) is None or plan.kind.get(g) != "kernel":
            continue
        if g not in plan.buffered or g in readers or sum(x is g for x in grads) != 1:
            continue
        if any(plan.array_source(x)[0].op == "param" for x in g.inputs):
            continue
        out[g] = p
    return out


def operands(plan, fused):
    """The nodes whose arrays the moved products read: their memory must not be reused."""
    return {plan.array_source(x)[0] for g in fused for x in g.inputs}


def update_lines(node, ctx, target, scale):
    """``target += scale * node``, the op's own call (``fusable`` chose ``node``)."""
    return [f"# {target} -= lr * dL/d{target}: the product adds into {target} (BLAS beta 1)",
            *get_op(node.op).code["add_into"](node)(ctx, target, scale)]

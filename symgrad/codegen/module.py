"""The generated module: prelude, ``loss``, ``_sg_step``, ``loss_and_grad``, outputs.

One self-contained module per model (Numba's cache key does not see other files).
``_sg_step`` computes the loss and writes every gradient into buffers it is given,
so ``loss_and_grad`` and the fused training loop (``trainloop.py``) allocate once.
With ``hessian=True`` the module also has ``hessian`` and ``hvp`` (``second_order.py``).
"""
import numpy as np

from symgrad.codegen import fused_update, rowpass, second_order, trainloop
from symgrad.codegen.emit import Body, Module
from symgrad.codegen import grouploop
from symgrad.codegen.jit import JIT
from symgrad.codegen.prepare import Canon, Namer, node_names
from symgrad.codegen.reuse import reusable
from symgrad.codegen.schedule import Plan
from symgrad.codegen.second_order import SecondOrderGraphs
from symgrad.diff.reverse import backward
from symgrad.graph.names import comment_text
from symgrad.graph.traverse import dim_names, topo_order
from symgrad.ops.elementwise import float32_helpers

FLOATS = {np.dtype(np.float64): "np.float64", np.dtype(np.float32): "np.float32"}


class Function:
    """One generated function: its name and, in order, the leaves it takes."""

    def __init__(self, name, leaves):
        self.name, self.leaves = name, leaves


class Source:
    """Generates the module text for ``loss`` and the gradients of ``params``."""

    def __init__(self, loss, params, outputs=(), dtype=np.float64, hessian=False):
        self.dtype = FLOATS[np.dtype(dtype)]
        grads, adj = backward(loss, params)
        self.canon = canon = Canon()
        self.loss = canon.add([loss])[0]
        self.outputs = canon.add(list(outputs))
        self.params = list(params)
        self.grads = [canon.add([grads[p]])[0] if grads[p] is not None else None for p in params]
        # second order (hessian=True): the Hessian blocks and HVPs join the same DAG
        self.second = SecondOrderGraphs(loss, self.params, canon) if hessian else None
        everything = [self.loss, *self.outputs, *[g for g in self.grads if g is not None]]
        everything += self.second.nodes() if self.second else []
        order = topo_order(everything)
        leaves = [n for n in order if n.op in ("input", "param")]
        self.data = [n for n in leaves if n.op == "input"]
        self.second_leaves = [n for n in self.data if self.second and n in self.second.leaves()]
        self.data = [n for n in self.data if n not in self.second_leaves]  # not batched data
        self.all_params = self.params + [n for n in leaves if n.op == "param" and n not in params]
        adjoint_of = {}
        for fwd, a in adj.adjoint.items():
            adjoint_of.setdefault(canon.of.get(a), canon.of.get(fwd, fwd))
        for p, g in zip(self.params, self.grads):
            adjoint_of[g] = p
        namer = Namer()
        names = node_names(self.data + self.all_params, namer)
        names = lecture_names(loss, canon, namer, names)
        names = node_names(order, namer, adjoint_of, names)
        self.m = Module(namer, names, self.dtype, dim_names(everything))
        self.m.adjoint_of = adjoint_of
        self.functions = {}

    def leaves_of(self, plan):
        used = set(plan.order)
        return [n for n in self.data + self.all_params if n in used]

    # -- pieces ------------------------------------------------------------------------
    def sizes(self, leaves, dims, skip=()):
        # skip holds the batch dim, None when there is none (no data with dims: sum(w ** 2))
        lines, done = [], {self.m.size[d] for d in skip if d is not None}
        for leaf in leaves:
            new = []
            for k, d in enumerate(leaf.dims):   # H' and H of a square tensor: one variable
                if d in dims and self.m.size[d] not in done:
                    new.append((k, d))
                    done.add(self.m.size[d])
            name = self.m.names[leaf]
            if new and len(new) == len(leaf.dims):
                target = ", ".join(self.m.size[d] for d in leaf.dims)
                lines.append(f"{target}{',' if len(new) == 1 else ''} = {name}.shape")
            else:
                lines += [f"{self.m.size[d]} = {name}.shape[{k}]" for k, d in new]
        return lines

    def alloc(self, name, dims, dtype=None):
        shape = ", ".join(self.m.size[d] for d in dims) if dims else "1"
        shape = f"({shape})" if len(dims) > 1 else shape
        return f"{name} = np.empty({shape}, {dtype or self.dtype})"

    def step_allocs(self):
        """The step's buffers: gradients, then the internal ones, some reusing the memory
        of one that is dead by the time they are written (``codegen/reuse.py``)."""
        own = [(n, ds) for n, ds in self.grad_buffers + self.step_buffers if n not in self.reused]
        return self.pass_rows + [
            self.alloc(n, ds) if n not in self.block_buffers else
            f"{n} = np.empty({self.block_buffers[n]}, {self.dtype})  # one block of rows"
            for n, ds in own] + [_reuse_line(n, a) for n, a in self.reused.items()]

    def plan_dims(self, plan):
        return {d for n in plan.order for d in n.dims} | {d for p in self.params for d in p.dims}

    def grad_outputs(self, plan, body):
        """Name each gradient's buffer; copy into it where the plan did not write it."""
        claimed, bufs, copies = set(), [], []
        for p, g in zip(self.params, self.grads):
            if g is not None and g in plan.buffered and g not in claimed and g.dims == p.dims:
                claimed.add(g)
                bufs.append((p, self.m.names[g]))
                continue
            name = self.m.namer.fresh("g_" + self.m.names[p])
            bufs.append((p, name))
            if g is None:
                copies.append(f"{name}.fill(0.0)  # {comment_text(p.name)} does not reach the loss")
                continue
            head, ind = body.loops(p.dims)
            target = f"{name}[{body.idx(p.dims)}]" if p.dims else f"{name}[0]"
            copies += head + [f"{ind}{target} = {body.read(g)}"]
        return bufs, claimed, copies

    # -- functions ------------------------------------------------------------------------
    def step(self, transposed=None, row_parity=None, fuse_updates=False):
        """The body computing the loss and writing every gradient into its ``g_*`` buffer.

        It is pasted into ``loss_and_grad`` and into the training loop rather than called:
        one function per entry point compiles once, where a shared callee is optimised
        again inside each caller. ``fuse_updates`` (the training loop): the gradients
        that can move into their params' updates are left out, in ``self.fused``
        (param -> ``fused_update.Moved``), for the updates (``fused_update.py``).
        """
        plan = Plan([self.loss] + [g for g in self.grads if g is not None], row_passes=True)
        leaves = self.leaves_of(plan)
        body = Body(self.m, plan, [self.m.names[n] for n in leaves])
        body.transposed = transposed or {}
        body.row_parity = row_parity
        # no reuse in a row pass: LLVM's overlap check would run its loops scalar
        in_pass = {n for rp in plan.passes.values() for n in rp.members}
        fused = fused_update.fusable(plan, self.params, self.grads, in_pass) \
            if fuse_updates else {}
        body.defer = {g: chain for g, (_, chain) in fused.items()}
        lines = body.emit()
        self.fused = {p: body.deferred[g] for g, (p, _) in fused.items()}
        bufs, claimed, copies = self.grad_outputs(plan, body)
        self.step_plan = plan
        internal = [n for n in plan.order if n in plan.buffered and n not in claimed]
        self.step_buffers = [(self.m.names[n], n.dims) for n in internal]
        hold = fused_update.operands(plan, fused)
        self.reused = {self.m.names[b]: self.m.names[a] for b, a in
                       reusable(plan, keep=claimed | in_pass, hold=hold).items()}
        self.pass_rows = [rowpass.block_rows(self.m, rp) for rp in plan.passes.values()]
        self.block_buffers = {self.m.names[n]: rp.rows
                              for rp in plan.passes.values() for n in rp.local}
        self.grad_buffers = [(name, p.dims) for p, name in bufs]
        self.step_leaves = leaves
        self.step_lines = lines + copies
        self.step_loss = body.read(self.loss)
        self.step_dims = self.plan_dims(plan)

    def gemv_data(self):
        """2-D data tensors that are the matrix of a matrix-vector product in the step.

        The training loop keeps a transposed (d, N) copy of those (made once for full
        batch, gathered alongside the rows otherwise): BLAS gemv streams that layout
        for both ``X @ w`` and ``X.T @ g``, about 25% faster than the (N, d) one.
        """
        found, plan = [], self.step_plan
        in_pass = {n for rp in plan.passes.values()
                   for n in [rp.forward, *rp.backward]}    # row passes read X by rows
        for n in plan.order:
            if n.op == "matmul" and len(n.inputs[1].dims) == 1 and len(n.inputs[0].dims) == 2 \
                    and n not in in_pass:
                src, _ = plan.array_source(n.inputs[0])
                if src.op == "input" and src not in found:
                    found.append(src)
        return found

    def row_matrices(self):
        """Data tensors the step's row passes read by blocks of rows (``rowpass.py``)."""
        return {rp.matrix for rp in self.step_plan.passes.values() if rp.matrix.op == "input"}

    def loss_and_grad(self):
        self.step()
        leaves = self.step_leaves
        args = [self.m.names[n] for n in leaves]
        lines = self.sizes(leaves, self.step_dims)
        lines += self.step_allocs()
        lines += self.step_lines
        lines += [f"return {self.step_loss}, {', '.join(n for n, _ in self.grad_buffers)}"
                  f"{',' if len(self.grad_buffers) == 1 else ''}"]
        self.functions["loss_and_grad"] = Function("loss_and_grad", leaves)
        self.functions["run_epochs"] = Function("run_epochs", leaves)
        return _function("loss_and_grad", args, "The loss and the gradients (freshly "
                         "allocated).", lines)

    def forward(self, fname, node, doc):
        """A function returning the value of one forward node (``loss`` or an output)."""
        plan = Plan([node])
        leaves = self.leaves_of(plan)
        body = Body(self.m, plan, [self.m.names[n] for n in leaves])
        lines = self.sizes(leaves, self.plan_dims(plan))
        lines += self.forward_allocs(plan)
        lines += body.emit()
        unbuffered = node.dims and node not in plan.buffered
        if plan.kind[node] in ("leaf", "const", "value") or unbuffered:
            name = self.m.namer.fresh("out")
            head, ind = body.loops(node.dims)
            lines += [self.alloc(name, node.dims)] + head + \
                [f"{ind}{name}[{body.idx(node.dims) or '0'}] = {body.read(node)}"]
            ret = name
        else:
            ret = self.m.names[node] if node.dims else body.read(node)
        self.functions[fname] = Function(fname, leaves)
        return _function(fname, [self.m.names[n] for n in leaves], doc, lines + [f"return {ret}"])

    def forward_allocs(self, plan):
        """A forward function's buffers; as in the step, one may take the memory of one
        that is dead by the time it is written (W4's ``loss``: ``h = z1``, 16 MB less to
        allocate and fault in per call)."""
        names = self.m.names
        reused = reusable(plan)
        own = [self.alloc(names[n], n.dims) for n in plan.order
               if n in plan.buffered and n not in reused]
        return own + [_reuse_line(names[b], names[a]) for b, a in reused.items()]

    def text(self, title):
        parts = [self.forward("loss", self.loss, "The loss alone (forward pass only)."),
                 self.loss_and_grad()]
        self.output_names = {}
        for k, node in enumerate(self.outputs):
            fname = self.m.namer.fresh("output_" + self.m.names[node])
            self.output_names[node] = fname
            parts.append(self.forward(fname, node, "The value of one forward node (see below).")
                         .replace('"""\n', f'"""\n    # {self.m.note(node)}\n', 1))
        if self.second:
            parts += second_order.functions(self)
        parts.append(trainloop.run_epochs(self))
        parts.append(grouploop.run_group(self.loop))     # sweeps: runs trained together
        kind = "100" if self.dtype == "np.float64" else "115"    # BLAS 'd' or 's'
        used = float32_helpers(self.m.helpers) if self.m.float32 else self.m.helpers
        helpers = [_helper(src).replace("_SG_DTYPE", self.dtype).replace("_SG_KIND", kind)
                   for _, src in sorted(used.items())]
        # The versions are part of the text, so part of the cache key (the file name is
        # the hash of the text): another symgrad or Numba never reuses this module.
        header = [f"# symgrad generated module: {comment_text(title)}",
                  f"# symgrad {_version('symgrad')}, numba {_version('numba')}",
                  '"""Generated by symgrad.codegen; needs only NumPy and Numba.', "",
                  "Loops index tensors by their named dims; comments name the graph node each",
                  "statement computes. Helpers (stable scalar functions, BLAS calls) are at",
                  'the end."""',
                  "import math", "", "import numba", "import numpy as np", "from numba import njit",
                  "", ""]
        # the gradient first: it is what a reader opens the module for
        parts = [parts[1], parts[0]] + parts[2:]
        return "\n".join(header + parts + [trainloop.train(self), "",
                                            "# -- helpers " + "-" * 66, ""]
                         + [h + "\n" for h in helpers])


def _helper(src):
    """A helper's source, decorated; sources that set up globals decorate themselves."""
    return src if src.startswith(("@", "_")) else f"{JIT}\n" + src


def _reuse_line(name, donor):
    return f"{name} = {donor}  # reuses {donor}'s memory: {donor} is dead when {name} is written"


def _function(name, args, doc, lines):
    out = [JIT, f"def {name}({', '.join(args)}):", f'    """{doc}"""']
    out += ["    " + line for line in lines]
    return "\n".join(out) + "\n\n"



def _version(package):
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def lecture_names(loss, canon, namer, names):
    """Forward nodes take the names their derivation gives them (``sigma``, ``delta``,
    ``z1``, ``h``), so the code reads like the update rule; user names win collisions.
    Adjoints then follow as ``g_sigma``, ``g_delta``."""
    from symgrad.diff.notation import Notation    # SymPy: only generating code needs it
    names = dict(names)
    notation = Notation([loss], loss=loss)
    forward = [n for n in topo_order(loss) if not n.is_leaf and n.op not in ("count", "transpose")]
    for user_named in (True, False):
        for node in forward:
            c = canon.of.get(node)
            if c is None or c in names or (node.name is not None) != user_named:
                continue
            if not user_named and node not in notation.names:
                continue    # a literal (sqrt(lambda) / 2): written out in formulas, no name
            names[c] = namer.fresh(node.name if user_named else notation.names[node])
    return names

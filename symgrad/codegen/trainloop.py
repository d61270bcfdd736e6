"""The fused training loop (``run_epochs_with``, ``run_epochs``) and the standalone ``train``.

``run_epochs_with`` runs a whole run of epochs in one compiled call: per minibatch it
gathers rows into buffers allocated once (named like the user's tensors, so the
step reads as in ``loss_and_grad``), runs the forward and backward step and
updates the params in place with one of the optimizers of ``RULES`` (torch.optim's
update rules; ``_sg_update``, one line per update statement). The loss is checked
before each update, so on a NaN/inf the params are the last finite ones.
``run_epochs`` is the same loop with SGD (and momentum), the v0.1 signature.

The optimizer is data, not code: ``rule`` (an index into ``RULES``), ``hyper`` =
(momentum or beta1, beta2 or alpha, eps, weight_decay) and per param two state arrays
``m`` (velocity, momentum buffer or first moment) and ``s`` (second moment), plus
``steps`` (a 1-element int64 array, the steps done so far: Adam's t). So one compiled
module serves every optimizer, and the caller keeps the state between calls.
"""
import re

import numpy as np

from symgrad.codegen import rowpass
from symgrad.codegen.jit import JIT

from symgrad.graph.node import INT
from symgrad.graph.traverse import batch_dim as batch_dim_of


def name_literal(name):
    """A Python expression for the string ``name``: a plain literal for ordinary names,
    hex-decoded otherwise, so no user text reaches the code unescaped."""
    if re.fullmatch(r"[A-Za-z0-9_ .\-]*", name):
        return repr(name)
    return f"bytes.fromhex({name.encode('utf-8').hex()!r}).decode()"


def batch_dim(src):
    """The batch dim of the model's data tensors (``symgrad.graph.traverse.batch_dim``)."""
    return batch_dim_of(src.data)


def unbatchable(src, leaves):
    """Leaves that minibatches cannot slice: a param with the batch dim, or a data tensor
    whose batch dim is not its first (the fused loop gathers leading rows only)."""
    B = batch_dim(src)
    return [n for n in leaves if B is not None and B in n.dims
            and (n.op != "input" or n.dims[0] != B)]


class _Loop:
    """The pieces of ``run_epochs``; local names come from the module's namer."""

    def __init__(self, src):
        self.src, self.m, names = src, src.m, src.m.names
        self.names = names
        self.leaves = src.step_leaves
        self.data = [n for n in self.leaves if n.op == "input"]
        self.B = batch_dim(src)
        self.batched = [n for n in self.data if n.dims and n.dims[0] == self.B]
        fresh = self.m.namer.fresh
        self.vel = {p: fresh("v_" + names[p]) for p in src.params}      # run_epochs'
        self.first = {p: fresh("m_" + names[p]) for p in src.params}    # optimizer state
        self.second = {p: fresh("s_" + names[p]) for p in src.params}
        self.full = {n: fresh(names[n] + "_all") for n in self.batched}   # the whole data
        self.tdata = {n: fresh(names[n] + "T") for n in src.gemv_data() if n in self.batched}
        # the step body again, reading the transposed copies; row passes alternate direction
        src.step(self.tdata, row_parity=rowpass.PARITY, fuse_updates=True)
        self.v = {k: fresh(k) for k in ("n_all", "n_batches", "batch_size", "momentum",
                                         "orders", "lrs", "losses", "epoch", "lr", "order",
                                         "total", "step", "row", "src", "batch_loss", "rule",
                                         "hyper", "steps")}
        # named after the step's own names, so the loop's names stay the same as without
        parity = f"{self.v['steps']}[0] % 2 == 1"
        src.step_lines = [line.replace(rowpass.PARITY, parity) for line in src.step_lines]

    def setup(self, steps):
        """Sizes, minibatch buffers (or the data itself for full batch), step buffers;
        ``steps``: an expression for the steps of the call (full batch: one an epoch)."""
        src, v, names = self.src, self.v, self.names
        if self.B is None:
            L = [f"{v['n_batches']} = 1"]
        else:
            nb = self.m.size[self.B]
            L = [f"{v['n_all']} = {self.full[self.batched[0]]}.shape[0]",
                 f"{nb} = {v['n_all']} if {v['batch_size']} <= 0 else {v['batch_size']}"
                 "  # examples per step",
                 f"{v['n_batches']} = {v['n_all']} // {nb}  # the last partial batch is dropped",
                 ", ".join(names[n] for n in self.batched) + " = "
                 + ", ".join(self.full[n] for n in self.batched)]
        dims = {d for _, ds in src.grad_buffers + src.step_buffers for d in ds} | \
            {d for n in self.data for d in n.dims}
        L += src.sizes(self.leaves, dims, skip=(self.B,))
        if self.batched:
            L.append(f"if {v['batch_size']} > 0:  # minibatch buffers; full batch uses the data")
            L += ["    " + src.alloc(names[n], n.dims, "np.int64" if n.dtype == INT else None)
                  for n in self.batched if _reads(src, n)]
            L += ["    " + src.alloc(t, tuple(reversed(n.dims))) for n, t in self.tdata.items()]
            full = [f"    {t} = np.ascontiguousarray({names[n]}.T)" for n, t in self.tdata.items()]
            by_rows = src.row_matrices()
            full += [f"    {names[n]} = _sg_aligned({names[n]}, {steps})  # for the row kernels"
                     for n in self.batched if n in by_rows]
            if full:
                L += ["else:"] + full
        return L + src.step_allocs()

    def gather(self, I):
        """Copy this minibatch's rows (in ``order``) into the buffers."""
        if not self.batched:
            return []
        v, m, B = self.v, self.m, self.m.size[self.B]
        L = [f"{I}if {v['batch_size']} > 0:  # gather this minibatch's rows",
             f"{I}    for {v['row']} in range({B}):",
             f"{I}        {v['src']} = {v['order']}[{v['step']} * {B} + {v['row']}]"]
        for n in self.batched:
            rest = n.dims[1:]
            head = [f"{I}        {'    ' * k}for {m.index[d]} in range({m.size[d]}):"
                    for k, d in enumerate(rest)]
            ix = "".join(", " + m.index[d] for d in rest)
            source = f"{self.full[n]}[{v['src']}{ix}]"
            body = [f"{self.names[n]}[{v['row']}{ix}] = {source}"] if _reads(self.src, n) else []
            if n in self.tdata:
                body.append(f"{self.tdata[n]}[{ix[2:]}, {v['row']}] = {source}")
            L += head + [f"{I}        {'    ' * len(rest)}{b}" for b in body]
        return L

    def text(self):
        src, v = self.src, self.v
        I = "        "
        L = self.setup(f"{v['lrs']}.shape[0]") + [
            f"{v['losses']} = np.empty({v['lrs']}.shape[0])",
            f"for {v['epoch']} in range({v['lrs']}.shape[0]):",
            f"    {v['losses']}[{v['epoch']}] = np.nan",
            f"for {v['epoch']} in range({v['lrs']}.shape[0]):",
            f"    {v['lr']} = {v['lrs']}[{v['epoch']}]",
            f"    {v['order']} = {v['orders']}[{v['epoch']} % {v['orders']}.shape[0]]",
            f"    {v['total']} = 0.0",
            f"    for {v['step']} in range({v['n_batches']}):"]
        L += self.gather(I) + [I + line for line in src.step_lines]
        L += checked_step(src, v, I, "diverged: keep the last finite params",
                          [f"{v['losses']}[{v['epoch']}] = {v['batch_loss']}",
                           f"return {v['losses']}, {v['epoch']} + 1"], v["total"])
        L += _updates(src, self.first, self.second, v, I)
        L += [f"    {v['losses']}[{v['epoch']}] = {v['total']} / {v['n_batches']}",
              f"return {v['losses']}, {v['lrs']}.shape[0]"]
        leaves = [self.full.get(n, self.names[n]) for n in self.leaves]
        state = [self.first[p] for p in src.params] + [self.second[p] for p in src.params]
        args = leaves + state + [v[k] for k in ("orders", "lrs", "batch_size", "rule", "hyper",
                                                "steps")]
        out = [JIT, f"def run_epochs_with({', '.join(args)}):", f'    """{_DOC}"""']
        return "\n".join(out + ["    " + line for line in L]) + "\n\n" + self.sgd(leaves)

    def sgd(self, leaves):
        """``run_epochs``: SGD (momentum if != 0) through ``run_epochs_with``, rule 0.

        Plain Python, not compiled: it is called once per run of epochs, and compiling
        it would compile the whole loop a second time (Numba optimises a callee again
        inside each compiled caller).
        """
        v, vel = self.v, [self.vel[p] for p in self.src.params]
        call = leaves + vel + vel + [v["orders"], v["lrs"], v["batch_size"], "0", v["hyper"],
                                     "np.zeros(1, np.int64)"]
        lines = [f"{v['hyper']} = np.array([float({v['momentum']}), 0.0, 0.0, 0.0])",
                 f"return run_epochs_with({', '.join(call)})"]
        args = leaves + vel + [v[k] for k in ("orders", "lrs", "batch_size", "momentum")]
        return "\n".join([f"def run_epochs({', '.join(args)}):", f'    """{_SGD_DOC}"""']
                         + ["    " + line for line in lines]) + "\n\n"


RULES = ("sgd", "nesterov", "adam", "adamw", "rmsprop")   # rule index -> optimizer

_DOC = ("Run len(lrs) epochs of minibatch training with optimizer RULES[rule], in place.\n\n"
        "    Epoch e uses learning rate lrs[e] and row order orders[e % len(orders)]; "
        "batch_size <= 0\n    means full batch. hyper = (momentum or beta1, beta2 or alpha, "
        "eps, weight_decay);\n    m_*, s_* (optimizer state) and steps (steps done) are "
        "updated in place. Returns\n    (per-epoch mean minibatch loss, epochs run); a "
        "non-finite loss stops the run\n    before its update.\n    ")
_SGD_DOC = ("SGD epochs (momentum if momentum != 0: v = momentum v - lr g; p += v), in "
            "place.\n\n    run_epochs_with with rule 0 and the velocities v_* as state; "
            "same return value.\n    (Plain Python: the compiled loop is run_epochs_with.)\n    ")


def run_epochs(src):
    loop = src.loop = _Loop(src)    # kept: grouploop.run_group writes from the same pieces
    src.run_args = (loop.leaves, [loop.vel[p] for p in src.params])
    return loop.text()


def checked_step(src, v, I, why, stop, total):
    """After a step's body: its loss; ``stop`` (lines) when it is not finite, before any
    update; else the epoch's running ``total`` and the optimizer's step count."""
    bl = v["batch_loss"]
    return ([f"{I}{bl} = {src.step_loss}", f"{I}if not math.isfinite({bl}):  # {why}"]
            + [f"{I}    {line}" for line in stop]
            + [f"{I}{total} += {bl}", f"{I}{v['steps']}[0] += 1  # the optimizer's step number t"])


def _reads(src, node):
    """Whether the step body (or a gradient moved into the updates) reads ``node``'s rows
    (not only its transposed copy)."""
    name = re.compile(r"\b%s\b" % re.escape(src.m.names[node]))
    moved = [line for g in src.fused.values() for line in g.into_buffer()]
    return any(name.search(line.split("#", 1)[0]) for line in src.step_lines + moved)


# One compiled update routine for every param (flat views) and every rule, instead of a
# loop nest per param and per rule: fewer loops to compile, same arithmetic.
UPDATE = '''def _sg_update(p, g, m, s, rule, lr, h, t):
    """One optimizer step of one param (flat views), in place; torch.optim's rules.

    rule: 0 sgd, 1 nesterov, 2 adam, 3 adamw, 4 rmsprop. h = (momentum or beta1,
    beta2 or alpha, eps, weight_decay); t: this step's number (1, 2, ...).
    m: velocity, momentum buffer or first moment; s: second moment.
    """
    mu, rho, eps, wd = h[0], h[1], h[2], h[3]
    n = p.shape[0]
    if wd != 0.0 and rule == 3:
        for j in range(n):
            p[j] *= 1.0 - lr * wd  # AdamW: p <- p (1 - lr wd), decoupled weight decay
    elif wd != 0.0:
        for j in range(n):
            g[j] += wd * p[j]  # L2 weight decay: g <- g + wd p
    if rule == 0 and mu == 0.0:
        for j in range(n):
            p[j] -= lr * g[j]  # SGD: p <- p - lr g
    elif rule == 0:
        for j in range(n):
            m[j] = mu * m[j] - lr * g[j]  # velocity: v <- mu v - lr g
            p[j] += m[j]  # SGD with momentum: p <- p + v
    elif rule == 1:
        for j in range(n):
            m[j] = mu * m[j] + g[j]  # momentum buffer: b <- mu b + g
            p[j] -= lr * (g[j] + mu * m[j])  # Nesterov: p <- p - lr (g + mu b)
    elif rule == 2 or rule == 3:
        step = lr / (1.0 - mu ** t)  # lr / (1 - beta1^t): bias correction of m
        root = math.sqrt(1.0 - rho ** t)  # sqrt(1 - beta2^t): bias correction of s
        for j in range(n):
            m[j] = mu * m[j] + (1.0 - mu) * g[j]  # first moment: m <- b1 m + (1 - b1) g
            s[j] = rho * s[j] + (1.0 - rho) * g[j] * g[j]  # second: s <- b2 s + (1 - b2) g^2
            p[j] -= step * m[j] / (math.sqrt(s[j]) / root + eps)  # Adam: p <- p - lr m^ / (sqrt(s^) + eps)
    elif mu == 0.0:
        for j in range(n):
            s[j] = rho * s[j] + (1.0 - rho) * g[j] * g[j]  # s <- alpha s + (1 - alpha) g^2
            p[j] -= lr * g[j] / (math.sqrt(s[j]) + eps)  # RMSprop: p <- p - lr g / (sqrt(s) + eps)
    else:
        for j in range(n):
            s[j] = rho * s[j] + (1.0 - rho) * g[j] * g[j]  # s <- alpha s + (1 - alpha) g^2
            m[j] = mu * m[j] + g[j] / (math.sqrt(s[j]) + eps)  # b <- mu b + g / (sqrt(s) + eps)
            p[j] -= lr * m[j]  # RMSprop with momentum: p <- p - lr b
'''


def _updates(src, first, second, v, I):
    """Plain SGD (rule 0 without momentum or weight decay, fit's default) as a loop nest per
    param, or its gradient computed in that update (``fused_update.py``); any other rule:
    the moved gradients into their buffers first, then ``_sg_update`` on flat views of each
    param, its gradient and its state (making the views and the call cost ~2% of a small
    MLP's step)."""
    m = src.m
    m.helpers["_sg_update"] = UPDATE
    h = v["hyper"]
    plain = [f"{I}if {v['rule']} == 0 and {h}[0] == 0.0 and {h}[3] == 0.0:  # SGD: p <- p - lr g"]
    other = [f"{I}else:"] + [f"{I}    {line}" for g in src.fused.values()
                             for line in g.into_buffer()]
    lr = f"{m.dtype}({v['lr']})" if m.float32 else v["lr"]   # not widened
    for p, (g, _) in zip(src.params, src.grad_buffers):
        if p in src.fused:
            plain += [f"{I}    {line}" for line in src.fused[p].update(m.names[p], lr)]
        else:
            at = ", ".join(m.index[d] for d in p.dims) or "0"
            plain += [f"{I}    {'    ' * k}for {m.index[d]} in range({m.size[d]}):"
                      for k, d in enumerate(p.dims)]
            plain.append(f"{I}    {'    ' * len(p.dims)}{m.names[p]}[{at}] -= {lr} * {g}[{at}]")
        views = [m.names[p], g, first[p], second[p]]
        flat = [f"{x}.reshape(-1)" if len(p.dims) > 1 else x for x in views]
        args = flat + [v["rule"], v["lr"], v["hyper"], f"{v['steps']}[0]"]
        other.append(f"{I}    _sg_update({', '.join(args)})")
    return plain + other


def train(src):
    """A plain-Python ``train`` for exported modules: shuffles, then one run_epochs_with call."""
    leaves, vels = src.run_args
    dt = src.dtype
    conv = []
    for n in leaves:
        kind = "np.int64" if n.dtype == INT else dt
        where = "data" if n.op == "input" else "params"
        shape = "" if n.dims else ".reshape(1)"
        conv.append(f"np.ascontiguousarray({where}[{name_literal(n.name)}], {kind}){shape}")
    names = [name_literal(p.name) for p in src.params]
    ndata = sum(1 for n in leaves if n.op == "input")
    rows = [n for n in src.data if n.dims]           # 0-d tensors (hyperparameters) have none
    n_rows = f"len(data[{name_literal(rows[0].name)}])" if rows else "1"
    return f'''def train(params, data, epochs=10, lr=0.01, batch_size=None, momentum=0.0, seed=0,
          optimizer="sgd", betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, alpha=0.99):
    """Minibatch training (full batch if batch_size is None); returns (params, epoch losses).

    optimizer: "sgd", "nesterov", "adam", "adamw" or "rmsprop", with torch.optim's update
    rules (see _sg_update). params and data map the model's names to arrays; params are
    copied, not changed.
    """
    rule = {RULES!r}.index(optimizer)
    adam = optimizer in ("adam", "adamw")
    hyper = np.array([betas[0] if adam else momentum, betas[1] if adam else alpha, eps,
                      weight_decay], np.float64)
    params = {{k: np.array(v, {dt}) for k, v in params.items()}}
    args = [{", ".join(conv)}]
    state = [np.zeros(args[{ndata} + k % {len(vels)}].shape, {dt}) for k in range({2 * len(vels)})]
    rng = np.random.default_rng(seed)
    n = {n_rows}
    orders = np.stack([rng.permutation(n) for _ in range(epochs)]) if batch_size else \\
        np.zeros((1, 1), np.int64)
    lrs = np.full(epochs, float(lr))
    losses, done = run_epochs_with(*args, *state, orders, lrs, batch_size or 0, rule, hyper,
                                   np.zeros(1, np.int64))
    out = {{name: args[{ndata} + k].reshape(np.shape(params[name]))
           for k, name in enumerate([{", ".join(names)}])}}
    return out, losses[:done]
'''


# -- the boundary: a CompiledModel's run_epochs_with and its L-BFGS objective -------------------
def call_run_epochs_with(model, params, data, orders, lrs, batch_size, rule, hyper, state,
                         checked=False):
    """``CompiledModel.run_epochs`` with any optimizer of ``RULES``; same arguments and
    return value, plus ``rule`` (a name), ``hyper`` (4 floats, see the module docstring)
    and ``state`` (``.m`` and ``.s``: name -> array, ``.step``: int), updated in place.
    ``checked``: see :func:`prepared_args`."""
    if rule not in RULES:
        raise ValueError(f"unknown optimizer rule {rule!r}; the compiled loop has {RULES}")
    # Same checks and argument preparation as run_epochs: run it with zero epochs.
    args, work, orders, lrs = prepared_args(model, params, data, orders, lrs, batch_size,
                                            checked)
    ms = [_state_array(model, state.m, p, work[p]) for p in model.params]
    ss = [_state_array(model, state.s, p, work[p]) for p in model.params]
    steps = np.array([state.step], dtype=np.int64)
    losses, done = model._call("run_epochs_with", *args, *ms, *ss, orders, lrs,
                               0 if batch_size is None else int(batch_size), RULES.index(rule),
                               np.ascontiguousarray(hyper, dtype=np.float64), steps)
    write_back(params, [(p.name, work[p]) for p in work if p.op == "param"])
    write_back(state.m, [(p.name, a) for p, a in zip(model.params, ms)])
    write_back(state.s, [(p.name, a) for p, a in zip(model.params, ss)])
    state.step = int(steps[0])
    return losses, int(done)


def prepared_args(model, params, data, orders, lrs, batch_size, checked=False):
    """The checked arguments of the compiled loop (as ``CompiledModel.run_epochs``).

    ``checked=True`` is for ``fit``, which has bound and checked ``params`` and ``data``
    against this model's loss already and drawn ``orders`` itself: their values are not
    checked a second time (shapes and batch size still are), ~50 us a call."""
    from symgrad.errors import DataError
    args = (model._checked_args("run_epochs", params, data) if checked else
            model._args("run_epochs", params, data))
    leaves, odd, row_leaf = _loop_facts(model)
    if batch_size is not None and odd:
        raise DataError(
            f"cannot take minibatches along dim {batch_dim(model._src)!r}: it must be the "
            f"first dim of every data tensor that has it and of no param, but "
            f"{', '.join(n.display for n in odd)} disagree; train full batch (batch_size=None)")
    work = dict(zip(leaves, args))
    n_rows = work[row_leaf].shape[0] if row_leaf is not None else 1
    lrs = np.ascontiguousarray(lrs, dtype=np.float64).reshape(-1)
    if batch_size is not None and not 1 <= int(batch_size) <= n_rows:
        raise DataError(f"batch_size must be between 1 and the {n_rows} rows of data, "
                        f"got {batch_size}")
    if not (checked and orders is not None and orders.shape[1:] == (n_rows,)):
        orders = model._orders(orders, n_rows, len(lrs), batch_size)
    return args, work, orders, lrs


def _loop_facts(model):
    """``run_epochs``' leaves, those minibatches cannot slice, and the data leaf whose
    first dim counts the rows (or None): fixed by the graph, so found once per model
    (finding them on every call cost ~50 us straight after a training run)."""
    facts = model.__dict__.get("_loop_facts")
    if facts is None:
        leaves = model._src.functions["run_epochs"].leaves
        rows = [n for n in leaves if n.op == "input" and n.dims]
        facts = model._loop_facts = (leaves, unbatchable(model._src, leaves),
                                     rows[0] if rows else None)
    return facts


def _state_array(model, arrays, p, like):
    value = arrays.get(p.name)
    if value is None:
        return np.zeros(like.shape, like.dtype)
    return model._prepare(p, value)


def write_back(target, pairs):
    """Trained values into the caller's arrays (a no-op where they are the same memory)."""
    for name, arr in pairs:
        old = target.get(name)
        if old is arr or isinstance(old, np.ndarray) and np.shares_memory(old, arr):
            continue
        if isinstance(old, np.ndarray) and old.flags.writeable:
            np.copyto(old, arr.reshape(old.shape), casting="unsafe")
        else:
            target[name] = arr.reshape(np.shape(old)) if old is not None else arr


def flat_objective(model, params, data):
    """``(f, x0, unflatten)`` for SciPy: ``f(x) -> (loss, gradient)`` on one flat float64
    vector of every param (in ``model.params`` order), calling the compiled
    ``loss_and_grad`` on arguments bound once (no per-call checks); ``unflatten(x)``
    writes ``x`` into ``params``' arrays."""
    args = model._args("loss_and_grad", params, data)
    leaves = model._src.functions["loss_and_grad"].leaves
    slots = {n: a for n, a in zip(leaves, args) if n.op == "param"}
    targets = [slots.get(p) for p in model.params]
    sizes = [int(np.prod(np.shape(params[p.name]))) for p in model.params]
    cuts = np.cumsum([0] + sizes)
    x0 = np.concatenate([np.asarray(params[p.name], np.float64).ravel() for p in model.params])

    def unflatten(x):
        for k, p in enumerate(model.params):
            piece = x[cuts[k]:cuts[k + 1]]
            dest = params[p.name]
            dest[...] = piece.reshape(np.shape(dest))
            if targets[k] is not None and not np.shares_memory(targets[k], dest):
                targets[k][...] = piece.reshape(targets[k].shape)

    def f(x):
        unflatten(x)
        loss, *grads = model._call("loss_and_grad", *args)
        return float(loss), np.concatenate([np.asarray(g, np.float64).ravel() for g in grads])

    return f, x0, unflatten

"""The fused training loop (``run_epochs``) and the standalone ``train`` entry point.

``run_epochs`` runs a whole run of epochs in one compiled call: per minibatch it
gathers rows into buffers allocated once (named like the user's tensors, so the
step reads as in ``loss_and_grad``), runs the forward and backward step and
updates the params in place. The loss is checked before each
update, so on a NaN/inf the params are the last finite ones.
"""
import re

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
        self.vel = {p: fresh("v_" + names[p]) for p in src.params}
        self.full = {n: fresh(names[n] + "_all") for n in self.batched}   # the whole data
        self.tdata = {n: fresh(names[n] + "T") for n in src.gemv_data() if n in self.batched}
        src.step(self.tdata)      # the step body again, reading the transposed copies
        self.v = {k: fresh(k) for k in ("n_all", "n_batches", "batch_size", "momentum",
                                         "orders", "lrs", "losses", "epoch", "lr", "order",
                                         "total", "step", "row", "src", "batch_loss")}

    def setup(self):
        """Sizes, minibatch buffers (or the data itself for full batch), step buffers."""
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
            if self.tdata:
                L += ["else:"] + [f"    {t} = np.ascontiguousarray({names[n]}.T)"
                                  for n, t in self.tdata.items()]
        return L + [src.alloc(n, ds) for n, ds in src.grad_buffers + src.step_buffers]

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
        L = self.setup() + [
            f"{v['losses']} = np.empty({v['lrs']}.shape[0])",
            f"for {v['epoch']} in range({v['lrs']}.shape[0]):",
            f"    {v['losses']}[{v['epoch']}] = np.nan",
            f"for {v['epoch']} in range({v['lrs']}.shape[0]):",
            f"    {v['lr']} = {v['lrs']}[{v['epoch']}]",
            f"    {v['order']} = {v['orders']}[{v['epoch']} % {v['orders']}.shape[0]]",
            f"    {v['total']} = 0.0",
            f"    for {v['step']} in range({v['n_batches']}):"]
        L += self.gather(I) + [I + line for line in src.step_lines]
        L += [f"{I}{v['batch_loss']} = {src.step_loss}",
              f"{I}if not math.isfinite({v['batch_loss']}):  # diverged: keep the last "
              "finite params",
              f"{I}    {v['losses']}[{v['epoch']}] = {v['batch_loss']}",
              f"{I}    return {v['losses']}, {v['epoch']} + 1",
              f"{I}{v['total']} += {v['batch_loss']}"]
        L += _updates(src, self.vel, v["lr"], v["momentum"], I)
        L += [f"    {v['losses']}[{v['epoch']}] = {v['total']} / {v['n_batches']}",
              f"return {v['losses']}, {v['lrs']}.shape[0]"]
        args = [self.full.get(n, self.names[n]) for n in self.leaves] + \
            [self.vel[p] for p in src.params] + [v[k] for k in ("orders", "lrs", "batch_size",
                                                               "momentum")]
        out = [JIT, f"def run_epochs({', '.join(args)}):", f'    """{_DOC}"""']
        return "\n".join(out + ["    " + line for line in L]) + "\n\n"


_DOC = ("Run len(lrs) epochs of minibatch SGD (momentum if momentum != 0) in place.\n\n"
        "    Epoch e uses learning rate lrs[e] and row order orders[e % len(orders)]; "
        "batch_size <= 0\n    means full batch. Returns (per-epoch mean minibatch loss, "
        "epochs run); a\n    non-finite loss stops the run before its update.\n    ")


def run_epochs(src):
    loop = _Loop(src)
    src.run_args = (loop.leaves, [loop.vel[p] for p in src.params])
    return loop.text()


def _reads(src, node):
    """Whether the step body reads ``node``'s rows (not only its transposed copy)."""
    name = re.compile(r"\b%s\b" % re.escape(src.m.names[node]))
    return any(name.search(line.split("#", 1)[0]) for line in src.step_lines)


# One compiled update routine for every param (flat views), instead of a loop nest per
# param and per rule: fewer loops to compile, same arithmetic.
UPDATE = '''def _sg_update(p, g, v, lr, momentum):
    """In place: p -= lr g (plain SGD) or v = momentum v - lr g; p += v."""
    if momentum == 0.0:
        for j in range(p.shape[0]):
            p[j] -= lr * g[j]
    else:
        for j in range(p.shape[0]):
            v[j] = momentum * v[j] - lr * g[j]
            p[j] += v[j]
'''


def _updates(src, vel, lr, momentum, I):
    """``_sg_update`` calls on flat views of each param, its gradient and velocity."""
    m = src.m
    m.helpers["_sg_update"] = UPDATE
    out = []
    for p, (g, _) in zip(src.params, src.grad_buffers):
        flat = [f"{x}.reshape(-1)" if len(p.dims) > 1 else x for x in (m.names[p], g, vel[p])]
        out.append(f"{I}_sg_update({', '.join(flat)}, {lr}, {momentum})")
    return out


def train(src):
    """A plain-Python ``train`` for exported modules: shuffles, then one run_epochs call."""
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
    first = name_literal(src.data[0].name) if src.data else None
    n_rows = f"len(data[{first}])" if first and src.data[0].dims else "1"
    return f'''def train(params, data, epochs=10, lr=0.01, batch_size=None, momentum=0.0, seed=0):
    """Minibatch SGD (full batch if batch_size is None); returns (params, epoch losses).

    params and data map the model's names to arrays; params are copied, not changed.
    """
    params = {{k: np.array(v, {dt}) for k, v in params.items()}}
    args = [{", ".join(conv)}]
    vels = [np.zeros(args[{ndata} + k].shape, {dt}) for k in range({len(vels)})]
    rng = np.random.default_rng(seed)
    n = {n_rows}
    orders = np.stack([rng.permutation(n) for _ in range(epochs)]) if batch_size else \\
        np.zeros((1, 1), np.int64)
    lrs = np.full(epochs, float(lr))
    losses, done = run_epochs(*args, *vels, orders, lrs, batch_size or 0, float(momentum))
    out = {{name: args[{ndata} + k].reshape(np.shape(params[name]))
           for k, name in enumerate([{", ".join(names)}])}}
    return out, losses[:done]
'''

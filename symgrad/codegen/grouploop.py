"""``run_group_with``: several runs of one model trained together, one compiled call.

The runs share the data and the row order (the same seed and batch size); each has its
own params, optimizer state, learning rates, optimizer rule and hyperparameters, stacked
along a leading run axis (``W_runs[r]`` is run ``r``'s ``W``). Per step the minibatch is
gathered once, then each live run does exactly the step of ``run_epochs_with`` (the same
lines, the same buffers, the same BLAS calls on the same shapes), so every run's params
and losses are bitwise those of its own ``run_epochs_with`` call. A run whose loss is not
finite stops there (its params keep the values of that step; the caller rewinds it), the
others go on.

Numba compiles lazily: a module pays for this function only when a sweep calls it.
"""
import numpy as np

from symgrad.codegen.jit import JIT
from symgrad.codegen.trainloop import (RULES, _state_array, _updates, batch_dim, checked_step,
                                       prepared_args, write_back)

_DOC = ("Train R runs together (leading run axis on params, state and per-run data), in "
        "place.\n\n    Each run's step is run_epochs_with's step; the minibatch is "
        "gathered once for all.\n    lrs: (R, epochs); rules, steps: (R,); hypers: (R, 4); "
        "live: (R,) bool, cleared\n    when a run's loss is not finite. Returns (losses "
        "(R, epochs), epochs run per run).\n    ")


def per_run_data(src, leaves):
    """Data leaves each run has its own value of: those without the batch dim leading
    (hyperparameters such as lambda, fixed tensors); the batched data is shared."""
    B = batch_dim(src)
    return [n for n in leaves if n.op == "input" and not (n.dims and n.dims[0] == B)]


def run_group(loop):
    """The text of ``run_group_with`` from the ``_Loop`` that wrote ``run_epochs_with``."""
    src, v, names, fresh = loop.src, loop.v, loop.names, loop.m.namer.fresh
    own = [n for n in loop.leaves if n.op == "param"] + per_run_data(src, loop.leaves)
    stacked = {n: fresh(names[n] + "_runs") for n in own}
    first = {p: fresh(loop.first[p] + "_runs") for p in src.params}
    second = {p: fresh(loop.second[p] + "_runs") for p in src.params}
    g = {k: fresh(k) for k in ("R", "r", "lrs_runs", "rules", "hypers", "steps_runs", "live",
                                "done", "totals")}
    bind = [f"{names[n]} = {stacked[n]}[{g['r']}]" for n in own]
    bind += [f"{loop.first[p]} = {first[p]}[{g['r']}]" for p in src.params]
    bind += [f"{loop.second[p]} = {second[p]}[{g['r']}]" for p in src.params]
    bind += [f"{v['lr']} = {g['lrs_runs']}[{g['r']}, {v['epoch']}]",
             f"{v['rule']} = {g['rules']}[{g['r']}]",
             f"{v['hyper']} = {g['hypers']}[{g['r']}]",
             f"{v['steps']} = {g['steps_runs']}[{g['r']}:{g['r']} + 1]"]
    first_run = [f"{names[n]} = {stacked[n]}[0]  # sizes and buffers from run 0" for n in own]
    I = "            "
    L = first_run + loop.setup(f"{g['lrs_runs']}.size") + [
        f"{g['R']} = {g['lrs_runs']}.shape[0]",
        f"{v['losses']} = np.full(({g['R']}, {g['lrs_runs']}.shape[1]), np.nan)",
        f"{g['done']} = np.full({g['R']}, {g['lrs_runs']}.shape[1], np.int64)",
        f"{g['totals']} = np.zeros({g['R']})",
        f"for {v['epoch']} in range({g['lrs_runs']}.shape[1]):",
        f"    {v['order']} = {v['orders']}[{v['epoch']} % {v['orders']}.shape[0]]",
        f"    {g['totals']}[:] = 0.0",
        f"    for {v['step']} in range({v['n_batches']}):"]
    L += loop.gather("        ")
    L += [f"        for {g['r']} in range({g['R']}):",
          f"            if not {g['live']}[{g['r']}]:",
          "                continue"]
    L += [I + line for line in bind + src.step_lines]
    L += checked_step(src, v, I, "this run diverged; the others go on",
                      [f"{v['losses']}[{g['r']}, {v['epoch']}] = {v['batch_loss']}",
                       f"{g['done']}[{g['r']}] = {v['epoch']} + 1",
                       f"{g['live']}[{g['r']}] = False", "continue"],
                      f"{g['totals']}[{g['r']}]")
    L += _updates(src, loop.first, loop.second, v, I)
    L += [f"    for {g['r']} in range({g['R']}):",
          f"        if {g['live']}[{g['r']}]:",
          f"            {v['losses']}[{g['r']}, {v['epoch']}] = {g['totals']}[{g['r']}] / "
          f"{v['n_batches']}",
          f"return {v['losses']}, {g['done']}"]
    leaves = [loop.full.get(n) or stacked.get(n) or names[n] for n in loop.leaves]
    state = [first[p] for p in src.params] + [second[p] for p in src.params]
    args = leaves + state + [v["orders"], g["lrs_runs"], v["batch_size"], g["rules"],
                             g["hypers"], g["steps_runs"], g["live"]]
    out = [JIT, f"def run_group_with({', '.join(args)}):", f'    """{_DOC}"""']
    return "\n".join(out + ["    " + line for line in L]) + "\n\n"


# -- the boundary ---------------------------------------------------------------------------
def call_run_group_with(model, runs, orders, batch_size):
    """Train ``runs`` of ``model`` together; ``[(losses, epochs run), ...]`` in run order.

    Each run is a dict: ``params``, ``data`` (the shared data plus its own hyperparameter
    values), ``lrs``, ``rule`` (a name of ``RULES``), ``hyper`` (4 floats) and ``state``
    (``.m``, ``.s``, ``.step``), as :func:`~symgrad.codegen.trainloop.call_run_epochs_with`
    takes them; params and state are updated in place as there. Every run is bound and
    checked exactly as that call would (so the arrays are the same); the data with the
    batch dim is taken from the first run, whose rows and order all runs share.
    """
    bound = [prepared_args(model, run["params"], run["data"], orders, run["lrs"], batch_size)
             for run in runs]
    leaves = model._src.functions["run_epochs"].leaves
    own = set(per_run_data(model._src, leaves)) | {n for n in leaves if n.op == "param"}
    args = [np.stack([b[0][k] for b in bound]) if n in own else bound[0][0][k]
            for k, n in enumerate(leaves)]
    state = [np.stack([_state_array(model, getattr(run["state"], which), p, b[1][p])
                       for run, b in zip(runs, bound)])
             for which in ("m", "s") for p in model.params]
    steps = np.array([run["state"].step for run in runs], dtype=np.int64)
    losses, done = model._call(
        "run_group_with", *args, *state, bound[0][2], np.stack([b[3] for b in bound]),
        0 if batch_size is None else int(batch_size),
        np.array([RULES.index(run["rule"]) for run in runs], dtype=np.int64),
        np.array([run["hyper"] for run in runs], dtype=np.float64), steps,
        np.ones(len(runs), dtype=np.bool_))
    n = len(model.params)
    for r, run in enumerate(runs):
        write_back(run["params"], [(node.name, args[k][r]) for k, node in enumerate(leaves)
                                   if node.op == "param"])
        write_back(run["state"].m, [(p.name, state[j][r]) for j, p in enumerate(model.params)])
        write_back(run["state"].s, [(p.name, state[n + j][r]) for j, p in enumerate(model.params)])
        run["state"].step = int(steps[r])
    return [(losses[r], int(done[r])) for r in range(len(runs))]


"""The NumPy reference trainer: the meaning of ``run_epochs``, and the oracle for compiled code.

:class:`NumpyModel` has the same methods as a compiled model (``loss``, ``grad``,
``output``, ``run_epochs``) but evaluates the forward and backward graphs one NumPy
call per node (``symgrad.graph.evaluate.run_graph``). It is slow and plain on purpose:
compiled training loops are tested against it, and ``fit`` falls back to it when
``symgrad.codegen`` is not available.

The ``run_epochs`` contract (shared with ``CompiledModel.run_epochs``)::

    run_epochs(params, data, orders, lrs, batch_size, momentum=0.0, velocity=None)
        -> (epoch_losses, n_epochs_done)

- ``params``: name -> float ndarray, updated IN PLACE. ``data``: name -> ndarray.
- ``lrs``: float array (E,), the learning rate of each of the E epochs.
- ``orders``: int64 array (E, N) of per-epoch permutations of the batch dim, or None
  for the identity order. With ``batch_size=None`` (full batch) orders are ignored:
  the full-batch gradient does not depend on row order, and not permuting keeps it
  bit-identical to ``grad(params, **data)``.
- ``batch_size``: rows per step; the last partial batch of an epoch is dropped.
  Step k of epoch e uses rows ``orders[e, k*B:(k+1)*B]``.
- Update, per param: without momentum ``p -= lr * g``; with momentum m (classical,
  as Keras): ``v = m * v - lr * g; p += v``. ``velocity`` (name -> array) is updated
  in place; None means start from zero buffers. ``run_epochs_with(params, data,
  orders, lrs, batch_size, optimizer, state)`` is the same loop with any optimizer of
  ``symgrad.train.optimizers`` (Adam, RMSprop, ...) and its state (moments and step
  count, updated in place).
- ``epoch_losses[e]`` is the mean of the batch losses of epoch e, each evaluated
  before its step (Keras' convention for the training loss).
- Divergence: the first non-finite batch loss, or non-finite params at the end of an
  epoch, stops the run. The diverging epoch does not count: params (and velocity) are
  restored to their values at its start, i.e. after the last finite epoch, and
  ``n_epochs_done`` is its index. ``epoch_losses`` has length E; entry
  ``n_epochs_done`` holds the offending loss (non-finite) and later entries are NaN.
  (``fit`` does not rely on where a loop leaves the params or whether ``n_epochs_done``
  counts the diverging epoch: it counts the leading finite losses, and rewinds by
  restoring the chunk's starting params and replaying the finite epochs.)
"""
import numpy as np

from symgrad.diff.reverse import backward, check_loss, check_params
from symgrad.errors import DataError, DeclarationError
from symgrad.graph.bind import bind
from symgrad.graph.evaluate import run_graph
from symgrad.graph.traverse import batch_dim, leaves, topo_order
from symgrad.train.optimizers import Optimizer, OptimizerState


class NumpyModel:
    """A model evaluated by the NumPy reference evaluator, with the compiled model's API."""

    def __init__(self, loss, params=None, dtype=np.float64):
        check_loss(loss)
        self.loss_node = loss
        self.param_nodes = check_params(loss, leaves(loss, "param") if params is None else params)
        grads, _ = backward(loss, self.param_nodes)
        self.grad_nodes = [grads[p] for p in self.param_nodes]
        self.input_nodes = leaves(loss, "input")
        self.dtype = np.dtype(dtype).type
        self.batch_dim = infer_batch_dim(loss)

    def __repr__(self):
        names = ", ".join(p.name for p in self.param_nodes)
        return f"<NumpyModel loss={self.loss_node.display} params=[{names}]>"

    @property
    def param_names(self):
        return [p.name for p in self.param_nodes]

    # -- single evaluations --------------------------------------------------------------
    def _bind(self, outputs, params, data):
        return bind(outputs, {**data, **params}, self.dtype)

    def loss(self, params, **data):
        """The loss (a float) at ``params`` on ``data``."""
        arrays, sizes = self._bind([self.loss_node], params, data)
        return float(run_graph([self.loss_node], arrays, sizes, self.dtype)[self.loss_node])

    def grad(self, params, **data):
        """``{param name: dL/dparam}`` as arrays of the params' shapes."""
        arrays, sizes = self._bind([self.loss_node], params, data)
        _, grads = self._loss_and_grad(arrays, sizes)
        return dict(zip(self.param_names, grads))

    def output(self, node_or_name, params, **data):
        """The value of any node of the loss graph (given or found by name)."""
        node = find_node(self.loss_node, node_or_name)
        names = {n.name for n in topo_order(node) if n.op in ("input", "param")}
        values = {k: v for k, v in {**data, **params}.items() if k in names}
        arrays, sizes = bind([node], values, self.dtype)
        return run_graph([node], arrays, sizes, self.dtype)[node]

    def _loss_and_grad(self, arrays, sizes):
        outs = [self.loss_node] + self.grad_nodes
        values = run_graph(outs, arrays, sizes, self.dtype)
        grads = []
        for p, g in zip(self.param_nodes, self.grad_nodes):
            # A gradient that reduces to a constant comes back as a scalar: give it p's shape.
            grads.append(np.broadcast_to(values[g], arrays[p].shape))
        return float(values[self.loss_node]), grads

    def loss_and_grad(self, params, **data):
        """``(loss, {param name: gradient array})``, as the compiled model's."""
        arrays, sizes = self._bind([self.loss_node], params, data)
        loss, grads = self._loss_and_grad(arrays, sizes)
        return loss, dict(zip(self.param_names, grads))

    # -- the training loop -----------------------------------------------------------------
    def run_epochs(self, params, data, orders, lrs, batch_size, momentum=0.0, velocity=None):
        """Plain SGD epochs; see the module docstring for the exact contract."""
        state = OptimizerState({})
        if momentum:
            if velocity is None:
                velocity = {p.name: np.zeros_like(params[p.name]) for p in self.param_nodes}
            state.m = velocity
        return self.run_epochs_with(params, data, orders, lrs, batch_size,
                                    Optimizer("sgd", momentum=momentum), state)

    def run_epochs_with(self, params, data, orders, lrs, batch_size, optimizer, state):
        """``run_epochs`` with any fused optimizer (a checked
        :class:`~symgrad.train.optimizers.Optimizer`); ``state``
        (:class:`~symgrad.train.optimizers.OptimizerState`) is updated in place and
        restored with the params when an epoch diverges."""
        lrs = np.asarray(lrs, dtype=np.float64)
        arrays, sizes = self._bind([self.loss_node], params, data)
        for p in self.param_nodes:
            arrays[p] = params[p.name]  # the caller's arrays themselves: updated in place
            for buffers in (state.m, state.s):
                if buffers.get(p.name) is None:
                    buffers[p.name] = np.zeros_like(params[p.name])
        batches = self._batch_plan(sizes, orders, len(lrs), batch_size)
        losses = np.full(len(lrs), np.nan)
        with np.errstate(all="ignore"):  # overflow is detected and reported, not warned about
            for e, lr in enumerate(lrs):
                snapshot = copy_arrays(params), state.copy()
                loss = self._run_epoch(arrays, sizes, batches(e), lr, optimizer, state, params)
                if not (np.isfinite(loss) and all(np.all(np.isfinite(v))
                                                  for v in params.values())):
                    restore_arrays(params, snapshot[0])
                    state.restore(snapshot[1])
                    losses[e] = loss if not np.isfinite(loss) else np.inf
                    return losses, e
                losses[e] = loss
        return losses, len(lrs)

    def _batch_plan(self, sizes, orders, n_epochs, batch_size):
        """epoch -> list of row-index arrays (None = the whole data, unpermuted)."""
        if batch_size is None:
            return lambda e: [None]
        n = sizes.get(self.batch_dim)
        if n is None:
            raise DataError("batch_size was given but the model has no batch dim")
        if orders is not None and np.shape(orders) != (n_epochs, n):
            raise DataError(f"orders has shape {np.shape(orders)}, expected ({n_epochs}, {n})")
        steps = n // batch_size

        def plan(e):
            order = np.arange(n) if orders is None else np.asarray(orders[e], dtype=np.int64)
            return [order[k * batch_size:(k + 1) * batch_size] for k in range(steps)]
        return plan

    def _run_epoch(self, arrays, sizes, batches, lr, optimizer, state, params):
        """One epoch of steps; returns the mean batch loss (non-finite: stopped at once)."""
        total = 0.0
        for rows in batches:
            step_arrays, step_sizes = self._gather(arrays, sizes, rows)
            loss, grads = self._loss_and_grad(step_arrays, step_sizes)
            if not np.isfinite(loss):
                return loss
            total += loss
            state.step += 1
            for p, g in zip(self.param_nodes, grads):
                optimizer.step(params[p.name], g, state.m[p.name], state.s[p.name],
                               lr, state.step)
        return total / len(batches)

    def _gather(self, arrays, sizes, rows):
        if rows is None:
            return arrays, sizes
        dim = self.batch_dim
        out = dict(arrays)
        for node in self.input_nodes:
            if dim in node.dims and node in arrays:
                axis = node.dims.index(dim)
                out[node] = arrays[node][rows] if axis == 0 else np.take(arrays[node], rows, axis)
        return out, {**sizes, dim: len(rows)}


def infer_batch_dim(loss):
    """The batch dim of ``loss``'s data tensors (``symgrad.graph.traverse.batch_dim``)."""
    return batch_dim(leaves(loss, "input"))


def find_node(loss, node_or_name):
    """A node of ``loss``'s graph, given itself or by its name (e.g. ``"z2"``)."""
    order = topo_order(loss)
    if not isinstance(node_or_name, str):
        if node_or_name in set(order):
            return node_or_name
        raise DeclarationError(f"{node_or_name!r} is not part of the loss graph")
    for node in order:
        if node.name == node_or_name:
            return node
    named = sorted({n.name for n in order if n.name})
    raise DeclarationError(f"no node named {node_or_name!r} in the loss graph; named: {named}")


def copy_arrays(arrays):
    return None if arrays is None else {k: v.copy() for k, v in arrays.items()}


def restore_arrays(arrays, saved):
    if arrays is not None:
        for k, v in saved.items():
            arrays[k][...] = v

"""``compile``: a loss graph -> a :class:`CompiledModel` backed by a generated module.

Data is checked with :func:`symgrad.graph.bind.bind` (errors name the tensor and
the dim) and cast at the boundary (compiled float dtype, int64 labels,
C-contiguous) before any compiled code runs.
"""
import os
import pickle
import warnings

import numpy as np

from symgrad.codegen import boundary, cache, graph_key, trainloop
from symgrad.codegen._check_kernels import all_finite, all_indices
from symgrad.diff.reverse import check_loss, check_params
from symgrad.errors import DataError, DeclarationError
from symgrad.graph.arguments import check_float_dtype, check_node_list, describe
from symgrad.graph.bind import bind, label_classes
from symgrad.graph.node import INT, Node
from symgrad.graph.traverse import topo_order


def compile(loss, params, dtype=np.float64, outputs=None, hessian=False):  # noqa: A001
    """Compile ``loss`` and its gradients with respect to ``params`` to Numba code.

    ``outputs``: forward nodes (e.g. the logits) to make available through
    :meth:`CompiledModel.output` besides the loss; every named forward node is
    available too. ``dtype``: np.float64 or np.float32 for all float arrays.
    ``hessian=True`` also compiles :meth:`CompiledModel.hessian` and
    :meth:`CompiledModel.hvp` (second order, see ``symgrad.codegen.second_order``).
    """
    check_float_dtype(dtype), check_node_list(outputs, "outputs")   # by name, before any work
    check_loss(loss)
    params = check_params(loss, params)
    if any(p.op != "param" for p in params):
        raise DeclarationError("compile differentiates with respect to params (sg.param); "
                               f"got {[p.display for p in params if p.op != 'param']}")
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise DeclarationError(f"dtype must be np.float64 or np.float32, got {dtype}")
    if not isinstance(hessian, bool):
        raise TypeError(f"hessian must be True or False, got {type(hessian).__name__} "
                        f"{hessian!r}")
    return CompiledModel(loss, params, dtype, list(outputs or []), hessian=hessian)


def __getattr__(name):
    # ``model.Source`` as before, but the code generator (codegen/module.py) is imported
    # only when asked for: a cache hit never imports it.
    if name == "Source":
        from symgrad.codegen.module import Source
        return Source
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _named_forward(loss, outputs):
    named = [n for n in topo_order(loss) if n.name is not None and not n.is_leaf]
    return list(dict.fromkeys(list(outputs) + named))


class CompiledModel:
    """Compiled loss, gradients, forward outputs and a fused training loop."""

    # bind's finiteness check for this backend's arrays (fit's data check uses it too)
    all_finite = staticmethod(all_finite)

    def __init__(self, loss, params, dtype, outputs, hessian=False):
        self.loss_node, self.params, self.dtype = loss, params, dtype
        for o in outputs:
            if not isinstance(o, Node):
                raise DeclarationError(f"outputs must be graph nodes, got {o!r}")
        self.outputs = outputs
        self.has_hessian = hessian
        named = _named_forward(loss, outputs)
        title = f"loss {loss.display}, params {', '.join(p.name for p in params)}"
        # the graph's key finds a cached module before any symbolic work (graph_key.py)
        key = graph_key.key(loss, params, dtype, outputs, hessian)
        hit = graph_key.lookup(key, loss, params, outputs,
                               (loss, params, named, dtype, hessian, title))
        if hit is not None:
            self._src, self.source, self.path = hit
        else:
            from symgrad.codegen.module import Source   # the generator: a miss only
            self._src = Source(loss, params, named, dtype, hessian=hessian)
            self.source = self._src.text(title)
            self.path = cache.store(self.source)
            graph_key.remember(key, self._src, self.source, self.path, loss, params, outputs)
        self.module = cache.load(self.path)
        self._out_fn = self._src.output_names          # canonical node -> function name
        self._extra, self._known, self._layouts = {}, {}, {}

    def __repr__(self):
        return f"<CompiledModel {self.loss_node.display} params={[p.name for p in self.params]} " \
               f"{self.dtype.name} at {self.path}>"

    # -- the boundary ------------------------------------------------------------------
    def _args(self, fname, params, data, outputs=None):
        """Bind and check ``params`` and ``data``; the arrays ``fname`` takes, in order."""
        graph = outputs or [self.loss_node]
        key = (fname, tuple(graph))
        layout = self._layouts.get(key)
        if layout is not None:
            args = boundary.matching(layout, params, data)
            if args is not None:
                return args
        named_params, named_data = _by_name(params, "params"), _by_name(data, "data")
        self._check_param_names(named_params)
        values = {**named_params, **named_data}
        leaves = self._src.functions[fname].leaves
        if key not in self._known:     # names this function's graph uses (others are ignored)
            self._known[key] = {n.name for n in topo_order(graph) if n.op in ("input", "param")}
        known, everything = self._known[key], self._all_names()
        values = {k: v for k, v in values.items() if k in known or k not in everything}
        arrays, sizes = bind(graph, values, self.dtype, all_finite=all_finite)
        args = [self._prepare(n, arrays[n]) for n in leaves]
        self._layouts[key] = boundary.record(leaves, params, data, args,
                                                label_classes(graph, sizes))
        return args

    def _check_param_names(self, params):
        """A name in ``params`` that the model does not have is a typo of a param: say so
        (bind, which sees params and data merged, would call it unknown data)."""
        for name in params:
            if name not in self._all_names():
                raise DataError(f"unknown param {name!r}; the model's params are "
                                f"{sorted(p.name for p in self._src.all_params)}")

    def _checked_args(self, fname, params, data):
        """The arrays ``fname`` takes from ``params`` and ``data`` that ``bind`` has
        checked already against this model's loss (``fit`` does, before training)."""
        values = {**params, **data}
        return [self._prepare(n, values[n.name]) for n in self._src.functions[fname].leaves]

    def _all_names(self):
        if not hasattr(self, "_names"):
            self._names = {n.name for n in self._src.data + self._src.all_params}
        return self._names

    def _prepare(self, node, arr):
        kind = np.int64 if node.dtype == INT else self.dtype
        arr = np.ascontiguousarray(arr, dtype=kind)
        arr = boundary.writable_view(arr) if node.op == "input" else boundary.writable(arr)
        return arr.reshape(1) if arr.ndim == 0 else arr

    def _call(self, fname, *args):
        """Call a compiled function; a damaged Numba cache entry is a miss, not an error."""
        try:
            return getattr(self.module, fname)(*args)
        except (pickle.UnpicklingError, EOFError) as err:
            warnings.warn(f"damaged Numba cache for {self.path} ({err}); recompiling",
                          RuntimeWarning, stacklevel=3)
            self.module = cache.forget(self.path)
            return getattr(self.module, fname)(*args)

    # -- evaluation ------------------------------------------------------------------------
    def loss(self, params, **data):
        """The loss (a float) at ``params`` (dict name -> array) on ``data``."""
        return float(self._call("loss", *self._args("loss", params, data)))

    def loss_and_grad(self, params, **data):
        """``(loss, {param name: gradient array})``."""
        value, *grads = self._call("loss_and_grad", *self._args("loss_and_grad", params, data))
        return float(value), {p.name: g.reshape(p_shape(p, g)) for p, g in zip(self.params, grads)}

    def grad(self, params, **data):
        """``{param name: gradient array}`` (same shapes as the params)."""
        return self.loss_and_grad(params, **data)[1]

    def hessian(self, params, **data):
        """``{(p name, q name): ndarray of shape p.shape + q.shape}``: every Hessian block
        (needs ``compile(..., hessian=True)``)."""
        from symgrad.codegen import second_order   # only for second order (~5 ms import)
        return second_order.hessian(self, params, data)

    def hvp(self, params, vectors, **data):
        """``{q name: sum_p H_qp v_p}`` without forming the Hessian; ``vectors`` maps each
        param name to a direction of its shape (needs ``compile(..., hessian=True)``)."""
        from symgrad.codegen import second_order
        return second_order.hvp(self, params, vectors, data)

    def output(self, node_or_name, params, **data):
        """The value of a forward node (a node, or the name of a named node)."""
        node = self._find(node_or_name)
        if node is self.loss_node:
            return self.loss(params, **data)
        fname = self._out_fn.get(self._src.canon.of.get(node))
        if fname is None:
            return self._extra_model(node).output(node, params, **data)
        out = self._call(fname, *self._args(fname, params, data, [node]))
        return float(out) if np.ndim(out) == 0 else out

    def predict(self, params, **data):
        """The first of ``outputs`` given to compile (e.g. the logits)."""
        if not self.outputs:
            raise DeclarationError("predict needs compile(..., outputs=[node]); this model "
                                   "was compiled without outputs")
        return self.output(self.outputs[0], params, **data)

    def _find(self, key):
        if isinstance(key, Node):
            return key
        forward = [n for n in topo_order(self.loss_node) if n.name == key]
        forward += [n for n in self.outputs if n.name == key]
        if not forward:
            named = sorted({n.name for n in topo_order(self.loss_node) if n.name})
            raise DataError(f"no node named {key!r} in the model; named nodes: {named}")
        return forward[0]

    def _extra_model(self, node):
        """A model that also compiles ``node`` (an output not known at compile time)."""
        if node in self.outputs:
            raise DataError(f"cannot compile an output for {node.display}")
        if node not in self._extra:
            self._extra[node] = CompiledModel(self.loss_node, self.params, self.dtype, [node])
        return self._extra[node]

    # -- training ----------------------------------------------------------------------------
    def run_epochs(self, params, data, orders, lrs, batch_size, momentum=0.0, velocity=None):
        """Run ``len(lrs)`` epochs of SGD in one compiled call; params change IN PLACE.

        params    dict name -> float ndarray, updated in place (the caller copies first).
        data      dict name -> ndarray; the batch dim is the first dim of the data
                  tensors (e.g. "N"); rows are taken in ``orders`` order.
        orders    int64 array (E, N) of row permutations, one per epoch (row e % len
                  is used), or None for the identity order.
        lrs       float array (E,): the learning rate of each epoch.
        batch_size  rows per step; the last partial batch of an epoch is dropped.
                  None: full batch (one step per epoch, orders unused).
        momentum  0.0 for plain SGD ``p -= lr g``; else ``v = momentum v - lr g; p += v``.
        velocity  dict name -> ndarray of momentum buffers (updated in place), or None
                  for zeros.
        Returns ``(epoch_losses, n_epochs_done)``: epoch_losses[e] is the mean minibatch
        loss of epoch e (NaN after the last epoch run). When a minibatch loss is NaN or
        inf the run stops before that step's update (params stay the last finite ones),
        epoch_losses[n_epochs_done - 1] holds the non-finite loss.
        """
        args, work, orders, lrs = trainloop.prepared_args(self, params, data, orders, lrs,
                                                          batch_size)
        leaves = self._src.functions["run_epochs"].leaves
        vels = []
        for p in self.params:
            v = (velocity or {}).get(p.name)
            vels.append(np.zeros(work[p].shape, self.dtype) if v is None
                        else self._prepare(p, v))
        losses, done = self._call("run_epochs", *args, *vels, orders, lrs,
                                              0 if batch_size is None else int(batch_size),
                                              float(momentum))
        trainloop.write_back(params, [(p.name, work[p]) for p in leaves if p.op == "param"])
        if velocity is not None:
            trainloop.write_back(velocity, [(p.name, v) for p, v in zip(self.params, vels)])
        return losses, int(done)

    @staticmethod
    def _orders(orders, n_rows, epochs, batch_size):
        if batch_size is None or orders is None:
            return np.arange(n_rows, dtype=np.int64)[None, :]
        orders = np.ascontiguousarray(orders, dtype=np.int64)
        if orders.ndim != 2 or orders.shape[1] != n_rows or orders.shape[0] < 1:
            raise DataError(f"orders must have shape (epochs, {n_rows}), got {orders.shape}")
        if not all_indices(orders, n_rows):
            raise DataError(f"orders must index rows 0..{n_rows - 1}")
        return orders

    # -- pickling (sweeps send models to worker processes and Dask workers) -----------------
    _UNPICKLED = ("module", "path", "_extra", "_known", "_names", "_layouts", "_loop_facts")

    def __getstate__(self):
        """Everything but the loaded module (and caches): the source text travels instead."""
        return {k: v for k, v in self.__dict__.items() if k not in self._UNPICKLED}

    def __setstate__(self, state):
        """Write the module into this process's cache if it is not there yet, then load it:
        on one machine the cache directory is shared, so Numba's cached machine code loads
        instead of compiling; elsewhere it compiles once into that machine's cache."""
        self.__dict__.update(state)
        self._extra, self._known, self._layouts = {}, {}, {}
        self.path = cache.store(self.source)
        self.module = cache.load(self.path)

    def export(self, path):
        """Write a standalone module (NumPy + Numba only) with ``train(params, data, ...)``."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {describe(path)}")
        # checked here, else the error would name write_atomic's temp file
        folder = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            raise IsADirectoryError(f"cannot export to {str(path)!r}: it is a directory; "
                                    "give a file name such as model.py")
        if not os.path.isdir(folder):
            what = "is not a directory" if os.path.exists(folder) else "does not exist"
            raise FileNotFoundError(f"cannot export to {str(path)!r}: {folder!r} {what}")
        cache.write_atomic(str(path), self.source)
        return str(path)


def p_shape(p, g):
    return g.shape if p.dims else ()


def _by_name(values, what):
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise TypeError(f"{what} must be a dict of name -> array, got {type(values).__name__}")
    return {(k.name if isinstance(k, Node) else k): v for k, v in values.items()}



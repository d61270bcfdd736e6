"""Checking everything ``fit`` is given, before any work: each error names the argument at fault."""
import numbers
import warnings

import numpy as np

from symgrad.errors import DataError, DeclarationError, DimError, MissingRuleError
from symgrad.graph.arguments import (check_choice, check_flag, check_node_or_name, check_seed,
                                     describe)
from symgrad.graph.bind import bind
from symgrad.graph.node import Node
from symgrad.graph.traverse import leaves


def resolve_model(fn):
    """``(model or None, loss node, param nodes)`` for a compiled model, a NumpyModel, a
    loss node or a ``symgrad.nn`` Model. None means "compile the loss node" (done by the
    caller after every check has passed, so bad arguments fail fast)."""
    if isinstance(getattr(fn, "loss", None), Node):  # a symgrad.nn Model
        return None, fn.loss, list(fn.params)
    if isinstance(fn, Node):
        return None, fn, leaves(fn, "param")
    if not callable(getattr(fn, "run_epochs", None)):
        raise TypeError(f"fit needs a compiled model, a NumpyModel, a loss node or an nn model; "
                        f"got {type(fn).__name__}")
    loss = getattr(fn, "loss_node", None)
    if not isinstance(loss, Node):
        raise TypeError(f"{type(fn).__name__} has no .loss_node (its scalar loss Node); "
                        "fit needs it to check params and data")
    params = getattr(fn, "param_nodes", None) or getattr(fn, "params", None)
    if not (isinstance(params, (list, tuple)) and all(isinstance(p, Node) for p in params)):
        params = leaves(loss, "param")
    return fn, loss, list(params)


def compile_loss(loss, params=None, dtype=np.float64, outputs=None):
    """The compiled model of ``loss`` if the compiler is available, else the NumPy reference.

    ``outputs`` (nodes such as the logits) are compiled into the same module, so reading
    them for metrics or predictions needs no second compilation.

    An op the compiler has no code for falls back to the reference with a warning, so
    training still works (slowly) for any graph the NumPy evaluator can run.
    """
    from symgrad.train.reference import NumpyModel
    params = leaves(loss, "param") if params is None else list(params)
    try:
        from symgrad.codegen import compile as sg_compile
    except ImportError:
        return NumpyModel(loss, params, dtype)
    try:
        if outputs:
            return sg_compile(loss, params=params, dtype=dtype, outputs=list(outputs))
        return sg_compile(loss, params=params, dtype=dtype)
    except MissingRuleError as err:
        warnings.warn(f"symgrad.codegen cannot compile this loss ({err}); training with the "
                      "NumPy reference evaluator instead", RuntimeWarning, stacklevel=3)
        return NumpyModel(loss, params, dtype)


def check_fit_options(shuffle, seed, progress, metrics, on_divergence, output, labels):
    """The plain options of ``fit`` (the others are checked where they are used): each
    wrong type or value names the option and what it takes, before any work."""
    if isinstance(shuffle, np.ndarray):
        raise TypeError(f"shuffle must be True or False, got {describe(shuffle)}; fit draws "
                        "each epoch's row order from seed= (row orders cannot be given)")
    check_flag(shuffle, "shuffle")
    check_seed(seed)
    check_flag(progress, "progress")
    check_choice(on_divergence, "on_divergence", ("raise", "stop"))
    check_node_or_name(output, "output")
    check_node_or_name(labels, "labels")
    _check_metrics(metrics)


def _check_metrics(metrics):
    accepts = "'auto', None, 'accuracy', a callable f(params, data), or a list of those"
    if metrics is None or isinstance(metrics, str) or callable(metrics):
        return
    if not isinstance(metrics, (list, tuple)):
        raise TypeError(f"metrics must be {accepts}; got {describe(metrics)}")
    for m in metrics:
        if not (isinstance(m, str) or callable(m)):
            raise TypeError(f"metrics must be {accepts}; it holds {describe(m)}")


def check_int(value, name, low=1, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if value < low or (high is not None and value > high):
        limit = f" and <= {high}" if high is not None else ""
        raise ValueError(f"{name} must be an int >= {low}{limit}, got {value}")
    return int(value)


def check_momentum(momentum):
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real) or not (
            0.0 <= momentum < 1.0):
        raise ValueError(f"momentum must be a number in [0, 1), got {momentum!r}")
    return float(momentum)


def check_params_and_data(loss, param_nodes, params, data, dtype, what="data",
                          all_finite=None):
    """Validate names, shapes, dtypes and finiteness; return (param copies, data arrays, sizes).

    The copies are fresh, C-contiguous arrays of ``dtype``: training updates them in
    place, never the caller's arrays. Data arrays are converted only if needed (the
    caller's arrays are never written to).
    """
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of name -> array, got {type(params).__name__}")
    if not isinstance(data, dict):
        raise TypeError(f"{what} must be a dict of name -> array, got {type(data).__name__}")
    trained = [p.name for p in param_nodes]
    missing = [n for n in trained if n not in params]
    if missing:
        raise DataError(f"params is missing {missing}; the model trains {trained}")
    unknown = [k for k in params if k not in trained]
    if unknown:
        raise DataError(f"params has unknown names {unknown}; the model trains {trained}")
    clash = [k for k in data if k in trained]
    if clash:
        raise DataError(f"{what} contains {clash}, which are params; pass them in params")
    try:
        arrays, sizes = bind([loss], {**data, **params}, dtype, what=what,
                             all_finite=all_finite)
    except (DataError, DimError) as err:
        if what == "data":  # bind's message already names the tensor or param
            raise
        raise type(err)(f"{what}: {err}") from None
    by_name = {node.name: arr for node, arr in arrays.items()}
    copies = {name: np.array(by_name[name], dtype=dtype, order="C", copy=True) for name in trained}
    checked = {k: np.ascontiguousarray(by_name[k]) for k in data}
    return copies, checked, sizes


ALIGN_MAX_BYTES = 1 << 30   # a larger data matrix is used where it is: no second copy


def aligned(arr, boundary=64):
    """``arr``, or a copy of it starting on a ``boundary``-byte line if it is a float
    matrix of 4 KB to ALIGN_MAX_BYTES (others are returned as they are).

    NumPy aligns to 16 bytes, so vector loads from its arrays often straddle two cache
    lines; full-batch training reads the same data every step (W1 through ``fit``: 59
    against 52 us a step). ``fit`` aligns a full batch's data matrices once, not once per
    chunk; the copy lives while ``fit`` runs."""
    if (arr.ctypes.data % boundary == 0 or arr.ndim != 2 or arr.dtype.kind != "f"
            or not 4096 <= arr.nbytes <= ALIGN_MAX_BYTES):
        return arr
    raw = np.empty(arr.nbytes + boundary, np.uint8)
    start = -raw.ctypes.data % boundary
    out = raw[start:start + arr.nbytes].view(arr.dtype).reshape(arr.shape)
    out[...] = arr
    return out


def check_validation_data(loss, param_nodes, params, validation_data, dtype,
                          all_finite=None):
    """Check ``validation_data`` (a dict) against the same graph; returns its arrays."""
    if validation_data is None:
        return None
    _, arrays, _ = check_params_and_data(loss, param_nodes, params, validation_data, dtype,
                                         what="validation_data", all_finite=all_finite)
    return arrays


def batch_size_for(batch_size, sizes, batch_dim, param_nodes=()):
    """Check ``batch_size`` (None = full batch) against the number of rows, and that no
    param has the batch dim (a minibatch of data cannot be matched with a whole param)."""
    if batch_size is None:
        return None
    if batch_dim is None:
        raise DeclarationError("batch_size was given but the loss has no data tensor to batch")
    for p in param_nodes:
        if batch_dim in p.dims:
            raise DataError(f"cannot take minibatches along dim {batch_dim!r}: param {p.name!r} "
                            f"has dims {p.dims}; train it full batch (batch_size=None)")
    n = sizes[batch_dim]
    return check_int(batch_size, f"batch_size (dim {batch_dim!r} has {n} rows)", 1, n)

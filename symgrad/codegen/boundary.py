"""What crosses into compiled code: arrays Numba types one way, and the repeat-call path.

Numba compiles a function again for every new argument type, read-only arrays
included, so params reach it writable (``writable``) and data as a writable view of
its own memory (``writable_view``).

Every call of a compiled function checks its arguments (``bind``: names, dims, dtypes,
finite values, labels in range). Straight after a training loop that Python runs with
cold caches: on float32 W2, ``run_epochs``' checks took 280-410 us against ~100 us in a
tight loop, and the final ``loss`` call's 170-340 us against 60, together ~5% of the
run. A call whose arrays have exactly the names, dtypes, shapes and memory layout of an
earlier call that passed every check, passed as the caller's own arrays, needs only the
checks of values; that is all this path does. Anything else (a new shape, a list, a
strided array, a read-only param, a one-hot tensor, a name added) takes the full
path, which also raises the errors: the repeat path never raises, it answers None.
"""
from typing import NamedTuple

import numpy as np

from symgrad.codegen._check_kernels import all_finite, all_indices


def writable(arr):
    """``arr``, or a writable copy of a read-only array, made on every call (params and
    optimizer state, which the compiled loop updates in place).

    Numba types read-only arrays differently, so passing them would compile a second
    version of every function. The copy is not kept for the next call: a read-only array
    can still change through a writable view of its memory (a loader refilling one
    buffer), and a copy that run_epochs trained in place no longer holds the array's
    values.
    """
    if not isinstance(arr, np.ndarray) or arr.flags.writeable:
        return arr
    return np.array(arr, order="C")


class _SameMemory:
    """The memory of a read-only array offered as writable (see ``writable_view``)."""

    def __init__(self, arr):
        self.array = arr    # keeps the memory alive as long as the view
        face = arr.__array_interface__                  # a fresh dict on every access
        face["data"] = (face["data"][0], False)          # (address, read-only flag)
        self.__array_interface__ = face


def writable_view(arr):
    """``arr``, or a view of a read-only data array's memory flagged writable.

    Generated code never writes a data tensor (buffer reuse skips leaves; minibatches are
    gathered into their own buffers), so the view only changes how Numba types it. A copy
    costs far more than its own time: copying digits' 1797 x 64 on every ``loss`` call put
    ~450 page faults into the loss's own allocations (glibc gives the freed copy back to
    the system), 2.0 ms against 0.7 ms for the loss of a 64-64-10 MLP.
    tests/codegen/test_compile.py trains on read-only memory-mapped data to hold this.
    """
    if not isinstance(arr, np.ndarray) or arr.flags.writeable:
        return arr
    return np.asarray(_SameMemory(arr))


class Layout(NamedTuple):
    param_names: frozenset
    data_names: frozenset
    slots: tuple     # per argument: (name, from params?, dtype, shape, classes or None)
    views: dict      # argument position -> the writable view of the read-only data
    #                  array last passed there (kept, as making one costs ~60 us cold)


def record(leaves, params, data, prepared, classes):
    """The layout of an accepted call whose ``prepared`` arguments (for ``leaves``) are
    the caller's own arrays, unconverted (read-only data: a view of its memory); None
    when one is not, or ``classes`` (see ``bind.label_classes``) is None."""
    if classes is None or type(params) is not dict or type(data) is not dict:
        return None
    if not all(type(k) is str for k in (*params, *data)):
        return None
    slots = []
    for leaf, arr in zip(leaves, prepared):
        from_params = leaf.name not in data           # as {**params, **data}: data wins
        if not _unconverted((params if from_params else data).get(leaf.name), arr):
            return None
        slots.append((leaf.name, from_params, arr.dtype, arr.shape, classes.get(leaf)))
    return Layout(frozenset(params), frozenset(data), tuple(slots), {})


def matching(layout, params, data):
    """The arguments of a call laid out as ``layout`` whose values pass the value checks,
    or None (the caller then takes the full path)."""
    if type(params) is not dict or type(data) is not dict:
        return None
    if params.keys() != layout.param_names or data.keys() != layout.data_names:
        return None
    args = []
    for k, (name, from_params, dtype, shape, classes) in enumerate(layout.slots):
        arr = params[name] if from_params else data[name]
        if type(arr) is not np.ndarray or arr.dtype != dtype or arr.shape != shape:
            return None
        flags = arr.flags
        if not flags.c_contiguous or (from_params and not flags.writeable):
            return None
        arg = arr if flags.writeable else _view(layout.views, k, arr)
        if dtype.kind == "f" and not all_finite(arg):
            return None
        if classes is not None and not all_indices(arg, classes):
            return None
        args.append(arg)
    return args


def _view(views, k, arr):
    """The writable view of read-only ``arr``: the one made last call if ``arr`` is the
    same array object (the view holds it, so its id cannot be reused meanwhile)."""
    view = views.get(k)
    if view is None or view.base.array is not arr:
        view = views[k] = writable_view(arr)
    return view


def _unconverted(given, arr):
    if given is arr:
        return True
    return (type(given) is np.ndarray and isinstance(arr.base, _SameMemory)
            and arr.base.array is given)

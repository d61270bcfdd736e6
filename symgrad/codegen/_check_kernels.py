"""The data checks of compiled calls, as Numba loops where NumPy takes extra passes.

Every call of a compiled function checks its data before any work (bind's contract).
Is every entry of a float array finite? NumPy's ways to ask cost a pass that does not
vectorise (``sum``: 40 us on digits' 1797 x 64) or a temporary array (``isfinite``).
Here the question is asked of the bits: an entry is NaN or inf exactly when its
exponent bits are all ones, and counting those is integer work that vectorises
(16 us on the same array in float64; 1.5-2 us instead of 3-5 on a 64 x 10 param,
mostly the call). Are all of ``run_epochs``' row orders within the data?
``orders.min()`` and ``max()`` are two passes over (epochs, N) int64; one unsigned
compare per entry is one pass.
Imported by ``codegen.model`` only, so ``import symgrad`` does not load Numba.
"""
import numpy as np
from numba import njit

# float itemsize -> (the integer type of its bits, its exponent field)
_EXPONENT_BITS = {8: (np.int64, np.int64(0x7FF0000000000000)),
                  4: (np.int32, np.int32(0x7F800000))}


@njit(cache=True, nogil=True)
def _count_exponent_all_ones(bits, exponent):
    count = 0
    for i in range(bits.size):
        count += (bits[i] & exponent) == exponent
    return count


def all_finite(arr):
    """True/False for a C-contiguous float32 or float64 ``arr``; None for any other
    array (the caller asks NumPy instead)."""
    field = _EXPONENT_BITS.get(arr.dtype.itemsize) if arr.dtype.kind == "f" else None
    if field is None or not arr.flags.c_contiguous or arr.ndim == 0:
        return None
    kind, exponent = field
    return _count_exponent_all_ones(arr.reshape(-1).view(kind), exponent) == 0


@njit(cache=True, nogil=True)
def _count_at_least(values, n):
    count = 0
    for i in range(values.size):
        count += values[i] >= n
    return count


def all_indices(arr, n):
    """True when every entry of the C-contiguous int64 ``arr`` is in 0..n-1 (a negative
    index is a huge unsigned one)."""
    return _count_at_least(arr.reshape(-1).view(np.uint64), np.uint64(n)) == 0

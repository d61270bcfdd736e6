"""The Numba data checks of compiled calls agree with NumPy's on every kind of value."""
import numpy as np
import pytest

import symgrad as sg
from symgrad.codegen._check_kernels import all_finite, all_indices
from symgrad.errors import DataError

SPECIAL = [np.nan, np.inf, -np.inf]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_all_finite_matches_isfinite_at_every_position(dtype):
    info = np.finfo(dtype)
    edge = np.array([0.0, -0.0, info.max, -info.max, info.tiny, info.smallest_subnormal,
                     -info.smallest_subnormal, 1.0], dtype)
    assert all_finite(edge)
    rng = np.random.default_rng(0)
    for n in (1, 7, 8, 9, 63, 1000):       # lengths around the vector width
        for bad in SPECIAL:
            for at in {0, n // 2, n - 1}:
                arr = rng.standard_normal(n).astype(dtype)
                arr[at] = bad
                assert not all_finite(arr), (n, bad, at)
                assert all_finite(np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0))


def test_all_finite_leaves_other_arrays_to_numpy():
    arr = np.ones((4, 6))
    assert all_finite(arr[:, ::2]) is None           # not contiguous
    assert all_finite(np.ones(3, np.float16)) is None
    assert all_finite(np.ones(3, np.int64)) is None
    assert bool(all_finite(arr.reshape(2, 3, 4)))    # any rank


def test_all_indices_is_the_range_check():
    n = 5
    assert all_indices(np.arange(n, dtype=np.int64)[None, :], n)
    for bad in (-1, n, np.iinfo(np.int64).min, np.iinfo(np.int64).max):
        orders = np.zeros((3, n), np.int64)
        orders[2, 4] = bad
        assert not all_indices(orders, n), bad


def test_compiled_calls_name_the_bad_entry_as_before():
    X = sg.tensor("X", ("N", "D"))
    w = sg.param("w", ("D",))
    fn = sg.compile(sg.sum((X @ w) ** 2), params=[w])
    data = np.ones((6, 3))
    data[4, 1] = -np.inf
    with pytest.raises(DataError, match=r"tensor 'X' contains NaN or inf \(first at index \(4, 1\)\)"):
        fn.loss({"w": np.ones(3)}, X=data)
    with pytest.raises(DataError, match=r"param 'w' contains NaN or inf \(first at index \(2,\)\)"):
        fn.loss({"w": np.array([1.0, 2.0, np.nan])}, X=np.ones((6, 3)))
    with pytest.raises(DataError, match="orders must index rows 0..5"):
        fn.run_epochs({"w": np.ones(3)}, {"X": np.ones((6, 3))}, np.full((1, 6), -1),
                      np.array([0.1]), 2)

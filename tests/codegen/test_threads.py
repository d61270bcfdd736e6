"""Two BLAS threads (threadpoolctl: the documented two-core path) give the same params.

The generated code calls the OpenBLAS that NumPy and SciPy load, so threadpoolctl sets
its threads. OpenBLAS splits a product's output between threads, not its sums: runs
with two threads are bit-identical to each other and agree with one thread to rounding.
"""
import numpy as np
import threadpoolctl

import symgrad as sg


def test_two_blas_threads_are_deterministic_and_match_one():
    X, T = sg.tensor("X", ("N", "D")), sg.tensor("T", ("N", "K"))
    W = sg.param("W", ("D", "K"))
    fn = sg.compile(sg.sum((X @ W - T) ** 2) * (1.0 / 512), params=[W])
    rng = np.random.default_rng(0)
    data = {"X": rng.standard_normal((512, 256)), "T": rng.standard_normal((512, 128))}
    runs = []
    for threads in (1, 2, 2):
        p = {"W": np.zeros((256, 128))}
        with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
            fn.run_epochs(p, data, None, np.full(3, 1e-3), 64)
        runs.append(p["W"])
    assert np.abs(runs[0]).max() > 1e-3                       # it trained
    assert np.array_equal(runs[1], runs[2])                   # two threads: bit-identical
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-12, atol=1e-15)

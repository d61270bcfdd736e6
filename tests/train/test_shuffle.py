"""epoch_orders: the fast kernel gives NumPy's permutations bit for bit and leaves the
generator exactly as ``rng.permutation`` would."""
import numpy as np
import pytest

import symgrad as sg
from symgrad.train import shuffle
from symgrad.train.shuffle import FAST_MIN_ROWS, epoch_orders


def _numpy(rng, n, k):
    return np.stack([rng.permutation(n) for _ in range(k)])


def _pair(seed, half_used):
    """Two equal generators; ``half_used`` leaves NumPy's buffered 32-bit half pending."""
    a, b = np.random.default_rng(seed), np.random.default_rng(seed)
    if half_used:
        a.integers(0, 2 ** 31, dtype=np.uint32), b.integers(0, 2 ** 31, dtype=np.uint32)
    return a, b


# sizes around powers of two (where random_interval's mask changes) and large ones
@pytest.mark.parametrize("n", [2, 3, 4, 5, 17, 255, 256, 257, 1024, 1025, 1797, 65536, 65537])
@pytest.mark.parametrize("half_used", [False, True])
def test_kernel_matches_numpy_bit_for_bit(n, half_used):
    for seed in (0, 1, 2024):
        k = 1 + seed % 3
        a, b = _pair(seed, half_used)
        expect = _numpy(a, n, k)
        got = shuffle._fast_orders(b, n, k)
        assert got.dtype == np.int64 and got.shape == (k, n)
        np.testing.assert_array_equal(got, expect)
        # the generator continues exactly where NumPy's would: same state, same draws
        assert b.bit_generator.state == a.bit_generator.state
        assert b.integers(0, 2 ** 31, dtype=np.uint32) == a.integers(0, 2 ** 31, dtype=np.uint32)
        np.testing.assert_array_equal(b.random(5), a.random(5))


def test_many_epochs_in_one_call_equal_one_call_per_epoch():
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    whole = epoch_orders(a, 1797, 20)
    parts = np.concatenate([epoch_orders(b, 1797, 20 - 13), epoch_orders(b, 1797, 13)])
    np.testing.assert_array_equal(whole, parts)
    np.testing.assert_array_equal(whole, _numpy(np.random.default_rng(7), 1797, 20))


@pytest.mark.parametrize("make, n, k", [
    (lambda: np.random.Generator(np.random.MT19937(3)), 5000, 4),   # another bit generator
    (lambda: np.random.default_rng(3), 1, 5),                         # nothing to shuffle
    (lambda: np.random.default_rng(3), 40, 2),                        # too small to pay
])
def test_other_cases_use_numpy_itself(make, n, k):
    a, b = make(), make()
    np.testing.assert_array_equal(epoch_orders(b, n, k), _numpy(a, n, k))
    np.testing.assert_array_equal(b.integers(0, 2 ** 62, 9), a.integers(0, 2 ** 62, 9))


def test_kernel_agrees_on_this_numpy():
    # if a NumPy release changes its shuffle, epoch_orders falls back (same orders as
    # rng.permutation either way); this test says the fast path is the one in use here
    assert shuffle._kernel_agrees()
    assert 20 * 1797 >= FAST_MIN_ROWS


def test_fit_batch_order_is_numpys_permutation_per_epoch():
    rng = np.random.default_rng(0)
    X, w_true = rng.normal(size=(3000, 4)), np.array([1.0, -2.0, 0.5, 3.0])
    y = X @ w_true
    Xs, ys, w = sg.tensor("X", ("N", "D")), sg.tensor("y", ("N",)), sg.param("w", ("D",))
    fn = sg.compile(sg.mean((ys - Xs @ w) ** 2), params=[w])
    init = {"w": np.zeros(4)}
    hist = sg.fit(fn, init, {"X": X, "y": y}, lr=0.05, epochs=8, batch_size=50, seed=11,
                  metrics=(), progress=False)
    orders = _numpy(np.random.default_rng(11), 3000, 8)
    by_hand = {"w": np.zeros(4)}
    fn.run_epochs(by_hand, {"X": X, "y": y}, orders, np.full(8, 0.05), 50)
    np.testing.assert_array_equal(hist.params["w"], by_hand["w"])


def test_a_kernel_that_cannot_be_built_means_numpys_path(monkeypatch):
    def broken():
        raise RuntimeError("cannot cache function 'shuffled_rows': no locator available")
    monkeypatch.setattr(shuffle, "_kernel", broken)
    shuffle._kernel_agrees.cache_clear()
    try:
        a, b = np.random.default_rng(5), np.random.default_rng(5)
        np.testing.assert_array_equal(epoch_orders(b, 1797, 20), _numpy(a, 1797, 20))
        assert b.bit_generator.state == a.bit_generator.state
        assert not shuffle._kernel_agrees()
    finally:
        shuffle._kernel_agrees.cache_clear()


@pytest.mark.parametrize("seed", [0, 1, 42, 12345, 2 ** 63 + 5, np.int64(7)])
def test_seeded_rng_is_default_rng(seed):
    """fit's generator is seeded from a kept hash: the same stream and state as
    ``np.random.default_rng(seed)``, on a first and a repeated use of the seed."""
    for _ in range(2):
        a, b = shuffle.seeded_rng(seed), np.random.default_rng(seed)
        assert a.bit_generator.state == b.bit_generator.state
        assert np.array_equal(epoch_orders(a, 1797, 12), _numpy(b, 1797, 12))
        assert a.bit_generator.state == b.bit_generator.state


def test_seeded_rng_passes_other_seeds_to_default_rng():
    gen = np.random.default_rng(3)
    assert shuffle.seeded_rng(gen) is gen
    seq = np.random.SeedSequence(5)
    assert shuffle.seeded_rng(seq).bit_generator.state == \
        np.random.default_rng(np.random.SeedSequence(5)).bit_generator.state
    assert shuffle.seeded_rng(None).random() != shuffle.seeded_rng(None).random()
    with pytest.raises(ValueError):
        shuffle.seeded_rng(-1)

"""Epoch orders: ``k`` shuffles of ``n`` rows, bitwise those of ``rng.permutation(n)``.

``fit`` draws one permutation per epoch from ``np.random.default_rng(seed)``, so a
seed names one batch order. NumPy spends ~10 ns a row on it (a call through the bit
generator per draw and a mispredicted branch per rejected draw): 0.38 ms for W2's 20
epochs of 1797 rows, 8% of its training time. ``epoch_orders`` gives the same
permutations and leaves the generator in the same state in a third of that time:

* it runs NumPy's own algorithm (``Generator.shuffle``: Fisher-Yates from the last
  row down, ``random_interval(i)`` = masked rejection on 32-bit draws, each 64-bit
  PCG64 output giving its low half first, then its high half);
* PCG64's 128-bit step is one LLVM ``i128`` multiply-add (``_pcg64_step``); draws are
  made 256 at a time into a buffer (``_refill``);
* the mask is fixed over each power-of-two range of rows, and a rejected draw swaps a
  row with itself instead of branching, so the loop has no unpredictable branch.

The generator's state afterwards (``advance`` by the 64-bit draws used, plus the
half-used draw NumPy keeps in ``has_uint32``/``uinteger``) is exactly NumPy's. Any
other bit generator, or a NumPy whose stream the kernel does not reproduce (checked
once per process on three small cases), uses ``rng.permutation`` itself. Small draws do too:
loading the kernel from Numba's cache costs ~5 ms once per process.
"""
import functools
import numbers

import numpy as np
from numpy.random.bit_generator import ISeedSequence

FAST_MIN_ROWS = 1 << 14     # k * n from which the kernel pays for its load
BLOCK = 512                 # 32-bit draws per refill (256 PCG64 steps)
_M64 = (1 << 64) - 1


def epoch_orders(rng, n, k):
    """(k, n) int64: row e is what the e-th of ``k`` calls ``rng.permutation(n)`` returns;
    ``rng`` is left as those calls would leave it."""
    if k * n >= FAST_MIN_ROWS and 2 <= n < 2 ** 31 and _is_pcg64(rng) and _kernel_agrees():
        return _fast_orders(rng, n, k)
    return _numpy_orders(rng, n, k)


def _numpy_orders(rng, n, k):
    return np.stack([rng.permutation(n) for _ in range(k)]).astype(np.int64, copy=False)


def _is_pcg64(rng):
    return isinstance(rng, np.random.Generator) and type(rng.bit_generator) is np.random.PCG64


def seeded_rng(seed):
    """``np.random.default_rng(seed)``, in ~1 us for an int seed seen before.

    Seeding hashes the seed through a ``SeedSequence`` on every call (~35 us, ~150 us
    straight after a training run): ``fit`` does it per call. The 4 words PCG64 takes
    from the hash are kept per seed and handed over by a fixed ``ISeedSequence``; the
    first use of a seed checks the state equals ``default_rng``'s (else always that).
    For fit's own shuffling: the generator's ``seed_seq`` is that fixed one, which
    cannot ``spawn``."""
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0:
        words = _seed_words(int(seed))
        if words is not None:
            return np.random.Generator(np.random.PCG64(_FixedSeed(words)))
    return np.random.default_rng(seed)


class _FixedSeed(ISeedSequence):
    """A seed sequence that gives PCG64 words hashed before (``seeded_rng``)."""

    def __init__(self, words):
        self.words = words

    def generate_state(self, n_words, dtype=np.uint32):
        if n_words != len(self.words) or np.dtype(dtype) != self.words.dtype:
            raise ValueError("_FixedSeed holds the 4 uint64 words PCG64 asks for only")
        return self.words.copy()


@functools.lru_cache(maxsize=64)
def _seed_words(seed):
    """PCG64's seeding words for ``seed``, or None if handing them over does not give
    ``default_rng(seed)``'s generator in this NumPy."""
    words = np.random.SeedSequence(seed).generate_state(4, np.uint64)
    try:
        ours = np.random.PCG64(_FixedSeed(words)).state
    except Exception:   # noqa: BLE001 - a NumPy that seeds otherwise: default_rng then
        return None
    return words if ours == np.random.default_rng(seed).bit_generator.state else None


@functools.lru_cache(maxsize=1)
def _kernel_agrees():
    """Does the kernel reproduce this NumPy's stream? (NumPy does not promise the
    Generator's stream across releases; a mismatch means the slow path, not new orders.)
    A kernel that cannot be built here (no writable Numba cache, NUMBA_DISABLE_JIT) is
    the slow path too: shuffling must never be why ``fit`` fails."""
    try:
        for seed, n, k in ((0, 1797, 2), (12345, 3, 5), (7, 70000, 1)):
            a, b = np.random.default_rng(seed), np.random.default_rng(seed)
            a.random(), b.random()      # start from a half-used 64-bit draw too
            a.integers(0, 2 ** 32 - 1, dtype=np.uint32)
            b.integers(0, 2 ** 32 - 1, dtype=np.uint32)
            if not (np.array_equal(_numpy_orders(a, n, k), _fast_orders(b, n, k))
                    and a.bit_generator.state == b.bit_generator.state):
                return False
    except Exception:   # noqa: BLE001 - any failure of the fast path means the NumPy path
        return False
    return True


def _fast_orders(rng, n, k):
    bg = rng.bit_generator
    s = bg.state
    state, inc = s["state"]["state"], s["state"]["inc"]
    st = np.array([state >> 64, state & _M64, inc >> 64, inc & _M64, s["has_uint32"],
                   s["uinteger"]], dtype=np.uint64)
    out = np.empty((k, n), dtype=np.int64)
    used, last_high = _kernel()(st, n, k, out)
    if used:   # 32-bit draws taken from fresh 64-bit outputs (bg itself is still at s)
        bg.advance((used + 1) // 2)
        s = bg.state
        s["has_uint32"], s["uinteger"] = used % 2, int(last_high)
    else:      # only the buffered half of a draw was used
        s["has_uint32"] = 0
    bg.state = s
    return out


@functools.lru_cache(maxsize=1)
def _kernel():
    """The Numba kernel, compiled (or loaded from Numba's cache) on first use."""
    from symgrad.train._shuffle_kernel import shuffled_rows
    return shuffled_rows

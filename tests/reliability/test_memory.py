"""Long training runs keep a flat memory: 200 epochs of a W4-like MLP (256-256-10, relu,
minibatches of 256; fewer rows than W4 to stay fast) through ``sg.fit``, measuring after
every epoch both what Python and NumPy hold (tracemalloc) and the process's resident
set (RSS).

The run takes the heaviest path through the driver: a metric and validation data every
epoch, so each epoch returns to Python (one compiled call per epoch, history rows,
accuracy on the validation set). After a warm-up of 10 epochs, neither measure may
grow by more than 5% (for tracemalloc: beyond the per-epoch records the History keeps
by design, about half a kilobyte an epoch, counted and subtracted).
"""
import os
import sys
import tracemalloc

import numpy as np
import pytest

import symgrad as sg
from tests.reliability._support import need

EPOCHS, WARMUP = 200, 10


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _w4_like(n=512, d=256, h=256, k=10, seed=4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.argmax(np.maximum(X @ rng.standard_normal((d, h)), 0) @ rng.standard_normal((h, k)),
                  axis=1).astype(np.int64)
    return X, y


def _records_bytes(hist, samples):
    """Bytes of the per-epoch records: History's columns and this test's samples."""
    columns = [hist.loss, hist.lr, hist.epochs, hist.dur, samples, *hist.metrics.values()]
    return sum(sys.getsizeof(c) + sum(sys.getsizeof(x) for x in c) for c in columns)


@pytest.mark.slow
@need("fit")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RSS read from /proc")
def test_two_hundred_epochs_keep_memory_flat():
    net = sg.nn.mlp([256, 256, 10], activation="relu")
    X, y = _w4_like()
    Xv, yv = _w4_like(n=128, seed=5)
    params = net.init_params(seed=0)
    samples = []

    def memory(p, data):              # a metric: called once per epoch, per data set
        if data["X"].shape[0] == X.shape[0]:
            samples.append((tracemalloc.get_traced_memory()[0], _rss_bytes()))
        return 0.0

    # compile and warm up outside the measurement: Numba's first call allocates for good
    sg.fit(net, params, data={"X": X, "y": y}, lr=0.05, epochs=2, batch_size=256,
           progress=False)
    tracemalloc.start()
    try:
        hist = sg.fit(net, params, data={"X": X, "y": y}, lr=0.05, epochs=EPOCHS,
                      batch_size=256, progress=False, validation_data={"X": Xv, "y": yv},
                      metrics=("accuracy", memory))
    finally:
        tracemalloc.stop()
    assert len(hist.loss) == EPOCHS and len(samples) == EPOCHS
    assert hist.loss[-1] < hist.loss[0]                 # it trained
    traced = np.array([s[0] for s in samples], float)
    rss = np.array([s[1] for s in samples], float)
    base_traced, base_rss = traced[WARMUP], rss[WARMUP]
    kept = _records_bytes(hist, samples) * np.arange(EPOCHS) / EPOCHS     # grows by design
    growth_traced = (traced - kept)[WARMUP:].max() / (base_traced - kept[WARMUP]) - 1
    growth_rss = rss[WARMUP:].max() / base_rss - 1
    print(f"{EPOCHS} epochs: tracemalloc {base_traced / 1e6:.2f} -> {traced[-1] / 1e6:.2f} MB "
          f"(records {kept[-1] / 1e3:.0f} kB; other growth {growth_traced:.2%}), RSS {base_rss / 1e6:.1f} -> {rss[-1] / 1e6:.1f} MB "
          f"(max growth {growth_rss:.2%})")
    assert growth_traced <= 0.05, (traced[WARMUP], traced.max(), traced[-1])
    assert growth_rss <= 0.05, (rss[WARMUP], rss.max(), rss[-1])

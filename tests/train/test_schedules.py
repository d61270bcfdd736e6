"""Learning-rate schedules: their values, and that fit trains with them epoch by epoch."""
import math

import numpy as np
import pytest

from symgrad.train import (Constant, CosineDecay, ExponentialDecay, InverseTimeDecay, StepDecay,
                           fit)
from symgrad.train.schedules import learning_rates


def test_schedule_values():
    np.testing.assert_array_equal(Constant().values(0.1, 3), [0.1, 0.1, 0.1])
    np.testing.assert_allclose(StepDecay(2, 0.5).values(1.0, 5), [1, 1, 0.5, 0.5, 0.25])
    np.testing.assert_allclose(ExponentialDecay(0.9).values(1.0, 3), [1, 0.9, 0.81])
    np.testing.assert_allclose(InverseTimeDecay(0.5).values(1.0, 3), [1, 1 / 1.5, 0.5])
    cos = CosineDecay().values(1.0, 4)
    np.testing.assert_allclose(cos, [0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)])
    np.testing.assert_allclose(CosineDecay(period=2, min_lr=0.1).values(1.0, 4),
                               [1.0, 0.55, 0.1, 0.1])


def test_schedules_by_name_and_callable():
    np.testing.assert_allclose(learning_rates(1.0, "cosine", 2), [1.0, 0.5])
    np.testing.assert_allclose(learning_rates(None, lambda e: 1 / (e + 1), 3), [1, 0.5, 1 / 3])


@pytest.mark.parametrize("lr, schedule, message", [
    (0.1, "warmup", "unknown schedule 'warmup'"),
    (0.1, lambda e: 0.1, "lr must not be given"),
    (None, lambda e: -0.1, "learning rate -0.1 at epoch 0"),
    (None, lambda e: float("nan") if e == 2 else 0.1, "at epoch 2"),
    (None, lambda e: "fast", "returned 'fast' at epoch 0"),
    (0.1, 3, "schedule must be a name"),
])
def test_bad_schedules(lr, schedule, message):
    with pytest.raises((ValueError, TypeError), match=message):
        learning_rates(lr, schedule, 4)


@pytest.mark.parametrize("bad", [lambda: StepDecay(0), lambda: ExponentialDecay(-1),
                                 lambda: InverseTimeDecay(0), lambda: CosineDecay(min_lr=-1)])
def test_bad_schedule_arguments(bad):
    with pytest.raises(ValueError):
        bad()


def test_fit_uses_the_schedule_epoch_by_epoch(softmax_small):
    model, params, data = softmax_small
    hist = fit(model, params, data, lr=0.4, epochs=4, batch_size=10, seed=2,
               schedule=StepDecay(2, 0.5), progress=False)
    assert hist.lr == [0.4, 0.4, 0.2, 0.2]
    # The same run by hand: the same orders and the same per-epoch rates.
    p = {k: v.copy() for k, v in params.items()}
    rng = np.random.default_rng(2)
    orders = np.stack([rng.permutation(60) for _ in range(4)])
    losses, done = model.run_epochs(p, data, orders, np.array(hist.lr), 10)
    assert done == 4 and list(losses) == hist.loss
    assert all(np.array_equal(p[k], hist.params[k]) for k in p)

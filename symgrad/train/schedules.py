"""Learning-rate schedules: the per-epoch learning rates, computed before training starts.

A schedule class scales the base ``lr`` given to ``fit`` (as PyTorch's schedulers
do); a plain callable ``epoch -> lr`` gives the rate itself. Epochs count from 0.
Everything is computed up front into one array, because the compiled training loop
takes the per-epoch rates as data and cannot call back into Python.
"""
import math
import numbers

import numpy as np


class Schedule:
    """Base class: ``rate(epoch, lr, epochs)`` is the learning rate of epoch ``epoch``."""

    def rate(self, epoch, lr, epochs):
        raise NotImplementedError

    def values(self, lr, epochs):
        """The learning rates of epochs 0 .. epochs-1 as a float64 array."""
        return np.array([self.rate(e, lr, epochs) for e in range(epochs)], dtype=np.float64)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    """``lr`` at every epoch."""

    def rate(self, epoch, lr, epochs):
        return lr

    def values(self, lr, epochs):
        # built directly: fit's default schedule, paid every call (~0.1 ms as a list)
        return np.full(epochs, float(lr))


class StepDecay(Schedule):
    """``lr * gamma ** (epoch // step_size)``: multiply by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, step_size=10, gamma=0.5):
        self.step_size = _positive_int(step_size, "StepDecay step_size")
        self.gamma = _positive(gamma, "StepDecay gamma")

    def rate(self, epoch, lr, epochs):
        return lr * self.gamma ** (epoch // self.step_size)


class ExponentialDecay(Schedule):
    """``lr * gamma ** epoch``."""

    def __init__(self, gamma=0.95):
        self.gamma = _positive(gamma, "ExponentialDecay gamma")

    def rate(self, epoch, lr, epochs):
        return lr * self.gamma ** epoch


class InverseTimeDecay(Schedule):
    """``lr / (1 + decay * epoch)`` (the 1/t schedule of stochastic approximation)."""

    def __init__(self, decay=0.1):
        self.decay = _positive(decay, "InverseTimeDecay decay")

    def rate(self, epoch, lr, epochs):
        return lr / (1.0 + self.decay * epoch)


class CosineDecay(Schedule):
    """Half a cosine from ``lr`` down towards ``min_lr`` over ``period`` epochs
    (default: the whole run), then ``min_lr``."""

    def __init__(self, period=None, min_lr=0.0):
        self.period = None if period is None else _positive_int(period, "CosineDecay period")
        if not isinstance(min_lr, numbers.Real) or not min_lr >= 0:
            raise ValueError(f"CosineDecay min_lr must be a number >= 0, got {min_lr!r}")
        self.min_lr = float(min_lr)

    def rate(self, epoch, lr, epochs):
        period = self.period or epochs
        if epoch >= period:
            return self.min_lr
        return self.min_lr + (lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * epoch / period))


NAMED = {"constant": Constant, "step": StepDecay, "exponential": ExponentialDecay,
         "inverse_time": InverseTimeDecay, "cosine": CosineDecay}


def learning_rates(lr, schedule, epochs):
    """Check ``lr``/``schedule`` and return the (epochs,) array of per-epoch rates."""
    if isinstance(schedule, str):
        if schedule not in NAMED:
            raise ValueError(f"unknown schedule {schedule!r}; choose from {sorted(NAMED)} "
                             "or pass a Schedule or a callable epoch -> lr")
        schedule = NAMED[schedule]()
    if schedule is None or isinstance(schedule, Schedule):
        if lr is None:
            raise ValueError("lr is required (a number > 0), e.g. fit(..., lr=0.1)")
        lr = _positive(lr, "lr")
        if schedule is None or type(schedule) is Constant:
            # a checked lr, repeated: nothing below to check. fit's default, and the check's
            # four NumPy calls cost ~0.1 ms straight after a training run
            return Constant().values(lr, epochs)
        rates = schedule.values(lr, epochs)
    elif callable(schedule):
        if lr is not None:
            raise ValueError("schedule is a callable epoch -> lr, so lr must not be given "
                             "(use a Schedule class such as StepDecay to scale a base lr)")
        rates = np.array([_call(schedule, e) for e in range(epochs)], dtype=np.float64)
    else:
        raise TypeError(f"schedule must be a name, a Schedule or a callable epoch -> lr, "
                        f"got {type(schedule).__name__}")
    bad = np.flatnonzero(~(np.isfinite(rates) & (rates >= 0)))
    if bad.size:
        e = int(bad[0])
        raise ValueError(f"schedule {schedule!r} gives learning rate {float(rates[e])!r} at "
                         f"epoch {e}; learning rates must be finite and >= 0")
    return rates


def _call(schedule, epoch):
    value = schedule(epoch)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"schedule {schedule!r} returned {value!r} at epoch {epoch}; "
                         "expected a number")
    return float(value)


def _positive(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{what} must be an int >= 1, got {value!r}")
    return int(value)

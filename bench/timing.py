"""Timing helper shared by the baseline and symgrad benchmark rows."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .workloads import Workload

Trainer = Callable[[Workload], "tuple[dict[str, np.ndarray], float]"]


@dataclass
class TimingResult:
    first_call_s: float  # first call: JIT compile (where any) + one training run
    train_s: float  # best of ``repeats`` warm calls
    times_s: list[float]  # every warm call, in order
    steps: int
    final_loss: float
    params: dict[str, np.ndarray] = field(repr=False)

    @property
    def step_s(self) -> float:
        return self.train_s / self.steps

    @property
    def compile_s(self) -> float:
        """First-call overhead over a warm run (an estimate of compile time)."""
        return max(self.first_call_s - self.train_s, 0.0)


def _timed_call(fn: Trainer, workload: Workload):
    t0 = time.perf_counter()
    params, loss = fn(workload)
    return time.perf_counter() - t0, params, float(loss)


def time_trainer(fn: Trainer, workload: Workload, repeats: int = 5) -> TimingResult:
    """Warm-up call (records first-call time), then best-of-``repeats`` time.

    ``fn(workload) -> (final_params, final_loss)`` must return the full-dataset
    loss after training; the loss reported is the one from the last call.
    """
    first, params, loss = _timed_call(fn, workload)
    times = []
    for _ in range(repeats):
        t, params, loss = _timed_call(fn, workload)
        times.append(t)
    return TimingResult(first_call_s=first, train_s=min(times), times_s=times,
                        steps=workload.steps, final_loss=loss, params=params)

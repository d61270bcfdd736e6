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
    train_s: float  # best of ``repeats`` warm calls (wall time)
    times_s: list[float]  # wall time of every warm call, in order
    cpu_over_wall: float  # process CPU time / wall time of the warm calls
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
    c0, t0 = time.process_time(), time.perf_counter()
    params, loss = fn(workload)
    wall = time.perf_counter() - t0
    return wall, time.process_time() - c0, params, float(loss)


def time_trainer(fn: Trainer, workload: Workload, repeats: int = 5) -> TimingResult:
    """Warm-up call (records the first-call = compile time), then best-of-N.

    ``fn(workload) -> (final_params, final_loss)`` must return the full-dataset
    loss after training; the loss reported is the one from the last call.
    """
    first, _, params, loss = _timed_call(fn, workload)
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu, params, loss = _timed_call(fn, workload)
        walls.append(wall)
        cpus.append(cpu)
    return TimingResult(
        first_call_s=first, train_s=min(walls), times_s=walls,
        cpu_over_wall=sum(cpus) / sum(walls), steps=workload.steps,
        final_loss=loss, params=params,
    )

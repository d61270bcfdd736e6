"""Timing helpers shared by the baseline and symgrad benchmark rows.

Timings on a shared VM drift by tens of percent over seconds, so when several
implementations are compared, ``time_trainers`` interleaves their warm calls
(round-robin) so that each sees the same machine conditions.
"""
from __future__ import annotations

import math
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


@dataclass
class _Calls:
    first_s: float = 0.0
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    loss: float = float("nan")


def _timed_call(fn: Trainer, workload: Workload, calls: _Calls) -> float:
    c0, t0 = time.process_time(), time.perf_counter()
    calls.params, loss = fn(workload)
    wall = time.perf_counter() - t0
    calls.cpus.append(time.process_time() - c0)
    calls.loss = float(loss)
    return wall


def _result(calls: _Calls, workload: Workload) -> TimingResult:
    walls = calls.walls
    return TimingResult(
        first_call_s=calls.first_s, train_s=min(walls), times_s=walls,
        cpu_over_wall=sum(calls.cpus[1:]) / sum(walls), steps=workload.steps,
        final_loss=calls.loss, params=calls.params,
    )


def time_trainers(trainers: dict[str, Trainer], workload: Workload,
                  repeats: int = 5, errors: dict | None = None,
                  min_seconds: float = 0.0, max_repeats: int = 50,
                  ) -> dict[str, TimingResult]:
    """Time several trainers on one workload, interleaving their warm calls.

    Each trainer: one warm-up call (its time = first-call/compile time), then
    ``repeats`` warm calls in round-robin order with the others; the train
    time is the best warm call.  ``fn(workload) -> (final_params,
    final_loss)`` must return the full-dataset loss after training; the loss
    reported is the one from the last call.

    ``min_seconds``: short runs get more rounds, as many as make the fastest
    trainer's warm calls add up to that long (at most ``max_repeats``): on a shared
    host a 10 ms run's best of 7 still varies by 10-20% between processes.

    If ``errors`` is a dict, a trainer that raises is dropped from the result
    and its exception stored in ``errors[name]``; otherwise exceptions propagate.
    """
    active = dict(trainers)
    calls = {name: _Calls() for name in trainers}

    def call(name):
        try:
            return _timed_call(active[name], workload, calls[name])
        except Exception as exc:
            if errors is None:
                raise
            errors[name] = exc
            del active[name]
            return None

    for name in list(active):
        calls[name].first_s = call(name)
    done = 0
    while done < repeats:
        for name in list(active):
            wall = call(name)
            if wall is not None:
                calls[name].walls.append(wall)
        done += 1
        if done == 1 and min_seconds > 0 and active:
            fastest = min(calls[name].walls[0] for name in active)
            repeats = max(repeats, min(max_repeats, math.ceil(min_seconds / fastest)))
    return {name: _result(calls[name], workload) for name in active}


def time_trainer(fn: Trainer, workload: Workload, repeats: int = 5) -> TimingResult:
    """Warm-up call (records the first-call = compile time), then best-of-N."""
    return time_trainers({"fn": fn}, workload, repeats)["fn"]

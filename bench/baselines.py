"""Registry of the hand-written baseline trainers.

``BASELINES[impl][workload_name]`` is a trainer ``train(workload) ->
(final_params: dict[str, np.ndarray], final_loss: float)``; ``final_loss`` is
the full-dataset loss after training (``bench.impl_numpy.loss`` defines it).
An implementation whose library is missing maps to ``None`` and
``UNAVAILABLE[impl]`` says why.

All trainers: float64, single-threaded, the workload's initial parameters and
batch order, so final losses agree across implementations to rounding.
"""
from __future__ import annotations

from typing import Callable

from . import impl_numba, impl_numpy
from .impl_numpy import loss as reference_loss  # noqa: F401  (re-export)

BASELINES: dict[str, dict[str, Callable] | None] = {
    "numpy": impl_numpy.TRAINERS,
    "numba": impl_numba.TRAINERS,
    "torch": None,
    "jax_jit": None,
    "jax_scan": None,
}
UNAVAILABLE: dict[str, str] = {}

try:
    from . import impl_torch
except ImportError as exc:  # torch is optional
    UNAVAILABLE["torch"] = f"not installed ({exc})"
else:
    BASELINES["torch"] = impl_torch.TRAINERS

try:
    from . import impl_jax
except ImportError as exc:  # jax is optional
    UNAVAILABLE["jax_jit"] = UNAVAILABLE["jax_scan"] = f"not installed ({exc})"
else:
    BASELINES["jax_jit"] = impl_jax.JIT_TRAINERS
    BASELINES["jax_scan"] = impl_jax.SCAN_TRAINERS

REFERENCE_IMPL = "numba"  # the speed reference for ratios

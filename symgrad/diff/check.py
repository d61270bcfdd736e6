"""``sg.check_grad``: the derived gradient against central finite differences.

Like PyTensor's ``verify_grad``, it compares along random directions (plus every
coordinate for small params) and reports the worst relative error per param.
"""
import math
import numbers
from dataclasses import dataclass

import numpy as np

from symgrad.diff.reverse import backward, check_params
from symgrad.graph.arguments import check_seed
from symgrad.graph.bind import bind
from symgrad.graph.evaluate import run_graph


@dataclass
class GradCheck:
    errors: dict        # param name -> worst relative error
    tolerance: float

    @property
    def ok(self):
        return all(e <= self.tolerance for e in self.errors.values())

    def __bool__(self):
        return self.ok

    def __repr__(self):
        rows = ", ".join(f"{k}: {v:.2e}" for k, v in self.errors.items())
        return f"<GradCheck {'ok' if self.ok else 'FAILED'} (tol {self.tolerance:g}) {rows}>"


def check_grad(loss, params, data, eps=1e-6, tolerance=1e-6, directions=3, seed=0):
    """Relative error of dL/dparam per param; ``data`` holds params' and inputs' values."""
    for name, value in (("eps", eps), ("tolerance", tolerance)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                or not (math.isfinite(value) and value > 0):
            raise ValueError(f"check_grad: {name} must be a finite number > 0, got {value!r}")
    if isinstance(directions, bool) or not isinstance(directions, numbers.Integral) \
            or directions < 0:
        raise ValueError(f"check_grad: directions must be an int >= 0, got {directions!r}")
    seed = check_seed(seed)
    params = check_params(loss, params)
    grads, _ = backward(loss, params)
    arrays, sizes = bind([loss], data)
    values = run_graph([grads[p] for p in params], arrays, sizes)
    rng = np.random.default_rng(seed)

    def loss_at(p, value):
        trial = dict(arrays)
        trial[p] = value
        return float(run_graph([loss], trial, sizes)[loss])

    errors = {}
    for p in params:
        g, x = np.broadcast_to(values[grads[p]], arrays[p].shape), arrays[p]
        dirs = [rng.standard_normal(x.shape) for _ in range(directions)]
        if x.size <= 16:
            dirs += list(np.eye(x.size).reshape((x.size,) + x.shape))
        worst = 0.0
        for v in dirs:
            numeric = (loss_at(p, x + eps * v) - loss_at(p, x - eps * v)) / (2 * eps)
            exact = float(np.sum(g * v))
            worst = max(worst, abs(numeric - exact) / max(1.0, abs(exact), abs(numeric)))
        errors[p.name] = worst
    return GradCheck(errors, tolerance)

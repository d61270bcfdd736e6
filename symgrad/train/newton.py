"""Full-batch Newton for ``fit(..., optimizer="newton")``: damped Newton steps on the
compiled Hessian, with a backtracking line search.

Each iteration solves ``H s = -g`` by Cholesky (SciPy's ``cho_factor``); when ``H`` is
not positive definite (a saddle, a non-convex net) the step is the plain gradient step
``s = -g`` instead. The step length ``t`` starts at 1 (the pure Newton step, which
converges quadratically near the minimum) and halves until the Armijo condition
``L(x + t s) <= L(x) + 1e-4 t g.s`` holds. One History row per iteration; its ``lr``
column holds the accepted ``t``.

Stopping: after ``epochs`` iterations, when the gradient's 2-norm is <= ``tol``
(default 1e-8), when no step length decreases the loss (the minimum up to rounding),
or by early stopping. The model must be compiled with ``hessian=True`` and the run full
batch; both are checked before any work.
"""
import time

import numpy as np

ARMIJO = 1e-4
MAX_HALVINGS = 50
NEWTON_TOL = 1e-8
# fit keywords Newton has no use for, with what to do instead
REFUSED = {"lr": "Newton's step length comes from its line search; drop lr=",
           "schedule": "Newton's step length comes from its line search; drop schedule=",
           "momentum": "Newton takes no momentum", "betas": "betas are Adam's",
           "eps": "eps is Adam's and RMSprop's", "alpha": "alpha is RMSprop's",
           "weight_decay": "Newton minimises the loss as given; add sg.l2 to the loss instead"}


class NewtonOptions:
    """The checked options of a Newton run; ``as_lbfgs`` is what the driver's shared
    full-batch checks and set-up see (no lr, no schedule, no minibatches)."""

    def __init__(self, tol):
        self.tol = tol
        self.as_lbfgs = {"optimizer": "lbfgs", "betas": None, "eps": None,
                         "weight_decay": None, "alpha": None, "tol": None}


def newton_options(optimizer, lr=None, batch_size=None, schedule=None, momentum=None):
    """None unless ``optimizer["optimizer"]`` is "newton"; else the checked options, or
    an error saying what to do (before any work)."""
    name = optimizer.get("optimizer")
    if not isinstance(name, str) or name.lower() != "newton":
        return None
    if batch_size is not None:
        raise ValueError(f"optimizer 'newton' is full batch, but batch_size={batch_size!r}; "
                         "drop batch_size, or use a minibatch optimizer such as 'adam'")
    given = {"lr": lr, "schedule": schedule, "momentum": momentum,
             **{k: optimizer.get(k) for k in ("betas", "eps", "weight_decay", "alpha")}}
    for key, value in given.items():
        if value is not None and not (key == "momentum" and value == 0):
            raise ValueError(f"optimizer 'newton' does not take {key}={value!r}: {REFUSED[key]}")
    tol = optimizer.get("tol")
    if tol is None:
        tol = NEWTON_TOL
    elif isinstance(tol, bool) or not isinstance(tol, (int, float)) or not np.isfinite(tol) \
            or tol < 0:
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    return NewtonOptions(float(tol))


def check_newton_model(model):
    """Newton needs the compiled Hessian: an error before any work otherwise."""
    if model is None or not getattr(model, "has_hessian", False):
        what = "a loss node" if model is None else type(model).__name__ + \
            (" compiled without hessian=True" if hasattr(model, "has_hessian") else "")
        raise ValueError(f"optimizer 'newton' needs the Hessian, but fit got {what}; compile "
                         "the model with fn = sg.compile(loss, params, hessian=True) and pass "
                         "fn to fit")


class _Flat:
    """The params as one float64 vector (the params' order in the model)."""

    def __init__(self, names, params):
        self.names, self.shapes = names, [np.shape(params[k]) for k in names]
        self.cuts = np.cumsum([0] + [int(np.prod(s)) for s in self.shapes])

    def pack(self, arrays):
        return np.concatenate([np.asarray(arrays[k], np.float64).ravel() for k in self.names])

    def unpack_into(self, params, x):
        for k, name in enumerate(self.names):
            params[name][...] = x[self.cuts[k]:self.cuts[k + 1]].reshape(self.shapes[k])

    def matrix(self, blocks):
        n = self.cuts[-1]
        H = np.empty((n, n))
        for i, p in enumerate(self.names):
            for j, q in enumerate(self.names):
                H[self.cuts[i]:self.cuts[i + 1], self.cuts[j]:self.cuts[j + 1]] = \
                    np.asarray(blocks[p, q], np.float64).reshape(self.cuts[i + 1] - self.cuts[i],
                                                                 self.cuts[j + 1] - self.cuts[j])
        return H


def newton_direction(H, g):
    """``(step, "newton")`` solving ``H s = -g`` by Cholesky; ``(-g, "gradient")`` when
    ``H`` is not positive definite (or the solve is not finite)."""
    from scipy.linalg import LinAlgError, cho_factor, cho_solve
    try:
        factor = cho_factor(H, lower=True, check_finite=True)
        step = -cho_solve(factor, g, check_finite=False)
        if np.all(np.isfinite(step)) and g @ step < 0:
            return step, "newton"
    except (LinAlgError, ValueError):
        pass
    return -g, "gradient"


def _line_search(loss_at, x, f0, g, step):
    """The largest t in 1, 1/2, 1/4, ... with the Armijo decrease; None when none has."""
    slope, t = float(g @ step), 1.0
    for _ in range(MAX_HALVINGS):
        f = loss_at(x + t * step)
        if np.isfinite(f) and f <= f0 + ARMIJO * t * slope:
            return t, f
        t *= 0.5
    return None, f0


def minimize_newton(trainer, bar):
    """Run damped Newton for ``trainer`` (a ``driver._Trainer``), writing its history."""
    model, params, data, history = trainer.model, trainer.params, trainer.data, trainer.history
    flat = _Flat([p.name for p in model.params], params)
    tol = trainer.newton.tol
    x = flat.pack(params)
    f, grads = model.loss_and_grad(params, **data)
    clock = time.perf_counter()

    def loss_at(trial):
        flat.unpack_into(params, trial)
        return model.loss(params, **data)

    history.n_evals, fallbacks = 1, 0
    for it in range(1, trainer.epochs + 1):
        g = flat.pack(grads)
        if np.linalg.norm(g) <= tol:
            history.stop_reason, history.message = "converged", f"|g| <= {tol:g}"
            break
        step, kind = newton_direction(flat.matrix(model.hessian(params, **data)), g)
        with np.errstate(all="ignore"):        # a long trial step may overflow: backtrack
            t, f_new = _line_search(loss_at, x, f, g, step)
        history.n_evals += MAX_HALVINGS if t is None else int(round(-np.log2(t))) + 1
        if t is None:                          # no decrease: the minimum, up to rounding
            flat.unpack_into(params, x)
            history.stop_reason = "converged"
            history.message = "no step length decreases the loss"
            break
        x = x + t * step
        flat.unpack_into(params, x)
        f, grads = model.loss_and_grad(params, **data)
        now = time.perf_counter()
        history.record(it, f, t, now - clock)
        clock = now
        fallbacks += kind == "gradient"
        if bar is not None:
            bar.update(1)
            bar.set_postfix(trainer._postfix(), refresh=False)
        if trainer._measure(it):
            break
    else:
        if np.linalg.norm(flat.pack(grads)) <= tol:
            history.stop_reason, history.message = "converged", f"|g| <= {tol:g}"
    if fallbacks:
        note = f"{fallbacks} gradient step(s) where the Hessian was not positive definite"
        history.message = f"{history.message}; {note}" if history.message else note
    return history

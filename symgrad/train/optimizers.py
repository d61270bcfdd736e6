"""The optimizers of ``fit``: names, hyperparameters, checks and the NumPy reference update.

Names, defaults and update rules follow ``torch.optim`` (users of PyTorch get what
they expect), except plain ``"sgd"`` with momentum, which keeps symgrad's (and Keras',
scikit-learn's) velocity form ``v <- mu v - lr g; p <- p + v``: equal to torch's
``b <- mu b + g; p <- p - lr b`` for a constant lr, and it lets a schedule change lr
without rescaling the velocity.

======== ======================================================== ==========================
name     update (g: gradient, plus ``weight_decay * p`` except     defaults
         AdamW; t: step number 1, 2, ...)
======== ======================================================== ==========================
sgd      ``p -= lr g``; with momentum ``v = mu v - lr g; p += v``  momentum 0
nesterov ``b = mu b + g; p -= lr (g + mu b)`` (torch nesterov)     momentum 0.9
adam     ``m = b1 m + (1-b1) g; s = b2 s + (1-b2) g^2;``           lr 1e-3, betas (0.9, 0.999),
         ``p -= lr (m / (1-b1^t)) / (sqrt(s / (1-b2^t)) + eps)``   eps 1e-8, weight_decay 0
adamw    Adam, with ``p *= 1 - lr weight_decay`` first (decoupled) lr 1e-3, weight_decay 1e-2
rmsprop  ``s = alpha s + (1-alpha) g^2; p -= lr g / (sqrt(s) + eps)`` lr 1e-2, alpha 0.99,
         (momentum: ``b = mu b + g / (sqrt(s) + eps); p -= lr b``) eps 1e-8, momentum 0
lbfgs    ``scipy.optimize.minimize(method="L-BFGS-B", jac=True)``, full batch; ``epochs`` is
         the iteration limit, ``tol`` (default 1e-5) the gradient tolerance (scipy's gtol)
======== ======================================================== ==========================

The state (``m``, ``s``, the step count ``t``) lives in an :class:`OptimizerState` that
``fit`` keeps across the chunks of epochs it runs, so chunking, progress bars and
early stopping never change a result.
"""
import math
import numbers

import numpy as np

FUSED = ("sgd", "nesterov", "adam", "adamw", "rmsprop")   # run inside run_epochs
NAMES = FUSED + ("lbfgs",)
DEFAULT_LR = {"adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-2}
LBFGS_TOL = 1e-5            # scipy's gtol default: max |projected gradient| at the end
LBFGS_FTOL = 64 * np.finfo(float).eps   # as scikit-learn: the loss change never stops early

# which fit keywords each optimizer takes (the others are errors, with advice)
TAKES = {"sgd": {"momentum", "weight_decay"}, "nesterov": {"momentum", "weight_decay"},
         "adam": {"betas", "eps", "weight_decay"}, "adamw": {"betas", "eps", "weight_decay"},
         "rmsprop": {"alpha", "eps", "momentum", "weight_decay"}, "lbfgs": {"tol"}}
ADVICE = {"momentum": {"adam": "Adam's momentum is betas[0], e.g. betas=(0.9, 0.999)",
                       "adamw": "AdamW's momentum is betas[0], e.g. betas=(0.9, 0.999)",
                       "lbfgs": "L-BFGS takes no momentum"},
          "betas": "betas are Adam's; use optimizer='adam' or 'adamw'",
          "alpha": "alpha (the squared-gradient decay) is RMSprop's; use optimizer='rmsprop'",
          "eps": "eps is Adam's and RMSprop's",
          "weight_decay": "L-BFGS minimises the loss as given; add sg.l2 to the loss instead",
          "tol": "tol is L-BFGS's stopping tolerance; the gradient methods run all epochs "
                 "(use early_stopping= to stop early)"}


class Optimizer:
    """A checked optimizer: its name and hyperparameters (see the module table)."""

    def __init__(self, name, momentum=0.0, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 alpha=0.99, tol=LBFGS_TOL):
        self.name, self.momentum, self.betas, self.eps = name, momentum, tuple(betas), eps
        self.weight_decay, self.alpha, self.tol = weight_decay, alpha, tol

    def __repr__(self):
        keys = sorted(TAKES[self.name])
        return f"Optimizer({self.name!r}, " + ", ".join(f"{k}={getattr(self, k)!r}"
                                                      for k in keys) + ")"

    @property
    def fused(self):
        return self.name in FUSED

    def hyper(self):
        """The float64 vector the compiled loop reads: (momentum or beta1, beta2 or alpha,
        eps, weight_decay), the layout documented in symgrad.codegen.trainloop."""
        first = self.betas[0] if self.name in ("adam", "adamw") else self.momentum
        second = self.betas[1] if self.name in ("adam", "adamw") else self.alpha
        return np.array([first, second, self.eps, self.weight_decay], dtype=np.float64)

    def step(self, p, g, m, s, lr, t):
        """The NumPy reference update of one param, in place (``t``: this step's number)."""
        wd, mu = self.weight_decay, self.momentum
        if wd and self.name == "adamw":
            p *= 1.0 - lr * wd                        # decoupled weight decay
        elif wd:
            g = g + wd * p                            # L2 weight decay in the gradient
        if self.name == "sgd" and not mu:
            p -= lr * g
        elif self.name == "sgd":
            m[...] = mu * m - lr * g                  # velocity
            p += m
        elif self.name == "nesterov":
            m[...] = mu * m + g                       # momentum buffer
            p -= lr * (g + mu * m)
        elif self.name in ("adam", "adamw"):
            b1, b2 = self.betas
            m[...] = b1 * m + (1.0 - b1) * g
            s[...] = b2 * s + (1.0 - b2) * g * g
            p -= (lr / (1.0 - b1 ** t)) * m / (np.sqrt(s) / math.sqrt(1.0 - b2 ** t) + self.eps)
        elif not mu:                                  # rmsprop
            s[...] = self.alpha * s + (1.0 - self.alpha) * g * g
            p -= lr * g / (np.sqrt(s) + self.eps)
        else:
            s[...] = self.alpha * s + (1.0 - self.alpha) * g * g
            m[...] = mu * m + g / (np.sqrt(s) + self.eps)
            p -= lr * m


class OptimizerState:
    """What an optimizer carries from step to step: ``m`` (velocity, momentum buffer or
    first moment), ``s`` (second moment), both name -> array, and ``step`` (steps done)."""

    def __init__(self, params):
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.s = {k: np.zeros_like(v) for k, v in params.items()}
        self.step = 0

    def copy(self):
        out = OptimizerState({})
        out.m = {k: v.copy() for k, v in self.m.items()}
        out.s = {k: v.copy() for k, v in self.s.items()}
        out.step = self.step
        return out

    def restore(self, saved):
        """Put the values of ``saved`` (a copy) back, into the same arrays."""
        for mine, theirs in ((self.m, saved.m), (self.s, saved.s)):
            for k, v in theirs.items():
                mine[k][...] = v
        self.step = saved.step


def check_optimizer(optimizer="sgd", lr=None, momentum=None, betas=None, eps=None,
                    weight_decay=None, alpha=None, tol=None, batch_size=None, schedule=None):
    """An :class:`Optimizer` from ``fit``'s keywords, or an error saying what to do
    (raised before any work). ``None`` means "this optimizer's default"."""
    if not isinstance(optimizer, str) or optimizer.lower() not in NAMES:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {list(NAMES)}")
    name = optimizer.lower()
    given = {k: v for k, v in dict(momentum=momentum, betas=betas, eps=eps, tol=tol,
                                   weight_decay=weight_decay, alpha=alpha).items()
             if v is not None and not (k == "momentum" and v == 0 and name != "nesterov")}
    for key in given:
        if key not in TAKES[name]:
            advice = ADVICE[key] if isinstance(ADVICE[key], str) else ADVICE[key].get(
                name, f"{name} takes no {key}")
            raise ValueError(f"optimizer {name!r} does not take {key}={given[key]!r}: {advice}")
    if name == "lbfgs":
        _check_full_batch(lr, batch_size, schedule)
        return Optimizer(name, tol=_number(tol, "tol", LBFGS_TOL, low=0.0))
    opt = Optimizer(name,
                    momentum=_momentum(momentum, 0.9 if name == "nesterov" else 0.0),
                    betas=_betas(betas),
                    eps=_number(eps, "eps", 1e-8, low=0.0, strict=True),
                    weight_decay=_number(weight_decay, "weight_decay",
                                         1e-2 if name == "adamw" else 0.0, low=0.0),
                    alpha=_unit(alpha, "alpha", 0.99))
    if name == "nesterov" and opt.momentum == 0:
        raise ValueError("optimizer 'nesterov' needs momentum > 0 (default 0.9); for plain "
                         "SGD use optimizer='sgd'")
    return opt


def default_lr(optimizer, lr, schedule):
    """``lr``, or the optimizer's default (torch's) when none was given and no callable
    schedule gives the rates; None for L-BFGS (its line search picks the step)."""
    if optimizer.name == "lbfgs":
        return None
    if lr is None and not callable(schedule) and optimizer.name in DEFAULT_LR:
        return DEFAULT_LR[optimizer.name]
    return lr


def _check_full_batch(lr, batch_size, schedule):
    if batch_size is not None:
        raise ValueError(f"optimizer 'lbfgs' is full batch, but batch_size={batch_size!r}; "
                         "drop batch_size, or use a minibatch optimizer such as 'adam'")
    if lr is not None or schedule is not None:
        raise ValueError("optimizer 'lbfgs' chooses each step by a line search; drop lr= "
                         "and schedule=")


def _real(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(
            value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _number(value, name, default, low, strict=False):
    if value is None:
        return default
    value = _real(value, name)
    if value < low or (strict and value == low):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low:g}, got {value!r}")
    return value


def _unit(value, name, default):
    """A decay rate in [0, 1)."""
    if value is None:
        return default
    value = _real(value, name)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return value


def _momentum(value, default):
    return _unit(value, "momentum", default)


def _betas(betas):
    if betas is None:
        return (0.9, 0.999)
    if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2) such as (0.9, 0.999), "
                         f"got {betas!r}")
    return (_unit(betas[0], "betas[0]", 0.9), _unit(betas[1], "betas[1]", 0.999))

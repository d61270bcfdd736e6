"""Full-batch L-BFGS for ``fit(..., optimizer="lbfgs")``: SciPy's L-BFGS-B on the model.

SciPy sees one flat float64 vector of every param; each evaluation calls the model's
``loss_and_grad`` (for a compiled model, the compiled function on arguments bound
once, so an evaluation costs what the compiled code costs). One history row per
L-BFGS iteration (several loss evaluations when the line search backtracks).

Stopping: after ``epochs`` iterations, or when the largest component of the
(projected) gradient is <= ``tol`` (SciPy's ``gtol``, default 1e-5), or early
stopping. The relative loss change (``ftol``) is set to 64 machine epsilons, as
scikit-learn does, so it practically never stops the run before ``tol`` is met.
"""
import time

import numpy as np

from symgrad.train.optimizers import LBFGS_FTOL

MAX_LINE_SEARCH = 50   # as scikit-learn (SciPy's default is 20)


def flat_objective(model, params, data):
    """``(f, x0, unflatten)``: ``f(x) -> (loss, flat gradient)``; ``unflatten(x)`` writes
    ``x`` into ``params``' arrays (in place)."""
    try:
        from symgrad.codegen.model import CompiledModel
        from symgrad.codegen.trainloop import flat_objective as compiled_objective
    except ImportError:
        CompiledModel = None
    if CompiledModel is not None and isinstance(model, CompiledModel):
        return compiled_objective(model, params, data)
    names = list(params)
    sizes = [params[k].size for k in names]
    cuts = np.cumsum([0] + sizes)
    x0 = np.concatenate([np.asarray(params[k], np.float64).ravel() for k in names])

    def unflatten(x):
        for k, name in enumerate(names):
            params[name][...] = x[cuts[k]:cuts[k + 1]].reshape(params[name].shape)

    def f(x):
        unflatten(x)
        loss, grads = model.loss_and_grad(params, **data)
        return float(loss), np.concatenate([np.asarray(grads[k], np.float64).ravel()
                                            for k in names])
    return f, x0, unflatten


def minimize_lbfgs(trainer, bar):
    """Run L-BFGS-B for ``trainer`` (a ``driver._Trainer``), writing its history."""
    from scipy.optimize import minimize
    if not callable(getattr(trainer.model, "loss_and_grad", None)):
        raise TypeError(f"optimizer 'lbfgs' needs the model's loss_and_grad; "
                        f"{type(trainer.model).__name__} has none")
    f, x0, unflatten = flat_objective(trainer.model, trainer.params, trainer.data)
    history, clock, accepted = trainer.history, [time.perf_counter()], [x0]

    def callback(intermediate_result):
        accepted[0] = intermediate_result.x.copy()
        unflatten(accepted[0])
        now = time.perf_counter()
        epoch = len(history) + 1
        history.record(epoch, intermediate_result.fun, float("nan"), now - clock[0])
        clock[0] = now
        stop = trainer._measure(epoch)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(trainer._postfix(), refresh=False)
        if stop:
            raise StopIteration    # SciPy ends the run and returns the current point

    options = {"maxiter": trainer.epochs, "gtol": trainer.opt.tol, "ftol": LBFGS_FTOL,
               "maxls": MAX_LINE_SEARCH}
    try:
        with np.errstate(all="ignore"):   # a line-search probe may overflow; SciPy backtracks
            result = minimize(f, x0, jac=True, method="L-BFGS-B", callback=callback,
                              options=options)
    finally:   # on Ctrl-C too: the params are an iterate, never a line-search probe
        unflatten(accepted[0])
    unflatten(result.x)
    history.message = str(result.message)
    history.n_evals = int(result.nfev)
    if history.stop_reason == "completed" and result.success and len(history) < trainer.epochs:
        history.stop_reason = "converged"
    return result

"""The record of one training run: per-epoch losses, metrics and rates, and the trained params.

Modelled on what users of Keras and skorch expect: a dict of per-epoch lists
(``to_dict``, like Keras' ``History.history``), indexing by epoch and key
(``hist[-1]["loss"]``, ``hist[:, "loss"]``, like skorch), a per-epoch table
(``print(hist)``, or HTML in Jupyter) and ``plot()``.
"""
import html
import math
import sys

import numpy as np


class History:
    """Per-epoch losses and metrics of a run, and its trained params.

    Attributes: ``params`` (name -> array: the trained params, or the best ones when
    early stopping restored them), ``loss`` (mean training batch loss per epoch),
    ``lr`` (rate per epoch), ``metrics`` (name -> per-epoch list; NaN where not
    measured), ``epochs`` (1-based epoch numbers), ``dur`` (seconds per epoch),
    ``time`` (total seconds), ``diverged``, ``stopped_epoch`` (the epoch training
    stopped at early, else None), ``best_epoch``, ``stop_reason`` ("completed",
    "converged" (L-BFGS met its tolerance), "early_stopping", "diverged",
    "interrupted"), ``message`` and ``n_evals`` (L-BFGS: SciPy's message and the number
    of loss evaluations; else None). With L-BFGS each row is an iteration and ``lr`` is
    NaN (the line search picks the step).
    """

    def __init__(self):
        self.params = {}
        self.loss, self.lr, self.epochs, self.dur = [], [], [], []
        self.metrics = {}
        self.time = 0.0
        self.diverged = False
        self.stopped_epoch = None
        self.best_epoch = None
        self.stop_reason = "completed"
        self.message = None
        self.n_evals = None

    # -- recording ----------------------------------------------------------------------
    def record(self, epoch, loss, lr, dur, metrics=None):
        """Append one epoch (1-based); metrics not given this epoch are NaN."""
        self.epochs.append(epoch)
        self.loss.append(float(loss))
        self.lr.append(float(lr))
        self.dur.append(float(dur))
        metrics = metrics or {}
        for name in set(self.metrics) | set(metrics):
            column = self.metrics.setdefault(name, [math.nan] * (len(self.epochs) - 1))
            column.append(float(metrics.get(name, math.nan)))

    def record_epochs(self, first, losses, lrs, dur):
        """Append epochs ``first`` .. ``first + len(losses) - 1`` (1-based) at once, each
        ``dur`` seconds long, with no metrics (NaN): what ``record`` does per epoch, in
        one step for a chunk of a fast run (per epoch it cost ~5 us each, after a run)."""
        k = len(losses)
        self.epochs.extend(range(first, first + k))
        self.loss.extend(np.asarray(losses, dtype=np.float64).tolist())
        self.lr.extend(np.asarray(lrs, dtype=np.float64).tolist())
        self.dur.extend([float(dur)] * k)
        for column in self.metrics.values():
            column.extend([math.nan] * k)

    def set_metrics(self, metrics):
        """Fill in metrics for the latest epoch (measured after it was recorded)."""
        for name, value in metrics.items():
            column = self.metrics.setdefault(name, [math.nan] * len(self.epochs))
            column[-1] = float(value)

    # -- access -------------------------------------------------------------------------
    @property
    def n_epochs(self):
        return len(self.epochs)

    def __len__(self):
        return len(self.epochs)

    def columns(self):
        """The per-epoch column names, in display order."""
        return ["epoch", "loss"] + list(self.metrics) + ["lr", "dur"]

    def column(self, key):
        table = {"epoch": self.epochs, "loss": self.loss, "lr": self.lr, "dur": self.dur,
                 **self.metrics}
        if key not in table:
            raise KeyError(f"history has no column {key!r}; columns: {self.columns()}")
        return table[key]

    def row(self, i):
        return {key: self.column(key)[i] for key in self.columns()}

    def __getitem__(self, index):
        """``hist[i]`` -> dict of epoch i; ``hist["loss"]`` -> list;
        ``hist[i, "loss"]`` or ``hist[:, "loss"]`` -> value(s)."""
        if isinstance(index, str):
            return list(self.column(index))
        if isinstance(index, tuple):
            rows, key = index
            return self.column(key)[rows]
        if isinstance(index, slice):
            return [self.row(i) for i in range(len(self))[index]]
        return self.row(range(len(self))[index])

    def __iter__(self):
        return (self.row(i) for i in range(len(self)))

    def to_dict(self):
        """Column name -> per-epoch list (copies), like Keras' ``History.history``."""
        return {key: list(self.column(key)) for key in self.columns()}

    # -- display ------------------------------------------------------------------------
    def summary(self):
        status = {"completed": "completed",
                  "converged": f"converged ({self.message})" if self.message else "converged",
                  "early_stopping": f"early stop at epoch "
                  f"{self.stopped_epoch} (best epoch {self.best_epoch})",
                  "diverged": f"DIVERGED at epoch {self.stopped_epoch}",
                  "interrupted": f"interrupted in epoch {self.stopped_epoch}"}[self.stop_reason]
        return f"History: {len(self)} epochs in {self.time:.3g} s, {status}"

    def _rows_shown(self, limit=12):
        n = len(self)
        if n <= limit:
            return list(range(n)), False
        half = limit // 2
        return list(range(half)) + list(range(n - half, n)), True

    def __repr__(self):
        cols = self.columns()
        lines = [self.summary(), "  ".join(f"{c:>10}" for c in cols)]
        shown, cut = self._rows_shown()
        for j, i in enumerate(shown):
            if cut and j == len(shown) // 2:
                lines.append(f"{'...':>10}")
            lines.append("  ".join(f"{_fmt(self.column(c)[i]):>10}" for c in cols))
        return "\n".join(lines)

    def _repr_html_(self):
        cols = self.columns()
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = []
        shown, cut = self._rows_shown(20)
        for j, i in enumerate(shown):
            if cut and j == len(shown) // 2:
                body.append(f"<tr><td colspan='{len(cols)}'>...</td></tr>")
            cells = "".join(f"<td>{html.escape(_fmt(self.column(c)[i]))}</td>" for c in cols)
            body.append(f"<tr>{cells}</tr>")
        return (f"<p>{html.escape(self.summary())}</p><table><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>")

    def plot(self, ax=None):
        """Loss curves (training and validation) and, when measured, accuracy curves.

        Returns the matplotlib figure. Uses pyplot only if the caller already imported
        it, so it works headless (no display, no backend choice) in scripts and CI.
        """
        fig, axes = _figure(ax, 2 if self._accuracy_keys() else 1)
        axes[0].plot(self.epochs, self.loss, label="loss")
        if "val_loss" in self.metrics:
            axes[0].plot(self.epochs, self.metrics["val_loss"], label="val_loss")
        axes[0].set_xlabel("epoch")
        axes[0].set_ylabel("loss")
        axes[0].legend()
        if len(axes) > 1:
            for key in self._accuracy_keys():
                axes[1].plot(self.epochs, self.metrics[key], label=key)
            axes[1].set_xlabel("epoch")
            axes[1].set_ylabel("accuracy")
            axes[1].legend()
        return fig

    def _accuracy_keys(self):
        return [k for k in self.metrics if k.endswith("accuracy")]


def _figure(ax, n_panels):
    if ax is not None:
        axes = list(ax) if isinstance(ax, (list, tuple)) else [ax]
        return axes[0].figure, axes
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, n_panels, figsize=(5 * n_panels, 3.5), squeeze=False)
        return fig, list(axes[0])
    from matplotlib.figure import Figure  # no pyplot: no backend, safe without a display
    fig = Figure(figsize=(5 * n_panels, 3.5))
    return fig, [fig.add_subplot(1, n_panels, i + 1) for i in range(n_panels)]


def _fmt(value):
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return f"{value:.4g}"

"""The result of ``sweep``: one History per grid point, a table, the best run, one plot.

A run that raised (anything but divergence, which ``fit`` reports in its History) is a
:class:`FailedRun`: an empty History carrying the error, so the result still has one
entry per grid point in grid order and the other runs are kept.
"""
import html
import math

from symgrad.train.history import History, _figure, _fmt

# Metrics where bigger is better (chosen by name in ``best``); everything else minimises.
MAXIMISED = ("accuracy", "acc", "auc", "r2", "f1", "precision", "recall", "score")


class FailedRun(History):
    """A grid point whose run raised: no epochs, ``error`` holds the exception's text."""

    def __init__(self, settings, error):
        super().__init__()
        self.settings, self.error = dict(settings), str(error)
        self.stop_reason = "failed"

    def summary(self):
        return f"History: FAILED ({self.error})"


def status(run):
    if isinstance(run, FailedRun):
        return "failed"
    return "diverged" if run.diverged else run.stop_reason


class SweepResult:
    """Histories of a sweep, in grid order (``res[k]``, ``len(res)``, ``list(res)``).

    Each History has ``.settings``: the grid point it was trained with. ``best(metric)``
    picks a run, ``table()`` / ``to_pandas()`` list the final values of every run, and
    ``plot()`` draws every loss curve in one figure.
    """

    def __init__(self, runs, keys, time=0.0, where="in-process"):
        self.runs, self.keys, self.time, self.where = list(runs), list(keys), time, where

    # -- the runs -----------------------------------------------------------------------
    def __len__(self):
        return len(self.runs)

    def __iter__(self):
        return iter(self.runs)

    def __getitem__(self, index):
        """``res[k]`` -> the k-th run's History; ``res[a:b]`` -> a list of them."""
        return self.runs[index]

    @property
    def settings(self):
        return [dict(run.settings) for run in self.runs]

    @property
    def failed(self):
        return [run for run in self.runs if isinstance(run, FailedRun)]

    @property
    def diverged(self):
        return [run for run in self.runs if run.diverged]

    # -- choosing ---------------------------------------------------------------------------
    def best(self, metric=None, mode=None):
        """The History whose final ``metric`` is best: lowest for losses, highest for
        accuracy-like names (``mode="min"``/``"max"`` to say). Default metric: "val_loss"
        when the runs were validated, else "loss". Diverged and failed runs are not
        candidates; with early stopping the value of the best epoch counts."""
        if metric is None:
            metric = "val_loss" if any("val_loss" in r.metrics for r in self.runs) else "loss"
        mode = mode or ("max" if metric.split("_")[-1] in MAXIMISED else "min")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        scored = [(final_value(run, metric), k) for k, run in enumerate(self.runs)
                  if status(run) not in ("failed", "diverged")]
        scored = [(v, k) for v, k in scored if not math.isnan(v)]
        if not scored:
            known = sorted({c for r in self.runs if len(r) for c in r.columns()})
            raise ValueError(f"no finished run has a value for metric {metric!r}; "
                             f"the runs record {known}")
        pick = min(scored) if mode == "min" else max(scored)
        return self.runs[pick[1]]

    # -- tables -----------------------------------------------------------------------------
    def table(self):
        """One dict per run: its settings, final loss and metrics, epochs, status, time."""
        rows = []
        for run in self.runs:
            row = dict(run.settings)
            row["loss"] = final_value(run, "loss")
            for name in run.metrics:
                row[name] = final_value(run, name)
            row.update(epochs=len(run), status=status(run), time=run.time)
            if isinstance(run, FailedRun):
                row["error"] = run.error
            elif run.diverged:
                row["error"] = (f"the loss became non-finite in epoch {run.stopped_epoch}; "
                                f"the params are those after epoch {run.stopped_epoch - 1}")
            rows.append(row)
        return rows

    def to_pandas(self):
        """``table()`` as a pandas DataFrame (pandas is optional)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("SweepResult.to_pandas needs pandas (pip install pandas); "
                              "table() gives the same rows as dicts") from None
        return pd.DataFrame(self.table())

    def _columns(self):
        rows = self.table()
        cols = list(dict.fromkeys(c for row in rows for c in row if c != "error"))
        return rows, cols

    def __repr__(self):
        rows, cols = self._columns()
        lines = [f"SweepResult: {len(self)} runs in {self.time:.3g} s ({self.where}); "
                 f"{len(self.diverged)} diverged, {len(self.failed)} failed",
                 "  ".join(f"{c:>10}" for c in cols)]
        for row in rows:
            lines.append("  ".join(f"{_cell(row.get(c)):>10}" for c in cols))
        return "\n".join(lines)

    def _repr_html_(self):
        rows, cols = self._columns()
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(row.get(c)))}</td>"
                                        for c in cols) + "</tr>" for row in rows)
        return (f"<p>{html.escape(repr(self).splitlines()[0])}</p><table><thead><tr>{head}"
                f"</tr></thead><tbody>{body}</tbody></table>")

    # -- the picture ----------------------------------------------------------------------------
    def plot(self, metric="loss", ax=None, logy=None):
        """Every run's ``metric`` curve (default the training loss) in one axes, labelled by
        its settings (more than 10 runs: colours along a colormap, in grid order);
        diverged runs dashed; log scale for positive losses. Returns the matplotlib
        figure (headless-safe, as ``History.plot``)."""
        fig, axes = _figure(ax, 1)
        axis = axes[0]
        shown = [r for r in self.runs if len(r) and (metric == "loss" or metric in r.metrics)]
        colours = _colours(len(shown))
        finite = []
        for run, colour in zip(shown, colours):
            values = run.column(metric)
            finite += [v for v in values if math.isfinite(v)]
            axis.plot(run.epochs, values, label=label(run.settings), color=colour,
                      linestyle="--" if run.diverged else "-")
        if logy if logy is not None else (finite and min(finite) > 0 and metric.endswith("loss")):
            axis.set_yscale("log")
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.set_title(f"{metric}, {len(shown)} runs")
        if shown and len(shown) <= 30:
            outside = len(shown) > 6
            axis.legend(fontsize="small", loc="upper left" if outside else "best",
                        bbox_to_anchor=(1.02, 1.0) if outside else None,
                        ncol=2 if len(shown) > 15 else 1)
        return fig


def _colours(n):
    """The default cycle for up to 10 curves; beyond, evenly spaced along viridis."""
    if n <= 10:
        return [f"C{k}" for k in range(n)]
    from matplotlib import colormaps
    cmap = colormaps["viridis"]
    return [cmap(k / max(n - 1, 1)) for k in range(n)]


def final_value(run, metric):
    """The run's value of ``metric`` for the params it holds: the best epoch's when early
    stopping stopped it, else the last measured one (NaN if never measured)."""
    if not len(run):
        return math.nan
    values = run.loss if metric == "loss" else run.metrics.get(metric)
    if values is None:
        return math.nan
    if run.stop_reason == "early_stopping" and run.best_epoch in run.epochs:
        return float(values[run.epochs.index(run.best_epoch)])
    measured = [v for v in values if not math.isnan(v)]
    return float(measured[-1]) if measured else math.nan


def label(settings):
    return ", ".join(f"{k}={_cell(v)}" for k, v in settings.items())


def _cell(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return _fmt(value)
    return str(value)

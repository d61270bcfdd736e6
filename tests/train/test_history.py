"""History: Keras-style lists, skorch-style indexing, tables and plots."""
import math

import numpy as np
import pytest

from symgrad.train import History, fit


@pytest.fixture
def hist(softmax_small, make_softmax):
    model, params, data = softmax_small
    _, _, val = make_softmax(n=30, seed=9)
    return fit(model, params, data, lr=0.5, epochs=15, validation_data=val, progress=False)


def test_lists_and_indexing(hist):
    assert hist.epochs == list(range(1, 16)) and len(hist) == 15 and hist.n_epochs == 15
    assert hist[-1]["loss"] == hist.loss[-1]
    assert hist[0]["epoch"] == 1 and hist[0]["lr"] == 0.5
    assert hist["val_loss"] == hist.metrics["val_loss"]
    assert hist[:, "loss"] == hist.loss and hist[-1, "accuracy"] == hist.metrics["accuracy"][-1]
    assert [row["epoch"] for row in hist[-2:]] == [14, 15]
    with pytest.raises(KeyError, match="no column 'f1'"):
        hist["f1"]
    assert hist.time > 0 and len(hist.dur) == 15


def test_to_dict(hist):
    d = hist.to_dict()
    assert list(d) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "dur"]
    d["loss"].append(0.0)  # a copy
    assert len(hist.loss) == 15


def test_text_and_html_tables(hist):
    text = repr(hist)
    assert text.startswith("History: 15 epochs") and "completed" in text
    assert "val_loss" in text and "..." in text  # long runs show head and tail
    html = hist._repr_html_()
    assert "<table>" in html and "<th>val_accuracy</th>" in html


def test_unmeasured_metrics_show_as_nan():
    h = History()
    h.record(1, 0.5, 0.1, 0.01)
    h.record(2, 0.4, 0.1, 0.01, {"val_loss": 0.45})
    assert math.isnan(h.metrics["val_loss"][0]) and h.metrics["val_loss"][1] == 0.45
    first_row = repr(h).splitlines()[2].split()
    assert first_row[0] == "1" and first_row[2] == "-"  # epoch, loss, val_loss


def test_plot_returns_a_figure_headless(hist):
    fig = hist.plot()
    assert len(fig.axes) == 2  # loss, accuracy
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["loss", "val_loss"]
    np.testing.assert_array_equal(fig.axes[0].lines[0].get_ydata(), hist.loss)


def test_record_epochs_is_record_per_epoch():
    one, many = History(), History()
    for h in (one, many):
        h.record(1, 0.9, 0.1, 0.02, {"accuracy": 0.5})
    for i, (loss, lr) in enumerate([(0.8, 0.1), (0.7, 0.05), (0.6, 0.05)]):
        one.record(2 + i, loss, lr, 0.01)
    many.record_epochs(2, np.array([0.8, 0.7, 0.6]), np.array([0.1, 0.05, 0.05]), 0.01)
    a, b = many.to_dict(), one.to_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], nan_ok=True), key
    assert many.epochs == [1, 2, 3, 4] and all(type(v) is float for v in many.loss)
    assert math.isnan(many.metrics["accuracy"][-1])

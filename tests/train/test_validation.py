"""fit checks every argument before any work; each error names the argument or tensor."""
import numpy as np
import pytest

import symgrad as sg
from symgrad.train import fit


class _NoTraining:
    """Fails the test if fit gets as far as training."""

    def __init__(self, model):
        self.model = model
        self.loss_node, self.param_nodes = model.loss_node, model.param_nodes
        self.dtype, self.batch_dim = model.dtype, model.batch_dim

    def run_epochs(self, *args, **kwargs):
        raise AssertionError("fit started training before rejecting its arguments")


@pytest.fixture
def setup(softmax_small):
    model, params, data = softmax_small
    return _NoTraining(model), params, data


def _fit(setup, **overrides):
    model, params, data = setup
    kw = dict(params=params, data=data, lr=0.1, epochs=2, progress=False)
    kw.update(overrides)
    return fit(model, **kw)


@pytest.mark.parametrize("lr", [0, -0.1, float("nan"), float("inf"), "0.1", True])
def test_bad_lr(setup, lr):
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        _fit(setup, lr=lr)


def test_missing_lr(setup):
    with pytest.raises(ValueError, match="lr is required"):
        _fit(setup, lr=None)


@pytest.mark.parametrize("epochs", [0, -1, 2.5, "3", None, True])
def test_bad_epochs(setup, epochs):
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        _fit(setup, epochs=epochs)


@pytest.mark.parametrize("batch_size", [0, -4, 61, 8.0, "8"])
def test_bad_batch_size(setup, batch_size):
    with pytest.raises(ValueError, match=r"batch_size \(dim 'N' has 60 rows\)"):
        _fit(setup, batch_size=batch_size)


def test_missing_param(setup):
    model, params, data = setup
    with pytest.raises(sg.DataError, match=r"params is missing \['b'\]"):
        _fit(setup, params={"W": params["W"]})


def test_unknown_param(setup):
    model, params, data = setup
    with pytest.raises(sg.DataError, match=r"unknown names \['V'\]"):
        _fit(setup, params={**params, "V": np.zeros(3)})


def test_param_wrong_shape(setup):
    model, params, data = setup
    with pytest.raises(sg.DimError, match="'W'"):
        _fit(setup, params={**params, "W": np.zeros((5, 4))})


def test_param_wrong_dtype(setup):
    model, params, data = setup
    with pytest.raises(sg.DataError, match="param 'b' must be numeric"):
        _fit(setup, params={**params, "b": np.array(["a", "b", "c"])})


def test_param_not_finite(setup):
    model, params, data = setup
    W = params["W"].copy()
    W[1, 2] = np.inf
    with pytest.raises(sg.DataError, match=r"param 'W' contains NaN or inf \(first at index \(.*1\W.*2\W.*\)"):
        _fit(setup, params={**params, "W": W})


def test_missing_data_tensor(setup):
    model, params, data = setup
    with pytest.raises(sg.DataError, match="missing tensor 'y'"):
        _fit(setup, data={"X": data["X"]})


def test_unknown_data_tensor(setup):
    model, params, data = setup
    with pytest.raises(sg.DataError, match="unknown data 'Z'"):
        _fit(setup, data={**data, "Z": data["X"]})


def test_param_passed_as_data(setup):
    model, params, data = setup
    with pytest.raises(sg.DataError, match=r"data contains \['W'\], which are params"):
        _fit(setup, data={**data, "W": params["W"]})


def test_nan_in_data(setup):
    model, params, data = setup
    X = data["X"].copy()
    X[7, 1] = np.nan
    with pytest.raises(sg.DataError, match=r"tensor 'X' contains NaN or inf \(first at index \(.*7\W.*1\W.*\)"):
        _fit(setup, data={**data, "X": X})


def test_data_rows_disagree(setup):
    model, params, data = setup
    with pytest.raises(sg.DimError, match="dim 'N'"):
        _fit(setup, data={**data, "y": data["y"][:-1]})


def test_labels_out_of_range(setup):
    model, params, data = setup
    with pytest.raises(sg.DataError, match="labels 'y' contain 3"):
        _fit(setup, data={**data, "y": np.where(data["y"] == 0, 3, data["y"])})


def test_bad_validation_data_is_named(setup):
    model, params, data = setup
    X = data["X"].copy()
    X[0, 0] = np.inf
    with pytest.raises(sg.DataError, match="validation_data: tensor 'X' contains NaN"):
        _fit(setup, validation_data={**data, "X": X})


@pytest.mark.parametrize("momentum", [-0.1, 1.0, 2, "0.9"])
def test_bad_momentum(setup, momentum):
    with pytest.raises(ValueError, match="momentum must be a number in"):
        _fit(setup, momentum=momentum)


def test_bad_on_divergence(setup):
    with pytest.raises(ValueError, match="on_divergence must be one of"):
        _fit(setup, on_divergence="ignore")


def test_bad_chunk_epochs(setup):
    with pytest.raises(ValueError, match="chunk_epochs must be an int >= 1"):
        _fit(setup, chunk_epochs=0)


def test_bad_early_stopping(setup):
    with pytest.raises(ValueError, match="early_stopping patience"):
        _fit(setup, early_stopping=0)
    with pytest.raises(ValueError, match="no validation_data"):
        _fit(setup, early_stopping={"patience": 2, "monitor": "val_loss"})


def test_bad_metric(setup):
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        _fit(setup, metrics=("f1",))


def test_not_a_model():
    with pytest.raises(TypeError, match="fit needs a compiled model"):
        fit(object(), {}, {}, lr=0.1)


def test_loss_node_is_checked_before_compiling(make_softmax, monkeypatch):
    # Bad arguments must fail before the (possibly slow) compilation starts.
    import symgrad.train.driver as fit_module
    L, params, data = make_softmax()

    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before checking")
    monkeypatch.setattr(fit_module, "compile_loss", no_compile)
    with pytest.raises(ValueError, match="batch_size"):
        fit(L, params, data, lr=0.1, batch_size=1000)

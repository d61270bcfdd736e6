"""The repeat-call path of compiled calls checks every value the full path checks."""
import pickle

import numpy as np
import pytest

import symgrad as sg
from symgrad.codegen import boundary
from symgrad.errors import DataError, DimError


@pytest.fixture(scope="module")
def softmax():
    X = sg.tensor("X", ("N", "D"))
    y = sg.tensor("y", ("N",), dtype=int)
    W, b = sg.param("W", ("D", "C")), sg.param("b", ("C",))
    return sg.compile(sg.cross_entropy(X @ W + b, y) + 0.01 * sg.l2(W), params=[W, b])


def _problem(seed=0, n=12):
    rng = np.random.default_rng(seed)
    params = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    return params, {"X": rng.standard_normal((n, 3)), "y": rng.integers(0, 4, n)}


def test_a_repeat_call_takes_the_repeat_path_and_agrees(softmax):
    params, data = _problem()
    first = softmax.loss_and_grad(params, **data)
    layout = softmax._layouts[("loss_and_grad", (softmax.loss_node,))]
    assert boundary.matching(layout, params, data) is not None
    again = softmax.loss_and_grad(params, **data)
    assert first[0] == again[0]
    fresh_params, fresh_data = _problem(seed=1)       # new arrays, same layout
    assert boundary.matching(layout, fresh_params, fresh_data) is not None
    assert softmax.loss(fresh_params, **fresh_data) != first[0]


@pytest.mark.parametrize("where, bad, message", [
    ("X", np.nan, r"tensor 'X' contains NaN or inf \(first at index \(5, 2\)\)"),
    ("X", -np.inf, r"tensor 'X' contains NaN or inf \(first at index \(5, 2\)\)"),
    ("W", np.inf, r"param 'W' contains NaN or inf"),
    ("y", 4, r"labels 'y' contain 4, outside the 4 classes of dim 'C'"),
    ("y", -1, r"labels 'y' contain -1"),
])
def test_a_bad_value_in_a_repeat_call_is_the_full_paths_error(softmax, where, bad, message):
    params, data = _problem()
    softmax.loss(params, **data)
    softmax.loss(params, **data)
    arrays = params if where == "W" else data
    arrays[where][(5, 2) if where == "X" else (1, 1) if where == "W" else 5] = bad
    with pytest.raises(DataError, match=message):
        softmax.loss(params, **data)


def test_a_new_layout_is_checked_in_full(softmax):
    params, data = _problem()
    softmax.loss(params, **data)
    with pytest.raises(DimError, match="dim 'D'"):
        softmax.loss(params, X=np.ones((12, 5)), y=data["y"])
    with pytest.raises(DataError, match="unknown data 'z'"):
        softmax.loss(params, **data, z=np.ones(3))
    short = {"X": data["X"][:7], "y": data["y"][:7]}
    assert np.isfinite(softmax.loss(params, **short))
    strided = np.asfortranarray(data["X"])
    assert softmax.loss(params, X=strided, y=data["y"]) == softmax.loss(params, **data)


def test_read_only_data_is_read_through_the_kept_view(softmax):
    params, data = _problem()
    buffer = data["X"].copy()
    X = buffer.view()
    X.flags.writeable = False
    before = softmax.loss(params, X=X, y=data["y"])
    assert softmax.loss(params, X=X, y=data["y"]) == before
    buffer[0, 0] += 1.0                       # the read-only array changes underneath
    after = softmax.loss(params, X=X, y=data["y"])
    assert after != before
    assert after == softmax.loss(params, X=buffer.copy(), y=data["y"])
    buffer[3, 1] = np.nan
    with pytest.raises(DataError, match=r"tensor 'X' contains NaN or inf \(first at index \(3, 1\)\)"):
        softmax.loss(params, X=X, y=data["y"])


def test_a_read_only_param_is_never_trained_in_place(softmax):
    params, data = _problem()
    lrs, orders = np.full(2, 0.1), np.tile(np.arange(12), (2, 1))
    trained = {k: v.copy() for k, v in params.items()}
    softmax.run_epochs(trained, data, orders, lrs, 4)
    softmax.run_epochs({k: v.copy() for k, v in params.items()}, data, orders, lrs, 4)
    frozen = {k: v.copy() for k, v in params.items()}
    originals = dict(frozen)
    for v in frozen.values():
        v.flags.writeable = False
    softmax.run_epochs(frozen, data, orders, lrs, 4)
    assert all(np.array_equal(originals[k], params[k]) for k in params)   # untouched
    assert all(np.array_equal(frozen[k], trained[k]) for k in params)     # replaced


def test_run_epochs_checks_orders_on_every_call(softmax):
    params, data = _problem()
    orders, lrs = np.tile(np.arange(12), (2, 1)), np.full(2, 0.1)
    softmax.run_epochs(params, data, orders, lrs, 4)
    orders[1, 3] = 12
    with pytest.raises(DataError, match="orders must index rows 0..11"):
        softmax.run_epochs(params, data, orders, lrs, 4)


def test_layouts_do_not_travel_with_a_pickled_model(softmax):
    params, data = _problem()
    softmax.loss(params, **data)
    clone = pickle.loads(pickle.dumps(softmax))
    assert clone._layouts == {}
    assert clone.loss(params, **data) == softmax.loss(params, **data)

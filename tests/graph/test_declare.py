"""Declarations: named dims, shape rules, and errors that name the tensors and dims at fault."""
import numpy as np
import pytest

import symgrad as sg
from symgrad.errors import DataError, DeclarationError, DimError


def test_tensor_param_and_dims():
    X = sg.tensor("X", ("N", "d"))
    w = sg.param("w", ("d",))
    z = X @ w
    assert z.dims == ("N",) and X.op == "input" and w.op == "param"
    assert (X.T).dims == ("d", "N")
    assert sg.sum(X, axis="d").dims == ("N",) and sg.mean(X, axis=0).dims == ("d",)
    assert sg.softmax(X).dims == X.dims and sg.logsumexp(X, axis=-1).dims == ("N",)
    assert sg.tensor("y", ("N",), dtype=int).dtype == "int"


def test_broadcast_by_name():
    Z, b = sg.tensor("Z", ("N", "C")), sg.param("b", ("C",))
    assert (Z + b).dims == ("N", "C") and (2.0 * Z - 1).dims == ("N", "C")
    assert (b + Z).dims == ("N", "C")                              # NumPy agrees here
    assert (Z / sg.sum(Z, axis="C")).dims == ("N", "C")           # (N, C) / (N,)
    X, M = sg.tensor("X", ("N", "D")), sg.param("M", ("K", "D"))
    assert (X - M).dims == ("N", "D", "K")                          # first operand, then new
    assert (Z.T + Z).dims == ("C", "N")


def test_disjoint_dims_give_the_outer_product():
    u, v = sg.tensor("u", ("N",)), sg.tensor("v", ("H",))
    out = sg.evaluate(u * v, {"u": [1.0, 2.0], "v": [1.0, 10.0, 100.0]})
    np.testing.assert_array_equal(out, np.outer([1.0, 2.0], [1.0, 10.0, 100.0]))


def test_aligned_by_name_not_position():
    Z = sg.tensor("Z", ("N", "C"))
    r = np.random.default_rng(0).normal(size=(4, 3))
    got = sg.evaluate(Z - sg.mean(Z, axis="C"), {"Z": r})
    np.testing.assert_allclose(got, r - r.mean(axis=1, keepdims=True))
    got = sg.evaluate(Z.T * Z, {"Z": r})                             # same element, by name
    np.testing.assert_allclose(got, (r * r).T)


def test_same_dim_name_different_sizes_names_both_tensors():
    Z, b = sg.tensor("Z", ("N", "C")), sg.param("b", ("C",))
    with pytest.raises(DimError, match=r"dim 'C' is 3 in 'Z' but 4 in 'b'"):
        sg.evaluate(Z + b, {"Z": np.ones((2, 3)), "b": np.ones(4)})


def test_matmul_contracted_dims_must_match():
    X, W = sg.tensor("X", ("N", "d")), sg.param("W", ("k", "m"))
    with pytest.raises(DimError, match=r"contracted dims 'd' and 'k' differ"):
        X @ W


@pytest.mark.parametrize("make, match", [
    (lambda: sg.tensor("X", ("N", 3)), "must be a name"),
    (lambda: sg.tensor("", ("N",)), "must not be empty"),
    (lambda: sg.tensor("X", ("N",), dtype=complex), "dtype must be float or int"),
    (lambda: sg.sum(sg.tensor("X", ("N",)), axis="d"), "has no dim 'd'"),
    (lambda: sg.softmax(sg.tensor("X", ("N",)), axis=3), "out of range"),
    (lambda: sg.tensor("X", ("N",)) ** sg.tensor("Y", ("N",)), "exponent must be a number"),
    (lambda: sg.exp(sg.tensor("y", ("N",), dtype=int)), "integer tensor"),
    (lambda: sg.cross_entropy(sg.tensor("s", ("N", "C")), sg.tensor("y", ("M",), dtype=int)),
     r"labels 'y' have dims \('M',\).*need dims \('N',\)"),
    (lambda: sg.tensor("X", ("N",)) + np.ones(3), "declare them with sg.tensor"),
])
def test_bad_declarations(make, match):
    with pytest.raises((DimError, DeclarationError), match=match):
        make()


def test_loss_must_be_scalar():
    X, w = sg.tensor("X", ("N", "d")), sg.param("w", ("d",))
    with pytest.raises(DimError, match="must be a scalar"):
        sg.gradients(X @ w, [w])


def test_param_not_in_loss():
    X, w, v = sg.tensor("X", ("N", "d")), sg.param("w", ("d",)), sg.param("v", ("d",))
    with pytest.raises(DeclarationError, match="'v' does not appear"):
        sg.derive(sg.sum(X @ w), v)


@pytest.mark.parametrize("data, error, match", [
    ({"X": np.ones((3, 2))}, DataError, "missing tensor 't'"),
    ({"X": np.ones((3, 2)), "t": np.ones(3), "typo": 1}, DataError, "unknown data 'typo'"),
    ({"X": np.ones(3), "t": np.ones(3)}, DimError, r"'X' has dims \('N', 'd'\)"),
    ({"X": np.ones((3, 2)), "t": np.ones(4)}, DimError, r"dim 'N' is \d in '\w' but \d in '\w'"),
    ({"X": np.full((3, 2), np.nan), "t": np.ones(3)}, DataError, "'X' contains NaN"),
    ({"X": np.ones((0, 2)), "t": np.ones(0)}, DataError, "size 0"),
])
def test_bind_errors_name_the_tensor_and_dim(data, error, match):
    from symgrad.graph.bind import bind
    X, t, w = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",)), sg.param("w", ("d",))
    loss = sg.sum((t - X @ w) ** 2)
    with pytest.raises(error, match=match):
        bind([loss], {**data, "w": np.ones(2)} if "w" not in data else data)


def test_labels_checked_for_range_and_kind():
    s, y = sg.tensor("s", ("N", "C")), sg.tensor("y", ("N",), dtype=int)
    loss = sg.cross_entropy(s, y)
    with pytest.raises(DataError, match="contain 3, outside the 3 classes"):
        sg.evaluate(loss, {"s": np.zeros((2, 3)), "y": np.array([0, 3])})
    with pytest.raises(DataError, match="non-integer floats"):
        sg.evaluate(loss, {"s": np.zeros((2, 3)), "y": np.array([0.5, 1.0])})


def test_data_is_not_modified_and_readonly_arrays_work():
    X, w = sg.tensor("X", ("N", "d")), sg.param("w", ("d",))
    Xd = np.asfortranarray(np.arange(6.0).reshape(3, 2))
    Xd.setflags(write=False)
    before = Xd.copy()
    out = sg.evaluate(X @ w, {"X": Xd[::1, :], "w": np.ones(2)})
    assert np.array_equal(out, before @ np.ones(2)) and np.array_equal(Xd, before)


def test_named_nodes_and_leaf_names_fixed():
    X = sg.tensor("X", ("N",))
    h = sg.sigmoid(X).named("h")
    assert h.name == "h"
    with pytest.raises(DeclarationError, match="fixed at declaration"):
        X.named("Y")

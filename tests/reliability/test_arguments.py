"""The shared argument checks (symgrad.graph.arguments) agree with the code they guard.

The bad-input corpus (test_bad_input.py, rows from _argument_rows.py) proves each entry
point rejects wrong arguments first; these tests keep the checks' own lists in step.
"""
import numpy as np
import pytest

import symgrad as sg
from symgrad.explain.graphview import GraphView
from symgrad.graph import arguments


def test_graph_suffixes_are_the_ones_the_graph_view_writes(tmp_path, monkeypatch):
    for method in ("to_dot", "to_svg"):
        monkeypatch.setattr(GraphView, method, lambda self, *a: "text")
    monkeypatch.setattr(GraphView, "_draw", lambda self, fmt, dpi=110: b"bytes")
    view = object.__new__(GraphView)
    for suffix in arguments.GRAPH_SUFFIXES:
        assert view.save(tmp_path / f"g{suffix}").exists()
    with pytest.raises(ValueError, match="cannot write"):
        view.save(tmp_path / "g.jpeg")


def test_output_file_problem():
    assert arguments.output_file_problem("x.tex", (".tex",)) is None
    assert arguments.output_file_problem("X.TEX", (".tex",)) is None
    assert "must end in .tex" in arguments.output_file_problem("x.pdf", (".tex",))
    assert "no such directory" in arguments.output_file_problem("/no/such/dir/x.tex", (".tex",))


@pytest.mark.parametrize("value, ok", [(True, True), (np.bool_(False), True), (1, False),
                                       ("True", False), (None, False)])
def test_flags_are_booleans_only(value, ok):
    if ok:
        assert arguments.check_flag(value, "shuffle") is bool(value)
    else:
        with pytest.raises(TypeError, match="shuffle must be True or False"):
            arguments.check_flag(value, "shuffle")


def test_seeds():
    assert arguments.check_seed(None) is None and arguments.check_seed(np.int64(3)) == 3
    rng = np.random.default_rng(0)
    assert arguments.check_seed(rng) is rng
    for bad, exc in ((True, TypeError), (2.0, TypeError), ("1", TypeError), (-3, ValueError)):
        with pytest.raises(exc, match="seed must be None or an int >= 0"):
            arguments.check_seed(bad)


def test_descriptions_are_short_and_name_the_kind():
    assert arguments.describe(np.zeros((2, 3))) == "an array of shape (2, 3)"
    assert arguments.describe(sg.tensor("X", ("N",))) == "node 'X'"
    assert len(arguments.describe("x" * 500)) < 80

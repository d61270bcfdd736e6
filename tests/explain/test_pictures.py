"""Every picture renders (DOT, SVG, PNG) and shows the node names and numbers.

SVG is drawn with matplotlib here (Graphviz is optional), so these tests run on a
fresh machine; one test also checks the Graphviz route when ``dot`` is installed.
"""
import functools

import numpy as np
import pytest

import symgrad as sg
from symgrad.explain.graphview import GraphView, graph_dot, graph_view
from symgrad.explain.render import have_graphviz

pytest.importorskip("matplotlib")


def _backprop_run():
    x, y, z = sg.scalars("x y z")
    return sg.backprop((x + y) * z, {x: -2, y: 5, z: -4})


def _perceptron():
    X, t = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",))
    w = sg.param("w", ("d",))
    L = sg.sum((t - sg.sigmoid(X @ w)) ** 2)
    data = {"X": np.array([[1.0, 2.0], [0.5, -1.0]]), "t": np.array([1.0, 0.0]),
            "w": np.array([0.25, -0.5])}
    return L, w, data


@functools.lru_cache(maxsize=None)
def _views():
    """Built once, on first use (not at collection time)."""
    L, w, data = _perceptron()
    return {
        "backprop": (graph_view(_backprop_run()), ["x", "y", "z", "q", "f"],
                     ["-12", "-4", "upstream", "downstream"]),
        "tensor": (graph_view(L), ["X", "t", "w", "sigma", "delta"], ["N x d"]),
        "tensor+data": (graph_view(L, data), ["X", "w", "sigma"], ["value", "grad", "0.25"]),
        "derivation": (graph_view(sg.derive(L, w), data), ["w", "sigma"],
                       ["sigma_i (1 - sigma_i)", "upstream", "downstream"]),
    }


CASES = ["backprop", "derivation", "tensor", "tensor+data"]


@pytest.mark.parametrize("case", CASES)
def test_dot_text_has_names_and_values(case):
    view, names, values = _views()[case]
    dot = view.to_dot()
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    for text in names + values:
        assert text in dot, (case, text)


@pytest.mark.parametrize("case", CASES)
def test_svg_fallback_renders_names_and_values(case):
    view, names, values = _views()[case]
    svg = view.to_svg(engine="matplotlib")
    assert "<svg" in svg and len(svg) > 1000
    for text in names + values:
        assert text in svg, (case, text)


@pytest.mark.parametrize("case", CASES)
def test_png_renders_and_carries_its_text(case, tmp_path):
    view, names, values = _views()[case]
    png = view.to_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    from PIL import Image  # matplotlib depends on Pillow
    path = tmp_path / "g.png"
    view.save(path)
    with Image.open(path) as img:
        assert img.size[0] > 100 and img.size[1] > 50
        description = img.text["Description"]
    for text in names + values:
        assert text in description, (case, text)


def test_save_by_suffix(tmp_path):
    view = _views()["backprop"][0]
    for suffix in (".dot", ".svg", ".png", ".pdf"):
        path = view.save(tmp_path / f"g{suffix}")
        assert path.stat().st_size > 100
    with pytest.raises(ValueError, match="suffix|use .dot"):
        view.save(tmp_path / "g.jpeg")


def test_jupyter_svg_works_without_graphviz(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)  # as on a machine without dot
    svg = _views()["backprop"][0]._repr_svg_()
    assert svg is not None and "<svg" in svg and "upstream" in svg


@pytest.mark.skipif(not have_graphviz(), reason="Graphviz's dot is not installed")
def test_graphviz_route():
    svg = _views()["backprop"][0].to_svg(engine="graphviz")
    assert "<svg" in svg and "grad" in svg


def test_graph_dot_matches_backprop_numbers():
    dot = graph_dot(_backprop_run())
    assert "value 3" in dot and "grad -4" in dot and "value -12" in dot


def test_user_names_cannot_break_dot():
    X = sg.tensor("X", ("N",))
    w = sg.param("w", ())
    L = sg.sum(X * w).named("L")
    view = GraphView(graph_view(L).nodes, graph_view(L).edges, title='a"b}|{c')
    dot = view.to_dot()
    assert 'label="a\\"b}|{c"' in dot


def test_text_form_lists_nodes_and_edges():
    text = str(_views()["backprop"][0])
    assert "q = x + y | value 3 | grad -4" in text
    assert "z -> f = q z" in text


def test_graph_view_rejects_other_objects():
    with pytest.raises(TypeError, match="graph_view draws"):
        graph_view(42)

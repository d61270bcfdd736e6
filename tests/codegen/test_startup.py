"""Start-up: a cached model is found from its graph alone (codegen/graph_key.py) and a
process that loads and trains it never imports SymPy (ops/_lazy.py)."""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import symgrad as sg
from symgrad.codegen import cache, graph_key
from symgrad.codegen.graph_key import CachedSource
from symgrad.codegen.module import Source
from symgrad.errors import DataError, DimError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = """
import json, sys
import numpy as np
import symgrad as sg
after_import = "sympy" in sys.modules
rng = np.random.default_rng(0)
X = rng.standard_normal((64, 5)); y = rng.integers(0, 3, 64)
Xs = sg.tensor("X", ("N", "D")); ys = sg.tensor("y", ("N",), dtype=int)
W1, b1 = sg.param("W1", ("D", "H")), sg.param("b1", ("H",))
W2, b2 = sg.param("W2", ("H", "C")), sg.param("b2", ("C",))
h = sg.leaky_relu(Xs @ W1 + b1, slope=0.2).named("h")
z = sg.gelu(h) @ W2 + b2
loss = sg.cross_entropy(z, ys) + 1e-3 * sg.l2(W1)
after_declare = "sympy" in sys.modules
fn = sg.compile(loss, params=[W1, b1, W2, b2], outputs=[z])
p = {"W1": 0.3 * rng.standard_normal((5, 7)), "b1": np.zeros(7),
     "W2": 0.3 * rng.standard_normal((7, 3)), "b2": np.zeros(3)}
value = fn.loss(p, X=X, y=y)
grads = fn.grad(p, X=X, y=y)
logits = fn.predict(p, X=X)
losses, done = fn.run_epochs({k: v.copy() for k, v in p.items()}, {"X": X, "y": y}, None,
                             np.full(2, 0.1), 16)
hist = sg.fit(fn, p, {"X": X, "y": y}, epochs=3, lr=0.1, batch_size=16)
print(json.dumps({"after_import": after_import, "after_declare": after_declare,
                  "sympy": "sympy" in sys.modules, "hit": type(fn._src).__name__,
                  "generated": "symgrad.diff.notation" in sys.modules,
                  "value": value, "g": float(grads["W1"].sum()), "z": float(logits.sum()),
                  "losses": [float(v) for v in losses], "path": fn.path}))
"""


def _run(cache_dir):
    env = {**os.environ, cache.ENV_VAR: str(cache_dir), "SYMGRAD_PROGRESS": "0",
           "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_cached_model_runs_without_sympy(tmp_path):
    first = _run(tmp_path)             # a miss: derives and generates (SymPy)
    assert first["hit"] == "Source" and first["sympy"]
    second = _run(tmp_path)
    assert not second["after_import"] and not second["after_declare"]
    assert not second["sympy"], "a cache hit imported SymPy"
    assert second["hit"] == "CachedSource" and not second["generated"]
    assert {k: second[k] for k in ("value", "g", "z", "losses", "path")} == \
        {k: first[k] for k in ("value", "g", "z", "losses", "path")}


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path))
    return tmp_path


def _model(hidden_name="h", dim="H", act=sg.tanh, slope=None, out_name=None):
    X = sg.tensor("X", ("N", "D"))
    y = sg.tensor("y", ("N",), dtype=int)
    W1, b1 = sg.param("W1", ("D", dim)), sg.param("b1", (dim,))
    W2, b2 = sg.param("W2", (dim, "C")), sg.param("b2", ("C",))
    pre = X @ W1 + b1
    h = (act(pre) if slope is None else sg.leaky_relu(pre, slope=slope)).named(hidden_name)
    z = h @ W2 + b2
    if out_name:
        z = z.named(out_name)
    return sg.cross_entropy(z, y) + 1e-2 * sg.l2(W1), [W1, b1, W2, b2], z


def _data(rng):
    p = {"W1": 0.3 * rng.standard_normal((4, 6)), "b1": 0.1 * rng.standard_normal(6),
         "W2": 0.3 * rng.standard_normal((6, 3)), "b2": np.zeros(3)}
    return p, {"X": rng.standard_normal((40, 4)), "y": rng.integers(0, 3, 40)}


def _everything(fn, z, p, data):
    """What a compiled model answers, for comparing a hit with a miss."""
    out = {"loss": fn.loss(p, **data), "grad": fn.grad(p, **data),
           "h": fn.output("h", p, **data), "z": fn.predict(p, X=data["X"]),
           "repr": repr(fn), "source": fn.source, "path": fn.path}
    trained = {k: v.copy() for k, v in p.items()}
    out["epochs"] = fn.run_epochs(trained, data, None, np.full(3, 0.1), 8)
    out["trained"] = trained
    hist = sg.fit(fn, p, data, epochs=2, lr=0.1, batch_size=8, seed=3)
    out["fit"], out["fit_loss"] = hist.params, hist.loss
    with pytest.raises(DataError) as err:
        fn.loss(p, X=data["X"])
    out["error"] = str(err.value)
    with pytest.raises(DimError) as err:
        fn.loss(p, X=data["X"][:, :3], y=data["y"])
    out["dim_error"] = str(err.value)
    return out


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, dict):
            assert x.keys() == y.keys(), k
            for name in x:
                np.testing.assert_array_equal(x[name], y[name], err_msg=f"{k}[{name}]")
        elif isinstance(x, tuple):
            np.testing.assert_array_equal(x[0], y[0], err_msg=k)
            assert x[1] == y[1], k
        elif isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=k)
        else:
            assert x == y, k


def test_hit_answers_as_the_miss(fresh_cache, rng):
    loss, params, z = _model(out_name="logits")
    miss = sg.compile(loss, params, outputs=[z])
    assert isinstance(miss._src, Source)
    assert len(list(fresh_cache.glob("sgkey_*.json"))) == 1
    loss2, params2, z2 = _model(out_name="logits")       # the same graph, new nodes
    hit = sg.compile(loss2, params2, outputs=[z2])
    assert isinstance(hit._src, CachedSource)
    p, data = _data(rng)
    _same(_everything(miss, z, p, data), _everything(hit, z2, p, data))
    assert hit.output("logits", p, **data).shape == (40, 3)
    # an output compiled later (not known at compile time) works after a hit too
    np.testing.assert_array_equal(hit.output(loss2.inputs[0], p, **data),
                                  miss.output(loss.inputs[0], p, **data))
    assert hit.source == open(hit.path, encoding="utf-8").read()
    out = fresh_cache / "exported.py"
    assert open(hit.export(out), encoding="utf-8").read() == miss.source


def test_hit_pickles_and_trains_in_place(fresh_cache, rng):
    loss, params, _ = _model()
    sg.compile(loss, params)
    fn = sg.compile(*_model()[:2])
    assert isinstance(fn._src, CachedSource)
    again = pickle.loads(pickle.dumps(fn))
    p, data = _data(rng)
    assert again.loss(p, **data) == fn.loss(p, **data)
    a, b = {k: v.copy() for k, v in p.items()}, {k: v.copy() for k, v in p.items()}
    fn.run_epochs(a, data, None, np.full(2, 0.1), None, momentum=0.5)
    again.run_epochs(b, data, None, np.full(2, 0.1), None, momentum=0.5)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize("change", ["dim", "op", "attr", "name", "dtype", "hessian",
                                    "params", "outputs", "version"])
def test_a_changed_graph_misses(fresh_cache, change, monkeypatch):
    base = dict(slope=0.1)
    loss, params, z = _model(**base)
    key = graph_key.key(loss, params, np.dtype(np.float64), [], False)
    assert key == graph_key.key(*_model(**base)[:2], np.dtype(np.float64), [], False)
    sg.compile(loss, params)
    kw, dtype, hessian, outputs = dict(base), np.float64, False, []
    if change == "dim":
        kw["dim"] = "K"
    elif change == "op":
        kw = {"act": sg.sigmoid}
    elif change == "attr":
        kw["slope"] = 0.2
    elif change == "name":
        kw["hidden_name"] = "hidden"
    loss2, params2, z2 = _model(**kw)
    if change == "dtype":
        dtype = np.float32
    elif change == "hessian":
        hessian = True
    elif change == "params":
        params2 = params2[::-1]
    elif change == "outputs":
        outputs = [z2]
    elif change == "version":
        monkeypatch.setattr(graph_key, "_version", ["another generator"])
    assert graph_key.key(loss2, params2, np.dtype(dtype), outputs, hessian) != key
    if change != "hessian":       # (second order is checked in test_hessian_after_a_hit)
        fn = sg.compile(loss2, params2, dtype=dtype, outputs=outputs, hessian=hessian)
        assert isinstance(fn._src, Source)


def test_unknown_ops_and_attrs_are_not_keyed(fresh_cache):
    loss, params, _ = _model()
    loss.attrs["odd"] = object()
    assert graph_key.key(loss, params, np.dtype(np.float64), [], False) is None
    del loss.attrs["odd"]
    assert graph_key.key(loss, params, np.dtype(np.float64), [], False) is not None


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_module", "no_module",
                                    "edited_module", "bad_index"])
def test_a_damaged_index_falls_back(fresh_cache, rng, damage):
    loss, params, _ = _model()
    first = sg.compile(loss, params)
    (entry,) = fresh_cache.glob("sgkey_*.json")
    text = entry.read_text()
    if damage == "garbage":
        entry.write_bytes(b"\x00\xff not json")
    elif damage == "truncated":
        entry.write_text(text[: len(text) // 2])
    elif damage == "wrong_module":
        entry.write_text(text.replace(os.path.basename(first.path), "sg_0000.py"))
    elif damage == "no_module":
        os.remove(first.path)
    elif damage == "edited_module":
        with open(first.path, "a", encoding="utf-8") as f:
            f.write("\n# edited\n")
    elif damage == "bad_index":
        data = json.loads(text)
        data["functions"]["loss"] = [9999]
        entry.write_text(json.dumps(data))
    cache._loaded.clear()
    fn = sg.compile(*_model()[:2])
    assert isinstance(fn._src, Source)                  # the full path
    assert fn.source == first.source and fn.path == first.path
    assert open(fn.path, encoding="utf-8").read() == first.source   # rewritten if damaged
    p, data = _data(rng)
    assert fn.loss(p, **data) == first.loss(p, **data)
    assert isinstance(sg.compile(*_model()[:2])._src, CachedSource)   # the entry is rewritten


def test_hessian_after_a_hit(fresh_cache, rng):
    w = sg.param("w", ("D",))
    X, t = sg.tensor("X", ("N", "D")), sg.tensor("t", ("N",))

    def model():
        return sg.mse(X @ w, t) + 0.1 * sg.l2(w), [w]
    first = sg.compile(*model(), hessian=True)
    fn = sg.compile(*model(), hessian=True)
    assert isinstance(fn._src, CachedSource)     # its second-order part is made on first use
    p = {"w": rng.standard_normal(3)}
    data = {"X": rng.standard_normal((10, 3)), "t": rng.standard_normal(10)}
    np.testing.assert_array_equal(fn.hessian(p, **data)[("w", "w")],
                                  first.hessian(p, **data)[("w", "w")])
    v = {"w": rng.standard_normal(3)}
    np.testing.assert_array_equal(fn.hvp(p, v, **data)["w"], first.hvp(p, v, **data)["w"])
    assert fn.source == first.source


def test_an_unwritable_cache_dir_warns_once_on_a_miss_and_on_a_hit(tmp_path, monkeypatch):
    import warnings
    locked = tmp_path / "locked"
    monkeypatch.setenv(cache.ENV_VAR, str(locked))
    monkeypatch.setattr(cache, "_writable", lambda path: path != str(locked))
    monkeypatch.setattr(cache.tempfile, "gettempdir", lambda: str(tmp_path))
    for expected in (Source, CachedSource):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            fn = sg.compile(*_model(hidden_name="h_locked")[:2])
        assert isinstance(fn._src, expected)
        assert sum("not writable" in str(w.message) for w in seen) == 1

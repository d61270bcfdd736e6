"""Generated code over the whole op space: every registry op, every valid ``axis``, ranks 0-3.

The catalogue (``_opspace.py``) spells one *term* per (op, axis, rank) combination:
``softmax(p_NKC, axis=-2)``, ``sum(p_NK, axis=('N', 'K'))``, ``take(p_NKC, y_NK, axis=2)``,
``p_BNK @ r_BKC``, ``sum(p_CC, axis=0)`` (a square tensor: a relabel), ... Each term is
weighted by a data tensor of its result's dims and summed, so one model holds 15 terms
and costs one Numba compile for all of them; terms with the same graph up to leaf names
(``axis=0`` and ``axis='N'``) are compiled once. Every model is compiled with
``sg.compile``; its loss (from ``loss`` and from ``loss_and_grad``, two generated
functions) and gradients are compared with the NumPy evaluator (``sg.evaluate`` of
``sg.gradients``) to 1e-12, and each term's gradient with finite differences
(``sg.check_grad``). A second test nests one term inside another (``softmax(take(...))``).

Hypothesis draws the dim sizes (1 to 3: size 1 is the edge most code gets wrong) and the
values, derandomized and bounded; a compiled model is reused across examples (sizes and
values are run-time inputs), and the Numba compiles (~3 s of CPU per model, ~220 s in
all) run first in two worker processes. Every term has its own leaves (``p3_NK``), so a
wrong gradient names its term: a failure is reported as the smallest one-line model that
shows it, re-checked alone (compiled on its own), e.g.
``L = sum((p_CC @ r_C) * w_C)   sizes={'C': 2} seed=0``.
"""
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.diff.reverse import backward
from symgrad.graph.bind import bind
from symgrad.graph.evaluate import run_graph
from symgrad.graph.registry import OPS
from symgrad.graph.traverse import topo_order
from symgrad.ops._shape import align
from symgrad.ops.custom import CUSTOM
from tests.reliability._opspace import (CHUNKS, COMBINATIONS, COMPILED_TERMS, Call, Leaf, Model)
from tests.reliability._support import api, need, split

LIBRARY_FUNCTIONS = ("gelu", "silu", "elu", "leaky_relu", "huber")   # made by sg.elementwise

SETTINGS = dict(deadline=None, derandomize=True, database=None, print_blob=False,
                max_examples=6,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])


# -- checks ------------------------------------------------------------------------------------
def _kinks_nearby(loss, data, margin=1e-4):
    """True if an input of a kink (relu, abs, |r| = delta of Huber, a comparison, a
    maximum, a max reduction) is within ``margin`` of it: finite differences and the
    tie conventions are not comparable there."""
    arrays, sizes = bind([loss], data)
    values = run_graph([loss], arrays, sizes)
    gaps = []
    for n in topo_order(loss):
        ins = [np.asarray(values[x]) for x in n.inputs]
        if n.op in ("relu", "abs", "step", "sign", "leaky_relu", "elu", "opspace_wiggle"):
            gaps.append(np.abs(ins[0]))
        elif n.op == "huber":
            gaps.append(np.abs(np.abs(ins[0]) - n.attrs["delta"]))
        elif n.op in ("maximum", "minimum", "less", "less_equal", "equal"):
            a, b = (align(v, x.dims, n.dims) for v, x in zip(ins, n.inputs))
            gaps.append(np.abs(a - b))
        elif n.op == "max":
            x = ins[0]
            axes = [n.inputs[0].dims.index(d) for d in n.attrs["axes"]]
            x = np.moveaxis(x, axes, list(range(x.ndim - len(axes), x.ndim)))
            x = np.sort(x.reshape(x.shape[:x.ndim - len(axes)] + (-1,)), axis=-1)
            if x.shape[-1] > 1:
                gaps.append(x[..., -1] - x[..., -2])
    return any(np.any(g < margin) for g in gaps)


def _close(got, want, rtol=1e-12):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    scale = max(1.0, float(np.max(np.abs(want), initial=0)))
    return got.shape == want.shape and bool(np.all(np.abs(got - want) <= rtol * scale))


def _problems(model, compiled, loss, params, data, parts, fd=True):
    """What is wrong, term by term: [(term index, what)]."""
    p, d = split(data, params)
    want = float(sg.evaluate(loss, data))
    grads = sg.evaluate(sg.gradients(loss, params), data, context=loss)
    owner = {q.name: k for k, (_, ps) in enumerate(parts) for q in ps}
    bad = []
    got_loss, got = compiled.loss_and_grad(p, **d)
    for q, g in zip(params, grads):
        g = np.broadcast_to(g, np.shape(data[q.name]))
        if not _close(got[q.name], g):
            bad.append((owner[q.name], f"compiled gradient of {q.name} {got[q.name]!r} != "
                                       f"evaluator {g!r}"))
    for fname, value in (("loss_and_grad", got_loss), ("loss", compiled.loss(p, **d))):
        if not _close(value, want):
            terms = [k for k, (t, _) in enumerate(parts)
                     if not _term_loss_ok(compiled, t, data, p, d)]
            bad += [(k, f"compiled {fname} {value!r} != evaluator {want!r}") for k in terms or [-1]]
    if fd:
        for k, (t, ps) in enumerate(parts):
            mine = {n.name for n in topo_order(t) if n.op in ("input", "param")}
            check = sg.check_grad(t, ps, {k: v for k, v in data.items() if k in mine},
                                  tolerance=1e-5)
            if not check.ok:
                bad.append((k, f"evaluator gradient != finite differences: {check}"))
    return bad


def _term_loss_ok(compiled, term, data, p, d):
    """The compiled value of one term (a named forward output) against the evaluator."""
    name = term.name
    if name is None:
        return True
    return _close(compiled.output(name, p, **d), sg.evaluate(term, data))


def _first_error(model, err):
    """The first term that raises on its own (compiled alone), as a one-line model."""
    for term in model.terms:
        alone = Model((term,), model.sizes, model.seed)
        loss, params, data, parts = alone.build()
        try:
            compiled = api("compile")(loss, params=params)
            _problems(alone, compiled, loss, params, data, parts, fd=False)
        except Exception as e:          # noqa: BLE001 - reported, with the model that shows it
            return f"{alone!r}\n  {type(e).__name__}: {e}"
    return f"(no term raises alone) {model!r}\n  {type(err).__name__}: {err}"


def _shrink(model, bad):
    """The smallest one-line model showing the failure: the failing term alone (compiled
    on its own), else the whole model."""
    for k, what in bad:
        if k < 0:
            continue
        alone = Model((model.terms[k],), model.sizes, model.seed)
        loss, params, data, parts = alone.build()
        compiled = api("compile")(loss, params=params)
        again = _problems(alone, compiled, loss, params, data, parts)
        if again:
            return f"{alone!r}\n  {again[0][1]}"
        return f"{alone!r}\n  {what}\n  (only next to the other terms of {model!r})"
    return f"{model.formula()}   sizes={model.sizes} seed={model.seed}\n  {bad[0][1]}"


# -- the tests -------------------------------------------------------------------------------------
_COMPILED = {}


def _compiled(index, loss, params):
    """Chunk ``index`` compiled once: sizes and values are run-time inputs."""
    if index not in _COMPILED:
        _COMPILED[index] = api("compile")(loss, params=params)
    return _COMPILED[index]


def _warm(index):
    """Compile chunk ``index`` and run its two functions once, so Numba's cache holds them
    (in a worker process: the test's own calls then load the machine code)."""
    model = Model(CHUNKS[index], dict.fromkeys("NKCB", 2), 0)
    loss, params, data, parts = model.build()
    _name_terms(parts)
    try:
        compiled = api("compile")(loss, params=params)
        p, d = split(data, params)
        compiled.loss_and_grad(p, **d)
        compiled.loss(p, **d)
    except Exception:                   # noqa: BLE001 - the test itself reports it, by term
        return None
    return index


@pytest.fixture(scope="module")
def warm_cache():
    """Numba compiles (~3 s of CPU per model) in two processes at once: the test is
    bound by them, and CI has two cores."""
    workers = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    if workers > 1:
        ctx = multiprocessing.get_context("spawn")     # no fork of a process running Numba
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            list(pool.map(_warm, range(len(CHUNKS))))


def _name_terms(parts):
    for k, (t, _) in enumerate(parts):
        t.named(f"term{k}")


sizes_strategy = st.fixed_dictionaries({d: st.integers(1, 3) for d in ("N", "K", "C", "B")})


def test_catalogue_covers_every_registry_op():
    """The catalogue's graphs, forward and backward, use every op of the registry, and
    every combination is a valid declaration."""
    used = set()
    for chunk in CHUNKS:
        loss, params, _, _ = Model(chunk, dict.fromkeys("NKCB", 2), 0).build()
        grads, _ = backward(loss, params)
        used |= {n.op for n in topo_order([loss, *[g for g in grads.values() if g is not None]])}
    # symgrad's own ops; sg.elementwise ops that other tests make (and derivatives of
    # derivatives they take) are theirs
    builtin = {n for n in OPS if n not in CUSTOM} | set(LIBRARY_FUNCTIONS) | {"opspace_wiggle"}
    missing = sorted(builtin - used)
    assert not missing, f"ops no op-space term reaches: {missing}"
    print(f"op space: {len(COMBINATIONS)} distinct (op, axis, rank) combinations of "
          f"{len(builtin)} registry ops, as {len(COMPILED_TERMS)} distinct graphs in "
          f"{len(CHUNKS)} compiled models")
    assert len(COMBINATIONS) >= 750


def _check_compiled(model, compile_it, loss, params, data, parts):
    """Compile (``compile_it()``) and compare; fail naming the smallest model at fault."""
    try:
        compiled = compile_it()
        bad = _problems(model, compiled, loss, params, data, parts)
    except Exception as err:            # noqa: BLE001 - find the term that raises
        pytest.fail(f"smallest model that raises:\n  {_first_error(model, err)}", pytrace=False)
    if bad:
        pytest.fail(f"{len(bad)} problem(s); smallest model:\n  {_shrink(model, bad)}",
                    pytrace=False)


@pytest.mark.slow
@need("compile")
@pytest.mark.parametrize("index", range(len(CHUNKS)))
@settings(**SETTINGS)
@given(sizes=sizes_strategy, seed=st.integers(0, 2 ** 16))
def test_compiled_op_space_agrees_with_evaluator_and_finite_differences(warm_cache, index, sizes,
                                                                      seed):
    model = Model(CHUNKS[index], sizes, seed, label=f"op-space model {index + 1}/{len(CHUNKS)}")
    note(repr(model))
    loss, params, data, parts = model.build()
    _name_terms(parts)
    value = float(sg.evaluate(loss, data))
    assume(math.isfinite(value) and not _kinks_nearby(loss, data))
    _check_compiled(model, lambda: _compiled(index, loss, params), loss, params, data, parts)


# -- compositions: one op-space term inside another ----------------------------------------------
def _substitute(term, inner, dims):
    """``term`` with its first real-valued param leaf of dims ``dims`` replaced by ``inner``."""
    done = []

    def go(e):
        if isinstance(e, Leaf):
            if not done and e.kind in ("p", "r") and Model._leafless(e).dims == dims:
                done.append(e)
                return inner
            return e
        if isinstance(e, Call):
            return Call(e.fn, tuple(go(a) for a in e.args), e.kw)
        return e
    out = go(term)
    return out if done else None


def _compositions():
    """(outer index, inner index) of compiled terms where the inner's result has the dims
    of one of the outer's real-valued params: ``softmax(take(...), axis=0)`` and so on."""
    dims_of = [Model._leafless(t).dims for _, t in COMPILED_TERMS]
    pairs = []
    for a, (_, outer) in enumerate(COMPILED_TERMS):
        wanted = {Model._leafless(lf).dims for lf in _leaves(outer) if lf.kind in ("p", "r")}
        pairs += [(a, b) for b, d in enumerate(dims_of) if d in wanted and b != a]
    return pairs


def _leaves(e):
    if isinstance(e, Leaf):
        return [e]
    return [lf for a in e.args for lf in _leaves(a)] if isinstance(e, Call) else []


COMPOSITIONS = _compositions()


@st.composite
def composed_model(draw):
    picks = draw(st.lists(st.sampled_from(COMPOSITIONS), min_size=1, max_size=6))
    terms = []
    for a, b in picks:
        (key, outer), (_, inner) = COMPILED_TERMS[a], COMPILED_TERMS[b]
        terms.append((key, _substitute(outer, inner, Model._leafless(inner).dims)))
    sizes = draw(sizes_strategy)
    return Model(tuple(terms), sizes, draw(st.integers(0, 2 ** 16)), label="composition")


@pytest.mark.slow
@need("compile")
@settings(**{**SETTINGS, "max_examples": 6})
@given(composed_model())
def test_compiled_compositions_agree_with_evaluator_and_finite_differences(model):
    note(model.formula())
    loss, params, data, parts = model.build()
    value = float(sg.evaluate(loss, data))
    assume(math.isfinite(value) and abs(value) < 1e6 and not _kinks_nearby(loss, data))
    grads = sg.evaluate(sg.gradients(loss, params), data, context=loss)
    assume(all(np.all(np.isfinite(g)) and np.max(np.abs(g), initial=0) < 1e6 for g in grads))
    _check_compiled(model, lambda: api("compile")(loss, params=params), loss, params, data,
                    parts)

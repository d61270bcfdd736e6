"""The vectorisable exp and sigmoid (VECTOR_HELPERS) against libm and NumPy.

They replace libm's scalar exp in loops LLVM vectorises, so they must be as good
as exp everywhere: within 2 ulp (measured: 1) over a dense grid of the range where
exp is finite and non-zero, on random bit patterns of the whole float64 range,
and exactly right at the special values (overflow, underflow, subnormals, NaN, inf).
"""
import math
import re

import numpy as np
import pytest
from numba import njit

from symgrad.codegen.module import _helper
from symgrad.ops.elementwise import VECTOR, VECTOR_HELPERS


def _compiled(helpers, dtype):
    """``helpers`` as the generated module defines them, and loops applying them to
    ``dtype`` arrays."""
    src = ["import math", "import numba", "import numpy as np", "from numba import njit"]
    src += [_helper(helpers[name]).replace("cache=True, ", "") for name in helpers]
    src += ["def apply_exp(x, out):", "    for i in range(x.shape[0]):",
            "        out[i] = _sg_vexp(x[i])",
            "def apply_sigmoid(x, out):", "    for i in range(x.shape[0]):",
            "        out[i] = _sg_vsigmoid(x[i])"]
    ns = {}
    exec("\n".join(src), ns)
    loops = {k: njit(error_model="numpy")(ns[f"apply_{k}"]) for k in ("exp", "sigmoid")}

    def run(kind, x):
        x = np.ascontiguousarray(x, dtype=dtype)
        out = np.empty_like(x)
        loops[kind](x, out)
        return out
    run.loops = loops
    return run


@pytest.fixture(scope="module")
def compiled():
    return _compiled(VECTOR_HELPERS, np.float64)


def ulps(got, want):
    """Distance in units of the last place of ``want`` (its spacing; subnormals too)."""
    with np.errstate(invalid="ignore"):
        return np.abs(got - want) / np.spacing(np.abs(want))


def test_exp_dense_grid_within_two_ulp(compiled):
    x = np.linspace(-745.2, 709.8, 2_000_001)
    with np.errstate(over="ignore", under="ignore"):
        want = np.exp(x)
    got = compiled("exp", x)
    finite = np.isfinite(want)
    assert np.all(got[~finite] == want[~finite])
    assert ulps(got[finite], want[finite]).max() <= 2.0


def test_exp_small_arguments_and_math_exp(compiled):
    x = np.concatenate([np.geomspace(1e-300, 700.0, 20_000), -np.geomspace(1e-300, 745.0, 20_000),
                        np.random.default_rng(0).uniform(-1, 1, 20_000)])
    want = np.array([math.exp(v) for v in x])
    assert ulps(compiled("exp", x), want).max() <= 2.0


def test_exp_random_bit_patterns_of_the_whole_range(compiled):
    bits = np.random.default_rng(1).integers(0, 2**64, 200_000, dtype=np.uint64)
    x = bits.view(np.float64)
    got = compiled("exp", x)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        want = np.exp(x)
    nan = np.isnan(x)
    assert np.all(np.isnan(got[nan]))
    exact = ~nan & ((want == 0) | np.isinf(want) | (want == 1.0))
    assert np.all(got[exact] == want[exact])
    rest = ~nan & ~exact
    assert rest.sum() > 100 and ulps(got[rest], want[rest]).max() <= 2.0


@pytest.mark.parametrize("x, want", [
    (0.0, 1.0), (-0.0, 1.0), (1.0, math.e), (-1.0, math.exp(-1.0)),
    (709.782712893384, 1.7976931348622732e308),          # largest finite result
    (709.7827128933841, math.inf), (710.0, math.inf), (1e308, math.inf), (math.inf, math.inf),
    (-708.3964185322641, math.exp(-708.3964185322641)),    # smallest normal result
    (-720.0, math.exp(-720.0)),                            # subnormal
    (-745.1332191019411, 5e-324), (-745.2, 0.0), (-1e308, 0.0), (-math.inf, 0.0),
    (5e-324, 1.0), (-5e-324, 1.0), (1e-300, 1.0),
])
def test_exp_special_values(compiled, x, want):
    got = compiled("exp", [x])[0]
    assert got == want or abs(got - want) <= 2 * np.spacing(want)


def test_exp_nan_stays_nan(compiled):
    assert math.isnan(compiled("exp", [math.nan])[0])
    assert math.isnan(compiled("sigmoid", [math.nan])[0])


def test_sigmoid_against_extended_precision(compiled):
    x = np.concatenate([np.linspace(-760.0, 760.0, 400_001), np.geomspace(1e-300, 1e3, 2000),
                        -np.geomspace(1e-300, 1e3, 2000)])
    xl = x.astype(np.longdouble)
    with np.errstate(over="ignore", under="ignore"):
        want = (1 / (1 + np.exp(-xl))).astype(np.float64)
    assert ulps(compiled("sigmoid", x), want).max() <= 3.0


@pytest.mark.parametrize("x, want", [(math.inf, 1.0), (-math.inf, 0.0), (800.0, 1.0),
                                     (-800.0, 0.0), (0.0, 0.5), (-0.0, 0.5),
                                     (-745.0, math.exp(-745.0))])
def test_sigmoid_special_values(compiled, x, want):
    assert compiled("sigmoid", [x])[0] == want


def test_loops_over_them_vectorise(compiled):
    """The point of these helpers: the loop is SIMD code, with no libm exp call left."""
    for kind, loop in compiled.loops.items():
        compiled(kind, [0.0])    # compiled here: tests of one module may run in other workers
        ir = loop.inspect_llvm(loop.signatures[0])
        assert re.search(r"<\d+ x double>", ir), kind
        assert not re.search(r"call .*@(llvm\.exp|exp)\b", ir), kind
        # AVX2 has no vector float<->int64 conversion: one would run lane by lane
        assert not re.search(r"\b(fptosi|fptoui|sitofp|uitofp)\b", ir), kind


@pytest.mark.parametrize("dtype, low, high", [(np.float64, -1022, 1023), (np.float32, -126, 127)])
def test_pow2_from_bits_is_exact_over_its_range(dtype, low, high):
    """``_sg_pow2(k)``: 2^k from the bits of k + bias + 1.5 2^p, for every k exp uses."""
    from symgrad.ops.elementwise import VECTOR_HELPERS_F32
    helpers = VECTOR_HELPERS if dtype == np.float64 else VECTOR_HELPERS_F32
    src = ["import math", "import numba", "import numpy as np", "from numba import njit"]
    src += [_helper(helpers[n]).replace("cache=True, ", "")
            for n in ("_sg_f64_bits", "_sg_i64_bits", "_sg_f32_bits", "_sg_i32_bits", "_sg_pow2")
            if n in helpers]
    src += ["def apply(k, out):", "    for i in range(k.shape[0]):",
            "        out[i] = _sg_pow2(k[i])"]
    ns = {}
    exec("\n".join(src), ns)
    k = np.arange(low, high + 1).astype(dtype)
    out = np.empty_like(k)
    njit(ns["apply"])(k, out)
    assert np.array_equal(out, np.ldexp(np.ones_like(k), np.arange(low, high + 1)))


def test_every_vector_template_names_its_helpers():
    from symgrad.graph.registry import get_op
    for op, template in VECTOR.items():
        code = get_op(op).code
        assert code["vector"] == template
        assert all(name in code["vector_helpers"] for name in re.findall(r"_sg_\w+", template))
        assert {"_sg_f64_bits", "_sg_fma", "_sg_vexp"} <= set(code["vector_helpers"])


# -- the float32 forms (float32 modules define them under the same names) ---------------
@pytest.fixture(scope="module")
def compiled32():
    from symgrad.ops.elementwise import VECTOR_HELPERS_F32
    return _compiled(VECTOR_HELPERS_F32, np.float32)


def _rounded32(f, x):
    """``f`` in float64 (exact to far below float32's ulp), rounded to float32."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return f(np.asarray(x, np.float32).astype(np.float64)).astype(np.float32)


def test_float32_exp_within_one_ulp_over_its_whole_range(compiled32):
    x = np.concatenate([np.linspace(-104.0, 89.0, 2_000_001, dtype=np.float32),
                        np.random.default_rng(2).integers(0, 2**32, 200_000, dtype=np.uint64)
                        .astype(np.uint32).view(np.float32)])
    got, want = compiled32("exp", x), _rounded32(np.exp, x)
    nan = np.isnan(x)
    assert np.all(np.isnan(got[nan]))
    exact = ~nan & ((want == 0) | np.isinf(want))
    assert np.all(got[exact] == want[exact])          # overflow, underflow, +-inf
    rest = ~nan & ~exact
    assert ulps(got[rest], want[rest]).max() <= 1.0       # in float32's own ulp


@pytest.mark.parametrize("x, want", [
    (0.0, 1.0), (88.7229, np.inf), (1e30, np.inf), (np.inf, np.inf), (-104.0, 0.0),
    (-1e30, 0.0), (-np.inf, 0.0)])
def test_float32_exp_overflow_underflow_and_infinities(compiled32, x, want):
    assert compiled32("exp", [x])[0] == want


@pytest.mark.parametrize("x", [88.72283, -87.33654, -100.0, -103.972])   # largest, smallest
def test_float32_exp_at_the_edges_of_normal_and_subnormal(compiled32, x):   # normal, subnormal
    got, want = compiled32("exp", [x]), _rounded32(np.exp, [x])
    assert 0 < want[0] < np.inf and ulps(got, want)[0] <= 1.0


def test_float32_sigmoid_within_two_ulp_and_its_limits(compiled32):
    x = np.linspace(-110.0, 110.0, 400_001, dtype=np.float32)
    want = _rounded32(lambda v: 1 / (1 + np.exp(-v)), x)
    assert ulps(compiled32("sigmoid", x), want).max() <= 2.0
    got = compiled32("sigmoid", [np.inf, -np.inf, 200.0, -200.0, 0.0, np.nan])
    assert list(got[:5]) == [1.0, 0.0, 1.0, 0.0, 0.5] and np.isnan(got[5])


def test_float32_loops_are_float32_simd_code(compiled32):
    for kind, loop in compiled32.loops.items():
        compiled32(kind, [0.0])
        ir = loop.inspect_llvm(loop.signatures[0])
        assert re.search(r"<\d+ x float>", ir), kind
        assert not re.search(r"<\d+ x double>", ir), kind      # not widened to float64
        assert not re.search(r"call .*@(llvm\.exp|exp|expf)\b", ir), kind
        assert not re.search(r"\b(fptosi|fptoui|sitofp|uitofp)\b", ir), kind


def test_float32_modules_use_the_float32_forms():
    import symgrad as sg
    X, t, w = sg.tensor("X", ("N", "D")), sg.tensor("t", ("N",)), sg.param("w", ("D",))
    loss = sg.sum((t - sg.sigmoid(X @ w)) ** 2)
    src32 = sg.compile(loss, params=[w], dtype=np.float32).source
    assert "def _sg_fmaf(" in src32 and "def _sg_fma(" not in src32
    src64 = sg.compile(loss, params=[w]).source
    assert "def _sg_fma(" in src64 and "_sg_fmaf" not in src64

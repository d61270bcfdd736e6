"""Elementwise ops: one row each, meaning, stable NumPy, gradient rule and code side by side.

Gradient rules read like HIPS autograd's: ``g`` is the upstream adjoint (a
node), ``y`` the op's output node and ``x`` (``a``, ``b``) its inputs. They
build nodes, so the backward graph is an ordinary graph that every later stage
(evaluation, display, code generation) handles like the forward one.
"""
import math
import re

import numpy as np

from symgrad.graph.node import FLOAT, apply
from symgrad.graph.registry import OpDef, register
from symgrad.ops._lazy import F, deferred, sp
from symgrad.ops._shape import (align, binary_infer, deltas, pick_dims, require_float,
                                unary_infer)


# -- stable NumPy meanings -----------------------------------------------------
def np_sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def np_softplus(x):
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def np_relu(x):
    return np.maximum(x, 0.0)


def np_step(x):
    return (x > 0).astype(np.result_type(x, np.float32))


def np_log(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(x)  # log(0) = -inf, log(<0) = nan: documented, detected by fit


def np_sqrt(x):
    with np.errstate(invalid="ignore"):
        return np.sqrt(x)


def np_div(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return a / b


def np_pow(x, c):
    with np.errstate(divide="ignore", invalid="ignore"):
        return x * x if c == 2 else np.power(x, c)


# -- gradient helpers ----------------------------------------------------------
def unbroadcast(g, x):
    """Sum ``g`` over the dims ``x`` was broadcast along, so it matches ``x`` (its dims in
    ``x``'s order: operands aligned by name may list them in another order)."""
    extra = tuple(d for d in g.dims if d not in x.dims)
    g = apply("sum", g, axes=extra) if extra else g
    if g.dims != x.dims and len(g.dims) == len(x.dims):
        g = apply("expand", g, dims=x.dims)
    return g


def aligned(fn):
    """A NumPy meaning ``fn(*arrays)`` applied to operands aligned by dim name."""
    def meaning(node, sizes, *arrays):
        return fn(*[align(a, x.dims, node.dims) for a, x in zip(arrays, node.inputs)])
    return meaning


def _pow_grad(g, y, x):
    c = y.attrs["exponent"]
    if c == 2:
        return g * (2 * x)
    return g * (c * x ** (c - 1))


# -- emitted code ----------------------------------------------------------------
# Scalar helpers the generated module defines (in its prelude) when an op's template
# names them. Stable forms: never exp of a large positive number; log and sqrt
# return -inf / nan like NumPy instead of raising.
HELPERS = {
    "_sg_sigmoid": (
        "def _sg_sigmoid(x):\n"
        "    if x >= 0.0:\n"
        "        return 1.0 / (1.0 + math.exp(-x))\n"
        "    e = math.exp(x)\n"
        "    return e / (1.0 + e)\n"),
    "_sg_softplus": (
        "def _sg_softplus(x):\n"
        "    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))\n"),
    "_sg_log": (
        "def _sg_log(x):\n"
        "    if x > 0.0:\n"
        "        return math.log(x)\n"
        "    return -math.inf if x == 0.0 else math.nan\n"),
    "_sg_sqrt": (
        "def _sg_sqrt(x):\n"
        "    return math.sqrt(x) if x >= 0.0 else math.nan\n"),
    "_sg_sign": (
        "def _sg_sign(x):\n"
        "    if x > 0.0:\n"
        "        return 1.0\n"
        "    return -1.0 if x < 0.0 else 0.0 * x\n"),
}

def _inv_fact(k):
    return 1.0 / math.factorial(k)


def _bitcast(name, to, frm, arg):
    """The source of an intrinsic ``name(arg)``: the ``to`` value with the bits of the
    ``frm`` value ``arg`` (LLVM's bitcast, free, and vectorised with its loop)."""
    doc = (f"The {to} whose IEEE-754 bit pattern is the {frm} {arg}" if to.startswith("float")
           else f"The {to} with the IEEE-754 bit pattern of the {frm} {arg}")
    return ("@numba.extending.intrinsic\n"
            f"def {name}(typingctx, {arg}):\n"
            f"    \"\"\"{doc} (a bitcast).\"\"\"\n"
            "    def codegen(context, builder, signature, args):\n"
            f"        return builder.bitcast(args[0], context.get_value_type(numba.types.{to}))\n"
            f"    return numba.types.{to}(numba.types.{frm}), codegen\n")


# Vectorisable forms: libm's exp is a scalar call LLVM cannot vectorise (no SVML in
# llvmlite), so a loop over exp or sigmoid runs one element at a time. These use only
# arithmetic, fused multiply-adds, selects and a bitcast: Cody-Waite reduction
# x = n ln2 + r (|r| <= ln2/2),
# a degree-13 Taylor polynomial (truncation < 1e-17; its high terms by Estrin's scheme,
# which in a row pass's short loops is 30% faster than Horner's long chain of
# dependent multiply-adds), then 2^n as two exact power-of-two
# factors so subnormal results round once. Within 1 ulp of math.exp over the whole
# float64 range; overflow to inf, underflow to 0, NaN and +-inf as math.exp
# (tests/ops/test_fastmath.py). Scalar, they are about 2x slower than libm, so the
# emitter uses them only in loops that vectorise (schedule.Plan.vector).
VECTOR_HELPERS = {
    "_sg_f64_bits": _bitcast("_sg_f64_bits", "float64", "int64", "bits"),
    "_sg_i64_bits": _bitcast("_sg_i64_bits", "int64", "float64", "x"),
    "_sg_pow2": (
        "def _sg_pow2(k):\n"
        "    \"\"\"2^k for a float64 integer k in [-1022, 1023], from bits alone: k + 1023 + 1.5 2^52\n"
        "    holds k + 1023 in its low mantissa bits, and a shift by 52 moves them to the\n"
        "    exponent (pushing out the rest).\"\"\"\n"
        "    return _sg_f64_bits(_sg_i64_bits(k + 6755399441056767.0) << 52)\n"),
    "_sg_fma": (
        "@numba.extending.intrinsic\n"
        "def _sg_fma(typingctx, a, b, c):\n"
        "    \"\"\"a * b + c rounded once (llvm.fma: exact, not fastmath).\"\"\"\n"
        "    def codegen(context, builder, signature, args):\n"
        "        return builder.fma(*args)\n"
        "    f64 = numba.types.float64\n"
        "    return f64(f64, f64, f64), codegen\n"),
    "_sg_vexp": (
        "def _sg_vexp(x):\n"
        "    c = x if x == x else 0.0  # NaN: any finite value here, returned below\n"
        "    c = 710.0 if c > 710.0 else c  # exp(710) overflows to inf anyway\n"
        "    c = -746.0 if c < -746.0 else c  # exp(-746) rounds to 0 anyway\n"
        "    # c / ln2 + 1.5 2^52 rounds to an integer: n = round(c / ln2) without a float to\n"
        "    # int conversion (AVX2 has no vector one, so it would run one element at a time)\n"
        "    n = _sg_fma(c, 1.4426950408889634, 6755399441055744.0) - 6755399441055744.0\n"
        "    m = -1.0 * n\n"
        "    r = _sg_fma(m, 1.9082149292705877e-10, _sg_fma(m, 0.6931471803691238, c))  # c - n ln2\n"
        "    r2 = r * r\n"
        "    r4 = r2 * r2\n"
        "    # r^4/4! + ... + r^13/13! is r^4 t(r); t by Estrin's scheme (pairs, then pairs of\n"
        "    # pairs), so its chain of dependent operations is 4 long instead of 10\n"
        + "".join("    q%d = _sg_fma(%r, r, %r)\n" % (k, _inv_fact(2 * k + 5), _inv_fact(2 * k + 4))
                  for k in range(5))
        + "    t = _sg_fma(_sg_fma(q4, r4, _sg_fma(q3, r2, q2)), r4, _sg_fma(q1, r2, q0))\n"
        "    p = _sg_fma(t, r, %r)  # then Horner for the large terms: 1/3!, 1/2!, 1/1!\n"
        % _inv_fact(3)
        + "    p = _sg_fma(p, r, 0.5)\n"
        "    p = _sg_fma(p, r, 1.0)\n"
        "    half = np.floor(0.5 * n)  # 2^n = 2^half 2^(n - half), both normal (n in [-1076, 1024])\n"
        "    y = (_sg_fma(p, r, 1.0) * _sg_pow2(half)) * _sg_pow2(n - half)\n"
        "    return y if x == x else x\n"),
    "_sg_vsigmoid": (
        "def _sg_vsigmoid(x):\n"
        "    e = _sg_vexp(-abs(x))  # never exp of a large positive number\n"
        "    return (1.0 if x >= 0.0 else e) / (1.0 + e)  # a select, not a branch\n"),
}

# op -> its vectorisable template (see VECTOR_HELPERS)
VECTOR = {"exp": "_sg_vexp({0})", "sigmoid": "_sg_vsigmoid({0})"}

# The same two in float32 arithmetic, which float32 modules define under the same names
# (``float32_helpers``): twice the lanes per vector and a degree-7 polynomial (truncation
# < 3e-9 for |r| <= ln2/2), 2x faster than the float64 forms on float32 data. Within
# 1 ulp of exp rounded to float32 over its whole range, overflow to inf above 88.72,
# subnormals and underflow to 0 below -87.3, NaN and +-inf exact (test_fastmath.py).
VECTOR_HELPERS_F32 = {
    "_sg_f32_bits": _bitcast("_sg_f32_bits", "float32", "int32", "bits"),
    "_sg_i32_bits": _bitcast("_sg_i32_bits", "int32", "float32", "x"),
    "_sg_pow2": (
        "def _sg_pow2(k):\n"
        "    \"\"\"2^k for a float32 integer k in [-126, 127], as the float64 form: the bits of\n"
        "    k + 127 + 1.5 2^23 shifted by 23.\"\"\"\n"
        "    return _sg_f32_bits(_sg_i32_bits(k + np.float32(12583039.0)) << np.int32(23))\n"),
    "_sg_fmaf": (
        "@numba.extending.intrinsic\n"
        "def _sg_fmaf(typingctx, a, b, c):\n"
        "    \"\"\"a * b + c in float32, rounded once (llvm.fma).\"\"\"\n"
        "    def codegen(context, builder, signature, args):\n"
        "        return builder.fma(*args)\n"
        "    f32 = numba.types.float32\n"
        "    return f32(f32, f32, f32), codegen\n"),
    "_sg_vexp": (
        "def _sg_vexp(x):\n"
        "    v = np.float32(x)  # float32 modules: float32 arithmetic\n"
        "    c = v if v == v else np.float32(0.0)  # NaN: any finite value here, returned below\n"
        "    c = np.float32(89.0) if c > np.float32(89.0) else c  # exp(89) overflows to inf\n"
        "    c = np.float32(-104.0) if c < np.float32(-104.0) else c  # exp(-104) rounds to 0\n"
        "    # round(c / ln2) by adding 1.5 2^23, as in the float64 form\n"
        "    n = _sg_fmaf(c, np.float32(1.442695), np.float32(12582912.0)) - np.float32(12582912.0)\n"
        "    m = -n\n"
        "    # c - n ln2, ln2's high part exact in n * it\n"
        "    r = _sg_fmaf(m, np.float32(1.4286068e-06), _sg_fmaf(m, np.float32(0.69314575), c))\n"
        + "    p = np.float32(%r)\n" % _inv_fact(7)
        + "".join("    p = _sg_fmaf(p, r, np.float32(%r))\n" % _inv_fact(k) for k in range(6, -1, -1))
        + "    half = np.floor(np.float32(0.5) * n)  # 2^n as two factors: both normal, n in [-150, 128]\n"
        "    y = (p * _sg_pow2(half)) * _sg_pow2(n - half)\n"
        "    return y if v == v else v\n"),
    "_sg_vsigmoid": (
        "def _sg_vsigmoid(x):\n"
        "    v = np.float32(x)\n"
        "    e = _sg_vexp(-abs(v))  # never exp of a large positive number\n"
        "    one = np.float32(1.0)\n"
        "    return (one if v >= np.float32(0.0) else e) / (one + e)  # a select, not a branch\n"),
}


def float32_helpers(helpers):
    """A float32 module's helpers: ``helpers`` with the float32 forms of the vectorisable
    exp and sigmoid (and what they call) in place of the float64 ones."""
    out = {**helpers, **{k: v for name in helpers if name in VECTOR_HELPERS_F32
                        for k, v in _closure(name, VECTOR_HELPERS_F32).items()}}
    float64_only = set(VECTOR_HELPERS) - set(VECTOR_HELPERS_F32)   # kept if something calls them
    rest = " ".join(src for name, src in out.items() if name not in float64_only)
    return {name: src for name, src in out.items()
            if name not in float64_only or re.search(rf"\b{name}\b", rest)}


def scalar_code(template, helpers=HELPERS, vector=None):
    """The ``code`` hook of an elementwise op: its template plus the helpers it calls,
    and its vectorisable template (``vector``, with ``vector_helpers``) if it has one."""
    names = re.findall(r"_sg_\w+", template) if isinstance(template, str) else []
    code = {"scalar": template, "helpers": {n: helpers[n] for n in names if n in helpers}}
    if vector is not None:
        code["vector"], code["vector_helpers"] = vector, _closure(vector, VECTOR_HELPERS)
    return code


def vector_closure(name):
    """The vectorisable helper ``name`` (e.g. ``_sg_vexp``) and the helpers it calls."""
    return _closure(name, VECTOR_HELPERS)


def _closure(template, helpers):
    """The helpers ``template`` calls, and the helpers those call."""
    found, todo = {}, re.findall(r"_sg_\w+", template)
    while todo:
        name = todo.pop()
        if name in helpers and name not in found:
            found[name] = helpers[name]
            todo += re.findall(r"_sg_\w+", helpers[name])
    return found


# name: (SymPy meaning, NumPy meaning, gradient rule (g, y, x), Numba scalar code, label)
UNARY = {
    "neg": (lambda x: -x, np.negative, lambda g, y, x: -g, "(-{0})", "-"),
    "exp": (deferred(sp, "exp"), np.exp, lambda g, y, x: g * y, "math.exp({0})", "exp"),
    "log": (deferred(sp, "log"), np_log, lambda g, y, x: g / x, "_sg_log({0})", "log"),
    "sqrt": (deferred(sp, "sqrt"), np_sqrt, lambda g, y, x: g / (2 * y), "_sg_sqrt({0})", "sqrt"),
    "abs": (deferred(sp, "Abs"), np.abs, lambda g, y, x: g * apply("sign", x), "abs({0})", "|.|"),
    "sigmoid": (deferred(F, "sigmoid"), np_sigmoid, lambda g, y, x: g * (y * (1 - y)), "_sg_sigmoid({0})", "σ"),
    "tanh": (deferred(sp, "tanh"), np.tanh, lambda g, y, x: g * (1 - y * y), "math.tanh({0})", "tanh"),
    # relu: a select (vectorises) that keeps NaN, like np.maximum.
    "relu": (deferred(F, "relu"), np_relu, lambda g, y, x: g * apply("step", x), "(0.0 if {0} <= 0.0 else {0})",
             "relu"),
    "softplus": (deferred(F, "softplus"), np_softplus, lambda g, y, x: g * apply("sigmoid", x),
                 "_sg_softplus({0})", "softplus"),
    # Derivatives of the ops above; piecewise constant, so their own rule is zero.
    "step": (deferred(F, "step"), np_step, None, "(1.0 if {0} > 0 else 0.0)", "step"),
    "sign": (deferred(sp, "sign"), np.sign, None, "_sg_sign({0})", "sign"),
}

BINARY = {
    "add": (lambda a, b: a + b, np.add, lambda g, y, a, b: g, lambda g, y, a, b: g, "({0} + {1})", "+"),
    "sub": (lambda a, b: a - b, np.subtract, lambda g, y, a, b: g, lambda g, y, a, b: -g,
            "({0} - {1})", "-"),
    "mul": (lambda a, b: a * b, np.multiply, lambda g, y, a, b: g * b, lambda g, y, a, b: g * a,
            "({0} * {1})", "×"),
    "div": (lambda a, b: a / b, np_div, lambda g, y, a, b: g / b, lambda g, y, a, b: -(g * y) / b,
            "({0} / {1})", "÷"),
    # 1.0 where a == b: the mask that routes max's gradient to the maximal entries.
    "equal": (lambda a, b: F.onehot(a, b), lambda a, b: (a == b).astype(np.result_type(a, b)),
              None, None, "(1.0 if {0} == {1} else 0.0)", "=="),
}


def _unary_element(fn):
    return lambda ctx, node, idx: fn(ctx.arg(0, idx))


def _unary_vjp(rule):
    if rule is None:
        return (None,)
    return (lambda g, node: rule(g, node, node.inputs[0]),)


def _binary_vjp(rule_a, rule_b):
    def side(rule, k):
        if rule is None:
            return None
        return lambda g, node: unbroadcast(rule(g, node, *node.inputs), node.inputs[k])
    return (side(rule_a, 0), side(rule_b, 1))


def _softplus_local(ctx, node, k, idx_out, idx_in):
    """softplus'(x) = sigma(x), shown as the node sigma_i (a textbook's sigma)."""
    sigma = ctx.aux("sigma", apply("sigmoid", node.inputs[0]), idx_in)
    return sigma * deltas(idx_out, idx_in, node.dims)


# Readable local derivatives where SymPy's own would be a bare function of the input.
LOCAL = {"softplus": _softplus_local}

# An op without any gradient rule (step, sign, equal) is piecewise constant.
for _name, (_sym, _np, _rule, _code, _label) in UNARY.items():
    register(OpDef(_name, "elementwise", unary_infer(_name), _unary_element(_sym),
                   (lambda f: lambda node, sizes, x: f(x))(_np), _unary_vjp(_rule),
                   label=_label, code=scalar_code(_code, vector=VECTOR.get(_name)),
                   constant=_rule is None,
                   local=LOCAL.get(_name)))

for _name, (_sym, _np, _ra, _rb, _code, _label) in BINARY.items():
    register(OpDef(_name, "elementwise", binary_infer(_name),
                   (lambda f: lambda ctx, node, idx: f(ctx.arg(0, idx), ctx.arg(1, idx)))(_sym),
                   aligned(_np), _binary_vjp(_ra, _rb),
                   label=_label, code=scalar_code(_code), constant=_ra is None and _rb is None))


def _pow_infer(inputs, attrs):
    require_float("pow", inputs[0])
    return inputs[0].dims, FLOAT


def _pow_code(node):
    c = node.attrs["exponent"]
    return "({0} * {0})" if c == 2 else "({0} ** %r)" % float(c)


register(OpDef(
    "pow", "elementwise", _pow_infer,
    lambda ctx, node, idx: ctx.arg(0, idx) ** sp.nsimplify(node.attrs["exponent"]),
    lambda node, sizes, x: np_pow(x, node.attrs["exponent"]),
    (lambda g, node: _pow_grad(g, node, node.inputs[0]),),
    label="^", code=scalar_code(_pow_code)))

__all__ = ["HELPERS", "VECTOR", "VECTOR_HELPERS", "aligned", "np_sigmoid", "np_softplus", "pick_dims", "scalar_code", "unbroadcast"]

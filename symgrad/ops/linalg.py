"""Linear algebra: matmul (1-D and 2-D operands, contracted dim matched by name) and transpose."""

from symgrad.errors import DimError
from symgrad.graph.node import FLOAT, apply
from symgrad.graph.registry import OpDef, register
from symgrad.graph.dims import base, canonical
from symgrad.ops._lazy import sp
from symgrad.ops._shape import align, require_float
from symgrad.ops.reductions import expand


def _matmul_infer(inputs, attrs):
    """``@`` as np.matmul: 1-D and 2-D operands are BLAS products; with a 3-D or larger
    operand the leading dims are batch dims, aligned by name. The contracted dims (the
    left operand's last, the right one's first, or its second-to-last when it has 3+)
    must be the same dim."""
    a, b = inputs
    for x in (a, b):
        require_float("matmul", x)
        if not x.dims:
            raise DimError(f"matmul needs tensors with dims; {x.display} is a scalar")
    ka, kb = _contracted(a, b)
    kept_a = [d for d in a.dims if d != ka]
    kept_b = [d for d in b.dims if d != kb]
    out = canonical(tuple(kept_a + kept_b))
    # input label -> output label, as pairs (attrs stay hashable for codegen's CSE)
    attrs.update(contract=(ka, kb), out_a=tuple(zip(kept_a, out)),
                 out_b=tuple(zip(kept_b, out[len(kept_a):])))
    return out, FLOAT


def _contracted(a, b):
    ka, kb = a.dims[-1], (b.dims[0] if b.ndim <= 2 else b.dims[-2])
    if base(ka) != base(kb):
        raise DimError(
            f"cannot matmul {a.display} with dims {a.dims} and {b.display} with dims {b.dims}: "
            f"contracted dims {base(ka)!r} and {base(kb)!r} differ")
    return ka, kb


def _lower_batched(inputs, attrs):
    """With a 3-D or larger operand, ``a @ b`` is ``sum(a * b, axis=k)``: operands align by
    name, so their leading dims are batch dims; the result's dims are np.matmul's order
    (batch dims, then a's rows, then b's columns)."""
    a, b = inputs
    if a.ndim <= 2 and b.ndim <= 2:
        return None
    _matmul_infer(inputs, dict(attrs))                 # same checks and messages
    ka, kb = _contracted(a, b)
    if ka != kb:
        raise DimError(f"{a.display} @ {b.display}: with 3-D operands the contracted axes "
                       f"must carry the same label ({ka!r} vs {kb!r})")
    rows, cols = [d for d in a.dims[-2:-1] if a.ndim >= 2], b.dims[-1:] if b.ndim >= 2 else ()
    batch = [d for d in dict.fromkeys(a.dims[:-2] + b.dims[:-2]) if d not in rows + list(cols)]
    want = tuple(batch + rows + list(cols))
    if len(set(want)) != len(want) or ka in want:
        raise DimError(f"{a.display} @ {b.display} would repeat a dim ({want}); give each axis "
                       "of 3-D operands its own dim name")
    out = apply("sum", a * b, axis=ka)
    return out if out.dims == want else apply("expand", out, dims=want)


def _matmul_element(ctx, node, idx):
    (ca, cb), c = node.attrs["contract"], base(node.attrs["contract"][0])
    k = ctx.fresh(c)
    inner_a = {**{d: idx[o] for d, o in node.attrs["out_a"]}, ca: k}
    inner_b = {**{d: idx[o] for d, o in node.attrs["out_b"]}, cb: k}
    return sp.Sum(ctx.arg(0, inner_a) * ctx.arg(1, inner_b), (k, 0, ctx.size(c) - 1))


def _as_labels(x, labels):
    """``x`` (labelled like the product's output) relabelled like an input: ``labels`` are
    (input label, output label) pairs. With a square operand they differ: ``A (C', C) @
    v (C,)`` is a vector along ``C`` whose entries belong to ``A``'s rows, ``C'``."""
    back = dict((out, inp) for inp, out in labels)
    dims = tuple(back.get(d, d) for d in x.dims)
    return x if dims == x.dims else apply("relabel", x, dims=dims)


def _grad_a(g, y):
    a, b = y.inputs
    if b.ndim == 2:
        return g @ b.T                    # (..., j) @ (j, k)
    g = _as_labels(g, y.attrs["out_a"])
    return expand(g, a.dims) * b if a.ndim == 2 else g * b


def _grad_b(g, y):
    a, b = y.inputs
    if a.ndim == 2:
        return a.T @ g                    # (k, i) @ (i, ...)
    (ka, kb), g = y.attrs["contract"], _as_labels(g, y.attrs["out_b"])
    a = a if ka == kb else apply("relabel", a, dims=(kb,))   # v (C,) @ A (C', C): along C'
    return expand(a, b.dims) * g if b.ndim == 2 else g * a


# BLAS from the generated code: Numba's own wrappers (the ones np.dot uses), called
# directly. np.dot costs ~0.5 s of compile time per operand-layout combination; these
# compile in milliseconds, take a transpose flag instead of a strided view, and skip
# np.dot's per-call checks. Row-major trick: out = op(a) @ op(b) is, in BLAS's
# column-major terms, out^T = op(b)^T @ op(a)^T. ``_SG_KIND`` and ``_SG_DTYPE`` are
# replaced by the module's float type.
HELPERS = {
    "_sg_blas": (
        "_sg_i, _sg_c, _sg_p = numba.types.intp, numba.types.char, numba.types.voidptr\n"
        "_sg_xxgemm = numba.types.ExternalFunction('numba_xxgemm', numba.types.intc(\n"
        "    _sg_c, _sg_c, _sg_c, _sg_i, _sg_i, _sg_i, _sg_p, _sg_p, _sg_i, _sg_p, _sg_i, _sg_p,\n"
        "    _sg_p, _sg_i))\n"
        "_sg_xxgemv = numba.types.ExternalFunction('numba_xxgemv', numba.types.intc(\n"
        "    _sg_c, _sg_c, _sg_i, _sg_i, _sg_p, _sg_p, _sg_i, _sg_p, _sg_p, _sg_p))\n"
        "_SG_ONE, _SG_ZERO = np.ones(1, _SG_DTYPE), np.zeros(1, _SG_DTYPE)\n"
        "# Transpose flags (a, b) as arrays: literal True/False would compile one version\n"
        "# of the helper per combination.\n"
        "_SG_NN, _SG_NT = np.array([0, 0]), np.array([0, 1])\n"
        "_SG_TN, _SG_TT = np.array([1, 0]), np.array([1, 1])\n"),
    # a @ b.T with a short inner dim k (the output layer's gradient g_z @ W2.T, k = classes)
    # runs 25-40% faster as NN on a copy of b.T (k x n, small) in OpenBLAS 0.3.31, with
    # the same bits: W4 256 x 10 x 256 products 36 -> 27 us, 54 -> 27 us on two threads.
    # Measured: wins at k = 3 and 10 up to m n = 256 x 256; k = 16, or larger outputs,
    # tie or lose (12 is between the two).
    "_sg_gemm": (
        "def _sg_gemm(a, b, out, t):\n"
        "    \"\"\"out = op(a) @ op(b), op transposes where t says so (BLAS gemm).\"\"\"\n"
        "    m, n = out.shape\n"
        "    k = a.shape[0] if t[0] else a.shape[1]\n"
        "    if t[1] and not t[0] and k <= 12 and m * n <= 65536:  # NN on b.T copied\n"
        "        bt = np.ascontiguousarray(b.T)\n"
        "        _sg_xxgemm(_SG_KIND, 110, 110, n, m, k, _SG_ONE.ctypes, bt.ctypes, n,\n"
        "                   a.ctypes, a.shape[1], _SG_ZERO.ctypes, out.ctypes, n)\n"
        "        return\n"
        "    _sg_xxgemm(_SG_KIND, 116 if t[1] else 110, 116 if t[0] else 110, n, m, k,\n"
        "               _SG_ONE.ctypes, b.ctypes, b.shape[1], a.ctypes, a.shape[1],\n"
        "               _SG_ZERO.ctypes, out.ctypes, n)\n"),
    # p += alpha * op(a) @ op(b): a param's gradient product added into the param itself
    # (codegen/fused_update.py), BLAS's beta = 1. alpha goes by pointer, in the module's
    # float type.
    "_sg_gemm_add": (
        "def _sg_gemm_add(a, b, out, t, alpha):\n"
        "    \"\"\"out += alpha * op(a) @ op(b), op transposes where t says so (gemm, beta 1).\"\"\"\n"
        "    m, n = out.shape\n"
        "    k = a.shape[0] if t[0] else a.shape[1]\n"
        "    scale = np.full(1, alpha, _SG_DTYPE)\n"
        "    _sg_xxgemm(_SG_KIND, 116 if t[1] else 110, 116 if t[0] else 110, n, m, k,\n"
        "               scale.ctypes, b.ctypes, b.shape[1], a.ctypes, a.shape[1],\n"
        "               _SG_ONE.ctypes, out.ctypes, n)\n"),
    "_sg_gemv": (
        "def _sg_gemv(a, x, out, t):\n"
        "    \"\"\"out = op(a) @ x for a 2-D a and 1-D x (BLAS gemv).\"\"\"\n"
        "    _sg_xxgemv(_SG_KIND, 110 if t[0] else 116, a.shape[1], a.shape[0], _SG_ONE.ctypes,\n"
        "               a.ctypes, a.shape[1], x.ctypes, _SG_ZERO.ctypes, out.ctypes)\n"),
}


_FLAG = {(False, False): "_SG_NN", (False, True): "_SG_NT", (True, False): "_SG_TN",
         (True, True): "_SG_TT"}


def _blas_call(node, ctx, add=False):
    """``(helper, operands, transpose flags)`` of the BLAS call computing ``node``;
    ``add``: the helper that adds a multiple of the product into an array instead."""
    (a, ta), (b, tb) = ctx.operand(0), ctx.operand(1)
    na, nb = len(node.inputs[0].dims), len(node.inputs[1].dims)
    blas = ("_sg_gemm" if na == 2 and nb == 2 else "_sg_gemv") + ("_add" if add else "")
    ctx.use_helpers({k: HELPERS[k] for k in ("_sg_blas", blas)})
    if na == 2 and nb == 2:
        return blas, [a, b], _FLAG[ta, tb]
    if na == 2:
        return blas, [a, b], _FLAG[ta, False]
    return blas, [b, a], _FLAG[not tb, False]   # x @ B = B^T @ x


def _emit_matmul(node, ctx):
    """One BLAS call into the output buffer; a transposed operand is a flag, not a copy."""
    if len(node.inputs[0].dims) == 1 and len(node.inputs[1].dims) == 1:
        (a, _), (b, _) = ctx.operand(0), ctx.operand(1)
        k = ctx.fresh("k")
        return [f"{ctx.out} = 0.0",
                f"for {k} in range({a}.shape[0]):",
                f"    {ctx.out} += {a}[{k}] * {b}[{k}]"]
    blas, (x, y), flag = _blas_call(node, ctx)
    return [f"{blas}({x}, {y}, {ctx.out}, {flag})"]


def _matmul_add_into(node):
    """How to add a multiple of this product into an array, for a product of two matrices
    (gemm with beta = 1): the SGD update of a param whose gradient is the product
    (``codegen/fused_update.py``). None otherwise."""
    if len(node.inputs[0].dims) != 2 or len(node.inputs[1].dims) != 2:
        return None

    def emit(ctx, target, scale):
        blas, (x, y), flag = _blas_call(node, ctx, add=True)
        return [f"{blas}({x}, {y}, {target}, {flag}, {scale})"]
    return emit


register(OpDef("matmul", "linalg", _matmul_infer, _matmul_element,
               lambda node, sizes, a, b: a @ b, (_grad_a, _grad_b), label="@",
               code={"emit": _emit_matmul, "add_into": _matmul_add_into},
               lower=_lower_batched))


def _transpose_infer(inputs, attrs):
    return tuple(reversed(inputs[0].dims)), inputs[0].dtype


register(OpDef("transpose", "linalg", _transpose_infer, lambda ctx, node, idx: ctx.arg(0, idx),
               lambda node, sizes, x: x.T, (lambda g, y: apply("transpose", g),), label="ᵀ",
               # In loops dims are indexed by name, so a transpose is free; BLAS gets a view.
               code={"scalar": "{0}", "view": "{0}.T"}))


# -- relabel: the same array, its axes relabelled by position (square tensors) ------------
def _relabel_infer(inputs, attrs):
    x, dims = inputs[0], tuple(attrs["dims"])
    if len(dims) != x.ndim or [base(d) for d in dims] != [base(d) for d in x.dims]:
        raise DimError(f"cannot relabel {x.display} with dims {x.dims} as {dims}")
    return dims, x.dtype


def _relabel_map(node):
    """output label -> input label, by position."""
    return dict(zip(node.dims, node.inputs[0].dims))


def _emit_relabel(node, ctx):
    """A copy, axis by axis in place: only the names by which later code reads it change."""
    head, ind = ctx.loops(list(node.dims))
    idx = {d: ctx.index(d) for d in node.dims}
    src = {old: idx[new] for new, old in _relabel_map(node).items()}
    return head + [f"{ind}{ctx.out_at(idx)} = {ctx.at(0, src)}"]


register(OpDef(
    "relabel", "linalg", _relabel_infer,
    lambda ctx, node, idx: ctx.arg(0, {old: idx[new] for new, old in _relabel_map(node).items()}),
    lambda node, sizes, x: x,
    (lambda g, y: apply("relabel", g, dims=y.inputs[0].dims),), label="relabel",
    code={"emit": _emit_relabel}))

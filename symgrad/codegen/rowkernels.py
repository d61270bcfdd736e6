"""The two kernels of a row pass (``rowpass.py``), as source for the generated module.

``_sg_rows_dot(a, r0, r1, x, out)``   out[k] = a[r0 + k, :] . x          for k < r1 - r0
``_sg_rows_tdot(a, r0, r1, g, out)``  out[j] += sum_k g[k] a[r0 + k, j]  for k < r1 - r0

``out`` of the first and ``g`` of the second are indexed within the block: the row
pass keeps the block's rows of ``z`` and ``g_z`` in block-sized buffers (in L1).

They are written in LLVM IR (a Numba intrinsic) rather than as Numba loops, because
LLVM cannot keep a Numba loop's accumulators in registers: Numba gives it no aliasing
information, so ``out[j] += ...`` loads and stores ``out`` on every row, and a dot's
sum cannot be reordered without fastmath. In IR the accumulators are vector locals.
Measured on a block of 32 rows x 64 (in L1): 2.9 ns a row for ``_sg_rows_tdot``
against 4.6-6.2 ns for the best Numba loops (4 rows unrolled, fastmath) and 7-8 ns
for BLAS gemv. 256-bit vectors (4 float64 or 8 float32) beat 512-bit ones on AVX-512
hardware here (Zen 4 splits them), and are native on AVX2.

The summation order is fixed (vector lanes, then a pairwise fold of the lanes, then the
scalar tail), so results are the same on every run; they differ from BLAS's in the last
bits only.
"""

ROWS = '''@njit(cache=True, error_model="numpy")
def _sg_rows_dot(a, r0, r1, x, out):
    """out[k] = a[r0 + k, :] . x for k < r1 - r0 (a gemv over a block of rows)."""
    _sg_rows_dot_ir(np.ascontiguousarray(a), r0, r1, np.ascontiguousarray(x), out)


@njit(cache=True, error_model="numpy")
def _sg_rows_tdot(a, r0, r1, g, out):
    """out[j] += sum of g[k] a[r0 + k, j] over k < r1 - r0 (a transposed gemv, added)."""
    _sg_rows_tdot_ir(np.ascontiguousarray(a), r0, r1, np.ascontiguousarray(g), out)


@njit(cache=True, error_model="numpy")
def _sg_aligned(a, steps):
    """``a``, or a copy of it on a 32-byte boundary, for a run of ``steps`` full-batch
    steps: NumPy often places an array 16 bytes off one, and then every other 256-bit
    load of the row kernels straddles two cache lines (W1's step: 59 against 52 us). The
    copy costs about one step, so a run of fewer than 4 keeps ``a``."""
    if steps < 4 or a.ctypes.data % 32 == 0:
        return a
    out = np.empty_like(a)
    out[:] = a
    return out


def _sg_rows_intrinsic(name, method):
    """The intrinsic behind ``name``: ``_SgRows.<method>`` on C-contiguous operands."""
    def kernel(typingctx, a, r0, r1, v, out):
        _sg_rows_check(name, a, v, out)

        def codegen(context, builder, signature, args):
            getattr(_SgRows(context, builder, signature, args), method)()
            return context.get_dummy_value()
        return numba.types.void(a, numba.types.intp, numba.types.intp, v, out), codegen
    kernel.__name__ = name + "_ir"
    return numba.extending.intrinsic(kernel)


def _sg_rows_check(name, a, v, out):
    ok = (isinstance(a, numba.types.Array) and a.ndim == 2 and a.layout == "C"
          and all(isinstance(t, numba.types.Array) and t.ndim == 1 and t.layout == "C"
                  and t.dtype == a.dtype for t in (v, out))
          and a.dtype in (numba.types.float64, numba.types.float32))
    if not ok:
        raise numba.core.errors.TypingError(
            f"{name} needs a C-contiguous 2-D float array and two 1-D ones of its dtype, "
            f"got {a}, {v}, {out}")


_sg_rows_dot_ir = _sg_rows_intrinsic("_sg_rows_dot", "dots")
_sg_rows_tdot_ir = _sg_rows_intrinsic("_sg_rows_tdot", "tdots")


class _SgRows:
    """IR of the two kernels. Vectors of 256 bits; ``LANES`` vectors per column panel in
    the transposed product (that many independent accumulator chains: 8 keep both FMA
    units busy through the FMA's 4-cycle latency, where 4 ran at half rate: 3.45 -> 2.9 ns
    a row at d = 64), ``ROWS`` rows at a time in the dot products (each its own
    accumulator, sharing the loads of x)."""
    LANES, ROWS = 8, 8

    def __init__(self, context, builder, signature, args):
        from llvmlite import ir
        from numba.core import cgutils
        self.ir, self.cg, self.b = ir, cgutils, builder
        a_ty = signature.args[0]
        self.a = context.make_array(a_ty)(context, builder, args[0])
        self.v = context.make_array(signature.args[3])(context, builder, args[3])
        self.out = context.make_array(signature.args[4])(context, builder, args[4])
        self.r0, self.r1 = args[1], args[2]
        self.fty = context.get_value_type(a_ty.dtype)
        self.width = 256 // a_ty.dtype.bitwidth
        self.vty = ir.VectorType(self.fty, self.width)
        self.intp = self.r0.type
        self.cols = builder.extract_value(self.a.shape, 1)
        stride = builder.extract_value(self.a.strides, 0)
        self.pitch = builder.sdiv(stride, self.const(a_ty.dtype.bitwidth // 8))

    def const(self, n):
        return self.ir.Constant(self.intp, n)

    def at(self, base, offset):
        return self.b.gep(base, [offset], inbounds=True)

    def row(self, r):
        return self.at(self.a.data, self.b.mul(r, self.pitch))

    def vload(self, ptr):
        return self.b.load(self.b.bitcast(ptr, self.vty.as_pointer()), align=1)

    def vstore(self, value, ptr):
        self.b.store(value, self.b.bitcast(ptr, self.vty.as_pointer()), align=1)

    def vfma(self, x, y, acc):
        ir = self.ir
        name = f"llvm.fma.v{self.width}f{64 if isinstance(self.fty, ir.DoubleType) else 32}"
        fn = self.cg.get_or_insert_function(
            self.b.module, ir.FunctionType(self.vty, [self.vty] * 3), name)
        return self.b.call(fn, [x, y, acc])

    def splat(self, value):
        ir, b = self.ir, self.b
        one = b.insert_element(ir.Constant(self.vty, ir.Undefined), value,
                               ir.Constant(ir.IntType(32), 0))
        mask = ir.Constant(ir.VectorType(ir.IntType(32), self.width), [0] * self.width)
        return b.shuffle_vector(one, ir.Constant(self.vty, ir.Undefined), mask)

    def fold(self, v):
        """The sum of a vector's lanes, halves added pairwise."""
        ir, b, n = self.ir, self.b, self.width
        while n > 1:
            h = n // 2
            lo, hi = ([ir.Constant(ir.IntType(32), k) for k in ks]
                      for ks in (range(h), range(h, n)))
            v = b.fadd(b.shuffle_vector(v, v, ir.Constant(ir.VectorType(ir.IntType(32), h), lo)),
                       b.shuffle_vector(v, v, ir.Constant(ir.VectorType(ir.IntType(32), h), hi)))
            n = h
        return b.extract_element(v, ir.Constant(ir.IntType(32), 0))

    def loop(self, count):
        return self.cg.for_range(self.b, count)

    def var(self, ty):
        return self.cg.alloca_once(self.b, ty)    # promoted to a register by mem2reg

    # -- out[r] = a[r, :] . x --------------------------------------------------------------
    def dots(self):
        b, R = self.b, self.ROWS
        n = b.sub(self.r1, self.r0)
        groups = b.sdiv(n, self.const(R))
        with self.loop(groups) as g:
            self.dot_rows(b.add(self.r0, b.mul(g.index, self.const(R))), R)
        with self.loop(b.sub(n, b.mul(groups, self.const(R)))) as g:
            self.dot_rows(b.add(self.r0, b.add(b.mul(groups, self.const(R)), g.index)), 1)

    def dot_rows(self, first, count):
        b, W = self.b, self.width
        rows = [self.row(b.add(first, self.const(k))) for k in range(count)]
        acc = [self.var(self.vty) for _ in rows]
        tail = [self.var(self.fty) for _ in rows]
        for k in range(count):
            b.store(self.ir.Constant(self.vty, [0.0] * W), acc[k])
            b.store(self.ir.Constant(self.fty, 0.0), tail[k])
        chunks = b.sdiv(self.cols, self.const(W))
        with self.loop(chunks) as c:
            j = b.mul(c.index, self.const(W))
            xv = self.vload(self.at(self.v.data, j))
            for k, r in enumerate(rows):
                b.store(self.vfma(self.vload(self.at(r, j)), xv, b.load(acc[k])), acc[k])
        done = b.mul(chunks, self.const(W))
        with self.loop(b.sub(self.cols, done)) as c:
            j = b.add(done, c.index)
            xj = b.load(self.at(self.v.data, j))
            for k, r in enumerate(rows):
                b.store(b.fadd(b.load(tail[k]), b.fmul(b.load(self.at(r, j)), xj)), tail[k])
        at = b.sub(first, self.r0)
        for k in range(count):
            total = b.fadd(self.fold(b.load(acc[k])), b.load(tail[k]))
            b.store(total, self.at(self.out.data, b.add(at, self.const(k))))

    # -- out[j] += sum_r g[r] a[r, j] ---------------------------------------------------------
    def tdots(self):
        b, W, L = self.b, self.width, self.LANES
        panels = b.sdiv(self.cols, self.const(W * L))
        with self.loop(panels) as p:
            self.panel(b.mul(p.index, self.const(W * L)), L)
        done = b.mul(panels, self.const(W * L))
        vectors = b.sdiv(b.sub(self.cols, done), self.const(W))   # fewer than L
        count = L // 2
        while count:       # the rest in panels of L/2, L/4, ..., 1 vectors: each at most once
            has = b.icmp_signed("!=", b.and_(vectors, self.const(count)), self.const(0))
            with b.if_then(has):
                self.panel(done, count)
            done = b.select(has, b.add(done, self.const(count * W)), done)
            count //= 2
        with self.loop(b.sub(self.cols, done)) as c:
            self.column(b.add(done, c.index))

    def panel(self, j0, count):
        """Columns j0 .. j0 + count * width: accumulators in registers over the rows."""
        b, W = self.b, self.width
        acc = [self.var(self.vty) for _ in range(count)]
        cols = [b.add(j0, self.const(k * W)) for k in range(count)]
        for k in range(count):
            b.store(self.vload(self.at(self.out.data, cols[k])), acc[k])
        with self.loop(b.sub(self.r1, self.r0)) as i:
            gv = self.splat(b.load(self.at(self.v.data, i.index)))
            row = self.row(b.add(self.r0, i.index))
            for k in range(count):
                b.store(self.vfma(self.vload(self.at(row, cols[k])), gv, b.load(acc[k])), acc[k])
        for k in range(count):
            self.vstore(b.load(acc[k]), self.at(self.out.data, cols[k]))

    def column(self, j):
        b = self.b
        s = self.var(self.fty)
        target = self.at(self.out.data, j)
        b.store(b.load(target), s)
        with self.loop(b.sub(self.r1, self.r0)) as i:
            row = self.row(b.add(self.r0, i.index))
            term = b.fmul(b.load(self.at(self.v.data, i.index)), b.load(self.at(row, j)))
            b.store(b.fadd(b.load(s), term), s)
        b.store(b.load(s), target)
'''

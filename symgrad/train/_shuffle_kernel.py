"""The Numba kernel behind ``symgrad.train.shuffle`` (imported only when used: it needs
Numba's compiler, or its cache, which costs ~5 ms to load)."""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from symgrad.train.shuffle import BLOCK

PCG64_MULTIPLIER = 0x2360ED051FC65DA44385DF649FCCF645   # NumPy's PCG_DEFAULT_MULTIPLIER_128


@intrinsic
def _pcg64_step(typingctx, state_hi, state_lo, inc_hi, inc_lo):
    """(state * MULTIPLIER + inc) mod 2**128 on (high, low) uint64 halves, as one i128
    multiply-add (Numba has no 128-bit integers; 64-bit halves would need four products)."""
    u64 = types.uint64
    sig = types.UniTuple(u64, 2)(u64, u64, u64, u64)

    def codegen(context, builder, signature, args):
        i128 = ir.IntType(128)

        def wide(high, low):
            return builder.or_(builder.shl(builder.zext(high, i128), ir.Constant(i128, 64)),
                               builder.zext(low, i128))
        new = builder.add(builder.mul(wide(args[0], args[1]), ir.Constant(i128, PCG64_MULTIPLIER)),
                          wide(args[2], args[3]))
        high = builder.trunc(builder.lshr(new, ir.Constant(i128, 64)), ir.IntType(64))
        return context.make_tuple(builder, signature.return_type,
                                  [high, builder.trunc(new, ir.IntType(64))])
    return sig, codegen


@njit(cache=True, nogil=True)
def _refill(st, buf):
    """Fill ``buf`` with the next len(buf) // 2 PCG64 outputs (XSL-RR), low half first;
    ``st[0:2]`` (state high, low) advances."""
    hi, lo, inc_hi, inc_lo = st[0], st[1], st[2], st[3]
    for w in range(buf.shape[0] // 2):
        hi, lo = _pcg64_step(hi, lo, inc_hi, inc_lo)
        x, rot = hi ^ lo, hi >> np.uint64(58)
        x = (x >> rot) | (x << ((np.uint64(64) - rot) & np.uint64(63)))
        buf[2 * w] = np.uint32(x & np.uint64(0xFFFFFFFF))
        buf[2 * w + 1] = np.uint32(x >> np.uint64(32))
    st[0], st[1] = hi, lo


@njit(cache=True, nogil=True)
def shuffled_rows(st, n, k, out):
    """Rows of ``out`` (k, n) := k Fisher-Yates shuffles of 0..n-1, drawing as NumPy's
    ``Generator.shuffle``. ``st``: uint64 [state hi, lo, inc hi, lo, has_uint32, uinteger].
    Returns (32-bit draws taken from fresh outputs, high half of the last output used)."""
    buf = np.empty(BLOCK, np.uint32)
    p, blocks = BLOCK, 0
    if st[4] != 0:               # NumPy's buffered high half comes first
        p = BLOCK - 1
        buf[p] = np.uint32(st[5])
    for e in range(k):
        row = out[e]
        for i in range(n):
            row[i] = i
        i = n - 1
        while i > 0:
            low = 1                  # rows i in [low, 2 low) share random_interval's mask
            while low * 2 <= i:
                low *= 2
            mask = np.uint32(2 * low - 1)
            while i >= low:
                if p == BLOCK:
                    _refill(st, buf)
                    p, blocks = 0, blocks + 1
                v = np.int64(buf[p] & mask)
                p += 1
                take = v <= i        # a rejected draw swaps row i with itself
                j = v if take else i
                row[i], row[j] = row[j], row[i]
                i -= 1 if take else 0
    if blocks == 0:
        return 0, np.uint32(0)
    return (blocks - 1) * BLOCK + p, buf[p] if p % 2 else buf[p - 1]

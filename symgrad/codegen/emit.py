"""Emission of one function body from a :class:`~symgrad.codegen.schedule.Plan`.

Straight-line code: each step is a loop nest (fused elementwise nodes and
reductions, one short statement per node, a comment naming it) or a kernel
written by its op's ``emit`` hook (BLAS calls, row-wise softmax, cross-entropy).
Identifiers come from the module's :class:`~symgrad.codegen.prepare.Namer`.
"""
import math
import re

import numpy as np

from symgrad.errors import MissingRuleError
from symgrad.graph.dims import base
from symgrad.graph.registry import get_op
from symgrad.codegen import fused_update, rowpass
from symgrad.codegen.prepare import comment_for
from symgrad.codegen.schedule import loop_dims

# Operands that can be substituted into a consumer's expression instead of a statement.
_SIMPLE = re.compile(r"^(-?[0-9.e+-]+|math\.(inf|nan)"
                     r"|[A-Za-z_][A-Za-z0-9_]*(\[[A-Za-z0-9_, ]*\])?)$")

# A float literal (or math.inf / math.nan) in an expression: in a float32 module it is
# written np.float32(...), since Numba types a bare literal as float64 and would widen
# the whole expression (and halve the width of its vector loop). W2 float32: -5%.
_FLOAT_LITERAL = re.compile(r"(?<![\w.])(\d+\.\d*(?:e[-+]?\d+)?|\d+e[-+]?\d+"
                            r"|math\.(?:inf|nan))(?![\w.(])")


def float32_literals(expr):
    return _FLOAT_LITERAL.sub(_as_float32, expr)


def _as_float32(match):
    """A literal float32 holds as it is (1e39 would be inf, 1e-46 zero: kept float64)."""
    text = match.group(1)
    value = float(text.removeprefix("math."))      # "1e-4", "2.0", "math.inf", "math.nan"
    with np.errstate(over="ignore", under="ignore"):
        kept = np.float32(value)
    if (np.isfinite(value) and not np.isfinite(kept)) or (value != 0 and kept == 0):
        return text
    return f"np.float32({text})"


# A sum in eight interleaved partial sums: eight independent chains of adds instead of
# one, so it runs at the adder's throughput, not its latency (~3x faster). A fixed
# order: the same result every run, and no less accurate than one running sum.
SUM = '''def _sg_sum(a):
    """Sum of a 1-D array: partial sums of every eighth element, added pairwise."""
    n = a.shape[0]
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    for i in range(0, n - 7, 8):
        s0 += a[i]
        s1 += a[i + 1]
        s2 += a[i + 2]
        s3 += a[i + 3]
        s4 += a[i + 4]
        s5 += a[i + 5]
        s6 += a[i + 6]
        s7 += a[i + 7]
    total = ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7))
    for i in range(n - n % 8, n):
        total += a[i]
    return total
'''


def literal(value):
    value = float(value)
    if math.isnan(value):
        return "math.nan"
    if math.isinf(value):
        return "math.inf" if value > 0 else "(-math.inf)"
    return repr(value)


class Module:
    """What the functions of one generated module share: names, dims, dtype, helpers."""

    def __init__(self, namer, names, dtype, dims):
        self.namer, self.names, self.dtype = namer, names, dtype
        self.float32 = dtype == "np.float32"   # literals are typed to match (see above)
        self.size = {}
        for d in dims:      # a square tensor's axes H' and H share one size variable
            self.size[d] = self.size.get(base(d)) or namer.fresh(base(d))
            self.size.setdefault(base(d), self.size[d])
        pool = iter("ijklmnpqrsuvwxyzabcdefgh")
        self.index = {d: namer.fresh(next(pool, "i")) for d in dims}
        self.helpers = {}

    def note(self, node):
        return comment_for(node, self.names, getattr(self, "adjoint_of", None))

    def use_helpers(self, node, vector=False):
        code = get_op(node.op).code
        self.helpers.update(code["vector_helpers"] if vector else code.get("helpers", {}))


class Body:
    """Lines of one function: ``emit()`` walks the plan's steps in order."""

    def __init__(self, module, plan, args):
        self.m, self.plan, self.args = module, plan, set(args)
        self.lines, self.access = [], {}
        self.vector = False     # emitting a loop of plan.vector
        self.transposed = {}    # data node -> name of a transposed copy the caller keeps
        self.rows = None        # in a row pass's block: (dim, first row, end row)
        self.local = {}         # ... and its block-sized buffers: node -> index expression
        self.views = {}         # ... and the block's rows of whole-length arrays: node -> name
        self.row_parity = None  # an expression true on steps whose row pass runs backwards
        self.defer = {}         # gradients moved to the updates (fused_update.py): node ->
        self.deferred = {}      # its inlined loop members, or None; made: node -> Moved

    # -- how a node is read --------------------------------------------------------
    def idx(self, dims):
        return ", ".join(self.m.index[d] for d in dims)

    def read(self, node, group=None):
        """Expression for ``node``'s element at the current loop index."""
        if group is not None and node in self.access:
            return self.access[node]
        kind = self.plan.kind[node]
        if kind == "const":
            return literal(node.attrs["value"])
        if kind == "value":     # a count of elements, e.g. the N of a mean
            value = get_op(node.op).code["value"](node, self.m.size.get)
            return f"{self.m.dtype}({value})" if self.m.float32 else f"({value})"
        name = self.m.names[node]
        if not node.dims:
            return f"{name}[0]" if kind == "leaf" else name
        return self.element(node)

    def element(self, node):
        """``node``'s array at the loop index (the row within the block, in a row pass)."""
        name, index = self.m.names[node], self.local.get(node)
        if index is None and self.rows and node.dims == self.rows[:1]:
            # a view of the block's rows, indexed from 0: with y[i] Numba's check for a
            # negative index stays in the loop (LLVM cannot tell the block's start is >= 0)
            if node not in self.views:
                self.views[node] = self.m.namer.fresh(name + "_rows")
            name, index = self.views[node], self.block_index()
        return f"{name}[{index or self.idx(node.dims)}]"

    def block_index(self):
        """In a row pass's block: the loop index counted from the block's first row."""
        return f"{self.m.index[self.rows[0]]} - {self.rows[1]}"

    # -- fused loop nests ----------------------------------------------------------
    def loops(self, dims, indent=""):
        head = [f"{indent}{'    ' * k}for {self.m.index[d]} in range({self.bounds(d)}):"
                for k, d in enumerate(dims)]
        return head, indent + "    " * len(dims)

    def bounds(self, d):
        """``range``'s arguments for dim ``d``: its size, or a row pass's block of rows."""
        if self.rows and self.rows[0] == d:
            return f"{self.rows[1]}, {self.rows[2]}"
        return self.m.size[d]

    def group(self, step):
        if step in self.plan.summed:
            return self.summed(step)
        self.group_start(step)
        self.group_loop(step)
        self.group_end(step)

    def group_start(self, step):
        """Initial values of the step's reductions: before its loop (or a row pass's blocks)."""
        if step in self.plan.summed:
            self.lines += [f"{self.m.names[r]} = 0.0" for r in step.members]
            return
        for r in (x for x in step.members if self.plan.kind[x] == "red"):
            init = "(-math.inf)" if get_op(r.op).code["reduce"] == "max" else "0.0"
            name = self.m.names[r]
            if not r.dims:
                self.lines.append(f"{name} = {init}")
                continue
            head, ind = self.loops(r.dims)
            self.lines += head + [f"{ind}{name}[{self.idx(r.dims)}] = {init}"]

    def group_loop(self, step):
        if step in self.plan.summed:      # in a row pass: this block's share of the sums
            lo, hi = self.rows[1:]
            for r in step.members:
                term = r.inputs[0]
                rows = f":{hi} - {lo}" if term in self.local else f"{lo}:{hi}"
                self.lines.append(f"{self.m.names[r]} += _sg_sum({self.m.names[term]}[{rows}])"
                                  f"  # {self.m.note(r)}")
            self.m.helpers["_sg_sum"] = SUM
            return
        head, ind = self.loops(step.dims)
        lines = {}
        self.access = {}
        self.vector = step in self.plan.vector     # use the ops' vectorisable templates
        for x in step.members:
            if x in self.defer:     # recomputed in its param's update loop instead
                chain = self.defer[x]
                self.deferred[x] = fused_update.Moved(
                    x, self, [line for m in chain[:-1] for line in lines[m]],
                    expr=self.expression(x))
            else:
                lines[x] = self.member(x)
        needed = self._needed(step)
        body = [ind + line for x in step.members if x in needed for line in lines[x]]
        self.lines += head + body if body else []     # a loop of moved gradients only: none
        self.access = {}

    def _needed(self, step):
        """The members of ``step`` whose statements stay in its loop: all but the moved
        gradients and what only they read."""
        only_moved = {m for g in step.members if g in self.defer for m in self.defer[g]}
        kept = {m for m in step.members if m not in only_moved}
        for m in reversed(step.members):
            if m in kept:
                kept |= {x for x in m.inputs if self.plan.step_of.get(x) is step}
        return kept - set(self.defer)

    def group_end(self, step):
        for r in (x for x in step.members if self.plan.kind[x] == "red"):
            if get_op(r.op).code["reduce"] == "mean":
                n = " * ".join(self.m.size[d] for d in loop_dims(r) if d not in r.dims) or "1"
                self.lines.append(f"{self.m.names[r]} /= {n}")

    def loop_comment(self, step):
        if step.dims and step not in self.plan.summed and self._needed(step):
            kept = [self.m.names[m] for m in step.members
                    if (m in self.plan.buffered or not m.dims) and m not in self.defer]
            self.lines.append(f"# fused loop over {', '.join(step.dims)}: "
                              f"{', '.join(kept)}"[:90])

    def summed(self, step):
        """Full sums of buffered terms (``Plan.summed``): ``_sg_sum`` over the flat array."""
        self.m.helpers["_sg_sum"] = SUM
        for r in step.members:
            term = r.inputs[0]
            flat = self.m.names[term] + (".reshape(-1)" if term.ndim > 1 else "")
            self.lines.append(f"{self.m.names[r]} = _sg_sum({flat})  # {self.m.note(r)}")
            if get_op(r.op).code["reduce"] == "mean":
                n = " * ".join(self.m.size[d] for d in term.dims)
                self.lines.append(f"{self.m.names[r]} /= {n}")

    def expression(self, node):
        """``(expression, comment)`` of an elementwise member at the loop index."""
        code = get_op(node.op).code
        vector = self.vector and "vector" in code
        self.m.use_helpers(node, vector)
        ops = [self.read(x, True) for x in node.inputs]
        template = code["vector" if vector else "scalar"]
        template = template(node) if callable(template) else template
        expr = template.format(*ops, index=self.m.index)
        if self.m.float32:
            expr = float32_literals(expr)
        return expr, f"  # {self.m.note(node)}"

    def member(self, node):
        code, name = get_op(node.op).code, self.m.names[node]
        if self.plan.kind[node] == "red":
            self.m.use_helpers(node, self.vector and "vector" in code)
            return self.reduce_into(node, code, [self.read(x, True) for x in node.inputs], name)
        expr, note = self.expression(node)
        if node in self.plan.buffered:
            self.access[node] = self.element(node)
            return [f"{self.access[node]} = {expr}{note}"]
        if _SIMPLE.match(expr):
            self.access[node] = expr
            return []
        self.access[node] = name
        return [f"{name} = {expr}{note}"]

    def reduce_into(self, node, code, ops, name):
        expr = code.get("element", "{0}").format(*ops)
        target = f"{name}[{self.idx(node.dims)}]" if node.dims else name
        note = f"  # {self.m.note(node)}"
        if code["reduce"] != "max":
            return [f"{target} += {expr}{note}"]
        lines = []
        if not _SIMPLE.match(expr):
            tmp = self.m.namer.fresh("v")
            lines, expr = [f"{tmp} = {expr}"], tmp
        # `v != v` keeps NaN, as np.max does
        return lines + [f"if {expr} > {target} or {expr} != {expr}:{note}",
                        f"    {target} = {expr}"]

    # -- kernels ---------------------------------------------------------------------
    def kernel(self, step):
        node = step.members[0]
        self.m.use_helpers(node)
        filled = next((s for s, k in self.plan.fills.items() if k is node), None)
        if filled is not None and filled not in self.plan.buffered:
            filled = None
        ctx = KernelContext(self, node, filled)
        lines = [f"# {self.m.names[node]}: {self.m.note(node)}",
                 *get_op(node.op).code["emit"](node, ctx)]
        if node in self.defer:
            self.deferred[node] = fused_update.Moved(node, self, lines, ctx=ctx)
        else:
            self.lines += lines

    def emit(self):
        k = 0
        while k < len(self.plan.steps):
            rp = self.plan.passes.get(k)
            if rp is not None:
                rowpass.emit(self, rp)
                k = rp.last + 1
                continue
            step = self.plan.steps[k]
            if step.kind == "group":
                self.loop_comment(step)
                self.group(step)
            elif step.kind == "kernel":
                self.kernel(step)
            elif step.kind != "filled":
                raise MissingRuleError(f"cannot emit step {step}")
            k += 1
        return self.lines


class KernelContext:
    """What an op's ``emit`` hook may ask: operand arrays and elements, the output,
    dim sizes and loop indices, fresh local names, and a sibling buffer to fill."""

    def __init__(self, body, node, filled):
        self.body, self.node = body, node
        self.out = body.m.names[node]
        self.filled = self.filled_name = None
        if filled is not None:
            self.filled_name = fname = body.m.names[filled]
            self.filled = lambda idx: f"{fname}[{', '.join(idx[d] for d in filled.dims)}]"

    def _source(self, k):
        return self.body.plan.array_source(self.node.inputs[k])

    def operand(self, k):
        """``(array name, transposed?)`` of input ``k``, for BLAS calls."""
        src, view = self._source(k)
        if src in self.body.transposed:
            return self.body.transposed[src], view is None
        return self.body.m.names[src], view is not None

    def arr(self, k):
        src, view = self._source(k)
        name = self.body.m.names[src]
        return view.format(name) if view else name

    def at(self, k, idx):
        src, _ = self._source(k)
        if not src.dims:
            return self.body.read(src)
        return f"{self.body.m.names[src]}[{', '.join(idx[d] for d in src.dims)}]"

    def out_at(self, idx):
        """The output element at ``idx``; a 0-d output is a local scalar, as ``read`` has
        it (``L[]`` is not Python: logsumexp of a 1-D tensor)."""
        if not self.node.dims:
            return self.out
        return f"{self.out}[{', '.join(idx[d] for d in self.node.dims)}]"

    def size(self, d):
        return self.body.m.size[d]

    def empty(self, dims):
        """Expression allocating an uninitialised float array over ``dims`` (a scratch)."""
        shape = ", ".join(self.size(d) for d in dims) + ("," if len(dims) == 1 else "")
        return f"np.empty(({shape}), {self.body.m.dtype})"

    def index(self, d):
        return self.body.m.index[d]

    def elementwise(self, expr):
        """``expr`` computed in the module's float dtype: its literals ``np.float32(...)``
        in a float32 module, where a bare ``0.0`` would widen the loop to float64.
        Not for accumulators, which stay float64."""
        return float32_literals(expr) if self.body.m.float32 else expr

    def fresh(self, base):
        return self.body.m.namer.fresh(base)

    def loops(self, dims):
        return self.body.loops(dims)

    def use_helpers(self, helpers):
        """Module-level helpers (name -> source) this kernel's code calls."""
        self.body.m.helpers.update(helpers)

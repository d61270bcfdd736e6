"""Scheduling: which nodes share a loop nest, which need a buffer.

Every node is one of
  leaf    an input or param (a function argument),
  const   a literal, value (``count``: a product of dim sizes),
  ew      elementwise, with a scalar template (including the index aliases
          ``expand`` and ``transpose``),
  red     a reduction of an elementwise term (sum, mean, max, bce_logits),
  kernel  an op with its own emit function (matmul, softmax, cross-entropy, ...),
  filled  a buffer another kernel writes as a by-product (softmax next to
          cross-entropy).

``ew`` and ``red`` nodes are fused: a list scheduler puts nodes that loop over the
same dims into one loop nest while the order allows it, so ``s = sigmoid(z)``,
``r = t - s``, ``loss += r * r`` and the backward ``g_z`` are one loop. A fused
node needs a buffer only when something outside its loop reads it.
"""
from symgrad.codegen import rowpass
from symgrad.errors import MissingRuleError
from symgrad.graph.registry import get_op
from symgrad.graph.traverse import topo_order


def kind_of(node):
    if node.op in ("input", "param"):
        return "leaf"
    if node.op == "const":
        return "const"
    code = get_op(node.op).code
    for key, kind in (("value", "value"), ("reduce", "red"), ("emit", "kernel"), ("scalar", "ew")):
        if key in code:
            return kind
    raise MissingRuleError(f"op {node.op!r} has no code hook; add one to its entry in symgrad/ops")


FREE = ("leaf", "const", "value")


def loop_dims(node):
    """The dims a fused node loops over: its own, or its input's for a reduction."""
    return node.inputs[0].dims if get_op(node.op).code.get("reduce") else node.dims


class Step:
    """One unit of emitted code: a fused loop nest (``group``) or one kernel."""

    def __init__(self, kind, dims=()):
        self.kind, self.dims, self.members = kind, tuple(dims), []

    def __repr__(self):
        return f"<{self.kind} {self.dims} {[m.op for m in self.members]}>"


class Plan:
    """The schedule of one generated function computing ``outputs``."""

    def __init__(self, outputs, row_passes=False):
        self.outputs = list(dict.fromkeys(outputs))
        self.order = topo_order(self.outputs)
        self.kind = {n: kind_of(n) for n in self.order}
        self.fills = self._find_fills()
        self.steps = self._schedule()
        self.vector = self._vectorise()
        self.step_of = {m: s for s in self.steps for m in s.members}
        self.buffered = self._buffered()
        # X @ w ... X.T @ g: one pass over X's rows; only where the caller allocates the
        # pass's block-sized buffers and lends none of them (the step, hessian and hvp)
        self.passes = rowpass.find(self) if row_passes else {}

    # -- a kernel that also fills a sibling node (softmax next to cross-entropy) ------
    def _find_fills(self):
        fills = {}
        by_key = {(n.op, n.inputs, tuple(sorted(n.attrs.items()))): n for n in self.order}
        for n in self.order:
            hook = get_op(n.op).code.get("fills") if self.kind[n] == "kernel" else None
            if hook:
                op, attrs = hook(n)
                sib = by_key.get((op, n.inputs[:1], tuple(sorted(attrs.items()))))
                if sib is not None and sib not in fills:
                    fills[sib] = n
                    self.kind[sib] = "filled"
        return fills

    def array_source(self, node):
        """The node whose array a kernel reads, and the view of it (``.T``) if any."""
        view = get_op(node.op).code.get("view") if self.kind[node] == "ew" else None
        if view and self.kind[node.inputs[0]] != "const":
            return node.inputs[0], view
        return node, None

    def deps(self, node):
        """Nodes that must be computed before ``node`` (free leaves excluded)."""
        k = self.kind[node]
        if k == "filled":
            ins = [self.fills[node]]
        elif k == "kernel":
            ins = [self.array_source(x)[0] for x in node.inputs]
        else:
            ins = node.inputs
        return [x for x in ins if self.kind[x] not in FREE]

    # -- list scheduling -------------------------------------------------------------
    def _schedule(self):
        todo = [n for n in self.order if self.kind[n] not in FREE]
        needed = set()
        for n in reversed(todo):      # kernels read a transpose's source: skip the transpose
            if n in self.outputs or any(n in self.deps(c) for c in needed):
                needed.add(n)
        todo = [n for n in todo if n in needed]
        pos = {n: k for k, n in enumerate(todo)}
        waiting = {n: set(self.deps(n)) for n in todo}
        users = {n: [] for n in todo}
        for n in todo:
            for d in waiting[n]:
                users[d].append(n)
        sinks = {n for n in todo if self._sinks(n, users[n])}
        self.late = self._loss_only(todo, users)
        ready = sorted((n for n in todo if not waiting[n]), key=pos.get)
        steps, group = [], None
        while ready:
            pick = self._pick(ready, group, waiting, users, sinks)
            if self._hoists(pick, group):       # a scalar: computed before the open loop
                at = steps.index(group)
                if at == 0 or steps[at - 1].kind != "group" or steps[at - 1].dims:
                    steps.insert(at, Step("group", ()))
                    at += 1
                steps[at - 1].members.append(pick)
            else:
                if not (group and self._joins(pick, group)):
                    fused = self.kind[pick] in ("ew", "red")
                    group = Step("group", loop_dims(pick)) if fused else None
                    steps.append(group or Step(self.kind[pick]))
                steps[-1].members.append(pick)
            ready.remove(pick)
            for u in users[pick]:
                waiting[u].discard(pick)
                if not waiting[u]:
                    ready.append(u)
            ready.sort(key=pos.get)
        return steps

    def _sinks(self, node, users):
        """An elementwise node better computed in its consumers' loop than now."""
        return (self.kind[node] == "ew" and node.dims and node not in self.outputs and users
                and all(self.kind[u] in ("ew", "red") and set(loop_dims(u)) == set(node.dims)
                        for u in users))

    def _pick(self, ready, group, waiting, users, sinks):
        """Next node: a hoistable scalar, else one that fuses into the open loop, else the
        first in graph order; nodes that sink wait until a consumer can follow them."""
        def eligible(n, avail):
            return n not in sinks or any(waiting[u] <= avail | {n} and eligible(u, avail | {n})
                                         for u in users[n])
        for test in (lambda n: self._hoists(n, group),
                     lambda n: group is not None and self._joins(n, group)
                     and eligible(n, set(ready)),
                     lambda n: n not in sinks and n not in self.late,
                     lambda n: eligible(n, set(ready)) and n not in self.late,
                     lambda n: n not in sinks):
            for n in ready:
                if test(n):
                    return n
        return ready[0]

    def _loss_only(self, todo, users):
        """Loop work that only the (scalar) first output needs, when other outputs exist:
        e.g. a penalty's value. The gradients never wait for it, so it is scheduled last,
        where it can share a loop with gradient work over the same dims."""
        if len(self.outputs) < 2:
            return set()
        first, late = self.outputs[0], set()
        for n in reversed(todo):
            if n is not first and n not in self.outputs[1:] and users[n] and \
                    all(u is first or u in late for u in users[n]):
                late.add(n)
        return {n for n in late if self.kind[n] in ("ew", "red") and loop_dims(n)}

    def _hoists(self, node, group):
        return (group is not None and group.dims and self.kind[node] in ("ew", "red")
                and not loop_dims(node) and not any(x in group.members for x in node.inputs))

    def _joins(self, node, group):
        if self.kind[node] not in ("ew", "red") or set(loop_dims(node)) != set(group.dims):
            return False
        # a reduction's result exists only after its loop ends
        return not any(x in group.members and self.kind[x] == "red" for x in node.inputs)

    # -- vectorisable loops ------------------------------------------------------------------
    def _vectorise(self):
        """Split serial reductions out of fused loops; return the loops worth vectorising.

        A serial reduction (one chain of adds along the innermost loop; without fastmath
        LLVM may not reorder it) keeps the whole loop scalar and is latency-bound. A full
        sum of a plain term (the loss, a penalty) moves into a step of its own right after,
        reading its term from a buffer, and is summed in interleaved partial sums
        (``summed``, emitted as ``_sg_sum``). A loop computing an op with a vectorisable
        template (exp, sigmoid: ``code["vector"]``) and nothing LLVM cannot vectorise
        loses all its serial reductions that way and is returned: it uses the templates.
        Only loops that also compute something read elsewhere (a gradient) are split.
        """
        vector, steps, self.summed = set(), [], set()
        readers = {}
        for n in self.order:
            for x in self.deps(n) if self.kind[n] not in FREE else ():
                readers.setdefault(x, set()).add(n)
        for step in self.steps:
            steps.append(step)
            if step.kind != "group" or not step.dims:
                continue
            serial = [m for m in step.members
                      if self.kind[m] == "red" and step.dims[-1] not in m.dims]
            rest = [m for m in step.members if m not in serial]
            # a loop that only feeds its sums stays one loop: nothing to vectorise apart
            if not any(m in self.outputs or readers.get(m, set()) - set(step.members)
                       for m in rest):
                continue
            fast = any("vector" in get_op(m.op).code for m in rest) and \
                all(self._vector_safe(m) for m in rest)
            move = serial if fast else [m for m in serial if self._summable(m)]
            if move and rest:
                step.members = [m for m in step.members if m not in move]
                steps.append(Step("group", step.dims))
                steps[-1].members = move
                if all(self._summable(m) for m in move):
                    self.summed.add(steps[-1])
            if fast:
                vector.add(step)
        self.steps = steps
        return vector

    def _summable(self, node):
        """A sum or mean of all of its plain term's elements."""
        code = get_op(node.op).code
        return code.get("reduce") in ("sum", "mean") and "element" not in code and \
            not node.dims and self.kind[node.inputs[0]] not in ("const", "value")

    def _vector_safe(self, node):
        """Whether LLVM can vectorise ``node``'s statement: plain arithmetic and selects,
        or a vectorisable template; no libm call, no ``**``, no max-reduction branch."""
        code = get_op(node.op).code
        if "vector" in code:
            return True
        if self.kind[node] == "red":
            return code["reduce"] != "max" and self._plain(code.get("element", "{0}"), node)
        return self._plain(code["scalar"], node)

    @staticmethod
    def _plain(template, node):
        text = template(node) if callable(template) else template
        return not any(call in text for call in ("math.", "_sg_", "**"))

    # -- buffers ---------------------------------------------------------------------------
    def _buffered(self):
        """Nodes that live in arrays (besides leaves): read outside their loop, or outputs."""
        out = set()
        for step in self.steps:
            for m in step.members:
                if not m.dims:
                    continue                  # scalars are locals of the function
                if step.kind != "group" or self.kind[m] == "red":
                    out.add(m)
        readers = {}
        for step in self.steps:
            for m in step.members:
                for x in self.deps(m):
                    readers.setdefault(x, set()).add(step)
        for step in self.steps:
            if step.kind != "group" or not step.dims:
                continue
            for m in step.members:
                if m.dims and (m in self.outputs or readers.get(m, set()) - {step}):
                    out.add(m)
        return out

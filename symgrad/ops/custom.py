"""``sg.elementwise(name, body)``: a registry entry generated from a SymPy body.

::

    swish = sg.elementwise("swish", lambda x: x * sg.sigmoid(x))
    h = swish(X @ W1 + b1)          # a node; swish(sp.Symbol("x")) is a SymPy expression

From the body symgrad makes what a hand-written entry of ``symgrad/ops`` has:

* a SymPy function class ``swish`` (LaTeX ``\\operatorname{swish}``) whose ``fdiff`` is
  the class of its derivative, ``swish'``, itself a generated op made on first use
  (so second derivatives work too); derivations print ``swish'(z_ij)``;
* the NumPy meaning, by interpreting the body's tree (:func:`symgrad.ops.body.numpy_value`);
* the gradient rule ``g * swish'(x)``;
* the emitted code: a scalar helper ``_sg_f_swish`` among the generated module's helpers,
  printed from the body with common subexpressions eliminated.

The body is made stable first (:func:`symgrad.ops.body.stabilize`): ``x / (1 + exp(-x))``
becomes ``x * sigmoid(x)``, so its derivative is never inf/inf. Kinks (``Piecewise``,
``Abs``, ``Max(x, 0)``) take the derivative of the branch their condition selects, so at
``x = 0`` of ``Piecewise((x, x > 0), (a * x, True))`` it is ``a`` (the left derivative,
as relu'(0) = 0); Dirac deltas are dropped.

Parameters (``params={"slope": 0.01}``) are real numbers fixed per node (``leaky_relu(x,
slope=0.2)``); the body receives them as symbols, the derivative is taken in ``x`` only.
"""
import numbers
import re
import threading
from dataclasses import dataclass, field

import numpy as np

from symgrad.errors import DeclarationError
from symgrad.graph.names import check_name, is_plain_identifier
from symgrad.graph.node import Node, apply
from symgrad.graph.registry import OPS, OpDef, register
from symgrad.ops._lazy import LazyModule, is_sympy, sp
from symgrad.ops._shape import unary_infer
from symgrad.ops import elementwise as E
from symgrad.ops.elementwise import HELPERS

# Vectorisable helper forms, where the code generator has them (symgrad.ops.elementwise).
VECTOR_HELPERS = getattr(E, "VECTOR_HELPERS", None)

# The body's rewriting and printing need SymPy: imported when an op is first generated.
B = LazyModule("symgrad.ops.body")
BC = LazyModule("symgrad.ops.body_code")


def _arg():
    """``x``, the symbol every body is written in."""
    return sp.Symbol("x", real=True)


@dataclass(eq=False)
class Custom:
    """One generated op: ``expr`` in ``x`` (:func:`_arg`) and the parameter symbols."""

    name: str                # op name: "swish", its derivative "swish_prime"
    display: str             # how formulas print it: "swish", "swish'"
    expr: object
    params: dict             # parameter name -> default value
    order: int = 0           # 0 for the user's function, k for its k-th derivative
    base: str = ""           # the user's name
    helper_name: str = ""
    helpers: set = field(default_factory=set)     # helper names its code calls
    vector_helper_name: str = ""                  # "" when the body has no vector form
    vector_helpers: set = field(default_factory=set)
    func: object = None      # the SymPy function class
    user: object = None      # the function elementwise returned
    _derivative: object = None

    @property
    def symbols(self):
        return [_arg()] + [param_symbol(p) for p in self.params]

    def numpy(self, x, *values):
        out = B.numpy_value(self.expr, dict(zip(self.symbols, (x, *values))))
        return np.broadcast_to(out, np.shape(x)) if np.shape(out) != np.shape(x) else out

    def derivative(self):
        """The generated op of d expr / dx, or a SymPy number when it is constant."""
        with _LOCK:              # made on first use, perhaps by two threads at once
            if self._derivative is None:
                d = B.drop_deltas(B.stabilize(sp.diff(self.expr, _arg())))
                B.check_body(d, set(self.symbols), f"the derivative of {self.display}")
                self._derivative = d if not d.free_symbols else _make(
                    f"{self.name}_prime", self.display + "'", d, self.params, self.order + 1,
                    self.base)
            return self._derivative


CUSTOM = {}   # op name -> Custom
_LOCK = threading.RLock()   # guards CUSTOM and the registry while ops are generated


def param_symbol(name):
    return sp.Symbol(name, real=True)


def elementwise(name, body, params=None):
    """An elementwise op from ``body``, a function of a SymPy symbol returning a SymPy
    expression; returns the user function (nodes -> nodes, SymPy scalars -> SymPy).

    Calling it again with the same name and the same body returns the same function; a
    different body under a registered name is an error.
    """
    name, params = _check_name(name), _check_params(name, params or {})
    where = f"elementwise {name!r}"
    if not callable(body):
        raise DeclarationError(f"{where}: body must be a function of one SymPy symbol, "
                               f"got {type(body).__name__}")
    expr = _body_expr(body, params, where)
    with _LOCK:
        if name in CUSTOM:
            known = CUSTOM[name]
            if known.expr != expr or known.params != params:
                raise DeclarationError(f"{where} is already defined with the body "
                                       f"{known.expr}; choose another name for a different "
                                       "function")
            return user_function(known)
        if name in OPS:
            raise DeclarationError(f"{where}: {name!r} is a built-in op; choose another name")
        return user_function(_make(name, name, expr, params, 0, name))


def _body_expr(body, params, where):
    """The checked, stable SymPy expression of ``body``."""
    x = _arg()
    raw = B.as_expr(body(x, **{p: param_symbol(p) for p in params}), where)
    B.check_body(raw, {x, *map(param_symbol, params)}, where)
    return B.drop_deltas(B.stabilize(raw))


def _check_name(name):
    check_name(name, "elementwise op")
    if not is_plain_identifier(name) or name.endswith("_prime"):
        raise DeclarationError(
            f"elementwise op name {name!r} must be a plain identifier (letters, digits, "
            "underscores, starting with a letter, not ending in '_prime'): it names the "
            "op in formulas and code")
    return name


def _check_params(name, params):
    out = {}
    for p, value in params.items():
        # isidentifier() too: is_plain_identifier's regex ends in `$`, which also matches
        # before a final line break, so "a\n" would reach the helper's signature.
        if not (isinstance(p, str) and is_plain_identifier(p) and p.isidentifier()) or p == "x":
            raise DeclarationError(f"elementwise {name!r}: parameter name {p!r} must be a "
                                   "plain identifier other than 'x'")
        out[p] = _real(value, f"elementwise {name!r}: parameter {p!r}")
    return out


def _real(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not np.isfinite(float(value)):
        raise DeclarationError(f"{what} must be a finite real number, got {value!r}")
    return float(value)


# -- the generated pieces ----------------------------------------------------------------
_HELPER_SOURCES = {}   # helper name -> source, for generated ops calling each other


def _make(name, display, expr, params, order, base):
    op = Custom(name, display, expr, dict(params), order, base)
    op.helper_name = f"_sg_f{order or ''}_{base}"
    _generate(op)
    constant = _constant(op)
    register(OpDef(name, "elementwise", _infer(op), _element(op), _numpy(op),
                   (None,) if constant else (_vjp(op),), label=display, code=_code(op),
                   doc=f"generated by sg.elementwise from {expr}", constant=constant))
    CUSTOM[name] = op
    return op


def _generate(op):
    """The pieces made from the body with SymPy: the helpers' sources, the SymPy class."""
    expr, order, base = op.expr, op.order, op.base
    source, used = BC.numba_source(op.helper_name, expr, op.symbols)
    _HELPER_SOURCES[op.helper_name] = source
    op.helpers = set(used)
    if VECTOR_HELPERS is not None:   # a second helper for loops the codegen vectorises
        vector_name = f"_sg_fv{order or ''}_{base}"
        try:
            source, used = BC.numba_source(vector_name, expr, op.symbols, vector=True)
            _HELPER_SOURCES[vector_name] = source
            op.vector_helper_name, op.vector_helpers = vector_name, set(used)
        except BC.NoVectorForm:
            pass
    op.func = _sympy_class(op)
    B.GENERATED[op.func] = op


def _constant(op):
    """Whether the body is piecewise constant (the derivative of leaky_relu): no gradient
    flows through it."""
    return B.drop_deltas(sp.diff(op.expr, _arg())).is_zero is True


def _infer(op):
    """Dims as the input's; parameters default and are checked here, so every apply
    (the user function's, a gradient rule's, a generated test's) gets real numbers."""
    base = unary_infer(op.name)

    def infer(inputs, attrs):
        attrs.update(_param_values(op, attrs))
        return base(inputs, attrs)
    return infer


def _param_values(op, values, symbols=False):
    """``values`` (parameter name -> number, or real SymPy symbol if ``symbols``) checked,
    with the defaults filled in."""
    unknown = set(values) - set(op.params)
    if unknown:
        raise DeclarationError(f"{op.name}: unknown parameter(s) {sorted(unknown)}; "
                               f"it takes {sorted(op.params) or 'none'}")
    out = {}
    for p, default in op.params.items():
        v = values.get(p, default)
        if symbols and isinstance(v, sp.Symbol):
            if v.is_real is not True:
                raise DeclarationError(f"{op.name}: {p}={v} must be a real symbol "
                                       f"(sp.Symbol({v.name!r}, real=True))")
            out[p] = v
        else:
            out[p] = _real(v, f"{op.name}: {p}")
    return out


def _inline_call(op, x, values):
    """``op`` at ``x`` with a SymPy-symbol parameter: its body spelled with graph ops."""
    from symgrad.ops.inline import inline
    vals = _param_values(op, values, symbols=True)
    env = {_arg(): x, **{param_symbol(p): v for p, v in vals.items()}}
    return inline(op.expr, env, f"{op.name}({', '.join(f'{p}={v}' for p, v in vals.items())})")


def _element(op):
    def element(ctx, node, idx):
        return op.func(ctx.arg(0, idx), *[sp.Float(node.attrs[p]) for p in op.params])
    return element


def _numpy(op):
    return lambda node, sizes, x: op.numpy(x, *[node.attrs[p] for p in op.params])


def _vjp(op):
    def rule(g, node):
        d = op.derivative()
        if isinstance(d, Custom):
            return g * apply(d.name, node.inputs[0], **node.attrs)
        return g * float(d)      # a constant derivative (0 for piecewise-constant bodies)
    return rule


def _closure(name, used, known):
    """Sources of helper ``name`` and everything it calls: symgrad's helpers (``known``)
    and other generated ones, with what those call."""
    names, todo = set(), [name, *used]
    while todo:
        h = todo.pop()
        if h in names:
            continue
        names.add(h)
        if h in known:
            todo += re.findall(r"_sg_\w+", known[h])
        else:
            todo += [n for o in B.GENERATED.values() if h in (o.helper_name,
                                                                o.vector_helper_name)
                     for n in (o.helpers if h == o.helper_name else o.vector_helpers)]
    return {h: known[h] if h in known else _HELPER_SOURCES[h] for h in sorted(names)}


def _call(helper, op):
    def template(node):
        values = "".join(", " + BC.float_literal(float(node.attrs[p])) for p in op.params)
        return f"{helper}({{0}}{values})"
    return template


def _code(op):
    code = {"scalar": _call(op.helper_name, op),
            "helpers": _closure(op.helper_name, op.helpers, HELPERS)}
    if op.vector_helper_name:
        code["vector"] = _call(op.vector_helper_name, op)
        code["vector_helpers"] = _closure(op.vector_helper_name, op.vector_helpers,
                                          {**HELPERS, **VECTOR_HELPERS})
    return code


def _short(value):
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _sympy_class(op):
    """The SymPy function class of ``op``: exact numbers stay symbolic, floats evaluate."""

    def numeric_eval(cls, x, *values):
        if isinstance(x, sp.Float) and all(v.is_Number for v in values):
            return sp.Float(float(op.numpy(float(x), *map(float, values))))
        return None

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        d = op.derivative()
        return d.func(*self.args) if isinstance(d, Custom) else d

    def _eval_evalf(self, prec):
        if all(a.is_number for a in self.args):
            return sp.Float(float(op.numpy(*[float(a) for a in self.args])), prec)
        return None

    def _eval_expand_func(self, **hints):      # sp.expand_func(swish(x)) -> the body
        return op.expr.xreplace(dict(zip(op.symbols, self.args)))

    def _eval_is_real(self):
        return self.args[0].is_real

    def text(self, printer):
        params = "".join(f", {p}={_short(v) if v.is_Number else printer._print(v)}"
                         for p, v in zip(op.params, self.args[1:]))
        return f"{op.display}({printer._print(self.args[0])}{params})"

    def latex(self, printer):
        stem = r"\operatorname{%s}" % op.base.replace("_", r"\_")
        primes = "'" * op.order if op.order <= 3 else "^{(%d)}" % op.order
        params = "".join(f"; {_short(v) if v.is_Number else printer._print(v)}"
                         for v in self.args[1:])
        return r"%s%s\left(%s%s\right)" % (stem, primes, printer._print(self.args[0]), params)

    def numeric(x, *values):                    # float -> float, for formula interpreters
        return float(op.numpy(float(x), *map(float, values)))

    namespace = {"nargs": 1 + len(op.params), "eval": classmethod(numeric_eval), "fdiff": fdiff,
                 "numeric": staticmethod(numeric),
                 "_eval_evalf": _eval_evalf, "_eval_expand_func": _eval_expand_func,
                 "_eval_is_real": _eval_is_real, "_sympystr": text, "_symgrad_text": text,
                 "_latex": latex, "__doc__": f"{op.display}(x) = {op.expr} (sg.elementwise)",
                 "__module__": __name__}
    namespace["__qualname__"] = f"CLASSES.{op.display}"
    cls = type(sp.Function)(op.display, (sp.Function,), namespace)
    # pickle finds a class by its qualified name: expressions with gelu(x) travel to other
    # processes (which must define the same op, as importing symgrad does for the library)
    setattr(CLASSES, op.display, cls)
    return cls


class _Classes(type):
    def __getattr__(cls, name):
        # a library op (gelu, ...) not generated yet in this process: pickle asks for it
        op = CUSTOM.get(name)
        if isinstance(op, _Library) and op.display == name:
            op.func                 # noqa: B018 - generates it, which sets the attribute
            return type.__getattribute__(cls, name)
        raise AttributeError(f"type object 'CLASSES' has no attribute {name!r}")


class CLASSES(metaclass=_Classes):
    """The generated SymPy function classes, by display name (for pickle)."""


# -- the user's function -------------------------------------------------------------------
def user_function(op, doc=None):
    """``f(x, **params)``: a node for a node, a SymPy expression for a SymPy scalar."""
    if op.user is not None:
        return op.user

    def fn(x, **values):
        symbolic = any(is_sympy(v, "Symbol") for v in values.values())
        if isinstance(x, Node) and symbolic:
            return _inline_call(op, x, values)
        if isinstance(x, Node):
            return apply(op.name, x, **values)      # parameters checked by the op's infer
        vals = _param_values(op, values, symbols=True)
        if is_sympy(x, "Expr") or (isinstance(x, numbers.Real) and not isinstance(x, bool)):
            arg = x if is_sympy(x, "Expr") else B.as_expr(x, op.name)
            return op.func(arg, *[v if isinstance(v, sp.Symbol) else sp.Float(v)
                                  for v in vals.values()])
        raise DeclarationError(f"{op.name}: expected a symgrad node or a SymPy expression, "
                               f"got {x!r}")

    fn.__name__ = fn.__qualname__ = op.name
    fn.__doc__ = doc if doc is not None else \
        f"Elementwise {op.name}(x) = {op.expr} (made by sg.elementwise)."
    fn.op = op
    op.user = fn
    return fn


# -- the library's ops, generated on first use ---------------------------------------------
class _Library(Custom):
    """An op of the math library (gelu, silu, ...): registered when symgrad is imported,
    generated from its body (SymPy: the expression, helpers and class) at the first read
    of any of those, so declaring and running a cached model never imports SymPy."""

    def __init__(self, name, body, params):
        self.__dict__.update(_body=body, _pending=True, _building=False)
        super().__init__(name, name, None, dict(params), 0, name)
        self.helper_name = f"_sg_f_{name}"

    def __repr__(self):
        return "Custom" + super().__repr__()[len(type(self).__qualname__):]

    def _fill(self):
        with _LOCK:
            if not self._pending or self._building:
                return
            self._building = True
            try:
                self.expr = _body_expr(self._body, self.params, f"elementwise {self.name!r}")
                _generate(self)
                self._pending = False
            finally:
                self._building = False


def _generated_field(name):
    def get(self):
        if self.__dict__["_pending"]:
            self._fill()
        return self.__dict__["_sg_" + name]

    def put(self, value):
        self.__dict__["_sg_" + name] = value
    return property(get, put)


class _LibraryOpDef(OpDef):
    """The registry entry of a :class:`_Library` op; the fields that need the generated
    op are made at their first read."""

    def __init__(self, op):
        self.__dict__.update(_op=op, _pending=True)
        super().__init__(op.name, "elementwise", _infer(op), _element(op), _numpy(op),
                         label=op.display)

    def __repr__(self):
        return "OpDef" + super().__repr__()[len(type(self).__qualname__):]

    def _fill(self):
        with _LOCK:
            if self.__dict__["_pending"]:
                op = self._op
                constant = _constant(op)
                self.vjp = (None,) if constant else (_vjp(op),)
                self.code = _code(op)
                self.doc = f"generated by sg.elementwise from {op.expr}"
                self.constant = constant
                self._pending = False


for _field in ("expr", "helpers", "vector_helper_name", "vector_helpers", "func"):
    setattr(_Library, _field, _generated_field(_field))
for _field in ("vjp", "code", "doc", "constant"):
    setattr(_LibraryOpDef, _field, _generated_field(_field))


def library_op(name, body, params=None, doc=None):
    """Like :func:`elementwise` for the math library's own ops, whose bodies are known to be
    valid: the op is registered now and generated on first use."""
    with _LOCK:
        op = _Library(name, body, _check_params(name, params or {}))
        register(_LibraryOpDef(op))
        CUSTOM[name] = op
        return user_function(op, doc)

"""The graph key: a cached module found from the graph alone, before any symbolic work.

``compile`` hashes the graph's structure (each node's op, inputs, dims, dtype, attrs and
name, in topological order; which nodes are the loss, the params and the outputs), the
dtype, the ``hessian`` flag and the version of the generator (the source text of the
``graph``, ``ops``, ``diff`` and ``codegen`` packages, and Numba's version), so a change to
any of them is a new key and never serves stale code. The key names a small index entry
in the cache dir (``sgkey_<key>.json``: the module file, the SHA-256 of its text and what
:class:`~symgrad.codegen.model.CompiledModel` needs: each function's leaves in order,
the output functions of forward nodes, the data tensors and params). On a hit the module
loads from Numba's cache without deriving, naming or generating anything (and without
SymPy); a miss, a missing or damaged entry or a module file whose text is not the one
recorded takes the full path, which writes the entry again.

A graph with an op symgrad cannot key (one registered outside symgrad and not by
``sg.elementwise``) or an attribute of an unknown type is never looked up.
"""
import hashlib
import json
import os
import sys

from symgrad.codegen import cache
from symgrad.graph.registry import OPS
from symgrad.graph.traverse import topo_order

KEYED_PACKAGES = ("graph", "ops", "diff", "codegen")   # what generated code depends on
_version = []


class _NoKey(Exception):
    pass


def generator_version():
    """A hash of symgrad's code generator: the text of the packages generated code depends
    on, symgrad's version and Numba's (read once per process); None when the source
    cannot be read (then nothing is keyed)."""
    if not _version:
        import numba
        import symgrad
        root = os.path.dirname(os.path.abspath(symgrad.__file__))
        h = hashlib.sha256(f"symgrad {symgrad.__version__} numba {numba.__version__} "
                           f"python {sys.version_info[:2]}".encode())
        try:
            files = [os.path.join(root, "errors.py")]
            for package in KEYED_PACKAGES:
                where = os.path.join(root, package)
                files += [os.path.join(where, n) for n in sorted(os.listdir(where))
                          if n.endswith(".py")]
            for path in files:
                with open(path, "rb") as f:
                    h.update(os.path.relpath(path, root).encode() + b"\0" + f.read() + b"\0")
            _version.append(h.hexdigest())
        except OSError:
            _version.append(None)
    return _version[0]


def _freeze(value, index):
    """A JSON-able, exact spelling of an attribute value."""
    if value is None or isinstance(value, (bool, str)):
        return [type(value).__name__, value]
    if isinstance(value, (int, float)) and type(value) in (int, float):
        return [type(value).__name__, repr(value)]
    if isinstance(value, (tuple, list)):
        return [type(value).__name__, [_freeze(v, index) for v in value]]
    if isinstance(value, dict):
        return ["dict", [[_freeze(k, index), _freeze(v, index)] for k, v in
                         sorted(value.items(), key=lambda kv: repr(kv[0]))]]
    if type(value).__module__ == "numpy":
        import numpy as np
        if isinstance(value, np.generic):
            return ["numpy", str(value.dtype), repr(value.item())]
        if isinstance(value, np.ndarray):
            return ["ndarray", str(value.dtype), list(value.shape),
                    hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()]
    sympy = sys.modules.get("sympy")
    if sympy is not None and isinstance(value, sympy.Basic):
        return ["sympy", sympy.srepr(value)]
    if type(value).__name__ == "Node" and value in index:
        return ["node", index[value]]
    raise _NoKey(f"attribute value {value!r}")


def _op_spelling(name, builtin):
    """How an op enters the key: built-in ops by name (their code is in the hashed
    packages); ops made by sg.elementwise by their body and helpers' code."""
    if name in ("input", "param", "const"):
        return ""
    opdef = OPS.get(name)
    if opdef is not None and builtin.get(name) is opdef:
        return ""
    from symgrad.ops.custom import CUSTOM
    op = CUSTOM.get(name)
    if opdef is None or op is None:
        raise _NoKey(f"op {name!r}")
    sympy = sys.modules["sympy"]     # the op was made from a SymPy body
    code = opdef.code
    helpers = {**code.get("helpers", {}), **code.get("vector_helpers", {})}
    return [op.display, op.base, op.order, _freeze(op.params, {}), sympy.srepr(op.expr),
            sorted(helpers.items())]


def graph_nodes(loss, params, outputs):
    """The nodes the key spells, in its order (leaves are identified by their place)."""
    return topo_order([loss, *outputs, *params])


def key(loss, params, dtype, outputs, hessian):
    """The hex key of a compile call, or None when the graph cannot be keyed."""
    from symgrad.ops import BUILTIN_OPS
    version = generator_version()
    if version is None:
        return None
    nodes = graph_nodes(loss, params, outputs)
    index = {n: k for k, n in enumerate(nodes)}
    try:
        spelled = [[n.op, [index[x] for x in n.inputs], list(n.dims), n.dtype,
                    _freeze(n.attrs, index), n.name, _op_spelling(n.op, BUILTIN_OPS)]
                   for n in nodes]
    except _NoKey:
        return None
    text = json.dumps([version, str(dtype), bool(hessian), index[loss],
                       [index[p] for p in params], [index[o] for o in outputs], spelled],
                      separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


# -- the index ------------------------------------------------------------------------------
class Function:
    """One generated function: its name and, in order, the leaves it takes."""

    def __init__(self, name, leaves):
        self.name, self.leaves = name, leaves


class _Canon:
    def __init__(self, of):
        self.of = of


class _Functions(dict):
    def __init__(self, items, source):
        super().__init__(items)
        self._source = source

    def __missing__(self, fname):
        # a function the index does not describe (second order: its leaves include the
        # identity matrices the full path makes): from the full path's Source
        return self._source.full().functions[fname]


class CachedSource:
    """What :class:`CompiledModel` reads of a :class:`~symgrad.codegen.module.Source`,
    from an index entry: ``functions`` (name -> leaves), ``data``, ``all_params``,
    ``output_names`` and ``canon.of`` (forward node -> itself, for the output lookup).
    Anything else (the second-order graphs) comes from a full Source, made on first use."""

    def __init__(self, entry, nodes, call):
        self.call = call       # (loss, params, named outputs, dtype, hessian, title)
        self.functions = _Functions({f: Function(f, [nodes[k] for k in ks])
                                     for f, ks in entry["functions"].items()}, self)
        self.data = [nodes[k] for k in entry["data"]]
        self.all_params = [nodes[k] for k in entry["all_params"]]
        outputs = {nodes[int(k)]: f for k, f in entry["outputs"].items()}
        self.output_names = outputs
        self.canon = _Canon({n: n for n in outputs})
        self.text_digest = entry["digest"]
        self._full = None

    def full(self):
        """The full path's Source (text generated, so every function is described); it
        generates the text that was cached, which is checked."""
        if self.__dict__.get("_full") is None:
            from symgrad.codegen.module import Source
            loss, params, named, dtype, hessian, title = self.call
            src = Source(loss, params, named, dtype, hessian=hessian)
            if _digest(src.text(title)) != self.text_digest:
                raise RuntimeError("symgrad: the cached module's text is not the one this "
                                   "graph generates; clear the cache dir")
            self._full = src
        return self._full

    def __getattr__(self, name):
        if name.startswith("__") or name in ("call", "_full", "functions"):
            raise AttributeError(name)
        return getattr(self.full(), name)


def _digest(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _entry_path(k, directory=None):
    return os.path.join(directory or cache.cache_dir(), f"sgkey_{k}.json")


def lookup(k, loss, params, outputs, call):
    """``(CachedSource, source text, module path)`` for key ``k``, or None on a miss (no
    entry, a damaged one, or a module file whose text is not the recorded one)."""
    if k is None:
        return None
    directory = cache.cache_dir(warn=False)     # (the full path warns, once)
    try:
        with open(_entry_path(k, directory), encoding="utf-8") as f:
            entry = json.load(f)
        path = os.path.join(directory, entry["module"])
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if _digest(text) != entry["digest"] or entry["module"] != cache.module_name(text) + ".py":
            return None
        nodes = graph_nodes(loss, params, outputs)
        src = CachedSource(entry, nodes, call)
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None
    if directory != (os.environ.get(cache.ENV_VAR) or cache.default_dir()):
        cache.cache_dir()      # the configured dir is not writable: the full path's warning
    return src, text, path


def remember(k, src, text, path, loss, params, outputs):
    """Write the index entry of key ``k`` for the full path's ``src`` (atomically)."""
    if k is None:
        return
    nodes = graph_nodes(loss, params, outputs)
    index = {n: i for i, n in enumerate(nodes)}
    functions = {f: [index[n] for n in fn.leaves] for f, fn in src.functions.items()
                 if all(n in index for n in fn.leaves)}
    if any(n not in index for n in src.data + src.all_params):
        return
    named = {}
    for i, node in enumerate(nodes):
        fname = src.output_names.get(src.canon.of.get(node))
        if fname is not None:
            named[str(i)] = fname
    entry = {"module": os.path.basename(path), "digest": _digest(text), "functions": functions,
             "data": [index[n] for n in src.data],
             "all_params": [index[n] for n in src.all_params], "outputs": named}
    try:
        cache.write_atomic(_entry_path(k, os.path.dirname(path)), json.dumps(entry) + "\n")
    except OSError:
        pass      # a read-only cache still works; the next process takes the full path

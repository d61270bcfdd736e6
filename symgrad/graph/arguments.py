"""Checks of the plain arguments of the public entry points (flags, seeds, choices, dtypes,
lists of nodes), shared by every stage: each error is a TypeError (wrong kind of value)
or a ValueError (right kind, wrong value) that names the argument and says what it
accepts, raised before any work. Graph-specific checks (the loss, params, data) live
with the stage that knows them."""
import numbers

import numpy as np

from symgrad.errors import DeclarationError
from symgrad.graph.node import Node


def describe(value):
    """A short, safe description of ``value`` for an error message."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, Node):
        return f"node {value.display}"
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def check_flag(value, name):
    """``True`` or ``False`` (NumPy booleans too); returns a bool."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {describe(value)}")


def check_seed(value, name="seed"):
    """None or an int >= 0 (what ``np.random.default_rng`` takes), or a Generator."""
    if value is None or isinstance(value, (np.random.Generator, np.random.SeedSequence)):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be None or an int >= 0, got {describe(value)}")
    if value < 0:
        raise ValueError(f"{name} must be None or an int >= 0, got {value}")
    return int(value)


def check_choice(value, name, choices):
    """One of the strings ``choices``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {list(choices)}, got {describe(value)}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_node_or_name(value, name):
    """None, a graph node or the name of one."""
    if value is None or isinstance(value, (Node, str)):
        return value
    raise TypeError(f"{name} must be None, a graph node or a node's name, got {describe(value)}")


def check_node_list(value, name):
    """None or a list/tuple of graph nodes; returns a list."""
    if value is None:
        return []
    if isinstance(value, Node):
        raise TypeError(f"{name} must be a list of graph nodes, got a single {describe(value)}; "
                        f"pass [{value.name or 'node'}]")
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list of graph nodes, got {describe(value)}")
    return list(value)


def check_float_dtype(value, name="dtype"):
    """np.float64 or np.float32 (or their names); returns the np.dtype."""
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise TypeError(f"{name} must be np.float64 or np.float32, got {describe(value)}") from None
    if dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise DeclarationError(f"{name} must be np.float64 or np.float32, got {dtype}")
    return dtype


def check_derive_params(params):
    """``derive``'s params: not an empty list (a derivation needs something to derive)."""
    if isinstance(params, (list, tuple)) and not params:
        raise ValueError("params must be a param node or a non-empty list of them, got an "
                         "empty list")


# -- the command line ------------------------------------------------------------------------
# Formats the graph view writes (symgrad.explain.graphview.GraphView.save); listed here
# because the declare layer cannot import explain; tests/reliability/test_arguments.py
# keeps the two lists equal.
GRAPH_SUFFIXES = (".dot", ".gv", ".svg", ".png", ".pdf")
DERIVE_OUTPUTS = {"output": (".tex",), "slides": (".tex",), "graph": GRAPH_SUFFIXES}


def output_file_problem(path, suffixes):
    """Why a file cannot be written at ``path`` (a message), or None."""
    import os
    if not str(path).lower().endswith(suffixes):
        return f"must end in {' or '.join(suffixes)}"
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return f"no such directory {directory!r}"
    if not os.access(directory, os.W_OK):
        return f"directory {directory!r} is not writable"
    if os.path.isdir(path):
        return "is a directory"
    return None


def check_derive_outputs(args):
    """``symgrad derive``'s output files, checked before the derivation is worked out."""
    for option, suffixes in DERIVE_OUTPUTS.items():
        path = getattr(args, option, None)
        problem = path and output_file_problem(path, suffixes)
        if problem:
            raise SystemExit(f"symgrad derive: --{option} {path}: {problem}")

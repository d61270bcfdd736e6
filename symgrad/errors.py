"""Exceptions raised by symgrad.

Every error names what is at fault (the tensor, the dimension, the op or the
argument) so a user can fix the declaration or the data without reading
symgrad's source. They subclass the built-in exception a Python user would
expect (``ValueError``, ``TypeError``, ``KeyError``), so generic handlers work.
"""


class SymgradError(Exception):
    """Base class of every symgrad error."""


class DimError(SymgradError, ValueError):
    """Two tensors' named dimensions do not fit together, or data has the wrong shape."""


class DeclarationError(SymgradError, ValueError):
    """A tensor, param or op was declared with invalid arguments."""


class MissingRuleError(SymgradError, NotImplementedError):
    """An op has no registered rule for what was asked (derivative, code, ...)."""


class DataError(SymgradError, ValueError):
    """Data passed at run time is missing, unknown, non-finite or of the wrong kind."""


class DivergenceError(SymgradError, FloatingPointError):
    """Training produced a NaN or infinite loss."""

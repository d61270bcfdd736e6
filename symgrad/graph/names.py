"""User names: validation for display, and mangling into safe identifiers.

User text never reaches generated source or ``exec`` as code: the code
generator only uses identifiers made by :func:`safe_identifier`, and user
names appear in comments only after :func:`comment_text` has escaped them.
"""
import hashlib
import keyword
import re

from symgrad.errors import DeclarationError

_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # fullmatch: "$" would allow a final "\n"
# Prefix of every temporary the code generator makes; user names never get it.
RESERVED_PREFIX = "_sg"
# Names the generated module binds itself.
RESERVED_NAMES = frozenset({"np", "numba", "math", "njit", "prange", "range", "len"})


def check_name(name, what="tensor"):
    """Return ``name`` if it is a usable display name, else raise naming it."""
    if not isinstance(name, str):
        raise DeclarationError(f"{what} name must be a str, got {type(name).__name__}: {name!r}")
    if not name.strip():
        raise DeclarationError(f"{what} name must not be empty")
    if any(ch in name for ch in "\n\r\0"):
        raise DeclarationError(f"{what} name {name!r} contains a line break or NUL")
    return name


def is_plain_identifier(name):
    """True for ASCII identifiers that are not keywords or names generated code binds."""
    return (bool(_IDENT.fullmatch(name)) and not keyword.iskeyword(name)
            and not keyword.issoftkeyword(name)
            and name not in RESERVED_NAMES and not name.startswith(RESERVED_PREFIX))


def safe_identifier(name):
    """A Python identifier for ``name``: itself if plain, otherwise a readable mangle.

    The mangle keeps the ASCII letters and digits a reader recognises and adds a
    short hash of the full name, so distinct names never collide.
    """
    if is_plain_identifier(name):
        return name
    stem = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "v"
    if not stem[0].isalpha():
        stem = "v_" + stem
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:6]
    return f"{stem[:24]}_u{digest}"


def comment_text(text):
    """Text safe to put after ``#`` in generated source: one line, printable ASCII."""
    flat = text.encode("ascii", "backslashreplace").decode("ascii")
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in flat)

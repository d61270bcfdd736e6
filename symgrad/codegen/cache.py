"""The on-disk cache of generated modules.

Numba cannot cache functions made with ``exec`` (numba#3501), so each generated
module is a real file named by a hash of its text, imported from that path; its
functions use ``njit(cache=True)``, so Numba's index and object files sit where
Numba's locator puts them (``__pycache__`` next to it, or under ``$NUMBA_CACHE_DIR``;
see :func:`numba_cache_path`) and a second process loads machine code instead of
compiling. Files are written atomically (temp file + ``os.replace``): concurrent
processes writing the same module write the same bytes, and a reader never sees
half a file.
"""
import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
import time
import traceback
import types
import warnings

ENV_VAR = "SYMGRAD_CACHE_DIR"
_loaded = {}   # path -> module, so one process imports (and compiles) a module once
_lock = threading.RLock()


def default_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "symgrad")


def _writable(path):
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".probe")
        os.close(fd)
        os.remove(probe)
        return True
    except OSError:
        return False


def cache_dir(warn=True):
    """``$SYMGRAD_CACHE_DIR``, else ``~/.cache/symgrad``; a temp dir (with a warning,
    unless ``warn`` is False) when neither is writable."""
    path = os.environ.get(ENV_VAR) or default_dir()
    if _writable(path):
        return path
    user = os.getuid() if hasattr(os, "getuid") else "user"
    fallback = os.path.join(tempfile.gettempdir(), f"symgrad-{user}")
    if warn:
        warnings.warn(f"symgrad cache dir {path!r} is not writable; using {fallback!r} "
                      f"(set {ENV_VAR} to choose another)", RuntimeWarning, stacklevel=3)
    os.makedirs(fallback, exist_ok=True)
    return fallback


def module_name(source):
    return "sg_" + hashlib.sha256(source.encode("utf-8")).hexdigest()[:20]


def write_atomic(path, text):
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".py")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def store(source, directory=None):
    """Path of the module file for ``source``, written if missing or damaged."""
    directory = directory or cache_dir()
    path = os.path.join(directory, module_name(source) + ".py")
    try:
        with open(path, encoding="utf-8") as f:
            intact = f.read() == source
    except (OSError, UnicodeDecodeError):
        intact = False
    if not intact:
        write_atomic(path, source)
        sweep_stale_temps([directory, numba_cache_path(path)])
    return path


STALE_SECONDS = 600   # no live writer takes this long to write one small file


def sweep_stale_temps(directories, now=None):
    """Remove temp files that killed processes left behind (``.tmp-*`` of
    :func:`write_atomic`, ``*.tmp.<uid>`` of Numba's writer) once they are old enough
    that no live writer can still own them. Run on each cache miss, so it is rare."""
    now = time.time() if now is None else now
    for where in directories:
        try:
            names = os.listdir(where)
        except OSError:
            continue
        for name in names:
            if not (name.startswith(".tmp-") or (name.startswith("sg_") and ".tmp." in name)):
                continue
            full = os.path.join(where, name)
            try:
                if now - os.stat(full).st_mtime > STALE_SECONDS:
                    os.remove(full)
            except OSError:
                pass      # another process swept it first


def numba_cache_path(path):
    """The directory where Numba keeps the index and object files of the module at
    ``path``, by Numba's own locator rules: ``$NUMBA_CACHE_DIR/<dir>_<hash>`` when set
    (as read by ``numba.config`` at import), else ``__pycache__`` next to the module, else
    a user-wide cache dir when that is not writable."""
    from numba.core.caching import CompileResultCacheImpl
    # A stand-in function "defined" in the module file (no text is compiled): the
    # locator looks only at the file its code object names.
    code = _stand_in.__code__.replace(co_filename=os.path.abspath(path))
    return CompileResultCacheImpl(types.FunctionType(code, {})).locator.get_cache_path()


def _stand_in():
    pass


def numba_files(path):
    """Full paths of Numba's index (.nbi) and object (.nbc) files for the module at ``path``."""
    stem = os.path.basename(path)[:-3] + "."
    where = numba_cache_path(path)
    names = os.listdir(where) if os.path.isdir(where) else ()
    return sorted(os.path.join(where, n) for n in names
                  if n.startswith(stem) and n.endswith((".nbi", ".nbc")))


def purge(path):
    """Delete Numba's cache files (index, code and their markers) of the module at
    ``path``."""
    stem = os.path.basename(path)[:-3] + "."
    where = numba_cache_path(path)
    for name in os.listdir(where) if os.path.isdir(where) else ():
        if name.startswith(stem) and name.endswith((".nbi", ".nbc", MARK)):
            try:
                os.remove(os.path.join(where, name))
            except OSError:
                pass


def forget(path):
    """Drop the module's Numba cache (damaged: concurrent writers can corrupt it,
    numba#4807) and import it afresh, so everything compiles again."""
    with _lock:
        _loaded.pop(path, None)
    purge(path)
    return load(path)


def load(path):
    """Import the module at ``path`` (once per process, even from several threads); a
    damaged Numba cache is a miss, with one warning."""
    with _lock:
        if path in _loaded:
            return _loaded[path]
        try:
            module = _import(path)
        except Exception as err:   # noqa: BLE001 - helpers with signatures load eagerly
            if not _raised_loading_numba_cache(err):
                raise              # the module itself is at fault, not Numba's cache
            _warn_damaged(path, err)
            purge(path)
            module = _import(path)     # a second failure is the module's own: raised
        from numba.core.dispatcher import Dispatcher
        for value in list(vars(module).values()):
            if isinstance(value, Dispatcher):
                _guard_numba_cache(value, path)
        _loaded[path] = module
        return module


def _import(path):
    name = "symgrad_generated." + os.path.basename(path)[:-3]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)     # no half-initialised module left behind
        raise
    return module


# -- Numba's cache files: any damage is a miss ---------------------------------------------
def _raised_loading_numba_cache(err):
    """Whether ``err`` came from inside Numba's cache loader (not the module's own code)."""
    frames = traceback.extract_tb(err.__traceback__)
    return any(f.filename.endswith(os.path.join("numba", "core", "caching.py")) for f in frames)


def _warn_damaged(path, err):
    warnings.warn(f"damaged Numba cache for {path} ({type(err).__name__}: {err}); "
                  "recompiling", RuntimeWarning, stacklevel=4)


def _guard_numba_cache(dispatcher, path):
    """Make a damaged cache entry of one generated function a miss, not an error or a crash.

    Numba lets a damaged index or object file raise from the first call (a truncated
    pickle; LLVM's "Invalid record"), and some damage (one flipped byte in the object
    code) crashes the process inside LLVM, where nothing can catch it. Files are written
    atomically by symgrad and Numba, but a full disk, a copied or synced cache dir, or a
    bad sector can still leave one. So every file Numba writes for a function gets a
    marker naming its SHA-256 (:func:`_mark`), and Numba may read only marked content
    (:func:`_trusted`): anything else is removed and compiled again, with one warning
    when it had once been good (damage, not just another process's fresh write). A
    failure to *write* the cache only warns: the function compiled, and the next process
    compiles again.
    """
    numba_cache = getattr(dispatcher, "_cache", None)
    load_overload = getattr(numba_cache, "load_overload", None)
    save_overload = getattr(numba_cache, "save_overload", None)
    impl = getattr(numba_cache, "_impl", None)
    if load_overload is None or save_overload is None or impl is None or \
            getattr(load_overload, "_sg_guarded", False):
        return
    where, base = numba_cache.cache_path, impl.filename_base + "."

    def guarded_load(sig, target_context):
        try:
            if not _trusted(where, base, path):
                return None
            return load_overload(sig, target_context)
        except Exception as err:   # noqa: BLE001 - damage takes any form; a miss is safe
            _warn_damaged(path, err)
            purge(path)
            return None

    def guarded_save(sig, data):
        try:
            save_overload(sig, data)
            _mark(where, base)
        except Exception as err:   # noqa: BLE001
            warnings.warn(f"could not write Numba's cache for {path} ({type(err).__name__}: "
                          f"{err}); the next process compiles again", RuntimeWarning,
                          stacklevel=4)

    guarded_load._sg_guarded = True
    numba_cache.load_overload, numba_cache.save_overload = guarded_load, guarded_save


MARK = ".sgok"      # <numba file>.<sha256 prefix>.sgok: that content was written whole
FRESH_SECONDS = 60  # an unmarked file this young may be a racing writer's: no warning


def _function_files(where, base):
    try:
        names = os.listdir(where)
    except OSError:
        return [], []
    files = [n for n in names if n.startswith(base) and n.endswith((".nbi", ".nbc"))]
    marks = {n for n in names if n.startswith(base) and n.endswith(MARK)}
    return files, marks


def _digest(full):
    with open(full, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def _mark(where, base):
    """Record the content of this function's files, just written by Numba, as good."""
    files, marks = _function_files(where, base)
    for name in files:
        marker = f"{name}.{_digest(os.path.join(where, name))}{MARK}"
        if marker not in marks:
            with open(os.path.join(where, marker), "w"):
                pass


def _trusted(where, base, path):
    """Whether every file Numba keeps for this function holds marked content; unmarked
    files are removed (a miss), with one warning if the file had once been good."""
    files, marks = _function_files(where, base)
    bad = [n for n in files if f"{n}.{_digest(os.path.join(where, n))}{MARK}" not in marks]
    for name in bad:
        full = os.path.join(where, name)
        known = any(m.startswith(name + ".") for m in marks)
        try:
            old = time.time() - os.stat(full).st_mtime > FRESH_SECONDS
            os.remove(full)
        except OSError:
            continue
        if known and old:
            _warn_damaged(path, ValueError(f"{name} does not hold the content written"))
    return not bad

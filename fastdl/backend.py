"""Which kernel set the layers use.

Backends
--------
``"numpy"``  the reference: the book's algorithms in NumPy (``fastdl.kernels.reference``)
``"numba"``  compiled CPU kernels (``fastdl.kernels.cpu``)
``"cuda"``   numba.cuda kernels (``fastdl.kernels.cuda``), imported only when asked for

Selection, strongest first: ``using_backend(name)`` (thread-local, a context
manager), ``set_backend(name)`` (process-wide), the ``FASTDL_BACKEND``
environment variable (read once, when first needed), then the default:
``"numba"``, or ``"numpy"`` with a warning where Numba cannot load.

Layers look their kernels up every time ``forward`` is called, so
``with fastdl.using_backend("numpy"): net.gradient(x, t)`` runs an existing
network on the reference. A layer's ``backward`` uses the backend that ran its
``forward`` (the saved intermediate values belong to that backend).
"""
import importlib
import importlib.util
import os
import threading
from contextlib import contextmanager

__all__ = ["BackendError", "set_backend", "using_backend", "current_backend",
           "available_backends", "ops", "BACKENDS", "DEFAULT_BACKEND"]

#: backend name -> module implementing every op of ``fastdl.kernels.spec.OPS``
BACKENDS = {
    "numpy": "fastdl.kernels.reference",
    "numba": "fastdl.kernels.cpu",
    "cuda": "fastdl.kernels.cuda",
}
#: used when neither set_backend, using_backend nor FASTDL_BACKEND chose one;
#: if it cannot load here, FALLBACK_BACKEND is used and a warning says why
DEFAULT_BACKEND = "numba"
FALLBACK_BACKEND = "numpy"


class BackendError(ValueError):
    """An unknown backend name, or one whose requirements are missing here."""


_loaded = {}              # name -> module
_failures = {}            # name -> why it could not be loaded
_global_name = None       # set by set_backend or FASTDL_BACKEND
_local = threading.local()
_lock = threading.Lock()


def _import(name):
    """The module of backend ``name``; raises BackendError naming the available ones."""
    mod = _loaded.get(name)
    if mod is not None:
        return mod
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; available backends: "
                           f"{', '.join(available_backends())}")
    with _lock:
        if name in _loaded:
            return _loaded[name]
        why = _failures.get(name)
        if why is None:
            if importlib.util.find_spec(BACKENDS[name]) is None:
                why = f"this installation of fastdl has no {BACKENDS[name]} module"
            else:
                try:
                    mod = importlib.import_module(BACKENDS[name])
                    if getattr(mod, "NAME", None) != name:
                        raise ImportError(f"{BACKENDS[name]} is not a fastdl backend module")
                    check = getattr(mod, "check_available", None)
                    if check is not None:
                        check()
                except Exception as exc:  # ImportError, CUDA driver errors, ...
                    why = f"{type(exc).__name__}: {exc}"
                else:
                    _loaded[name] = mod
                    return mod
            _failures[name] = why
    raise BackendError(f"backend {name!r} is not available ({why}); available backends: "
                       f"{', '.join(available_backends())}")


def available_backends():
    """Names of the backends that load on this machine (tries to import each one once)."""
    names = []
    for name in BACKENDS:
        if name in _loaded:
            names.append(name)
            continue
        if name in _failures:
            continue
        try:
            _import(name)
        except BackendError:
            continue
        names.append(name)
    return names


def _check_name(name):
    if not isinstance(name, str):
        raise BackendError(f"backend name must be a string, got {type(name).__name__}; "
                           f"available backends: {', '.join(available_backends())}")
    _import(name)
    return name


def _default_name():
    global _global_name
    if _global_name is None:
        env = os.environ.get("FASTDL_BACKEND", "").strip()
        if env:
            try:
                _check_name(env)
            except BackendError as exc:
                raise BackendError(f"FASTDL_BACKEND={env!r}: {exc}") from None
            _global_name = env
        else:
            try:
                _import(DEFAULT_BACKEND)
                _global_name = DEFAULT_BACKEND
            except BackendError as exc:
                import warnings
                warnings.warn(f"fastdl: default backend unavailable, using {FALLBACK_BACKEND!r}: {exc}",
                              RuntimeWarning, stacklevel=3)
                _global_name = FALLBACK_BACKEND
    return _global_name


def set_backend(name):
    """Select the backend for the whole process (a ``using_backend`` block still wins inside it)."""
    global _global_name
    _global_name = _check_name(name)


def current_backend():
    """The name of the backend in force for this thread."""
    stack = getattr(_local, "stack", None)
    if stack:
        return stack[-1]
    return _default_name()


@contextmanager
def using_backend(name):
    """Run a block on backend ``name`` in this thread only; nests, and restores on exit."""
    _check_name(name)
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    stack.append(name)
    try:
        yield name
    finally:
        stack.pop()


def ops(name=None):
    """The kernel module of backend ``name`` (default: the current one)."""
    return _import(current_backend() if name is None else name)

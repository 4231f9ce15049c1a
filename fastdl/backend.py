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
from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from contextlib import contextmanager
from types import ModuleType
from typing import Dict, Iterator, List, Optional

__all__ = ["BackendError", "set_backend", "using_backend", "current_backend",
           "available_backends", "ops", "ops_for", "wait_for_kernels", "BACKENDS",
           "DEFAULT_BACKEND"]

BACKENDS: Dict[str, str] = {
    "numpy": "fastdl.kernels.reference",
    "numba": "fastdl.kernels.cpu",
    "cuda": "fastdl.kernels.cuda",
}
"""Backend name -> the module implementing every op of ``fastdl.kernels.spec.OPS``."""

DEFAULT_BACKEND: str = "numba"
"""The backend used when neither ``set_backend``, ``using_backend`` nor ``FASTDL_BACKEND`` chose
one; if it cannot load here, ``FALLBACK_BACKEND`` (``"numpy"``) is used and a warning says why."""

FALLBACK_BACKEND = "numpy"


class BackendError(ValueError):
    """An unknown backend name, or one whose requirements are missing here."""


_loaded: Dict[str, ModuleType] = {}   # name -> module
_failures: Dict[str, str] = {}         # name -> why it could not be loaded
_global_name: Optional[str] = None     # set by set_backend or FASTDL_BACKEND


class _Local(threading.local):
    """This thread's ``using_backend`` names (None until its first block): a class default, so
    reading it costs no failed attribute lookup on every op call."""
    stack: Optional[List[str]] = None


_local = _Local()
_lock = threading.Lock()


def _import(name: str) -> ModuleType:
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


def available_backends() -> List[str]:
    """Names of the backends that load on this machine (tries to import each one once).

    Returns
    -------
    list of str
        A subset of ``BACKENDS``' names, in its order (``"numpy"`` always loads).
    """
    names: List[str] = []
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


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise BackendError(f"backend name must be a string, got {type(name).__name__}; "
                           f"available backends: {', '.join(available_backends())}")
    _import(name)
    return name


def _default_name() -> str:
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


def set_backend(name: str) -> None:
    """Select the backend for the whole process (a ``using_backend`` block still wins inside it).

    Parameters
    ----------
    name : str
        ``"numpy"``, ``"numba"`` or ``"cuda"``.

    Raises
    ------
    BackendError
        If the backend is unknown or cannot load here (nothing is changed then).
    """
    global _global_name
    _global_name = _check_name(name)


def current_backend() -> str:
    """The name of the backend in force for this thread.

    Returns
    -------
    str
        ``"numpy"``, ``"numba"`` or ``"cuda"``.
    """
    stack = _local.stack
    if stack:
        return stack[-1]
    return _global_name if _global_name is not None else _default_name()


@contextmanager
def using_backend(name: str) -> Iterator[str]:
    """Run a block on backend ``name`` in this thread only; nests, and restores on exit.

    Parameters
    ----------
    name : str
        ``"numpy"``, ``"numba"`` or ``"cuda"``.

    Yields
    ------
    str
        ``name``.

    Raises
    ------
    BackendError
        If the backend is unknown or cannot load here (raised on entering the block).
    """
    _check_name(name)
    stack = _local.stack
    if stack is None:
        stack = _local.stack = []
    stack.append(name)
    try:
        yield name
    finally:
        stack.pop()


def ops(name: Optional[str] = None) -> ModuleType:
    """The kernel module of backend ``name`` (default: the current one).

    Parameters
    ----------
    name : str, optional
        A backend name; None for :func:`current_backend`.

    Returns
    -------
    module
        The module of ``BACKENDS[name]``, with every op of ``fastdl.kernels.spec.OPS``.
    """
    if name is None:                      # current_backend(), inline: every layer call asks
        stack = _local.stack
        name = stack[-1] if stack else (_global_name if _global_name is not None else _default_name())
    mod = _loaded.get(name)
    return mod if mod is not None else _import(name)


def ops_for(array: object) -> Optional[ModuleType]:
    """The kernel module that owns ``array``: the current backend's if it owns it, else a
    device backend that does (a GPU array under a CPU backend goes to ``"cuda"``).

    This is the one placement decision; layers and optimizers ask it instead of testing
    where an array lives.

    Parameters
    ----------
    array : object
        A parameter or gradient: a NumPy array, a device array, ...

    Returns
    -------
    module or None
        The backend module whose ``owns(array)`` is true, or None when no loadable backend owns it
        (a NumPy array under ``"cuda"``, say: the caller names what to do).
    """
    mod = ops()
    if mod.owns(array):
        return mod
    from .kernels.arrays import is_device_array
    if is_device_array(array):
        try:
            dev = _import("cuda")
        except BackendError:
            return None
        return dev if dev.owns(array) else None
    return None


def wait_for_kernels(timeout: Optional[float] = None) -> bool:
    """Block until the compiled kernels queued for background compilation are ready.

    Under ``FASTDL_COMPILE=background`` (the numba backend's default) the first call of an op
    runs the reference kernel while its compiled kernel builds; anything that times calls
    (benchmarks, profilers, sweeps) calls this after a first warm-up call and warms up once
    more, so it measures the compiled kernels only. Does nothing when the numba backend is not
    loaded in this process.

    Parameters
    ----------
    timeout : float, optional
        Seconds to wait at most; None waits as long as it takes.

    Returns
    -------
    bool
        True when nothing is left compiling (or numba is not loaded), False on timeout.
    """
    if "numba" not in _loaded:
        return True
    from .kernels.cpu import _compile, _defer, load_kernels
    load_kernels()                      # if still held back (kernels/cpu/_defer.py): now
    _defer.finish(vars(_loaded["numba"]))   # the ops that ran before it, compiled here
    return bool(_compile.wait(timeout))

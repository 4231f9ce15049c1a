"""Load the TBB runtime that pip's ``tbb`` package installs, so that Numba can use it.

Numba's ``tbb`` threading layer (fork-safe, idle threads sleep) needs ``libtbb.so.12``
(``libtbb.12.dylib``, ``tbb12.dll``). pip's ``tbb`` wheel puts that file in
``<sys.prefix>/lib`` (``Library/bin`` on Windows), a folder the dynamic loader does not
search in a virtual environment, so Numba finds no TBB there and falls back to OpenMP.
``preload`` loads the file by its full path; Numba's own load by name then finds it
already in the process. It starts no thread and reads no environment variable.

``import fastdl`` calls ``preload`` (it costs a file lookup and one library load), so
that Numba picks TBB whichever code starts Numba's threads first: fastdl's backend, the
user's own ``numba.get_num_threads()`` or another Numba-using library imported after fastdl.
"""
import os
import sys
from typing import Any, Optional

_NAMES = {"linux": "libtbb.so.12", "darwin": "libtbb.12.dylib", "win32": "tbb12.dll"}

#: full path of the TBB library this process loaded through ``preload``, or None
path: Optional[str] = None
_tried = False
_handle: Any = None


def _name() -> Optional[str]:
    plat = "linux" if sys.platform.startswith("linux") else sys.platform
    return _NAMES.get(plat)


def find() -> Optional[str]:
    """Full path of pip's TBB runtime library for this Python, or None if the ``tbb``
    distribution is not installed (or installs no library for this platform)."""
    name = _name()
    if name is None:
        return None
    folder = os.path.join("Library", "bin") if sys.platform == "win32" else "lib"
    here = os.path.join(sys.prefix, folder, name)
    if os.path.isfile(here):
        return here
    try:                                   # --user and other schemes: ask the distribution
        from importlib import metadata
        files = metadata.distribution("tbb").files or []
    except Exception:                      # not installed, or unreadable metadata
        return None
    for f in files:
        if f.name == name:
            full = os.path.abspath(str(f.locate()))
            if os.path.isfile(full):
                return full
    return None


def preload() -> Optional[str]:
    """Load pip's TBB runtime into this process (once); return its path, or None when there is
    none or it does not load."""
    global path, _tried, _handle
    if _tried:
        return path
    _tried = True
    found = find()
    if found is None:
        return None
    try:
        import ctypes
        _handle = ctypes.CDLL(found, mode=getattr(ctypes, "RTLD_LOCAL", 0))
    except OSError:
        return None
    path = found
    return path

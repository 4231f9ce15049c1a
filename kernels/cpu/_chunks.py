"""How parallel kernels split their work, and when they do not split it at all.

Every parallel kernel of this backend has the same shape::

    @njit(parallel=True, cache=True)
    def _kernel(..., chunks):
        if chunks == 1:
            _body(0, 1, ...)                     # no parallel region is entered
        else:
            for ci in prange(chunks):            # disjoint pieces of the output
                _body(ci, chunks, ...)

A parallel region costs more than its own time: Numba's worker threads have to be
woken, and on a 2-core machine a worker shares its core with whatever else runs there
(the reader's own NumPy, whose OpenBLAS threads keep spinning for a while after each
call; another process). Small work is therefore done on the calling thread alone:
``nchunks(units, work, min_work)`` returns 1 below ``min_work`` units of work.
Each kernel module defines its threshold next to its kernels, measured on this
project's machines (``benchmarks/scripts/sweep.py`` prints both variants side by side);
``FASTDL_SERIAL_BELOW`` scales every threshold (``0`` means always parallel, a large
number never).

``forced("serial")`` / ``forced("parallel")`` make every kernel take one path, so the
tests can check both against the reference whatever the size.

``one_thread_only()`` makes every kernel take the serial path for the rest of the process:
``_threads`` calls it in a child forked from a process whose Numba threads are not fork-safe
(GNU OpenMP), where entering a parallel region would kill the child.

``numba_threads_in_use`` tells the matrix products (``affine``) whether convolution or
pooling kernels have just used Numba's threads, so that they run in that pool too rather
than waking NumPy's OpenBLAS threads next to it.
"""
import os
import threading
import time
from contextlib import contextmanager
from typing import Optional

import numba


class _State(threading.local):
    """This thread's forced mode and last chunk count; class defaults, so reading them costs no
    failed attribute lookup on every kernel call."""
    mode: Optional[str] = None
    last: Optional[int] = None


_state = _State()
_process_mode = None     # "serial" in a forked child that must not enter a parallel region
_scale = float(os.environ.get("FASTDL_SERIAL_BELOW", "1") or 1)


def nchunks(n_items, work=None, min_work=0, mark=False):
    """Chunks for n_items units of independent work: 1 (serial) when ``work`` is below
    ``min_work`` (both in the kernel's own unit, e.g. elements or multiply-adds), otherwise one
    per Numba thread, at most n_items. With ``mark`` (the convolution and pooling kernels: long
    parallel loops that come back every step), a split marks Numba's threads as in use
    (``numba_threads_in_use``)."""
    global _last_parallel
    mode = _process_mode or _state.mode
    if (mode is None and work is not None and work < min_work * _scale) or mode == "serial":
        n = 1                  # decided before asking Numba for its thread count (~1 us)
    else:
        n = max(1, min(numba.get_num_threads(), n_items))
        if n > 1 and mark:
            _last_parallel = time.monotonic()
    _state.last = n
    return n


#: when a kernel last split its work over Numba's threads (time.monotonic(), any thread)
_last_parallel = float("-inf")
#: seconds after a parallel kernel during which Numba's threads count as in use (see
#: ``numba_threads_in_use``); OpenBLAS's idle threads spin for about 0.1 s after a call
IN_USE_WINDOW = 0.25


def forced_mode():
    """"serial", "parallel" or None (see ``forced``), in this thread."""
    return _process_mode or _state.mode


def one_thread_only():
    """From now on, in this process, every kernel runs on the calling thread (see above)."""
    global _process_mode
    _process_mode = "serial"


def numba_threads_in_use():
    """True if a convolution or pooling kernel split its work over Numba's threads in the last
    ``IN_USE_WINDOW`` seconds (or the parallel path is forced). Element-wise kernels do not
    count: after an MLP's big product, a parallel ReLU must not send the next products (each
    as large) into Numba's threads, where they are slower than in OpenBLAS's. The matrix products then run inside Numba's
    threads too, rather than waking NumPy's OpenBLAS threads, whose spinning after each call
    would take the core the next parallel kernel needs (see ``affine``)."""
    mode = forced_mode()
    if mode is not None:
        return mode == "parallel"
    return time.monotonic() - _last_parallel < IN_USE_WINDOW


def last_chunks():
    """What the last ``nchunks`` call in this thread returned (for tests)."""
    return getattr(_state, "last", None)


@contextmanager
def forced(mode):
    """Within the block, in this thread, every kernel runs ``"serial"`` or ``"parallel"``
    (parallel still needs at least two items of work to split) whatever its size."""
    if mode not in ("serial", "parallel", None):
        raise ValueError(f"mode must be 'serial', 'parallel' or None, got {mode!r}")
    old = getattr(_state, "mode", None)
    _state.mode = mode
    try:
        yield
    finally:
        _state.mode = old

"""Numba's threads: which threading layer, fork, waiting threads, BLAS threads, memory.

Threading layer: Numba runs parallel loops on one of three layers, chosen when its
threads start and fixed for the life of the process. fastdl uses ``tbb`` wherever TBB
can be loaded (pip's ``tbb`` package, a dependency on x86-64 Linux, Windows and macOS;
``fastdl.kernels._tbb`` loads it at ``import fastdl``, since the dynamic loader does not
look where pip puts it in a virtual environment): TBB's idle threads sleep after a short
spin, and a process that has used them can fork (``multiprocessing``'s default start
method on Linux), the child running its kernels in parallel too. Without TBB (no wheel
for ARM CPUs) Numba takes OpenMP; a user's ``NUMBA_THREADING_LAYER`` or
``NUMBA_THREADING_LAYER_PRIORITY`` is followed as Numba follows it.

Waiting threads under OpenMP (GNU libgomp on Linux): its worker threads keep spinning on
their core for a while after each parallel loop (GOMP_SPINCOUNT, 300,000 pause
instructions by default: milliseconds on current x86 CPUs). NumPy's OpenBLAS does the
same after each of its threaded calls. On a 2-core machine the two kinds of spinning
threads take each other's core, so a reader's loop of ``x @ W`` (NumPy) followed by a
fastdl kernel waited for the scheduler at every switch: 8 ms per iteration instead of 0.2
(measured on this project's machines). Another process on a core hurts in the same way.
``start_threads`` therefore starts Numba's threads with ``OMP_WAIT_POLICY=PASSIVE`` in
the environment (threads sleep as soon as a loop ends and are woken for the next; it
costs nothing on fastdl's own training steps), then removes the variable again so child
processes and the user's later code see the environment as it was; the variable is read
only if OpenMP is the layer Numba picks. A user's own ``OMP_WAIT_POLICY`` or
``GOMP_SPINCOUNT`` is respected; ``FASTDL_KEEP_OMP_WAIT=1`` skips this.

Fork under GNU OpenMP: libgomp is not fork-safe, and Numba kills a forked child that
enters a parallel region ("Terminating: fork() called from a process already using GNU
OpenMP"; a ``multiprocessing.Pool`` then waits forever). When that is the layer,
``start_threads`` registers an at-fork hook that makes every fastdl kernel in the child
run on the calling thread (``_chunks``): correct results, one thread per child. Numba
still stops the user's own ``prange`` code in such a child; the ``spawn`` start method,
or installing ``tbb``, gives children their threads.

Import order: the layer and the wait policy are fixed by whatever starts Numba's threads
first. After ``import fastdl`` the TBB library is loaded, so Numba picks TBB whoever starts
them. Before it (``import numba; numba.get_num_threads()`` first, or a Numba-using library
imported first), Numba finds TBB only where the dynamic loader does (not in a virtual
environment); without TBB, whatever starts the threads before fastdl's backend loads starts
OpenMP with its spinning wait. fastdl cannot change a running layer: loading the backend
then warns once (``RuntimeWarning``: run ``fastdl.set_backend('numba')`` first, or set
``OMP_WAIT_POLICY=PASSIVE`` before starting Python) and ``fastdl info`` says so.

Numba's ``np.dot`` inside an ``@njit`` function calls the BLAS that SciPy
ships (through ``scipy.linalg.cython_blas``); the kernels' fallback products
(``_blas``, used where NumPy's OpenBLAS cannot be called) use it from every
Numba thread at once. If that BLAS also started its own threads, 2 Numba
threads x 2 BLAS threads would fight over 2 cores (the median SimpleConvNet
step then more than doubles), so SciPy's BLAS is set to one
thread when the backend chooses that fallback (SciPy is not even imported otherwise:
it took 0.3 s of the backend's 1.1 s load). NumPy's OpenBLAS, which the kernels normally
call, is handled per kernel call in ``_blas``.
Set ``FASTDL_KEEP_BLAS_THREADS=1`` to skip this.

Memory: a training step allocates several arrays of 5-15 MB. With glibc's
default thresholds such arrays are mmap'ed fresh and returned to the system
on free, so every step pays page faults on first touch (measured here: the
SimpleConvNet step takes 20 ms instead of 24-27 ms in float64 and 11-13 ms instead of 14 ms
in float32 with the thresholds raised). ``keep_freed_memory`` raises the mmap and trim
thresholds so freed blocks are reused; the process keeps what it has freed
(up to 1 GiB of heap before trimming). Set ``FASTDL_KEEP_MALLOC=1`` to skip it.
"""
import os
import warnings

_done = False

#: Numba's threading layer, once ``start_threads`` has run ("tbb", "omp" or "workqueue")
layer = None
#: whether a process that has used Numba's threads can fork and use them in the child
fork_safe = None
#: whether Numba's threads were already running when fastdl's backend loaded
started_before_fastdl = False
#: whether this process is a child forked from one whose threads were not fork-safe
forked_child = False
#: what start_threads found and did about idle threads, for ``fastdl info`` and the benchmarks
omp_status = "not set up yet"

SPINNING = ("fastdl: Numba's threads were started before fastdl's backend, on OpenMP with spinning "
            "idle threads, which can make fastdl several times slower on a busy machine; run "
            "fastdl.set_backend('numba') before other Numba code, or set OMP_WAIT_POLICY=PASSIVE "
            "before starting Python (FASTDL_KEEP_OMP_WAIT=1: spin without this warning)")


def _libgomp_loaded():
    try:
        with open("/proc/self/maps") as f:
            return any(line.rstrip().endswith(("/libgomp.so.1", "/libgomp.so.1.0.0")) for line in f)
    except OSError:
        return False


def start_threads():
    """Start Numba's threads (see the module docstring): on TBB when it loads, else on
    OpenMP with the passive wait policy; under GNU OpenMP, make forked children run
    fastdl's kernels on one thread. Must run before anything starts Numba's threads to set
    the wait policy; afterwards it reports what is in force. Idempotent."""
    global omp_status, layer, fork_safe, started_before_fastdl
    if omp_status != "not set up yet":
        return
    from numba.np.ufunc import parallel

    from .. import _tbb
    _tbb.preload()
    started_before_fastdl = bool(getattr(parallel, "_is_initialized", False))
    user = {k: os.environ[k] for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in os.environ}
    keep = bool(os.environ.get("FASTDL_KEEP_OMP_WAIT"))
    gomp_before = _libgomp_loaded()
    set_passive = not (started_before_fastdl or keep or user)
    if set_passive:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        parallel._launch_threads()
    finally:
        if set_passive:
            del os.environ["OMP_WAIT_POLICY"]
    import numba
    layer = numba.threading_layer()
    fork_safe = not (layer == "omp" and _libgomp_loaded())
    env = ", ".join(f"{k}={v}" for k, v in user.items())
    if layer != "omp":
        omp_status = f"no spinning to stop: Numba's threading layer is {layer!r}, whose idle threads sleep"
        if user:
            omp_status += f" ({env} from the environment applies to OpenMP code only)"
    elif user:
        omp_status = f"as the environment says ({env})"
    elif keep:
        omp_status = "OpenMP's default: spinning (FASTDL_KEEP_OMP_WAIT is set)"
    elif started_before_fastdl:
        omp_status = ("OpenMP's default: spinning (Numba's threads were started before fastdl's backend "
                      "loaded; see the RuntimeWarning it gave)")
        warnings.warn(SPINNING, RuntimeWarning, stacklevel=2)
    elif gomp_before:
        omp_status = ("libgomp was loaded before fastdl, so its wait policy is whatever was in force then "
                      "(set OMP_WAIT_POLICY=PASSIVE before starting Python if threads spin)")
    else:
        omp_status = "passive (set by fastdl: idle threads sleep instead of spinning)"
    if not fork_safe and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)


def _after_fork_in_child():
    """In a child forked under GNU OpenMP: no kernel may enter a parallel region here."""
    global forked_child
    forked_child = True
    from . import _chunks
    _chunks.one_thread_only()


def _tbb_loadable():
    """Whether Numba could load TBB (pip's, preloaded by ``_tbb``, or one the loader finds)."""
    from numba.np.ufunc import parallel
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parallel._check_tbb_version_compatible()
    except (ImportError, AttributeError):
        return False
    return True


def describe():
    """Three lines for ``fastdl info``: Numba's threads and layer, fork, idle threads."""
    import numba
    first = f"numba: {numba.get_num_threads()} threads, {layer} threading layer"
    if started_before_fastdl:
        first += " (Numba's threads were started before fastdl's backend loaded)"
    if fork_safe:
        fork = "fork: safe (a forked child runs fastdl's kernels on all its threads)"
    else:
        if not _tbb_loadable():
            tbb = "install tbb"
        elif started_before_fastdl:
            tbb = "load fastdl's backend before other Numba code"
        else:
            tbb = "use Numba's tbb layer (NUMBA_THREADING_LAYER=tbb)"
        fork = ("fork: GNU OpenMP is not fork-safe, so a forked child runs fastdl's kernels on one "
                f"thread; {tbb}, or use the 'spawn' start method, for threads in children")
        if forked_child:
            fork += " (this process is such a child)"
    return [first, fork, f"idle threads: {omp_status}"]


def summary():
    """The same in one line, for benchmark headers."""
    import numba
    return (f"Numba: {numba.get_num_threads()} threads, {layer} threading layer "
            f"({'fork-safe' if fork_safe else 'not fork-safe'}"
            f"{', started before fastdl' if started_before_fastdl else ''}); idle threads: {omp_status}")


def _scipy_blas_paths():
    import scipy
    roots = [os.path.dirname(scipy.__file__)]
    libs = os.path.join(os.path.dirname(roots[0]), "scipy.libs")
    if os.path.isdir(libs):
        roots.append(libs)
    return [os.path.realpath(r) for r in roots]


def limit_blas_in_parallel_regions():
    """Set the BLAS that Numba's np.dot uses (SciPy's) to one thread. Idempotent."""
    global _done
    if _done or os.environ.get("FASTDL_KEEP_BLAS_THREADS"):
        return
    _done = True
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (loads SciPy's BLAS)
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return
    roots = _scipy_blas_paths()
    for lib in ThreadpoolController().lib_controllers:
        if lib.user_api == "blas" and any(os.path.realpath(lib.filepath).startswith(r) for r in roots):
            lib.set_num_threads(1)


def loaded_blas_threads():
    """(library file name, threads) of every BLAS loaded in this process (threadpoolctl's view)."""
    from threadpoolctl import threadpool_info
    return [(os.path.basename(d["filepath"]), d["num_threads"]) for d in threadpool_info()
            if d["user_api"] == "blas"]


_malloc_done = False


def keep_freed_memory():
    """glibc only: serve arrays up to 32 MiB from the heap and trim it only past 1 GiB. Idempotent."""
    global _malloc_done
    if _malloc_done or os.environ.get("FASTDL_KEEP_MALLOC"):
        return
    _malloc_done = True
    import ctypes
    import platform
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    try:
        libc = ctypes.CDLL(None)
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        libc.mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024)
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):
        pass

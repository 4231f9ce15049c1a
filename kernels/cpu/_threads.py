"""Keep Numba threads and BLAS threads from oversubscribing the cores, and from spinning.

Waiting threads: Numba's default threading layer on Linux is OpenMP (GNU libgomp),
whose worker threads keep spinning on their core for a while after each parallel loop
(GOMP_SPINCOUNT, 300,000 pause instructions by default: milliseconds on current
x86 CPUs). NumPy's OpenBLAS does the same after each of its threaded calls. On a
2-core machine the two kinds of spinning threads take each other's core, so a
reader's loop of ``x @ W`` (NumPy) followed by a fastdl kernel waited for the
scheduler at every switch: 8 ms per iteration instead of 0.2 (measured here; 8-12 ms
on the other machines it was measured on). Another process on a core hurts in the
same way. ``quiet_openmp`` therefore loads Numba's OpenMP layer with
``OMP_WAIT_POLICY=PASSIVE`` (threads sleep as soon as a loop ends and are woken for
the next), measured to cost nothing on fastdl's own training steps, then removes
the variable again so child processes and the user's later code see the
environment as it was. A user's own ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is
respected; ``FASTDL_KEEP_OMP_WAIT=1`` skips this. Small kernels do not enter a
parallel region at all (``_chunks``).

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
SimpleConvNet step went from 24-27 to 20 ms in float64 and from 14 to 11-13 ms
in float32 with the thresholds raised). ``keep_freed_memory`` raises the mmap and trim
thresholds so freed blocks are reused; the process keeps what it has freed
(up to 1 GiB of heap before trimming). Set ``FASTDL_KEEP_MALLOC=1`` to skip it.
"""
import os

_done = False

#: what quiet_openmp found and did, for ``fastdl info`` and the benchmarks
omp_status = "not set up yet"


def _libgomp_loaded():
    try:
        with open("/proc/self/maps") as f:
            return any(line.rstrip().endswith(("/libgomp.so.1", "/libgomp.so.1.0.0")) for line in f)
    except OSError:
        return False


def quiet_openmp():
    """Launch Numba's threading layer with OpenMP's passive wait policy (see the module
    docstring). Must run before anything starts Numba's threads. Idempotent."""
    global omp_status
    if omp_status != "not set up yet":
        return
    from numba.np.ufunc import parallel
    user = {k: os.environ[k] for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in os.environ}
    if os.environ.get("FASTDL_KEEP_OMP_WAIT") or user:
        parallel._launch_threads()
        omp_status = (f"as the environment says ({', '.join(f'{k}={v}' for k, v in user.items())})" if user
                      else "OpenMP's default (FASTDL_KEEP_OMP_WAIT is set)")
        return
    preloaded = _libgomp_loaded()
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        parallel._launch_threads()
    finally:
        del os.environ["OMP_WAIT_POLICY"]
    import numba
    layer = numba.threading_layer()
    if layer != "omp":
        omp_status = f"no spinning to stop: Numba's threading layer is {layer!r}"
    elif preloaded:
        omp_status = ("libgomp was loaded before fastdl, so its wait policy is whatever was in force then "
                      "(set OMP_WAIT_POLICY=PASSIVE before starting Python if threads spin)")
    else:
        omp_status = "passive (set by fastdl: idle threads sleep instead of spinning)"


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

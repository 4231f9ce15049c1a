"""What this machine runs the kernels with: its BLAS library and Numba's threads, as one line each
(``fastdl info``, ``fastdl compare``, the benchmarks and the profiler print them)."""


def blas_line(threads=True):
    """Which BLAS kernels run: OpenBLAS picks them by CPU unless OPENBLAS_CORETYPE forces a type
    (some machines set it, e.g. to Haswell, which halves float32 GEMM speed on AVX-512 CPUs).
    With ``threads``, a second line: Numba's threads (``threads_line``)."""
    import os

    from threadpoolctl import threadpool_info
    libs = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')}, "
            f"{os.path.basename(i.get('filepath', ''))})" for i in threadpool_info() if i.get("user_api") == "blas"]
    forced = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    line = "BLAS: " + "; ".join(libs) + (f"; forced by the environment: {forced}" if forced else "")
    return line + "\n" + threads_line() if threads else line


def threads_line():
    """Numba's threads as the numba backend runs them: how many, the threading layer, whether a
    fork is safe, what idle threads do. Loads the backend first, so that fastdl (not a
    benchmark's own ``numba.get_num_threads()``) starts Numba's threads."""
    from . import backend
    try:
        backend.ops("numba")
    except backend.BackendError as exc:
        return f"Numba: {exc}"
    from .kernels.cpu import _threads, load_kernels
    load_kernels()             # held back until the ops need them (background mode): load them now
    return str(_threads.summary())

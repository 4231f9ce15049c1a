"""The matrix product the numba kernels call: NumPy's OpenBLAS through its CBLAS interface.

Why: Numba's ``np.dot`` calls SciPy's OpenBLAS, which on this project's machines ran the small
per-image products of convolution 1.4-1.9x slower than the OpenBLAS that NumPy ships (measured
on (16,144)@(144,840)-like shapes, 2 threads: 110-137 vs 62-95 GFLOP/s); CBLAS also takes
leading dimensions, transposes and beta = 1 (accumulate), so no transposed copies are needed.

How: the kernels receive the CBLAS function as an *argument* (a ctypes function pointer), so the
address is passed at run time and ``cache=True`` still works across processes. While a kernel
runs, the wrapper sets that OpenBLAS to one thread (``single_threaded_blas``) and restores the
previous count when the kernel returns, so BLAS threads never oversubscribe the cores inside
Numba's parallel loops and NumPy's own multi-threading is as it was afterwards. (OpenBLAS's
"thread-local" setter changes the global count in this pthreads build, so it must not be called
from the parallel threads themselves: two of them restoring it race, measured.) Another Python
thread using NumPy's BLAS during a kernel call runs single-threaded meanwhile.

Fallback: where NumPy's BLAS is not an OpenBLAS with those symbols (another build, MKL, ...),
or with ``FASTDL_BLAS=numba``, the same C signature is served by ``@cfunc`` functions built on
Numba's ``np.dot``; the kernels are the same code either way.

``gemm(order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)`` is CBLAS's
row-major sgemm/dgemm: C = alpha * op(A) @ op(B) + beta * C.
"""
import contextlib
import ctypes
import os

import numpy as np
from numba import carray, cfunc, types

ROW_MAJOR = 101
NO_TRANS = 111
TRANS = 112

_c = ctypes
_args = lambda real: (_c.c_int, _c.c_int, _c.c_int, _c.c_int64, _c.c_int64, _c.c_int64, real,  # noqa: E731
                      _c.c_void_p, _c.c_int64, _c.c_void_p, _c.c_int64, real, _c.c_void_p, _c.c_int64)
GEMM32_T = _c.CFUNCTYPE(None, *_args(_c.c_float))
GEMM64_T = _c.CFUNCTYPE(None, *_args(_c.c_double))
SET_T = _c.CFUNCTYPE(None, _c.c_int)
GET_T = _c.CFUNCTYPE(_c.c_int)
AXPY32_T = _c.CFUNCTYPE(None, _c.c_int64, _c.c_float, _c.c_void_p, _c.c_int64, _c.c_void_p, _c.c_int64)
AXPY64_T = _c.CFUNCTYPE(None, _c.c_int64, _c.c_double, _c.c_void_p, _c.c_int64, _c.c_void_p, _c.c_int64)


def _sig(real):
    return types.void(types.int32, types.int32, types.int32, types.int64, types.int64, types.int64, real,
                      types.voidptr, types.int64, types.voidptr, types.int64, real, types.voidptr, types.int64)


def _fallback_body(dtype):
    def gemm(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc):
        a = carray(A, (K if ta == TRANS else M, lda), dtype)
        b = carray(B, (N if tb == TRANS else K, ldb), dtype)
        opa = a[:, :M].T if ta == TRANS else a[:, :K]
        opb = b[:, :K].T if tb == TRANS else b[:, :N]
        prod = np.dot(np.ascontiguousarray(opa), np.ascontiguousarray(opb))
        c = carray(C, (M, ldc), dtype)
        for i in range(M):
            for j in range(N):
                if beta == 0:
                    c[i, j] = alpha * prod[i, j]
                else:
                    c[i, j] = alpha * prod[i, j] + beta * c[i, j]
    return gemm




def _axpy_body(dtype):
    def axpy(n, alpha, X, incx, Y, incy):
        x = carray(X, (max(n, 1) * incx,), dtype)
        y = carray(Y, (max(n, 1) * incy,), dtype)
        for i in range(n):
            y[i * incy] += alpha * x[i * incx]
    return axpy


def _axpy_sig(real):
    return types.void(types.int64, real, types.voidptr, types.int64, types.voidptr, types.int64)


_FALLBACK_CFUNCS: tuple   # bound by _fallback (a declaration: the name exists once it runs)


def _fallback():
    """(sgemm, dgemm, saxpy, daxpy) as @cfunc functions on Numba's np.dot, compiled (or loaded
    from the disk cache, about 0.4 s) only when this path is chosen."""
    global _FALLBACK_CFUNCS
    fns = (cfunc(_sig(types.float32), cache=True)(_fallback_body(np.float32)),
           cfunc(_sig(types.float64), cache=True)(_fallback_body(np.float64)),
           cfunc(_axpy_sig(types.float32), cache=True)(_axpy_body(np.float32)),
           cfunc(_axpy_sig(types.float64), cache=True)(_axpy_body(np.float64)))
    _FALLBACK_CFUNCS = fns            # keep the compiled code alive as long as its addresses are used
    return (GEMM32_T(fns[0].address), GEMM64_T(fns[1].address), AXPY32_T(fns[2].address),
            AXPY64_T(fns[3].address))


def _numpy_openblas():
    """(sgemm, dgemm, saxpy, daxpy, (get_threads, set_threads), path) from NumPy's OpenBLAS, or None."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    numpy_dir = os.path.realpath(os.path.dirname(np.__file__))
    roots = [numpy_dir, numpy_dir + ".libs", os.path.join(os.path.dirname(numpy_dir), "numpy.libs")]
    for lib in ThreadpoolController().lib_controllers:
        if lib.internal_api != "openblas":
            continue
        path = os.path.realpath(lib.filepath)
        if not any(path.startswith(r) for r in roots):
            continue
        try:
            so = ctypes.CDLL(path)
            for prefix, suffix in (("scipy_cblas_", "64_"), ("cblas_", "64_"), ("scipy_cblas_", ""), ("cblas_", "")):
                if hasattr(so, f"{prefix}sgemm{suffix}"):
                    break
            else:
                return None
            if suffix != "64_":          # 32-bit integer interface: our signature passes int64
                return None
            oprefix = "scipy_openblas" if prefix.startswith("scipy") else "openblas"
            threads = (GET_T((f"{oprefix}_get_num_threads64_", so)), SET_T((f"{oprefix}_set_num_threads64_", so)))
            return (GEMM32_T((f"{prefix}sgemm{suffix}", so)), GEMM64_T((f"{prefix}dgemm{suffix}", so)),
                    AXPY32_T((f"{prefix}saxpy{suffix}", so)), AXPY64_T((f"{prefix}daxpy{suffix}", so)),
                    threads, path)
        except (OSError, AttributeError):
            return None
    return None


def _select():
    if os.environ.get("FASTDL_BLAS", "").lower() != "numba":
        found = _numpy_openblas()
        if found is not None:
            return found
    from ._threads import limit_blas_in_parallel_regions
    limit_blas_in_parallel_regions()   # np.dot inside the parallel loops calls SciPy's BLAS
    return (*_fallback(), None, "numba np.dot (SciPy's BLAS, single-threaded)")


SGEMM, DGEMM, SAXPY, DAXPY, _THREADS, SOURCE = _select()


class single_threaded_blas:
    """Context manager: NumPy's OpenBLAS at one thread inside, the previous count restored after."""

    def __enter__(self):
        self._n = None
        if _THREADS is not None:
            n = _THREADS[0]()
            if n != 1:
                _THREADS[1](1)
                self._n = n
        return self

    def __exit__(self, *exc):
        if self._n is not None:
            _THREADS[1](self._n)
        return False


def blas_for(chunks):
    """The BLAS threading a kernel call needs: one thread inside Numba's parallel loop
    (chunks > 1); on the calling thread alone (chunks == 1), NumPy's OpenBLAS as the user set
    it, so a large single-image product is threaded by OpenBLAS exactly as the reference's
    (and the user's own) products are."""
    return single_threaded_blas() if chunks > 1 else contextlib.nullcontext()


def numpy_openblas_threads():
    """The thread count NumPy's OpenBLAS (the BLAS the kernels call) is set to now; None when the
    kernels use the fallback products instead."""
    return None if _THREADS is None else _THREADS[0]()


#: C's memmove as a ctypes function pointer (portable: it is part of ctypes). Passed to kernels
#: like the gemm, it copies the long contiguous rows of the stride-1 im2col 4x faster than a
#: Numba slice assignment (measured: 1.1 vs 4.5 ms for DeepConvNet's conv2 columns).
MEMCPY = ctypes.memmove


def gemm_for(dtype):
    """The CBLAS gemm function pointer for float32 or float64."""
    return SGEMM if np.dtype(dtype) == np.float32 else DGEMM


def axpy_for(dtype):
    """The CBLAS axpy (y += alpha * x) function pointer for float32 or float64."""
    return SAXPY if np.dtype(dtype) == np.float32 else DAXPY

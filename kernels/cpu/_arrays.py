"""How the kernels of this backend take their arrays (shared by every module).

Every compiled kernel is typed for one layout (C-contiguous, writeable) and two dtypes, so the
op wrappers hand it their inputs through ``kernel_input``.
"""
import numpy as np


def kernel_input(a):
    """a as the kernels take an input: C-contiguous and writeable (a copy only if it is not).
    The kernels never write to their inputs, but Numba types a read-only array as another type
    and would compile each kernel again for it (seconds per kernel and dtype, once per cache)."""
    a = np.ascontiguousarray(a)
    return a if a.flags.writeable else a.copy()


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def float_input(a, dtype):
    """a as ``kernel_input`` gives it, first converted to ``dtype`` unless it is float32 or float64:
    Numba has no float16 arrays, and an integer or boolean one would compile each kernel again
    (a convolution's bias b, converted to the images' compute dtype)."""
    a = np.asarray(a)
    if a.dtype not in _FLOATS:
        a = a.astype(dtype)
    return kernel_input(a)


def blas_dtype(*dtypes):
    """The dtype BLAS computes in for arrays of these dtypes: NumPy's promotion when that is
    float32 or float64, float32 for float16, float64 for anything else (integers). The kernels
    that hand raw pointers to BLAS take every array in this dtype: a float32 buffer read as
    float64 would be read past its end."""
    dt = np.result_type(*dtypes)
    if dt in _FLOATS:
        return dt
    return np.dtype(np.float32) if dt == np.float16 else np.dtype(np.float64)


def filter_matrix(W):
    """W (FN, C, FH, FW) as the C-contiguous (FN, C*FH*FW) matrix the convolution kernels take
    (explicit sizes: reshape(FN, -1) cannot infer -1 when FN == 0)."""
    FN, C, FH, FW = W.shape
    return kernel_input(W).reshape(FN, C * FH * FW)

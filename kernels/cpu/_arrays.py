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


def filter_matrix(W):
    """W (FN, C, FH, FW) as the C-contiguous (FN, C*FH*FW) matrix the convolution kernels take
    (explicit sizes: reshape(FN, -1) cannot infer -1 when FN == 0)."""
    FN, C, FH, FW = W.shape
    return kernel_input(W).reshape(FN, C * FH * FW)

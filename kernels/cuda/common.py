"""Small kernels shared by the cuda ops: column sums, bias adds, layout changes."""
import numpy as np
from numba import cuda

from . import launch
from .arrays import empty


@cuda.jit(device=True)
def unravel4(i, C, H, W):
    """(n, c, y, x) of flat index i in a C-contiguous (N, C, H, W) array."""
    x = i % W
    t = i // W
    y = t % H
    t = t // H
    return t // C, t % C, y, x


@cuda.jit
def _colsum_kernel(out, a, zero):
    """out[j] = sum_i a[i, j]; one thread per column (a gather: no atomics). The sum starts from
    ``zero`` (of a's dtype, from the host): ``a[0, j] * 0`` would be NaN for an infinite first
    element, and out of bounds for zero rows."""
    j = cuda.grid(1)
    if j < a.shape[1]:
        s = zero
        for i in range(a.shape[0]):
            s += a[i, j]
        out[j] = s


def colsum(a):
    out = empty((a.shape[1],), a.dtype)
    if a.shape[1]:
        _colsum_kernel[launch.grid1d(a.shape[1])](out, a, np.dtype(a.dtype).type(0))
    return out


@cuda.jit
def _add_rowvec_kernel(a, v):
    i = cuda.grid(1)
    if i < a.size:
        a[i // v.size, i % v.size] += v[i % v.size]


def add_rowvec(a, v):
    """a (N, M) += v (M,) in place."""
    _add_rowvec_kernel[launch.grid1d(a.size)](a, v)


@cuda.jit
def _rows_to_nchw_kernel(out, rows, b, P):
    """out[n, f, p] = rows[n*P + p, f] + b[f]."""
    i = cuda.grid(1)
    F = out.shape[1]
    if i < out.size:
        p = i % P
        f = (i // P) % F
        n = i // (P * F)
        out[n, f, p] = rows[n * P + p, f] + b[f]


@cuda.jit
def _nchw_to_rows_kernel(rows, a, P):
    """rows[n*P + p, f] = a[n, f, p]."""
    i = cuda.grid(1)
    F = a.shape[1]
    if i < a.size:
        p = i % P
        f = (i // P) % F
        n = i // (P * F)
        rows[n * P + p, f] = a[n, f, p]


def rows_to_nchw(rows, b, N, F, OH, OW):
    out = empty((N, F, OH * OW), rows.dtype)
    _rows_to_nchw_kernel[launch.grid1d(out.size)](out, rows, b, OH * OW)
    return out.reshape(N, F, OH, OW)


def nchw_to_rows(a):
    N, F, OH, OW = a.shape
    rows = empty((N * OH * OW, F), a.dtype)
    _nchw_to_rows_kernel[launch.grid1d(a.size)](rows, a.reshape(N, F, OH * OW), OH * OW)
    return rows

"""Fully connected layer (numba backend): GEMMs on row chunks of the batch, in parallel.

    for chunk in prange(chunks):                 # disjoint rows of the batch, disjoint rows of dW
        out[rows] = x[rows] @ W + b
        dx[rows] = dout[rows] @ W.T
        dW[cols] = x[:, cols].T @ dout;  db_part[chunk] = dout[rows].sum(0)
    db = sum(db_part)
"""
import numpy as np
from numba import njit, prange

from ._blas import NO_TRANS, ROW_MAJOR, TRANS, gemm_for, single_threaded_blas
from ._chunks import nchunks


@njit(parallel=True, cache=True)
def _affine_forward(out, x, W, b, chunks, gemm):
    N, D = x.shape
    M = W.shape[1]
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    for ci in prange(chunks):
        lo = ci * N // chunks
        hi = (ci + 1) * N // chunks
        o = out[lo:hi]
        # out[rows] (R, M) = x[rows] (R, D) @ W (D, M)
        gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, hi - lo, M, D, one, x[lo:hi].ctypes.data, D, W.ctypes.data, M,
             zero, o.ctypes.data, M)
        for i in range(hi - lo):
            for j in range(M):
                o[i, j] += b[j]


@njit(parallel=True, cache=True)
def _affine_backward(dx, dW, db_part, dout, x, W, chunks, gemm):
    N, D = x.shape
    M = W.shape[1]
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    isz = x.itemsize
    for ci in prange(chunks):
        lo = ci * N // chunks
        hi = (ci + 1) * N // chunks
        d = dout[lo:hi]
        # dx[rows] (R, D) = dout[rows] (R, M) @ W.T (M, D)
        gemm(ROW_MAJOR, NO_TRANS, TRANS, hi - lo, D, M, one, d.ctypes.data, M, W.ctypes.data, M,
             zero, dx[lo:hi].ctypes.data, D)
        # dW[cols] (Dc, M) = x[:, cols].T (Dc, N) @ dout (N, M): x's column block read in place (lda = D),
        # so each chunk owns whole rows of dW and nothing needs summing afterwards
        c0 = ci * D // chunks
        c1 = (ci + 1) * D // chunks
        gemm(ROW_MAJOR, TRANS, NO_TRANS, c1 - c0, M, N, one, x.ctypes.data + c0 * isz, D, dout.ctypes.data, M,
             zero, dW.ctypes.data + c0 * M * isz, M)
        dbc = db_part[ci]
        for i in range(hi - lo):
            for j in range(M):
                dbc[j] += d[i, j]


def affine_forward(x, W, b):
    """x (N, D) @ W (D, M) + b -> (N, M)."""
    x = np.ascontiguousarray(x)
    W = np.ascontiguousarray(W)
    out = np.empty((x.shape[0], W.shape[1]), dtype=x.dtype)
    with single_threaded_blas():
        _affine_forward(out, x, W, np.ascontiguousarray(b), nchunks(x.shape[0]), gemm_for(x.dtype))
    return out


def affine_backward(dout, x, W):
    """dout (N, M) -> (dx (N, D), dW (D, M), db (M,))."""
    dout = np.ascontiguousarray(dout)
    x = np.ascontiguousarray(x)
    W = np.ascontiguousarray(W)
    chunks = nchunks(x.shape[0])
    dx = np.empty(x.shape, dtype=x.dtype)
    dW = np.empty(W.shape, dtype=x.dtype)
    db_part = np.zeros((chunks, W.shape[1]), dtype=x.dtype)
    with single_threaded_blas():
        _affine_backward(dx, dW, db_part, dout, x, W, chunks, gemm_for(x.dtype))
    return dx, dW, db_part.sum(axis=0)

"""Fully connected layer (numba backend): GEMMs on row chunks of the batch, in parallel.

    for chunk in prange(chunks):                 # disjoint rows of the batch
        out[rows] = x[rows] @ W + b
        dx[rows] = dout[rows] @ W.T
        dW_part[chunk] = x[rows].T @ dout[rows]; db_part[chunk] = dout[rows].sum(0)
    dW = sum(dW_part); db = sum(db_part)
"""
import numpy as np
from numba import njit, prange

from ._chunks import nchunks


@njit(parallel=True, cache=True)
def _affine_forward(out, x, W, b, chunks):
    N = x.shape[0]
    M = W.shape[1]
    for ci in prange(chunks):
        lo = ci * N // chunks
        hi = (ci + 1) * N // chunks
        o = out[lo:hi]
        np.dot(x[lo:hi], W, o)
        for i in range(hi - lo):
            for j in range(M):
                o[i, j] += b[j]


@njit(parallel=True, cache=True)
def _affine_backward(dx, dW_part, db_part, dout, x, W, chunks):
    N = x.shape[0]
    M = W.shape[1]
    for ci in prange(chunks):
        lo = ci * N // chunks
        hi = (ci + 1) * N // chunks
        d = dout[lo:hi]
        np.dot(d, W.T, dx[lo:hi])
        np.dot(x[lo:hi].T, d, dW_part[ci])
        dbc = db_part[ci]
        for i in range(hi - lo):
            for j in range(M):
                dbc[j] += d[i, j]


def affine_forward(x, W, b):
    """x (N, D) @ W (D, M) + b -> (N, M)."""
    x = np.ascontiguousarray(x)
    W = np.ascontiguousarray(W)
    out = np.empty((x.shape[0], W.shape[1]), dtype=x.dtype)
    _affine_forward(out, x, W, np.ascontiguousarray(b), nchunks(x.shape[0]))
    return out


def affine_backward(dout, x, W):
    """dout (N, M) -> (dx (N, D), dW (D, M), db (M,))."""
    dout = np.ascontiguousarray(dout)
    x = np.ascontiguousarray(x)
    W = np.ascontiguousarray(W)
    chunks = nchunks(x.shape[0])
    dx = np.empty(x.shape, dtype=x.dtype)
    dW_part = np.empty((chunks,) + W.shape, dtype=x.dtype)
    db_part = np.zeros((chunks, W.shape[1]), dtype=x.dtype)
    _affine_backward(dx, dW_part, db_part, dout, x, W, chunks)
    dW = dW_part[0] if chunks == 1 else dW_part.sum(axis=0)
    return dx, dW, db_part.sum(axis=0)

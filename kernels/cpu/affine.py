"""Fully connected layer (numba backend): one pool of threads at a time.

Two ways to run the products, each the faster one somewhere:

* NumPy's own product (``x @ W``, then ``+= b``), threaded by OpenBLAS itself as a reader's
  own ``np.dot`` is. Best for networks made of Affine layers (the book's chapters 4-6):
  measured here, a MultiLayerNet step (784-100x4-10, batch 128) 3.2 ms this way against
  4.6 ms split over Numba's threads.
* Split over Numba's threads (``_affine_forward``/``_affine_backward``: disjoint rows of the
  batch, or blocks of the inner dimension when it dominates, as in SimpleConvNet's
  100 x 4320 @ 4320 x 100; each thread calls a single-threaded GEMM). Best next to parallel
  convolutions: OpenBLAS's idle threads keep spinning for about 0.1 s after each call and
  take the core the next parallel kernel's Numba thread needs. Measured here, the
  SimpleConvNet float32 step took 11.0 ms with NumPy's products and 7.7 ms split.

So the products are split over Numba's threads when a convolution or pooling kernel used
them in the last ``_chunks.IN_USE_WINDOW`` seconds (``numba_threads_in_use``) and the
product is large enough (``MIN_PARALLEL``), and go to NumPy's OpenBLAS otherwise.

Mixed dtypes: the book's scripts feed float32 images to float64 weights. NumPy (and the
reference) convert all of x first; for an evaluation on 10,000 images that is a 63 MB
array, page-faulted in on every call (glibc maps arrays over 32 MB afresh). Here x is
converted ``BLOCK_ROWS`` rows at a time into one buffer that stays in cache, each block
multiplied straight into its rows of the output: 10000x784 (float32) @ 784x50 (float64)
took 20-22 ms instead of 35-38 ms (measured here, two runs).
"""
from typing import Optional, Tuple

import numpy as np
from numba import njit, prange

from ..shapes import check_affine
from ._arrays import blas_dtype, kernel_input
from ._blas import NO_TRANS, ROW_MAJOR, TRANS, gemm_for, single_threaded_blas
from ._chunks import forced_mode, nchunks, numba_threads_in_use

#: this module's ops (the backend package imports exactly these)
__all__ = ["affine_forward", "affine_backward"]

#: multiply-adds below which a product is never split over Numba's threads: the book's MLP
#: products (100x784 @ 784x50: 3.9 million) stay with OpenBLAS; SimpleConvNet's first Affine
#: (43 million) and DeepConvNet's (5.1 million) are split while the convolutions run
MIN_PARALLEL = 1 << 22


@njit(cache=True)
def _affine_forward_chunk(ci, part, x, W, chunks, ksplit, gemm):
    """Chunk ci of _affine_forward (all of the work when chunks == 1)."""
    N, D = x.shape
    M = W.shape[1]
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    isz = x.itemsize
    if ksplit:
        k0 = ci * D // chunks
        k1 = (ci + 1) * D // chunks
        gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, N, M, k1 - k0, one, x.ctypes.data + k0 * isz, D,
             W.ctypes.data + k0 * M * isz, M, zero, part[ci].ctypes.data, M)
    else:
        lo = ci * N // chunks
        hi = (ci + 1) * N // chunks
        gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, hi - lo, M, D, one, x.ctypes.data + lo * D * isz, D,
             W.ctypes.data, M, zero, part[0].ctypes.data + lo * M * isz, M)


@njit(parallel=True, cache=True)
def _affine_forward(part, x, W, chunks, ksplit, gemm):
    """ksplit: part[c] (N, M) = x[:, ks] @ W[ks, :] over chunk c's block ks of D; otherwise
    part[0][rows] = x[rows] @ W over chunk c's rows."""
    if chunks == 1:
        _affine_forward_chunk(0, part, x, W, chunks, ksplit, gemm)
    else:
        for ci in prange(chunks):
            _affine_forward_chunk(ci, part, x, W, chunks, ksplit, gemm)


@njit(cache=True)
def _affine_backward_chunk(ci, dx, dW, db_part, dout, x, W, chunks, gemm):
    """Chunk ci of _affine_backward (all of the work when chunks == 1): its block of D's columns
    of dx (when dx has N rows: not when the caller needs no dx) and rows of dW, and its rows of
    dout summed into db_part[ci]."""
    N, D = x.shape
    M = W.shape[1]
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    isz = x.itemsize
    c0 = ci * D // chunks
    c1 = (ci + 1) * D // chunks
    if dx.shape[0] == N:
        # dx[:, cols] (N, Dc) = dout (N, M) @ W[cols].T (M, Dc)
        gemm(ROW_MAJOR, NO_TRANS, TRANS, N, c1 - c0, M, one, dout.ctypes.data, M, W.ctypes.data + c0 * M * isz, M,
             zero, dx.ctypes.data + c0 * isz, D)
    # dW[cols] (Dc, M) = x[:, cols].T (Dc, N) @ dout (N, M): x's column block read in place (lda = D),
    # so each chunk owns whole rows of dW and nothing needs summing afterwards
    gemm(ROW_MAJOR, TRANS, NO_TRANS, c1 - c0, M, N, one, x.ctypes.data + c0 * isz, D, dout.ctypes.data, M,
         zero, dW.ctypes.data + c0 * M * isz, M)
    lo = ci * N // chunks
    hi = (ci + 1) * N // chunks
    dbc = db_part[ci]
    for i in range(lo, hi):
        for j in range(M):
            dbc[j] += dout[i, j]


@njit(parallel=True, cache=True)
def _affine_backward(dx, dW, db_part, dout, x, W, chunks, gemm):
    if chunks == 1:
        _affine_backward_chunk(0, dx, dW, db_part, dout, x, W, chunks, gemm)
    else:
        for ci in prange(chunks):
            _affine_backward_chunk(ci, dx, dW, db_part, dout, x, W, chunks, gemm)


#: rows converted and multiplied at a time when x's dtype is not W's
BLOCK_ROWS = 2048


def _numba_split(N, D, M):
    """Chunks for the split product, or 1: NumPy's product. The size test comes first: it and
    the forced mode are all that a small product pays."""
    mode = forced_mode()
    if N * D * M < MIN_PARALLEL:
        if mode != "parallel":
            return 1
    elif mode == "serial" or (mode is None and not numba_threads_in_use()):
        return 1
    ksplit = D > max(N, M)
    return nchunks(D if ksplit else min(N, D), N * D * M, MIN_PARALLEL)   # (no mark: see _chunks)


def _forward_split(x, W, b, chunks):
    dt = blas_dtype(W.dtype)                 # W's dtype (float64 for integer weights)
    x = kernel_input(x.astype(dt, copy=False))
    W = kernel_input(W.astype(dt, copy=False))
    N, D = x.shape
    M = W.shape[1]
    ksplit = D > max(N, M)
    part = np.empty((chunks if ksplit else 1, N, M), dtype=x.dtype)
    with single_threaded_blas():
        _affine_forward(part, x, W, chunks, ksplit, gemm_for(x.dtype))
    out = part[0]
    for c in range(1, part.shape[0]):
        out += part[c]
    out += b
    return out


def _backward_split(dout, x, W, chunks, need_dx=True):
    dt = blas_dtype(W.dtype)                 # every array in one dtype: BLAS reads raw pointers
    dout = kernel_input(dout.astype(dt, copy=False))
    x = kernel_input(x.astype(dt, copy=False))
    W = kernel_input(W.astype(dt, copy=False))
    dx = np.empty(x.shape if need_dx else (0, x.shape[1]), dtype=x.dtype)
    dW = np.empty(W.shape, dtype=x.dtype)
    db_part = np.zeros((chunks, W.shape[1]), dtype=x.dtype)
    with single_threaded_blas():
        _affine_backward(dx, dW, db_part, dout, x, W, chunks, gemm_for(x.dtype))
    return (dx if need_dx else None), dW, db_part.sum(axis=0)


def affine_forward(x, W, b):
    # type: (np.ndarray, np.ndarray, np.ndarray) -> np.ndarray
    """x (N, D) @ W (D, M) + b -> (N, M) in W's dtype."""
    try:                                   # the shapes compared once; check_affine names what is wrong
        (N, D), (D_W, M) = x.shape, W.shape
        ok = D == D_W and b.shape == (M,) and W.dtype.kind == "f"
    except (AttributeError, TypeError, ValueError):
        ok = False
    if not ok:
        check_affine("affine_forward", x, W, b)
        N, D, M = x.shape[0], x.shape[1], W.shape[1]
    chunks = _numba_split(N, D, M)
    if chunks > 1:
        return _forward_split(x, W, b, chunks)
    if x.dtype is W.dtype or x.dtype == W.dtype:
        out = np.matmul(x, W)
    elif N <= BLOCK_ROWS:
        out = np.matmul(x.astype(W.dtype), W)
    else:
        out = np.empty((N, W.shape[1]), dtype=W.dtype)
        buf = np.empty((BLOCK_ROWS, x.shape[1]), dtype=W.dtype)
        for start in range(0, N, BLOCK_ROWS):
            stop = min(N, start + BLOCK_ROWS)
            block = buf[:stop - start]
            np.copyto(block, x[start:stop])
            np.matmul(block, W, out=out[start:stop])
    out += b
    return out


def affine_backward(dout, x, W, need_dx=True):
    # type: (np.ndarray, np.ndarray, np.ndarray, bool) -> Tuple[Optional[np.ndarray], np.ndarray, np.ndarray]
    """dout (N, M) -> (dx (N, D), dW (D, M), db (M,)); dx is None when not need_dx (a net's
    first layer: for ch06's MultiLayerNet, the largest of its backward products)."""
    try:                                   # the shapes compared once; check_affine names what is wrong
        (N, D), (D_W, M) = x.shape, W.shape
        ok = D == D_W and dout.shape == (N, M) and W.dtype.kind == "f"
    except (AttributeError, TypeError, ValueError):
        ok = False
    if not ok:
        check_affine("affine_backward", x, W, dout=dout)
        N, D, M = x.shape[0], x.shape[1], W.shape[1]
    chunks = _numba_split(N, D, M)
    if chunks > 1:
        return _backward_split(dout, x, W, chunks, need_dx)
    if x.dtype != W.dtype:
        x = x.astype(W.dtype)
    return (np.matmul(dout, W.T) if need_dx else None), np.matmul(x.T, dout), np.add.reduce(dout, axis=0)

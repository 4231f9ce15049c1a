"""Fully connected layer (numba backend): NumPy's own product, threaded by OpenBLAS itself.

    forward:  out = x @ W;  out += b          (in place: one temporary fewer than x @ W + b)
    backward: dx = dout @ W.T;  dW = x.T @ dout;  db = dout.sum(0)

This backend used to split the products over Numba's threads, each calling a
single-threaded GEMM (by rows of the batch, or by blocks of the inner dimension when it
dominates). Measured side by side with NumPy's ``x @ W`` (``benchmarks/scripts/sweep.py``,
float64, 2 cores, OpenBLAS 0.3.31 SkylakeX kernels), that lost at every size from 1x784 @
784x50 to 10000x784 @ 784x50: 1.5-2.2x slower in forward and 1.0-2.0x in backward, and
it put a second pool of threads next to the OpenBLAS threads a reader's own ``np.dot``
keeps spinning. The products are one GEMM each, which OpenBLAS already parallelises
well; so they now go to NumPy's OpenBLAS from the calling thread, with the threads the
user gave it, exactly as the user's own ``np.dot`` does. Transposed operands are passed
as views (BLAS transpose flags, no copies).

Mixed dtypes: the book's scripts feed float32 images to float64 weights. NumPy (and the
reference) convert all of x first; for an evaluation on 10,000 images that is a 63 MB
array, page-faulted in on every call (glibc maps arrays over 32 MB afresh). Here x is
converted ``BLOCK_ROWS`` rows at a time into one buffer that stays in cache, each block
multiplied straight into its rows of the output: 10000x784 (float32) @ 784x50 (float64)
took 20-22 ms instead of 35-38 ms (measured here, two runs).
"""
import numpy as np

#: rows converted and multiplied at a time when x's dtype is not W's
BLOCK_ROWS = 2048


def affine_forward(x, W, b):
    """x (N, D) @ W (D, M) + b -> (N, M) in W's dtype."""
    N = x.shape[0]
    if x.dtype == W.dtype or N <= BLOCK_ROWS:
        out = np.matmul(x.astype(W.dtype, copy=False), W)
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
    """dout (N, M) -> (dx (N, D), dW (D, M), db (M,)); dx is None when not need_dx (a net's
    first layer: for ch06's MultiLayerNet, the largest of its backward products)."""
    x = x.astype(W.dtype, copy=False)
    return (np.matmul(dout, W.T) if need_dx else None), np.matmul(x.T, dout), dout.sum(axis=0)

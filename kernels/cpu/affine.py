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
"""
import numpy as np


def affine_forward(x, W, b):
    """x (N, D) @ W (D, M) + b -> (N, M)."""
    out = np.matmul(x, W)
    out += b
    return out


def affine_backward(dout, x, W, need_dx=True):
    """dout (N, M) -> (dx (N, D), dW (D, M), db (M,)); dx is None when not need_dx (a net's
    first layer: for ch06's MultiLayerNet, the largest of its backward products)."""
    return (np.matmul(dout, W.T) if need_dx else None), np.matmul(x.T, dout), dout.sum(axis=0)

"""Convolution (numba backend): the op wrappers, and the kernels for strides other than 1.

Stride 1 (every convolution of the book's networks) runs ``conv_s1``'s kernels. Other strides run
image by image inside a parallel loop over chunks of the batch: each chunk owns a buffer ``colT``
(C*FH*FW, OH*OW) -- the transpose of one image's im2col rows (``columns.fill_colT``) -- and one
GEMM per image writes straight into the NCHW output:

    for chunk in prange(chunks):                 # disjoint images per chunk
        for n in chunk:
            colT = windows of x[n]               # (K, P), K = C*FH*FW, P = OH*OW
            out[n] = W2 @ colT + b               # (FN, P), W2 = W.reshape(FN, K)

Backward recomputes colT instead of keeping the whole batch's columns (one
image's columns stay in cache), and reduces dW and db with one buffer per
chunk summed at the end:

    for chunk in prange(chunks):
        for n in chunk:
            dW_part[chunk] += dout[n] @ colT.T   # (FN, K)
            db_part[chunk] += dout[n].sum(axis=1)
            dx[n] = col2im(W2.T @ dout[n])       # scatter into image n only (columns.add_colT)
    dW = sum(dW_part); db = sum(db_part)

All products are CBLAS calls (``_blas``) with leading dimensions and beta = 1, so transposes
and dW accumulation need no temporary copies. Per-image GEMMs rest on prototype measurements
(one large im2col GEMM is slower on every book shape; a direct loop nest reaches 3-14 GFLOP/s);
the kernels as they are have not been measured against those alternatives.
``im2col`` and ``col2im`` are ``columns``'s, exported here as in the reference's ``conv``.
"""
from typing import Any, Optional, Tuple

import numpy as np
from numba import njit, prange

from ..shapes import check_conv, conv_out_shape, expect_shape, window_output_hw
from ._arrays import float_input, kernel_input
from ._blas import NO_TRANS, ROW_MAJOR, TRANS, blas_for, gemm_for
from .columns import add_colT, fill_colT
# MIN_PARALLEL: the threshold of every convolution kernel, this module's too
from .conv_s1 import MIN_PARALLEL, NO_MASK, backward_s1, conv_chunks, conv_inputs, forward_s1  # noqa: F401

#: this module's ops (the backend package imports exactly these)
__all__ = ["conv_forward", "conv_backward"]


@njit(cache=True)
def _conv_forward_chunk(ci, out, x, W2, b, FH, FW, stride, pad, chunks, gemm):
    """Chunk ci of _conv_forward (all of the work when chunks == 1)."""
    N = x.shape[0]
    FN, K = W2.shape
    OH, OW = out.shape[2], out.shape[3]
    P = OH * OW
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    colT = np.empty((K, P), dtype=x.dtype)
    for n in range(ci * N // chunks, (ci + 1) * N // chunks):
        fill_colT(colT, x[n], FH, FW, stride, pad, OH, OW)
        o = out[n].reshape(FN, P)
        # o (FN, P) = W2 (FN, K) @ colT (K, P)
        gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, FN, P, K, one, W2.ctypes.data, K, colT.ctypes.data, P,
             zero, o.ctypes.data, P)
        for f in range(FN):
            bf = b[f]
            for p in range(P):
                o[f, p] += bf


@njit(parallel=True, cache=True)
def _conv_forward(out, x, W2, b, FH, FW, stride, pad, chunks, gemm):
    if chunks == 1:
        _conv_forward_chunk(0, out, x, W2, b, FH, FW, stride, pad, chunks, gemm)
    else:
        for ci in prange(chunks):
            _conv_forward_chunk(ci, out, x, W2, b, FH, FW, stride, pad, chunks, gemm)


@njit(cache=True)
def _conv_backward_chunk(ci, dx, dW_part, db_part, dout, x, W2, FH, FW, stride, pad, chunks, need_dx, gemm):
    """Chunk ci of _conv_backward (all of the work when chunks == 1)."""
    N = x.shape[0]
    FN, K = W2.shape
    OH, OW = dout.shape[2], dout.shape[3]
    P = OH * OW
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    colT = np.empty((K, P), dtype=x.dtype)
    dcolT = np.empty((K, P), dtype=x.dtype)
    dWc = dW_part[ci]
    dbc = db_part[ci]
    for n in range(ci * N // chunks, (ci + 1) * N // chunks):
        d = dout[n].reshape(FN, P)
        fill_colT(colT, x[n], FH, FW, stride, pad, OH, OW)
        # dWc (FN, K) += d (FN, P) @ colT.T (P, K)
        gemm(ROW_MAJOR, NO_TRANS, TRANS, FN, K, P, one, d.ctypes.data, P, colT.ctypes.data, P,
             one, dWc.ctypes.data, K)
        for f in range(FN):
            s = dbc.dtype.type(0)
            for p in range(P):
                s += d[f, p]
            dbc[f] += s
        if need_dx:
            # dcolT (K, P) = W2.T (K, FN) @ d (FN, P)
            gemm(ROW_MAJOR, TRANS, NO_TRANS, K, P, FN, one, W2.ctypes.data, K, d.ctypes.data, P,
                 zero, dcolT.ctypes.data, P)
            dxn = dx[n]
            dxn[:] = 0
            add_colT(dxn, dcolT, FH, FW, stride, pad, OH, OW)


@njit(parallel=True, cache=True)
def _conv_backward(dx, dW_part, db_part, dout, x, W2, FH, FW, stride, pad, chunks, need_dx, gemm):
    if chunks == 1:
        _conv_backward_chunk(0, dx, dW_part, db_part, dout, x, W2, FH, FW, stride, pad, chunks, need_dx, gemm)
    else:
        for ci in prange(chunks):
            _conv_backward_chunk(ci, dx, dW_part, db_part, dout, x, W2, FH, FW, stride, pad, chunks, need_dx, gemm)


def degenerate(w_shape):
    """No filters or no input channels (FN == 0 or C == 0; the layers refuse C == 0): there is
    nothing to multiply, and BLAS refuses the zero leading dimensions, so ``conv_forward`` and
    ``conv_backward`` answer without the kernels (``fused`` falls back to them)."""
    return w_shape[0] == 0 or w_shape[1] == 0


def _degenerate_forward(x, W, b, stride, pad):
    FN, C, FH, FW = W.shape
    N, _, H, Wd = x.shape
    OH, OW = window_output_hw(H, Wd, FH, FW, stride, pad)
    out = np.empty((N, FN, OH, OW), dtype=x.dtype)
    out[...] = np.asarray(b).reshape(1, FN, 1, 1)        # a sum over no taps, plus b
    return out, (x, None, W.shape, stride, pad)      # W2 None: backward answers as well


def _degenerate_backward(dout, x, w_shape, need_dx):
    dx = np.zeros(x.shape, dtype=x.dtype) if need_dx else None
    return dx, np.zeros(w_shape, dtype=x.dtype), np.asarray(dout).sum(axis=(0, 2, 3)).astype(x.dtype, copy=False)


def conv_forward(x, W, b, stride, pad):
    # type: (np.ndarray, np.ndarray, np.ndarray, int, int) -> Tuple[np.ndarray, Any]
    """x (N, C, H, W) * W (FN, C, FH, FW) + b -> (out (N, FN, OH, OW) C-contiguous, ctx)."""
    check_conv("conv_forward", x, W, b)
    if degenerate(W.shape):
        return _degenerate_forward(x, W, b, stride, pad)
    if stride == 1:
        out, _, x, W2 = forward_s1(x, W, b, pad, False)
        return out, (x, W2, W.shape, stride, pad)
    x, W2, OH, OW, chunks = conv_inputs(x, W, stride, pad)
    FN, C, FH, FW = W.shape
    out = np.empty((x.shape[0], FN, OH, OW), dtype=x.dtype)
    with blas_for(chunks):
        _conv_forward(out, x, W2, float_input(b, x.dtype), FH, FW, stride, pad, chunks, gemm_for(x.dtype))
    return out, (x, W2, W.shape, stride, pad)


def conv_backward(dout, ctx, need_dx=True):
    # type: (np.ndarray, Any, bool) -> Tuple[Optional[np.ndarray], np.ndarray, np.ndarray]
    """dout (N, FN, OH, OW) -> (dx, dW, db). With need_dx=False (the first layer of a net),
    dx is not computed and None is returned in its place."""
    x, W2, w_shape, stride, pad = ctx
    expect_shape("conv_backward", "dout", dout, conv_out_shape(x.shape, w_shape, stride, pad), "the forward call's output (from ctx)")
    if W2 is None:
        return _degenerate_backward(dout, x, w_shape, need_dx)
    if stride == 1:
        return backward_s1(dout, NO_MASK, x, W2, w_shape, pad, need_dx, False)
    dout = kernel_input(dout.astype(x.dtype, copy=False))     # BLAS reads it in x's dtype
    FN, C, FH, FW = w_shape
    chunks = conv_chunks(x.shape[0], FN, W2.shape[1], dout.shape[2] * dout.shape[3])
    dW_part = np.zeros((chunks,) + W2.shape, dtype=x.dtype)
    db_part = np.zeros((chunks, FN), dtype=x.dtype)
    dx = np.empty(x.shape, dtype=x.dtype) if need_dx else np.empty((1, 1, 1, 1), dtype=x.dtype)
    with blas_for(chunks):
        _conv_backward(dx, dW_part, db_part, dout, x, W2, FH, FW, stride, pad, chunks, need_dx,
                       gemm_for(x.dtype))
    dW = dW_part.sum(axis=0).reshape(w_shape)
    return (dx if need_dx else None), dW, db_part.sum(axis=0)

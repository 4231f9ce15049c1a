"""im2col / col2im and convolution (cuda backend).

im2col: one thread per element of col (a gather from x).
col2im: one thread per image pixel, summing the taps of every window that covers it
        (a gather over destination pixels: no atomics).
Convolution: im2col + GEMM; backward: dW = rows(dout)^T @ col, dcol = rows(dout) @ W2, col2im.

Sums start from a zero of the array's dtype passed in by the host (not ``a[0] * 0``, which is NaN
when that element is NaN or infinite and would spread to every sum), so NaN and Inf reach
exactly the results the reference's sums put them in. Empty batches and filter banks (N, FN or
C zero) launch no product (a grid with no block is refused).
"""
from typing import Any, Optional, Tuple

import numpy as np
from numba import cuda

from ..arrays import Array
from ..shapes import check_col, check_conv, conv_out_shape, expect_ndim, expect_shape, window_output_hw
from . import launch
from .arrays import empty, to_device, zeros
from .common import colsum, nchw_to_rows, rows_to_nchw, unravel4
from .gemm import gemm

#: this module's ops (the backend package imports exactly these)
__all__ = ["im2col", "col2im", "conv_forward", "conv_backward"]


@cuda.jit
def _im2col_kernel(col, x, FH, FW, stride, pad, OH, OW):
    i = cuda.grid(1)
    if i < col.size:
        K = col.shape[1]
        H, W = x.shape[2], x.shape[3]
        row = i // K
        k = i - row * K
        n = row // (OH * OW)
        p = row - n * (OH * OW)
        oy = p // OW
        ox = p - oy * OW
        c = k // (FH * FW)
        r = k - c * (FH * FW)
        ky = r // FW
        kx = r - ky * FW
        iy = oy * stride + ky - pad
        ix = ox * stride + kx - pad
        if 0 <= iy < H and 0 <= ix < W:
            col[row, k] = x[n, c, iy, ix]
        else:
            col[row, k] = 0


@cuda.jit
def _col2im_kernel(img, col, FH, FW, stride, pad, OH, OW, zero):
    i = cuda.grid(1)
    if i < img.size:
        n, c, iy, ix = unravel4(i, img.shape[1], img.shape[2], img.shape[3])
        acc = zero
        for ky in range(FH):
            ty = iy + pad - ky
            if ty < 0 or ty % stride != 0:
                continue
            oy = ty // stride
            if oy >= OH:
                continue
            for kx in range(FW):
                tx = ix + pad - kx
                if tx < 0 or tx % stride != 0:
                    continue
                ox = tx // stride
                if ox >= OW:
                    continue
                acc += col[(n * OH + oy) * OW + ox, (c * FH + ky) * FW + kx]
        img[n, c, iy, ix] = acc


def _zero(dtype):
    """A zero of dtype, typed for the kernels' accumulators."""
    return np.dtype(dtype).type(0)


def _product(A, B, transA=False, transB=False):
    """op(A) @ op(B) as a new device array; empty or inner dimension 0 launch no product."""
    M = A.shape[1] if transA else A.shape[0]
    N = B.shape[0] if transB else B.shape[1]
    K = A.shape[0] if transA else A.shape[1]
    if M == 0 or N == 0 or K == 0:
        return zeros((M, N), A.dtype)
    C = empty((M, N), A.dtype)
    gemm(C, A, B, transA=transA, transB=transB)
    return C


def _im2col_dev(x, filter_h, filter_w, stride, pad):
    N, C, H, W = x.shape
    OH, OW = window_output_hw(H, W, filter_h, filter_w, stride, pad)
    col = empty((N * OH * OW, C * filter_h * filter_w), x.dtype)
    _im2col_kernel[launch.grid1d(col.size)](col, x, filter_h, filter_w, stride, pad, OH, OW)
    return col


def _col2im_dev(col, input_shape, filter_h, filter_w, stride, pad):
    N, C, H, W = (int(s) for s in input_shape)
    OH, OW = window_output_hw(H, W, filter_h, filter_w, stride, pad)
    img = empty((N, C, H, W), col.dtype)
    _col2im_kernel[launch.grid1d(img.size)](img, col, filter_h, filter_w, stride, pad, OH, OW, _zero(col.dtype))
    return img


def im2col(x, filter_h, filter_w, stride=1, pad=0):
    # type: (Array, int, int, int, int) -> Array
    """x (N, C, H, W) -> col (N*OH*OW, C*FH*FW) on the device."""
    expect_ndim("im2col", "x", x, 4, "(N, C, H, W)")
    return _im2col_dev(to_device(x), filter_h, filter_w, stride, pad)


def col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    # type: (Array, Tuple[int, ...], int, int, int, int) -> Array
    """col (N*OH*OW, C*FH*FW) -> x (N, C, H, W) on the device."""
    check_col("col2im", col, input_shape, filter_h, filter_w, stride, pad)
    return _col2im_dev(to_device(col), input_shape, filter_h, filter_w, stride, pad)


def conv_forward(x, W, b, stride, pad):
    # type: (Array, Array, Array, int, int) -> Tuple[Array, Any]
    """x * W + b -> (out (N, FN, OH, OW), ctx), all on the device."""
    check_conv("conv_forward", x, W, b)
    x, W, b = to_device(x), to_device(W), to_device(b)
    FN, C, FH, FW = W.shape
    N, _, H, Wd = x.shape
    OH, OW = window_output_hw(H, Wd, FH, FW, stride, pad)
    col = _im2col_dev(x, FH, FW, stride, pad)                 # (N*P, K)
    W2 = W.reshape(FN, C * FH * FW)                           # (FN, K)
    rows = _product(col, W2, transB=True)                     # (N*P, FN)
    out = rows_to_nchw(rows, b, N, FN, OH, OW)
    return out, (col, W2, x.shape, W.shape, stride, pad)


def conv_backward(dout, ctx, need_dx=True):
    # type: (Array, Any, bool) -> Tuple[Optional[Array], Array, Array]
    """dout (N, FN, OH, OW) -> (dx, dW, db) on the device; dx is None when need_dx is False."""
    col, W2, x_shape, w_shape, stride, pad = ctx
    expect_shape("conv_backward", "dout", dout, conv_out_shape(x_shape, w_shape, stride, pad), "the forward call's output (from ctx)")
    FN, C, FH, FW = w_shape
    d = nchw_to_rows(to_device(dout))                         # (N*P, FN)
    db = colsum(d)
    dW2 = _product(d, col, transA=True)                       # (FN, K) = d^T @ col
    if not need_dx:
        return None, dW2.reshape(*w_shape), db
    dcol = _product(d, W2)                                    # (N*P, K) = d @ W2
    return _col2im_dev(dcol, x_shape, FH, FW, stride, pad), dW2.reshape(*w_shape), db

"""im2col / col2im and convolution through them (reference backend).

Layout (the book's): ``col`` has one row per output position in (n, oh, ow)
order and one column per input tap in (c, ky, kx) order, so a convolution is
``col @ W.reshape(FN, -1).T``.
"""
from typing import Any, Optional, Tuple

import numpy as np

from ..shapes import check_col, check_conv, conv_out_shape, expect_ndim, expect_shape, window_output_hw

__all__ = ["im2col", "col2im", "conv_forward", "conv_backward"]


def _windows(x: np.ndarray, filter_h: int, filter_w: int, stride: int, pad: int, fill: float) -> np.ndarray:
    """Copy every window of x into an array (N, OH, OW, C, FH, FW); padding holds ``fill``."""
    N, C, H, W = x.shape
    OH, OW = window_output_hw(H, W, filter_h, filter_w, stride, pad)
    if pad:
        src = np.full((N, C, H + 2 * pad, W + 2 * pad), fill, dtype=x.dtype)
        src[:, :, pad:pad + H, pad:pad + W] = x
    else:
        src = x
    win = np.empty((N, OH, OW, C, filter_h, filter_w), dtype=x.dtype)
    for ky in range(filter_h):
        rows = slice(ky, ky + stride * (OH - 1) + 1, stride)
        for kx in range(filter_w):
            cols = slice(kx, kx + stride * (OW - 1) + 1, stride)
            # src[:, :, rows, cols] is (N, C, OH, OW): tap (ky, kx) of every window
            win[..., ky, kx] = src[:, :, rows, cols].transpose(0, 2, 3, 1)
    return win


def im2col(x, filter_h, filter_w, stride=1, pad=0):
    # type: (np.ndarray, int, int, int, int) -> np.ndarray
    """x (N, C, H, W) -> col (N*OH*OW, C*FH*FW), zero padding."""
    expect_ndim("im2col", "x", x, 4, "(N, C, H, W)")
    N, C = x.shape[:2]
    win = _windows(x, filter_h, filter_w, stride, pad, 0)
    OH, OW = win.shape[1:3]
    # explicit sizes: reshape(-1, 0) cannot infer -1 when C == 0
    return win.reshape(N * OH * OW, C * filter_h * filter_w)


def col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    # type: (np.ndarray, Tuple[int, ...], int, int, int, int) -> np.ndarray
    """col (N*OH*OW, C*FH*FW) -> x (N, C, H, W); overlapping taps are summed, padding dropped."""
    N, C, H, W, OH, OW = check_col("col2im", col, input_shape, filter_h, filter_w, stride, pad)
    win = col.reshape(N, OH, OW, C, filter_h, filter_w)
    img = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=col.dtype)
    for ky in range(filter_h):
        rows = slice(ky, ky + stride * (OH - 1) + 1, stride)
        for kx in range(filter_w):
            cols = slice(kx, kx + stride * (OW - 1) + 1, stride)
            img[:, :, rows, cols] += win[..., ky, kx].transpose(0, 3, 1, 2)
    if pad:
        img = np.ascontiguousarray(img[:, :, pad:pad + H, pad:pad + W])
    return img


def conv_forward(x, W, b, stride, pad):
    # type: (np.ndarray, np.ndarray, np.ndarray, int, int) -> Tuple[np.ndarray, Any]
    """x (N, C, H, W) * W (FN, C, FH, FW) + b (FN,) -> (out (N, FN, OH, OW), ctx)."""
    check_conv("conv_forward", x, W, b)
    FN, C, FH, FW = W.shape
    N, _, H, Wd = x.shape
    OH, OW = window_output_hw(H, Wd, FH, FW, stride, pad)
    col = im2col(x, FH, FW, stride, pad)             # (N*OH*OW, C*FH*FW)
    col_W = W.reshape(FN, C * FH * FW).T              # (C*FH*FW, FN); explicit when FN or C is 0
    out = col @ col_W + b                             # (N*OH*OW, FN)
    out = out.reshape(N, OH, OW, FN).transpose(0, 3, 1, 2)   # (N, FN, OH, OW), a view as in the book
    return out, (col, col_W, x.shape, W.shape, stride, pad)


def conv_backward(dout, ctx, need_dx=True):
    # type: (np.ndarray, Any, bool) -> Tuple[Optional[np.ndarray], np.ndarray, np.ndarray]
    """dout (N, FN, OH, OW) -> (dx (N, C, H, W), dW (FN, C, FH, FW), db (FN,)); dx is None
    when need_dx is False."""
    col, col_W, x_shape, w_shape, stride, pad = ctx
    expect_shape("conv_backward", "dout", dout, conv_out_shape(x_shape, w_shape, stride, pad), "the forward call's output (from ctx)")
    FN, C, FH, FW = w_shape
    N, _, OH, OW = dout.shape
    d = dout.transpose(0, 2, 3, 1).reshape(N * OH * OW, FN)   # (N*OH*OW, FN)
    db = d.sum(axis=0)
    dW = (col.T @ d).T.reshape(w_shape)               # (FN, C, FH, FW)
    if not need_dx:
        return None, dW, db
    dcol = d @ col_W.T                                # (N*OH*OW, C*FH*FW)
    dx = col2im(dcol, x_shape, FH, FW, stride, pad)
    return dx, dW, db

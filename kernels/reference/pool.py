"""Max and average pooling through the im2col window layout (reference backend).

The book pads with zeros and computes the output size without the padding,
so ``pad > 0`` fails there. Here padding is minus infinity: it never wins over a
real element above -inf, and every window of a non-empty image holds at least one
real element because ``pad < pool size`` is required by the layer.

The rule, ties and -inf included: the gradient goes to the window's first maximum
in (ky, kx) order over the padded window (np.argmax: the first NaN if there is one).
When the maximum is -inf and the window's first tap (top-left) is padding, that
padding cell is the first maximum, and its gradient is dropped with the padding
(so an all -inf input passes gradient only through windows starting inside the
image). An empty image (H or W zero) gives -inf windows and a zero gradient.

Average pooling pads with zeros, and the padding counts in the divisor: every window
is divided by pool_h * pool_w (PyTorch's AvgPool2d default, count_include_pad=True).
"""
from typing import Any, Tuple

import numpy as np

from ..shapes import expect_ndim, expect_shape, pool_out_shape
from .conv import _windows, col2im

__all__ = ["pool_forward", "pool_backward", "avg_pool_forward", "avg_pool_backward"]


def pool_forward(x, pool_h, pool_w, stride, pad):
    # type: (np.ndarray, int, int, int, int) -> Tuple[np.ndarray, Any]
    """x (N, C, H, W) -> (out (N, C, OH, OW), ctx); ties go to the first maximum in (ky, kx) order."""
    expect_ndim("pool_forward", "x", x, 4, "(N, C, H, W)")
    N, C = x.shape[:2]
    win = _windows(x, pool_h, pool_w, stride, pad, -np.inf)   # (N, OH, OW, C, PH, PW)
    OH, OW = win.shape[1:3]
    taps = win.reshape(-1, pool_h * pool_w)                   # rows (n, oh, ow, c)
    arg = taps.argmax(axis=1)
    out = taps[np.arange(arg.size), arg].reshape(N, OH, OW, C).transpose(0, 3, 1, 2)
    return out, (arg, x.shape, pool_h, pool_w, stride, pad)


def pool_backward(dout, ctx):
    # type: (np.ndarray, Any) -> np.ndarray
    """dout (N, C, OH, OW) -> dx (N, C, H, W): each gradient goes to its window's maximum."""
    arg, x_shape, pool_h, pool_w, stride, pad = ctx
    expect_shape("pool_backward", "dout", dout, pool_out_shape(x_shape, pool_h, pool_w, stride, pad), "the forward call's output (from ctx)")
    N, C = x_shape[:2]
    d = dout.transpose(0, 2, 3, 1).reshape(-1)                # (N*OH*OW*C,) rows (n, oh, ow, c)
    dtaps = np.zeros((d.size, pool_h * pool_w), dtype=dout.dtype)
    dtaps[np.arange(d.size), arg] = d
    OH, OW = dout.shape[2:]
    dcol = dtaps.reshape(N * OH * OW, C * pool_h * pool_w)    # (N*OH*OW, C*PH*PW); explicit when C == 0
    return col2im(dcol, x_shape, pool_h, pool_w, stride, pad)


def avg_pool_forward(x, pool_h, pool_w, stride, pad):
    # type: (np.ndarray, int, int, int, int) -> Tuple[np.ndarray, Any]
    """x (N, C, H, W) -> (out (N, C, OH, OW), ctx): the mean of each window, zero padding included."""
    expect_ndim("avg_pool_forward", "x", x, 4, "(N, C, H, W)")
    N, C = x.shape[:2]
    win = _windows(x, pool_h, pool_w, stride, pad, 0)        # (N, OH, OW, C, PH, PW)
    OH, OW = win.shape[1:3]
    taps = win.reshape(-1, pool_h * pool_w)                  # rows (n, oh, ow, c)
    out = (taps.sum(axis=1) / x.dtype.type(pool_h * pool_w)).reshape(N, OH, OW, C).transpose(0, 3, 1, 2)
    return out, (x.shape, pool_h, pool_w, stride, pad)


def avg_pool_backward(dout, ctx):
    # type: (np.ndarray, Any) -> np.ndarray
    """dout (N, C, OH, OW) -> dx (N, C, H, W): each window's gradient shared equally by its taps."""
    x_shape, pool_h, pool_w, stride, pad = ctx
    expect_shape("avg_pool_backward", "dout", dout, pool_out_shape(x_shape, pool_h, pool_w, stride, pad), "the forward call's output (from ctx)")
    N, C = x_shape[:2]
    OH, OW = dout.shape[2:]
    d = dout.transpose(0, 2, 3, 1).reshape(-1, 1) / dout.dtype.type(pool_h * pool_w)
    dtaps = np.broadcast_to(d, (d.shape[0], pool_h * pool_w))
    dcol = dtaps.reshape(N * OH * OW, C * pool_h * pool_w)
    return col2im(np.ascontiguousarray(dcol), x_shape, pool_h, pool_w, stride, pad)

"""Max pooling through the im2col window layout (reference backend).

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
"""
import numpy as np

from .conv import _windows, col2im


def pool_forward(x, pool_h, pool_w, stride, pad):
    """x (N, C, H, W) -> (out (N, C, OH, OW), ctx); ties go to the first maximum in (ky, kx) order."""
    N, C = x.shape[:2]
    win = _windows(x, pool_h, pool_w, stride, pad, -np.inf)   # (N, OH, OW, C, PH, PW)
    OH, OW = win.shape[1:3]
    taps = win.reshape(-1, pool_h * pool_w)                   # rows (n, oh, ow, c)
    arg = taps.argmax(axis=1)
    out = taps[np.arange(arg.size), arg].reshape(N, OH, OW, C).transpose(0, 3, 1, 2)
    return out, (arg, x.shape, pool_h, pool_w, stride, pad)


def pool_backward(dout, ctx):
    """dout (N, C, OH, OW) -> dx (N, C, H, W): each gradient goes to its window's maximum."""
    arg, x_shape, pool_h, pool_w, stride, pad = ctx
    N, C = x_shape[:2]
    d = dout.transpose(0, 2, 3, 1).reshape(-1)                # (N*OH*OW*C,) rows (n, oh, ow, c)
    dtaps = np.zeros((d.size, pool_h * pool_w), dtype=dout.dtype)
    dtaps[np.arange(d.size), arg] = d
    OH, OW = dout.shape[2:]
    dcol = dtaps.reshape(N * OH * OW, C * pool_h * pool_w)    # (N*OH*OW, C*PH*PW); explicit when C == 0
    return col2im(dcol, x_shape, pool_h, pool_w, stride, pad)

"""Max pooling (cuda backend).

Forward: one thread per output, recording the flat in-plane index of the first maximum over
the window's taps in (ky, kx) order, padding counting as minus infinity (never read) with index
-1; NaN wins as in np.argmax. This is the reference's rule exactly, including its one tie with
padding: a window whose maximum is -inf and whose first tap is padding records -1, so its
gradient is dropped (as the reference's col2im drops padding). An empty image (H or W zero)
gives -inf windows and is never read.
Backward: one thread per input pixel, summing dout over the windows that chose it
(a gather over destination pixels: no atomics, even when windows overlap). The sums start
from a zero passed in by the host (not ``dout[0] * 0``, which is NaN when that element is).
"""
from typing import Any, Tuple

import numpy as np
from numba import cuda

from ..arrays import Array
from ..shapes import expect_ndim, expect_shape, pool_out_shape, window_output_hw
from . import launch
from .arrays import empty, to_device
from .common import unravel4

#: this module's ops (the backend package imports exactly these)
__all__ = ["pool_forward", "pool_backward"]


@cuda.jit
def _pool_forward_kernel(out, arg, x, PH, PW, stride, pad, ninf):
    i = cuda.grid(1)
    if i < out.size:
        H, W = x.shape[2], x.shape[3]
        n, c, oy, ox = unravel4(i, out.shape[1], out.shape[2], out.shape[3])
        best = ninf
        bi = -1
        for ky in range(PH):
            iy = oy * stride - pad + ky
            for kx in range(PW):
                ix = ox * stride - pad + kx
                v = ninf
                at = -1
                if 0 <= iy < H and 0 <= ix < W:
                    v = x[n, c, iy, ix]
                    at = iy * W + ix
                # the first tap starts the search (padding: best -inf, bi -1); later taps win only
                # when greater, or as the first NaN
                if (ky == 0 and kx == 0) or v > best or (v != v and best == best):
                    best = v
                    bi = at
        out[n, c, oy, ox] = best
        arg[n, c, oy, ox] = bi


@cuda.jit
def _pool_backward_kernel(dx, dout, arg, PH, PW, stride, pad, zero):
    i = cuda.grid(1)
    if i < dx.size:
        H, W = dx.shape[2], dx.shape[3]
        OH, OW = dout.shape[2], dout.shape[3]
        n, c, iy, ix = unravel4(i, dx.shape[1], H, W)
        me = iy * W + ix
        acc = zero
        # windows oy with oy*stride - pad <= iy < oy*stride - pad + PH
        oy_lo = max(0, (iy + pad - PH) // stride + 1)
        oy_hi = min(OH - 1, (iy + pad) // stride)
        ox_lo = max(0, (ix + pad - PW) // stride + 1)
        ox_hi = min(OW - 1, (ix + pad) // stride)
        for oy in range(oy_lo, oy_hi + 1):
            for ox in range(ox_lo, ox_hi + 1):
                if arg[n, c, oy, ox] == me:
                    acc += dout[n, c, oy, ox]
        dx[n, c, iy, ix] = acc


def pool_forward(x, pool_h, pool_w, stride, pad):
    # type: (Array, int, int, int, int) -> Tuple[Array, Any]
    N, C, H, W = expect_ndim("pool_forward", "x", x, 4, "(N, C, H, W)")
    x = to_device(x)
    OH, OW = window_output_hw(H, W, pool_h, pool_w, stride, pad)
    out = empty((N, C, OH, OW), x.dtype)
    arg = empty((N, C, OH, OW), "int32")
    _pool_forward_kernel[launch.grid1d(out.size)](out, arg, x, pool_h, pool_w, stride, pad, np.dtype(x.dtype).type(-np.inf))
    return out, (arg, x.shape, pool_h, pool_w, stride, pad)


def pool_backward(dout, ctx):
    # type: (Array, Any) -> Array
    arg, x_shape, pool_h, pool_w, stride, pad = ctx
    expect_shape("pool_backward", "dout", dout, pool_out_shape(x_shape, pool_h, pool_w, stride, pad), "the forward call's output (from ctx)")
    dout = to_device(dout)
    dx = empty(x_shape, dout.dtype)
    _pool_backward_kernel[launch.grid1d(dx.size)](dx, dout, arg, pool_h, pool_w, stride, pad, np.dtype(dout.dtype).type(0))
    return dx

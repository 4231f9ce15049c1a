"""Max pooling (numba backend): one pass over each (image, channel) plane, in parallel.

    for plane in prange(N*C):                    # disjoint planes
        for each output (oy, ox):
            out, arg = max and flat index of the first maximum over the taps inside the image

Padding is never read, which is the same as padding with minus infinity.
Backward scatters each gradient to its recorded input position, plane by plane.
"""
import numpy as np
from numba import njit, prange

from ..shapes import window_output_hw


@njit(parallel=True, cache=True)
def _pool_forward(out, arg, x, PH, PW, stride, pad):
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for nc in prange(N * C):
        n = nc // C
        c = nc - n * C
        xp = x[n, c]
        for oy in range(OH):
            y0 = oy * stride - pad
            for ox in range(OW):
                x0 = ox * stride - pad
                best = xp[0, 0]
                bi = -1
                for ky in range(PH):
                    iy = y0 + ky
                    if iy < 0 or iy >= H:
                        continue
                    for kx in range(PW):
                        ix = x0 + kx
                        if ix < 0 or ix >= W:
                            continue
                        v = xp[iy, ix]
                        # strictly greater keeps the first maximum; NaN wins as in np.argmax
                        if bi < 0 or v > best or (v != v and best == best):
                            best = v
                            bi = iy * W + ix
                out[n, c, oy, ox] = best
                arg[n, c, oy, ox] = bi


@njit(parallel=True, cache=True)
def _pool_backward(dx, dout, arg):
    N, C, H, W = dx.shape
    OH, OW = dout.shape[2], dout.shape[3]
    for nc in prange(N * C):
        n = nc // C
        c = nc - n * C
        dp = dx[n, c]
        dp[:] = 0
        for oy in range(OH):
            for ox in range(OW):
                i = arg[n, c, oy, ox]
                dp[i // W, i % W] += dout[n, c, oy, ox]


def pool_forward(x, pool_h, pool_w, stride, pad):
    """x (N, C, H, W) -> (out (N, C, OH, OW), ctx); first maximum wins; padding never wins."""
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    OH, OW = window_output_hw(H, W, pool_h, pool_w, stride, pad)
    out = np.empty((N, C, OH, OW), dtype=x.dtype)
    arg = np.empty((N, C, OH, OW), dtype=np.int32)
    _pool_forward(out, arg, x, pool_h, pool_w, stride, pad)
    return out, (arg, x.shape)


def pool_backward(dout, ctx):
    """dout (N, C, OH, OW) -> dx (N, C, H, W): each gradient goes to its window's maximum."""
    arg, x_shape = ctx
    dout = np.ascontiguousarray(dout)
    dx = np.empty(x_shape, dtype=dout.dtype)
    _pool_backward(dx, dout, arg)
    return dx

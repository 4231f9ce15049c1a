"""Max pooling (numba backend): one pass over each (image, channel) plane, in parallel.

    for plane in planes:                         # one span of planes per thread (disjoint), or all
                                                 # of them on the calling thread for small inputs
        for each output (oy, ox):
            out, arg = max and flat in-plane index of the first maximum over the taps inside the image
        if the plane held a NaN: redo it with NaN-aware comparisons (np.argmax semantics)

Padding is never read, which is the same as padding with minus infinity.
Windows of 2x2 without padding (both book networks) take a path with
constant loop bounds, which LLVM unrolls: about 5x faster than runtime-sized
loops here. NaN is tracked with a branch-free flag, because a NaN test inside
the comparison made the loop 5x slower; planes that saw a NaN are recomputed.
Backward scatters each gradient to its recorded position, plane by plane.
"""
import numpy as np
from numba import njit, prange

from ..shapes import window_output_hw
from ._chunks import nchunks

#: input elements below which pooling runs on the calling thread (see ``_chunks``)
MIN_PARALLEL = 1 << 15


@njit(cache=True)
def _plane_2x2(op, ap, xp, stride):
    H, W = xp.shape
    OH, OW = op.shape
    nan = False
    for oy in range(OH):
        y0 = oy * stride
        for ox in range(OW):
            x0 = ox * stride
            best = xp[y0, x0]
            bi = y0 * W + x0
            for ky in range(2):
                for kx in range(2):
                    v = xp[y0 + ky, x0 + kx]
                    nan |= v != v
                    if v > best:
                        best = v
                        bi = (y0 + ky) * W + x0 + kx
            op[oy, ox] = best
            ap[oy, ox] = bi
    return nan


@njit(cache=True)
def _plane_any(op, ap, xp, PH, PW, stride, pad, nan_aware):
    H, W = xp.shape
    OH, OW = op.shape
    nan = False
    for oy in range(OH):
        y0 = oy * stride - pad
        ylo = max(0, -y0)
        yhi = min(PH, H - y0)
        for ox in range(OW):
            x0 = ox * stride - pad
            xlo = max(0, -x0)
            xhi = min(PW, W - x0)
            bi = (y0 + ylo) * W + x0 + xlo
            best = xp[y0 + ylo, x0 + xlo]
            for ky in range(ylo, yhi):
                for kx in range(xlo, xhi):
                    v = xp[y0 + ky, x0 + kx]
                    nan |= v != v
                    if v > best or (nan_aware and v != v and best == best):
                        best = v
                        bi = (y0 + ky) * W + x0 + kx
            op[oy, ox] = best
            ap[oy, ox] = bi
    return nan


@njit(cache=True)
def _pool_forward_planes(out, arg, x, PH, PW, stride, pad, lo, hi):
    C = x.shape[1]
    fast = PH == 2 and PW == 2 and pad == 0
    for nc in range(lo, hi):
        n = nc // C
        c = nc - n * C
        if fast:
            nan = _plane_2x2(out[n, c], arg[n, c], x[n, c], stride)
        else:
            nan = _plane_any(out[n, c], arg[n, c], x[n, c], PH, PW, stride, pad, False)
        if nan:
            _plane_any(out[n, c], arg[n, c], x[n, c], PH, PW, stride, pad, True)


@njit(cache=True)
def _pool_backward_planes(dx, dout, arg, lo, hi):
    C = dx.shape[1]
    for nc in range(lo, hi):
        n = nc // C
        c = nc - n * C
        dp = dx[n, c].reshape(-1)
        dp[:] = 0
        a = arg[n, c].reshape(-1)
        d = dout[n, c].reshape(-1)
        for i in range(a.size):
            dp[a[i]] += d[i]


@njit(parallel=True, cache=True)
def _pool_forward(out, arg, x, PH, PW, stride, pad, chunks):
    planes = x.shape[0] * x.shape[1]
    if chunks == 1:
        _pool_forward_planes(out, arg, x, PH, PW, stride, pad, 0, planes)
    else:
        for ci in prange(chunks):
            _pool_forward_planes(out, arg, x, PH, PW, stride, pad, ci * planes // chunks,
                                 (ci + 1) * planes // chunks)


@njit(parallel=True, cache=True)
def _pool_backward(dx, dout, arg, chunks):
    planes = dx.shape[0] * dx.shape[1]
    if chunks == 1:
        _pool_backward_planes(dx, dout, arg, 0, planes)
    else:
        for ci in prange(chunks):
            _pool_backward_planes(dx, dout, arg, ci * planes // chunks, (ci + 1) * planes // chunks)


def _chunks(planes, size):
    return nchunks(planes, size, MIN_PARALLEL, mark=True)


def pool_forward(x, pool_h, pool_w, stride, pad):
    """x (N, C, H, W) -> (out (N, C, OH, OW), ctx); first maximum wins; padding never wins."""
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    OH, OW = window_output_hw(H, W, pool_h, pool_w, stride, pad)
    out = np.empty((N, C, OH, OW), dtype=x.dtype)
    arg = np.empty((N, C, OH, OW), dtype=np.int32)
    _pool_forward(out, arg, x, pool_h, pool_w, stride, pad, _chunks(N * C, x.size))
    return out, (arg, x.shape)


def pool_backward(dout, ctx):
    """dout (N, C, OH, OW) -> dx (N, C, H, W): each gradient goes to its window's maximum."""
    arg, x_shape = ctx
    dout = np.ascontiguousarray(dout)
    dx = np.empty(x_shape, dtype=dout.dtype)
    _pool_backward(dx, dout, arg, _chunks(dx.shape[0] * dx.shape[1], dx.size))
    return dx

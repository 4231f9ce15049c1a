"""Max and average pooling (numba backend): one pass over each (image, channel) plane, in parallel.

    for plane in planes:                         # one span of planes per thread (disjoint), or all
                                                 # of them on the calling thread for small inputs
        for each output (oy, ox):
            out, arg = max and flat in-plane index of the first maximum over the taps inside the image
        if the plane held a NaN: redo it with NaN-aware comparisons (np.argmax semantics)

Padding is never read, which is the same as padding with minus infinity, except
for one tie that the reference (np.argmax over the padded window, in (ky, kx)
order) settles otherwise: a window whose maximum is -inf and whose first tap
(top-left) is padding. There the first maximum IS that padding cell, so the
gradient goes to padding and is dropped (the reference's col2im drops padding).
After each plane, ``_drop_padding_ties`` marks such windows (arg = -1) by
looking only at the windows of the top rows and left columns, outside the main
loop; backward skips -1 only in calls whose forward recorded one. The full rule:

    out = max over the window (padding = -inf; NaN wins, the first NaN)
    the gradient goes to the first tap (ky, kx order) equal to out; when that tap
    is padding (only possible when out == -inf) it is dropped

Inputs without any element (N, C, H or W zero) give -inf for every window (all
padding) and a zero gradient; pad >= the window (refused by Pooling) is run as an
explicit -inf border whose gradient is cropped, which is the same rule.
Windows of 2x2 without padding (both book networks) take a path with
constant loop bounds, which LLVM unrolls: about 5x faster than runtime-sized
loops here. NaN is tracked with a branch-free flag, because a NaN test inside
the comparison made the loop 5x slower; planes that saw a NaN are recomputed.
Backward scatters each gradient to its recorded position, plane by plane.

Average pooling sums the taps inside the image (padding adds zero) and divides by
pool_h * pool_w, the reference's rule; backward adds dout / (pool_h * pool_w) to each
tap inside the image. Same planes, chunks and threshold as max pooling.
"""
from typing import Any, Tuple

import numpy as np
from numba import njit, prange

from ..shapes import expect_ndim, expect_shape, pool_out_shape, window_output_hw
from ._arrays import kernel_input
from ._chunks import nchunks

#: this module's ops (the backend package imports exactly these)
__all__ = ["pool_forward", "pool_backward", "avg_pool_forward", "avg_pool_backward"]

#: input elements below which pooling runs on the calling thread (see ``_chunks``)
MIN_PARALLEL = 1 << 15


@njit(cache=True)
def window_span(q, stride, pad, size, extent):
    """(start, lo, hi): window q of ``size`` taps starts at start = q*stride - pad, and its taps
    [lo, hi) land inside [0, extent) (the rows or the columns of a plane; also ``fused``'s)."""
    start = q * stride - pad
    return start, max(0, -start), min(size, extent - start)


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
        y0, ylo, yhi = window_span(oy, stride, pad, PH, H)
        for ox in range(OW):
            x0, xlo, xhi = window_span(ox, stride, pad, PW, W)
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
def _drop_padding_ties(op, ap, stride, pad):
    """ap = -1 (no gradient) where the window's maximum is -inf and its top-left tap is padding:
    the windows of the first ceil(pad/stride) rows and columns. Returns True if any was marked."""
    OH, OW = op.shape
    edge = (pad + stride - 1) // stride
    rows = min(OH, edge)
    cols = min(OW, edge)
    ninf = -np.inf
    dropped = False
    for oy in range(OH):
        for ox in range(OW if oy < rows else cols):
            if op[oy, ox] == ninf:
                ap[oy, ox] = -1
                dropped = True
    return dropped


@njit(cache=True)
def _pool_forward_planes(out, arg, x, PH, PW, stride, pad, lo, hi):
    """Planes [lo, hi); returns True if a window's gradient is dropped (arg -1)."""
    C = x.shape[1]
    fast = PH == 2 and PW == 2 and pad == 0
    dropped = False
    for nc in range(lo, hi):
        n = nc // C
        c = nc - n * C
        if fast:
            nan = _plane_2x2(out[n, c], arg[n, c], x[n, c], stride)
        else:
            nan = _plane_any(out[n, c], arg[n, c], x[n, c], PH, PW, stride, pad, False)
        if nan:
            _plane_any(out[n, c], arg[n, c], x[n, c], PH, PW, stride, pad, True)
        if pad > 0:
            dropped |= _drop_padding_ties(out[n, c], arg[n, c], stride, pad)
    return dropped


@njit(cache=True)
def _pool_backward_planes(dx, dout, arg, lo, hi, dropped):
    """Planes [lo, hi); with dropped, positions -1 receive nothing (tested once per call, so the
    usual loop has no test)."""
    C = dx.shape[1]
    for nc in range(lo, hi):
        n = nc // C
        c = nc - n * C
        dp = dx[n, c].reshape(-1)
        dp[:] = 0
        a = arg[n, c].reshape(-1)
        d = dout[n, c].reshape(-1)
        if dropped:
            for i in range(a.size):
                ai = a[i]
                if ai >= 0:
                    dp[ai] += d[i]
        else:
            for i in range(a.size):
                dp[a[i]] += d[i]


@njit(parallel=True, cache=True)
def _pool_forward(out, arg, dropped, x, PH, PW, stride, pad, chunks):
    """dropped[chunk] is set when a window of the chunk's planes passes no gradient."""
    planes = x.shape[0] * x.shape[1]
    if chunks == 1:
        dropped[0] = _pool_forward_planes(out, arg, x, PH, PW, stride, pad, 0, planes)
    else:
        for ci in prange(chunks):
            dropped[ci] = _pool_forward_planes(out, arg, x, PH, PW, stride, pad, ci * planes // chunks,
                                               (ci + 1) * planes // chunks)


@njit(parallel=True, cache=True)
def _pool_backward(dx, dout, arg, dropped, chunks):
    planes = dx.shape[0] * dx.shape[1]
    if chunks == 1:
        _pool_backward_planes(dx, dout, arg, 0, planes, dropped)
    else:
        for ci in prange(chunks):
            _pool_backward_planes(dx, dout, arg, ci * planes // chunks, (ci + 1) * planes // chunks, dropped)


def _chunks(planes, size):
    return nchunks(planes, size, MIN_PARALLEL, mark=True)


def pool_forward(x, pool_h, pool_w, stride, pad):
    # type: (np.ndarray, int, int, int, int) -> Tuple[np.ndarray, Any]
    """x (N, C, H, W) -> (out (N, C, OH, OW), ctx); first maximum wins; see the module's rule
    for a -inf maximum whose first tap is padding. ctx: (arg, x's shape, whether a gradient is
    dropped, border, out's shape)."""
    N, C, H, W = expect_ndim("pool_forward", "x", x, 4, "(N, C, H, W)")
    x = kernel_input(x)
    OH, OW = window_output_hw(H, W, pool_h, pool_w, stride, pad)
    if x.size == 0:                      # nothing but padding in any window, or no window
        return np.full((N, C, OH, OW), -np.inf, dtype=x.dtype), (None, x.shape, False, 0, (N, C, OH, OW))
    border = pad - min(pool_h, pool_w) + 1
    if border > 0:
        # a window could hold only padding: make the outer border real -inf cells, whose
        # gradient backward crops away (the same as padding's), so that every window has a cell
        xb = np.full((N, C, H + 2 * border, W + 2 * border), -np.inf, dtype=x.dtype)
        xb[:, :, border:border + H, border:border + W] = x
        out, (arg, _, dropped, _, _) = pool_forward(xb, pool_h, pool_w, stride, pad - border)
        return out, (arg, x.shape, dropped, border, out.shape)
    out = np.empty((N, C, OH, OW), dtype=x.dtype)
    arg = np.empty((N, C, OH, OW), dtype=np.int32)
    chunks = _chunks(N * C, x.size)
    dropped = np.zeros(chunks, dtype=np.bool_)
    _pool_forward(out, arg, dropped, x, pool_h, pool_w, stride, pad, chunks)
    return out, (arg, x.shape, bool(dropped.any()), 0, out.shape)


def pool_backward(dout, ctx):
    # type: (np.ndarray, Any) -> np.ndarray
    """dout (N, C, OH, OW) -> dx (N, C, H, W): each gradient goes to its window's maximum."""
    arg, x_shape, dropped, border, out_shape = ctx
    expect_shape("pool_backward", "dout", dout, out_shape, "the forward call's output (from ctx)")
    if arg is None:
        return np.zeros(x_shape, dtype=dout.dtype)
    N, C, H, W = x_shape
    dout = kernel_input(dout)
    dx = np.empty((N, C, H + 2 * border, W + 2 * border), dtype=dout.dtype)
    _pool_backward(dx, dout, arg, dropped, _chunks(N * C, dx.size))
    if border:
        dx = np.ascontiguousarray(dx[:, :, border:border + H, border:border + W])
    return dx


# -- average pooling -------------------------------------------------------------------------------
@njit(cache=True)
def _avg_forward_planes(out, x, typed, PH, PW, stride, pad, lo, hi):
    """Planes [lo, hi). typed = [0, PH*PW] in x's dtype: the sums and the division stay in it."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    OH, OW = out.shape[2], out.shape[3]
    for nc in range(lo, hi):
        n = nc // C
        c = nc - n * C
        xp = x[n, c]
        op = out[n, c]
        for oy in range(OH):
            y0, ylo, yhi = window_span(oy, stride, pad, PH, H)
            for ox in range(OW):
                x0, xlo, xhi = window_span(ox, stride, pad, PW, W)
                acc = typed[0]
                for ky in range(ylo, yhi):
                    for kx in range(xlo, xhi):
                        acc += xp[y0 + ky, x0 + kx]
                op[oy, ox] = acc / typed[1]


@njit(cache=True)
def _avg_backward_planes(dx, dout, typed, PH, PW, stride, pad, lo, hi):
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    OH, OW = dout.shape[2], dout.shape[3]
    for nc in range(lo, hi):
        n = nc // C
        c = nc - n * C
        dp = dx[n, c]
        dp[:, :] = typed[0]
        d = dout[n, c]
        for oy in range(OH):
            y0, ylo, yhi = window_span(oy, stride, pad, PH, H)
            for ox in range(OW):
                x0, xlo, xhi = window_span(ox, stride, pad, PW, W)
                g = d[oy, ox] / typed[1]
                for ky in range(ylo, yhi):
                    for kx in range(xlo, xhi):
                        dp[y0 + ky, x0 + kx] += g


@njit(parallel=True, cache=True)
def _avg_pool(dst, src, typed, PH, PW, stride, pad, chunks, backward):
    """Forward (dst = out, src = x) or backward (dst = dx, src = dout) over every plane."""
    planes = dst.shape[0] * dst.shape[1]
    if chunks == 1:
        if backward:
            _avg_backward_planes(dst, src, typed, PH, PW, stride, pad, 0, planes)
        else:
            _avg_forward_planes(dst, src, typed, PH, PW, stride, pad, 0, planes)
    else:
        for ci in prange(chunks):
            lo, hi = ci * planes // chunks, (ci + 1) * planes // chunks
            if backward:
                _avg_backward_planes(dst, src, typed, PH, PW, stride, pad, lo, hi)
            else:
                _avg_forward_planes(dst, src, typed, PH, PW, stride, pad, lo, hi)


def avg_pool_forward(x, pool_h, pool_w, stride, pad):
    # type: (np.ndarray, int, int, int, int) -> Tuple[np.ndarray, Any]
    """x (N, C, H, W) -> (out (N, C, OH, OW), ctx): each window's mean, zero padding counted."""
    N, C, H, W = expect_ndim("avg_pool_forward", "x", x, 4, "(N, C, H, W)")
    x = kernel_input(x)
    OH, OW = window_output_hw(H, W, pool_h, pool_w, stride, pad)
    out = np.zeros((N, C, OH, OW), dtype=x.dtype)
    if x.size:
        typed = np.array([0, pool_h * pool_w], dtype=x.dtype)
        _avg_pool(out, x, typed, pool_h, pool_w, stride, pad, _chunks(N * C, x.size), False)
    return out, (x.shape, pool_h, pool_w, stride, pad)


def avg_pool_backward(dout, ctx):
    # type: (np.ndarray, Any) -> np.ndarray
    """dout (N, C, OH, OW) -> dx (N, C, H, W): each window's gradient shared by its taps."""
    x_shape, pool_h, pool_w, stride, pad = ctx
    expect_shape("avg_pool_backward", "dout", dout, pool_out_shape(x_shape, pool_h, pool_w, stride, pad), "the forward call's output (from ctx)")
    N, C = x_shape[:2]
    dout = kernel_input(dout)
    dx = np.zeros(x_shape, dtype=dout.dtype)
    if dx.size:
        typed = np.array([0, pool_h * pool_w], dtype=dout.dtype)
        _avg_pool(dx, dout, typed, pool_h, pool_w, stride, pad, _chunks(N * C, dx.size), True)
    return dx

"""Fused Convolution -> Relu [-> Pooling] (numba backend).

A network's ``Convolution, Relu, Pooling`` run as one op: each image's
convolution output (FN, OH*Wp) is computed into a per-thread buffer that stays
in cache, and bias, ReLU and max-pooling are applied to it there, so the
full-size (N, FN, OH, OW) activation is never written, re-read by Relu, written
again and read by Pooling (13.8 MB per pass for SimpleConvNet in float64).
Backward rebuilds each image's output gradient in that buffer from the pooled
gradient and the recorded positions, and hands it to the convolution's own
per-image backward (``_extrows.backprop_image_s1``):

    for chunk in prange(chunks):                         # disjoint images per chunk
        for n in chunk:
            oext = W2 @ colT(x[n])                        # (FN, OH*Wp), _extrows.image_s1
            for each window (f, qy, qx):
                v, i = max and position of the first maximum of oext[f, window] + b[f]
                out[n, f, qy, qx] = v if v > 0 else 0
                arg[n, f, qy, qx] = i if v > 0 else -1    # -1: ReLU passes no gradient
    backward:
        for chunk in prange(chunks):
            for n in chunk:
                dext[f, arg] += dout[n, f, qy, qx] where arg >= 0
                [dW | db]_part[chunk] += dext @ [colT; 1].T; dx[n] = col2im(W2.T @ dext)

The result equals this backend's unfused conv_forward -> relu_forward -> pool_forward
(the same products, the same sums; a test checks they agree bit for bit). Ties between
positive values go to the first maximum in (ky, kx) order, as in Pooling. Where the
maximum is <= 0 the pooled value is 0 and no gradient flows, as with Relu's mask.

Stride-1 convolutions (every one in the book's networks) take these kernels (Convolution ->
Relu alone is ``conv_s1``'s kernel with its ReLU epilogue). Other strides, and any batch whose
convolution output holds a NaN, run this backend's unfused ops one after another through
``fastdl.kernels.composite`` (NaN then follows Pooling's np.argmax rule exactly), as do filter
banks with no filter or no channel and pool_pad >= the pooling window (refused by the layers).
Backward goes through ``conv_s1.run_backward_s1``, which keeps NaN and Inf where the reference
puts them (the extended rows' extra columns must not add 0 * NaN terms).
"""
from types import SimpleNamespace
from typing import Any, NamedTuple, Optional, Tuple

import numpy as np
from numba import njit, prange

from .. import composite
from ..shapes import check_conv, expect_shape, window_output_hw
from ._arrays import float_input, kernel_input
from ._blas import MEMCPY, axpy_for, blas_for, gemm_for
from ._extrows import backprop_image_s1, backward_buffers_s1, forward_buffers_s1, image_s1
from .activations import relu_backward, relu_forward
from .conv import conv_backward, conv_forward, degenerate
from .conv_s1 import backward_s1, conv_inputs, dw_by_taps, forward_s1, run_backward_s1, taps
from .pool import pool_backward, pool_forward, window_span

#: this module's ops (the backend package imports exactly these)
__all__ = ["conv_relu_forward", "conv_relu_backward", "conv_relu_pool_forward", "conv_relu_pool_backward"]

#: this backend's own unfused ops, which ``composite`` runs one after another for what the fused
#: kernels do not cover
_UNFUSED = SimpleNamespace(conv_forward=conv_forward, conv_backward=conv_backward, relu_forward=relu_forward,
                           relu_backward=relu_backward, pool_forward=pool_forward, pool_backward=pool_backward)


class _S1(NamedTuple):
    """ctx of the stride-1 fused kernels; extra is Relu's mask or the pooled positions."""
    x: np.ndarray
    W2: np.ndarray
    w_shape: tuple
    pad: int
    extra: np.ndarray


@njit(cache=True)
def _relu_pool_2x2(op, ap, src, bf, Wp, QH, QW):
    """_relu_pool_plane for the book's pooling (2x2 windows, stride 2, no padding). Written as
    select chains over row slices, in a function of its own, so that LLVM vectorises it (2.5x
    faster than the general loop here); the pairwise maxima keep first-max-wins."""
    zero = op.dtype.type(0)
    nan = False
    for qy in range(QH):
        r0 = 2 * qy * Wp
        row0 = src[r0:r0 + 2 * QW]
        row1 = src[r0 + Wp:r0 + Wp + 2 * QW]
        orow = op[qy]
        arow = ap[qy]
        for qx in range(QW):
            a0 = row0[2 * qx] + bf
            a1 = row0[2 * qx + 1] + bf
            a2 = row1[2 * qx] + bf
            a3 = row1[2 * qx + 1] + bf
            nan |= (a0 != a0) | (a1 != a1) | (a2 != a2) | (a3 != a3)
            b01 = a1 > a0
            m01 = a1 if b01 else a0
            i01 = 2 * qx + 1 if b01 else 2 * qx
            b23 = a3 > a2
            m23 = a3 if b23 else a2
            i23 = Wp + 2 * qx + 1 if b23 else Wp + 2 * qx
            b = m23 > m01
            m = m23 if b else m01
            i = i23 if b else i01
            pos = m > zero
            orow[qx] = m if pos else zero
            arow[qx] = r0 + i if pos else -1        # (a nested conditional here was 2.7x slower)
    return nan



@njit(cache=True)
def _relu_pool_plane(op, ap, src, bf, Wp, OH, OW, PH, PW, ps, pp):
    """op[qy, qx] = max(0, max of src[oy*Wp + ox] + bf over the window inside (OH, OW));
    ap[qy, qx] = oy*Wp + ox of the first maximum, or -1 where that maximum is <= 0.
    Returns True when a NaN was seen."""
    QH, QW = op.shape
    zero = op.dtype.type(0)
    nan = False
    if PH == 2 and PW == 2 and ps == 2 and pp == 0:
        return _relu_pool_2x2(op, ap, src, bf, Wp, QH, QW)
    for qy in range(QH):
        y0, ylo, yhi = window_span(qy, ps, pp, PH, OH)
        for qx in range(QW):
            x0, xlo, xhi = window_span(qx, ps, pp, PW, OW)
            bi = (y0 + ylo) * Wp + x0 + xlo
            best = src[bi] + bf
            for ky in range(ylo, yhi):
                for kx in range(xlo, xhi):
                    i = (y0 + ky) * Wp + x0 + kx
                    v = src[i] + bf
                    nan |= v != v
                    if v > best:
                        best = v
                        bi = i
            pos = best > zero
            op[qy, qx] = best if pos else zero
            ap[qy, qx] = bi if pos else -1
    return nan



@njit(cache=True)
def _conv_relu_pool_forward_s1_chunk(ci, out, arg, nan, x, W2, Wt, b, FH, FW, pad, OH, OW, PH, PW, ps, pp, chunks,
                                     gemm, memcpy):
    """Chunk ci of _conv_relu_pool_forward_s1 (all of the work when chunks == 1)."""
    N = x.shape[0]
    FN = W2.shape[0]
    Wp, xpad, colT, oext = forward_buffers_s1(x, W2, Wt, FW, pad, OH)
    for n in range(ci * N // chunks, (ci + 1) * N // chunks):
        image_s1(oext, colT, xpad, x[n], W2, Wt, FH, FW, pad, gemm, memcpy)
        seen = False
        for f in range(FN):
            seen |= _relu_pool_plane(out[n, f], arg[n, f], oext[f], b[f], Wp, OH, OW, PH, PW, ps, pp)
        nan[n] = seen


@njit(parallel=True, cache=True)
def _conv_relu_pool_forward_s1(out, arg, nan, x, W2, Wt, b, FH, FW, pad, OH, OW, PH, PW, ps, pp, chunks,
                               gemm, memcpy):
    if chunks == 1:
        _conv_relu_pool_forward_s1_chunk(0, out, arg, nan, x, W2, Wt, b, FH, FW, pad, OH, OW, PH, PW, ps, pp, chunks,
                                         gemm, memcpy)
    else:
        for ci in prange(chunks):
            _conv_relu_pool_forward_s1_chunk(ci, out, arg, nan, x, W2, Wt, b, FH, FW, pad, OH, OW, PH, PW, ps, pp,
                                             chunks, gemm, memcpy)


@njit(cache=True)
def _pooled_to_ext(dext, dn, an):
    """dext[f, a] += dn[f, qy, qx] at every recorded position a = an[f, qy, qx] >= 0 (dext is zero
    elsewhere; overlapping windows may share a position)."""
    FN, QH, QW = dn.shape
    for f in range(FN):
        for qy in range(QH):
            for qx in range(QW):
                a = an[f, qy, qx]
                if a >= 0:
                    dext[f, a] += dn[f, qy, qx]


@njit(cache=True)
def _clear_pooled(dext, an):
    """dext back to zeros after _pooled_to_ext: only the positions it wrote."""
    zero = dext.dtype.type(0)
    FN, QH, QW = an.shape
    for f in range(FN):
        for qy in range(QH):
            for qx in range(QW):
                a = an[f, qy, qx]
                if a >= 0:
                    dext[f, a] = zero


@njit(cache=True)
def _conv_relu_pool_backward_s1_chunk(ci, dWb_part, dx, dout, arg, x, W2, Wt, FH, FW, pad, OH, chunks, need_dx, clean,
                                      tap_dw, gemm, memcpy, axpy):
    """Chunk ci of _conv_relu_pool_backward_s1 (all of the work when chunks == 1)."""
    N = x.shape[0]
    _, xpad, dxpad, colT, dext, dcolT = backward_buffers_s1(x, W2, Wt, FW, pad, OH, tap_dw)
    for n in range(ci * N // chunks, (ci + 1) * N // chunks):
        _pooled_to_ext(dext, dout[n], arg[n])
        backprop_image_s1(dx, n, dWb_part[ci], dext, colT, dcolT, xpad, dxpad, x[n], W2, Wt, FH, FW, pad,
                          need_dx, clean, tap_dw, gemm, memcpy, axpy)
        _clear_pooled(dext, arg[n])


@njit(parallel=True, cache=True)
def _conv_relu_pool_backward_s1(dWb_part, dx, dout, arg, x, W2, Wt, FH, FW, pad, OH, chunks, need_dx, clean, tap_dw,
                                gemm, memcpy, axpy):
    if chunks == 1:
        _conv_relu_pool_backward_s1_chunk(0, dWb_part, dx, dout, arg, x, W2, Wt, FH, FW, pad, OH, chunks, need_dx,
                                          clean, tap_dw, gemm, memcpy, axpy)
    else:
        for ci in prange(chunks):
            _conv_relu_pool_backward_s1_chunk(ci, dWb_part, dx, dout, arg, x, W2, Wt, FH, FW, pad, OH, chunks, need_dx,
                                              clean, tap_dw, gemm, memcpy, axpy)


def conv_relu_forward(x, W, b, stride, pad):
    # type: (np.ndarray, np.ndarray, np.ndarray, int, int) -> Tuple[np.ndarray, Any]
    """relu(conv(x, W, b)) -> (out (N, FN, OH, OW), ctx)."""
    check_conv("conv_relu_forward", x, W, b)
    if stride != 1 or degenerate(W.shape):
        return composite.conv_relu_forward(_UNFUSED, x, W, b, stride, pad)
    out, mask, x, W2 = forward_s1(x, W, b, pad, True)
    return out, _S1(x, W2, W.shape, pad, mask)


def conv_relu_backward(dout, ctx, need_dx=True):
    # type: (np.ndarray, Any, bool) -> Tuple[Optional[np.ndarray], np.ndarray, np.ndarray]
    """dout (N, FN, OH, OW) -> (dx or None, dW, db) through Relu then Convolution."""
    if not isinstance(ctx, _S1):
        return composite.conv_relu_backward(_UNFUSED, dout, ctx, need_dx)
    expect_shape("conv_relu_backward", "dout", dout, ctx.extra.shape, "the forward call's output (from ctx)")
    return backward_s1(dout, ctx.extra, ctx.x, ctx.W2, ctx.w_shape, ctx.pad, need_dx, True)


def conv_relu_pool_forward(x, W, b, stride, pad, pool_h, pool_w, pool_stride, pool_pad):
    # type: (np.ndarray, np.ndarray, np.ndarray, int, int, int, int, int, int) -> Tuple[np.ndarray, Any]
    """pool(relu(conv(x, W, b))) -> (out (N, FN, QH, QW), ctx)."""
    check_conv("conv_relu_pool_forward", x, W, b)
    # pool_pad >= the window (refused by Pooling) could leave a window without any cell
    if stride == 1 and not degenerate(W.shape) and pool_pad < min(pool_h, pool_w):
        x, W2, OH, OW, chunks = conv_inputs(x, W, 1, pad)
        FN, C, FH, FW = W.shape
        N = x.shape[0]
        QH, QW = window_output_hw(OH, OW, pool_h, pool_w, pool_stride, pool_pad)
        out = np.empty((N, FN, QH, QW), dtype=x.dtype)
        arg = np.empty((N, FN, QH, QW), dtype=np.int32)
        nan = np.zeros(N, dtype=np.bool_)
        with blas_for(chunks):
            _conv_relu_pool_forward_s1(out, arg, nan, x, W2, taps(W2, W.shape, chunks), float_input(b, x.dtype), FH, FW,
                                       pad, OH, OW, pool_h, pool_w, pool_stride, pool_pad, chunks,
                                       gemm_for(x.dtype), MEMCPY)
        if not nan.any():
            return out, _S1(x, W2, W.shape, pad, arg)
    return composite.conv_relu_pool_forward(_UNFUSED, x, W, b, stride, pad, pool_h, pool_w, pool_stride, pool_pad)


def conv_relu_pool_backward(dout, ctx, need_dx=True):
    # type: (np.ndarray, Any, bool) -> Tuple[Optional[np.ndarray], np.ndarray, np.ndarray]
    """dout (N, FN, QH, QW) -> (dx or None, dW, db) through Pooling, Relu and Convolution."""
    if not isinstance(ctx, _S1):
        return composite.conv_relu_pool_backward(_UNFUSED, dout, ctx, need_dx)
    x, W2, w_shape, pad, arg = ctx
    expect_shape("conv_relu_pool_backward", "dout", dout, arg.shape, "the forward call's output (from ctx)")
    FN, C, FH, FW = w_shape
    OH = window_output_hw(x.shape[2], x.shape[3], FH, FW, 1, pad)[0]
    dout = float_input(dout, x.dtype)

    def run(dWb_part, dx, Wt, chunks, need_dx, clean):
        _conv_relu_pool_backward_s1(dWb_part, dx, dout, arg, x, W2, Wt, FH, FW, pad, OH, chunks, need_dx, clean,
                                    dw_by_taps(Wt, x.shape, w_shape, pad), gemm_for(x.dtype), MEMCPY,
                                    axpy_for(x.dtype))
    return run_backward_s1(run, x, W2, w_shape, need_dx)

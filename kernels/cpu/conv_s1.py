"""Stride-1 convolution (numba backend): the kernels every stride-1 Convolution runs (every
convolution of the book's networks), with an optional fused ReLU epilogue, and the host-side
driver that ``conv`` and ``fused`` call.

    for chunk in prange(chunks):                      # disjoint images per chunk
        for n in chunk:
            oext = W2 @ colT(x[n])                    # (FN, OH*Wp) in extended rows (_extrows)
            out[n] = oext without its extra columns + b   # relu: max(0, .), mask = (. <= 0)
    backward:
        for chunk in prange(chunks):
            for n in chunk:
                dext = dout[n] in extended rows, zero extra columns   # relu: 0 where mask
                [dW | db]_part[chunk] += dext @ [colT; 1].T; dx[n] = col2im(W2.T @ dext)
        [dW | db] = the parts summed once, in a fixed order

The layout and the per-image products are ``_extrows``'s. ``fused`` runs the same per-image
products with ReLU and max-pooling applied in the buffer, through ``run_backward_s1``.
The thread threshold ``MIN_PARALLEL`` and ``conv_chunks`` / ``conv_inputs`` serve every
convolution kernel, ``conv``'s strided ones too.
"""
import numpy as np
from numba import njit, prange

from ..shapes import window_output_hw
from ._arrays import blas_dtype, filter_matrix, float_input, kernel_input
from ._blas import MEMCPY, axpy_for, blas_for, gemm_for
from ._chunks import nchunks
from ._extrows import backprop_image_s1, backward_buffers_s1, ext_width, forward_buffers_s1, image_s1

#: multiply-adds below which a convolution runs on the calling thread (see ``_chunks``;
#: ``benchmarks/scripts/sweep.py``)
MIN_PARALLEL = 1 << 23

#: Stride-1 convolutions with at least this many input channels compute the forward output and
#: dx tap by tap from the padded image (``image_s1`` / ``backprop_image_s1`` with Wt) instead of
#: through im2col columns: with K = C >= 16 per product OpenBLAS keeps its speed, and the column
#: copies (forward) and the dcolT product + axpy (dx) disappear. Measured here, DeepConvNet's
#: training step: 24.0 -> 20.3 ms (float32) and 48.9 -> 40.2 ms (float64) with OpenBLAS's own
#: AVX-512 kernels; with the Haswell kernels some machines force (OPENBLAS_CORETYPE), about 1 ms
#: of 34 in float32 and no change in float64. dW still uses the columns. On the calling thread
#: alone (chunks == 1: a few images), the column products are used whatever C: they are large
#: enough for OpenBLAS to thread, the nine per-tap ones are not (one 64x7x7 image, backward:
#: 393 vs 447 us float64, 250 vs 284 us float32).
SHIFT_MIN_C = 16

#: output row length L = OH * Wp (extended rows) from which, in the tap-by-tap mode (Wt given),
#: [dW | db] is computed tap by tap too (``backprop_image_s1``'s ``tap_dw``) rather than through
#: the columns: measured here on DeepConvNet's layers, one thread, 50 images, tap by tap took
#: 0.63x the columns' time at L = 812 (28x28), 0.74-0.83x at L = 210-256 (14x14) and 1.07-1.56x
#: at L = 72 (8x8), in both dtypes
TAP_DW_MIN_L = 128


def dw_by_taps(Wt, x_shape, w_shape, pad):
    """Whether the stride-1 backward computes [dW | db] tap by tap: in the tap-by-tap mode (Wt not
    empty), when [dW | db] is held transposed (FN < K + 1: its rows per tap are one strided
    matrix) and the output rows are at least ``TAP_DW_MIN_L`` long."""
    FN, C, FH, FW = w_shape
    if Wt.shape[0] == 0 or not _transposed_dWb(w_shape):
        return False
    OH = x_shape[2] + 2 * pad - FH + 1
    return OH * int(ext_width(x_shape[3], pad, FW)) >= TAP_DW_MIN_L


#: the mask argument of the stride-1 kernels when no Relu is fused (one compiled signature either way)
NO_MASK = np.zeros((1, 1, 1, 1), dtype=np.bool_)


def conv_chunks(N, FN, K, P):
    """Chunks of images for a convolution of N images, FN filters of K taps, P output pixels."""
    return nchunks(N, N * FN * K * P, MIN_PARALLEL, mark=True)


def conv_inputs(x, W, stride, pad):
    """(x, W2, OH, OW, chunks) for a convolution kernel: x and W (as filter_matrix) as the kernels
    take them (in one float dtype, ``blas_dtype``), the output size and the chunks of images."""
    if x.dtype != W.dtype or x.dtype not in (np.float32, np.float64):
        dt = blas_dtype(x.dtype, W.dtype)
        x, W = x.astype(dt, copy=False), W.astype(dt, copy=False)
    x = kernel_input(x)
    W2 = filter_matrix(W)
    FN, C, FH, FW = W.shape
    N, _, H, Wd = x.shape
    OH, OW = window_output_hw(H, Wd, FH, FW, stride, pad)
    return x, W2, OH, OW, conv_chunks(N, FN, W2.shape[1], OH * OW)


def taps(W2, w_shape, chunks):
    """Wt (FH*FW, FN, C) = W by tap for the shifted products, or an empty array when im2col is used."""
    FN, C, FH, FW = w_shape
    if C < SHIFT_MIN_C or chunks == 1:
        return _no_taps(W2, w_shape)
    return np.ascontiguousarray(W2.reshape(w_shape).transpose(2, 3, 0, 1)).reshape(FH * FW, FN, C)


def _no_taps(W2, w_shape):
    """The empty Wt: the products go through im2col columns."""
    return np.empty((0, w_shape[0], w_shape[1]), dtype=W2.dtype)


@njit(cache=True)
def _conv_forward_s1_chunk(ci, out, mask, x, W2, Wt, b, FH, FW, pad, chunks, relu, gemm, memcpy):
    """Chunk ci of _conv_forward_s1 (all of the work when chunks == 1)."""
    N = x.shape[0]
    FN = W2.shape[0]
    OH, OW = out.shape[2], out.shape[3]
    zero = x.dtype.type(0)
    Wp, xpad, colT, oext = forward_buffers_s1(x, W2, Wt, FW, pad, OH)
    for n in range(ci * N // chunks, (ci + 1) * N // chunks):
        image_s1(oext, colT, xpad, x[n], W2, Wt, FH, FW, pad, gemm, memcpy)
        on = out[n]
        mn = mask[n if relu else 0]            # (NO_MASK has one image)
        # each row through 1-d views: LLVM vectorises these short loops (28 elements) then,
        # 2.1x faster on DeepConvNet's 28x28 planes than indexing the 3-d arrays (measured here)
        for f in range(FN):
            bf = b[f]
            ef = oext[f]
            of = on[f]
            for oy in range(OH):
                src = ef[oy * Wp:oy * Wp + OW]
                orow = of[oy]
                if relu:
                    mrow = mn[f, oy]
                    for ox in range(OW):
                        v = src[ox] + bf
                        m = v <= zero
                        mrow[ox] = m
                        orow[ox] = zero if m else v
                else:
                    for ox in range(OW):
                        orow[ox] = src[ox] + bf


@njit(parallel=True, cache=True)
def _conv_forward_s1(out, mask, x, W2, Wt, b, FH, FW, pad, chunks, relu, gemm, memcpy):
    """Stride 1. With relu, out = max(0, conv + b) and mask = (conv + b <= 0) (the fused
    Convolution -> Relu); otherwise mask is not touched."""
    if chunks == 1:
        _conv_forward_s1_chunk(0, out, mask, x, W2, Wt, b, FH, FW, pad, chunks, relu, gemm, memcpy)
    else:
        for ci in prange(chunks):
            _conv_forward_s1_chunk(ci, out, mask, x, W2, Wt, b, FH, FW, pad, chunks, relu, gemm, memcpy)


@njit(cache=True)
def _dout_to_ext(dext, dout, mask, n, Wp, relu):
    """dext (FN, OH*Wp) = dout[n] in extended rows (the extra columns are left as they are: zero);
    with relu, 0 where mask[n] is set."""
    FN, OH, OW = dout.shape[1], dout.shape[2], dout.shape[3]
    zero = dext.dtype.type(0)
    dn = dout[n]
    for f in range(FN):
        ef = dext[f]
        for oy in range(OH):
            drow = ef[oy * Wp:oy * Wp + OW]       # 1-d views, as in _conv_forward_s1_chunk
            srow = dn[f, oy]
            if relu:
                mrow = mask[n, f, oy]
                for ox in range(OW):
                    drow[ox] = zero if mrow[ox] else srow[ox]
            else:
                for ox in range(OW):
                    drow[ox] = srow[ox]


@njit(cache=True)
def _conv_backward_s1_chunk(ci, dWb_part, dx, dout, mask, x, W2, Wt, FH, FW, pad, chunks, need_dx, clean, tap_dw,
                            relu, gemm, memcpy, axpy):
    """Chunk ci of _conv_backward_s1 (all of the work when chunks == 1)."""
    N = x.shape[0]
    Wp, xpad, dxpad, colT, dext, dcolT = backward_buffers_s1(x, W2, Wt, FW, pad, dout.shape[2], tap_dw)
    for n in range(ci * N // chunks, (ci + 1) * N // chunks):
        _dout_to_ext(dext, dout, mask, n, Wp, relu)
        backprop_image_s1(dx, n, dWb_part[ci], dext, colT, dcolT, xpad, dxpad, x[n], W2, Wt, FH, FW, pad,
                          need_dx, clean, tap_dw, gemm, memcpy, axpy)


@njit(parallel=True, cache=True)
def _conv_backward_s1(dWb_part, dx, dout, mask, x, W2, Wt, FH, FW, pad, chunks, need_dx, clean, tap_dw, relu, gemm,
                      memcpy, axpy):
    """Stride 1; dWb_part[chunk] = [dW | db] (FN, K + 1) of its images. With relu, the gradient is
    first zeroed where mask is set (the fused Relu's backward)."""
    if chunks == 1:
        _conv_backward_s1_chunk(0, dWb_part, dx, dout, mask, x, W2, Wt, FH, FW, pad, chunks, need_dx, clean, tap_dw,
                                relu, gemm, memcpy, axpy)
    else:
        for ci in prange(chunks):
            _conv_backward_s1_chunk(ci, dWb_part, dx, dout, mask, x, W2, Wt, FH, FW, pad, chunks, need_dx, clean,
                                    tap_dw, relu, gemm, memcpy, axpy)


def forward_s1(x, W, b, pad, relu):
    """(out, mask, x, W2) of a stride-1 convolution: out (N, FN, OH, OW); mask = (conv + b <= 0)
    with relu (out is then max(0, conv + b)), otherwise NO_MASK; x and W2 as the kernels took them
    (contiguous; for the backward)."""
    x, W2, OH, OW, chunks = conv_inputs(x, W, 1, pad)
    FN, C, FH, FW = W.shape
    out = np.empty((x.shape[0], FN, OH, OW), dtype=x.dtype)
    mask = np.empty(out.shape, dtype=np.bool_) if relu else NO_MASK
    with blas_for(chunks):
        _conv_forward_s1(out, mask, x, W2, taps(W2, W.shape, chunks), float_input(b, x.dtype), FH, FW, pad, chunks, relu,
                         gemm_for(x.dtype), MEMCPY)
    return out, mask, x, W2


def backward_s1(dout, mask, x, W2, w_shape, pad, need_dx, relu):
    """(dx or None, dW, db) of a stride-1 convolution (forward_s1's x and W2); with relu, dout is
    first zeroed where mask is set."""
    FN, C, FH, FW = w_shape
    dout = float_input(dout, x.dtype)

    def run(dWb_part, dx, Wt, chunks, need_dx, clean):
        _conv_backward_s1(dWb_part, dx, dout, mask, x, W2, Wt, FH, FW, pad, chunks, need_dx, clean,
                          dw_by_taps(Wt, x.shape, w_shape, pad), relu, gemm_for(x.dtype), MEMCPY, axpy_for(x.dtype))
    return run_backward_s1(run, x, W2, w_shape, need_dx)


def run_backward_s1(run, x, W2, w_shape, need_dx):
    """(dx or None, dW, db) of a stride-1 backward kernel (``backward_s1``'s or ``fused``'s), which
    ``run(dWb_part, dx, Wt, chunks, need_dx, clean)`` calls.

    NaN and Inf must reach the results exactly where the reference puts them, but the extended
    rows' extra columns can add 0 * NaN or 0 * Inf (= NaN) terms (``backprop_image_s1``):
    * W not finite (one sum over W, W's size): the whole call runs clean, with the column
      products (no Wt), so dx gets no NaN from the extra columns;
    * otherwise a NaN in the chunk-summed [dW | db] (tested by one sum of its FN*(K + 1) values)
      may come from a non-finite pixel at the image's edges: [dW | db] alone is then computed
      again, clean (dx does not depend on x, so it stands). A NaN that the reference has too
      (from dout, say) costs the same rerun.
    Finite inputs pay the sum and the look only; the kernels' loops are unchanged."""
    chunks, dWb_part, dx = _backward_outputs(x, w_shape, need_dx)
    # sums as tests, no temporary arrays: a NaN anywhere makes the sum NaN; an overflow, or Inf
    # and -Inf together, only sends the call down the clean path, which is right whatever the input
    with np.errstate(over="ignore", invalid="ignore"):
        finite_w = bool(np.isfinite(np.sum(W2)))
        Wt = taps(W2, w_shape, chunks) if finite_w else _no_taps(W2, w_shape)
        with blas_for(chunks):
            run(dWb_part, dx, Wt, chunks, need_dx, not finite_w)
            dWb = dWb_part.sum(axis=0)               # the chunks summed once, in a fixed order
            if finite_w and np.isnan(np.sum(dWb)):
                dWb_part[:] = 0
                run(dWb_part, dx, _no_taps(W2, w_shape), chunks, False, True)
                dWb = dWb_part.sum(axis=0)
    return _backward_result(dx, dWb, w_shape, need_dx)


def _transposed_dWb(w_shape):
    """backprop_image_s1 computes [dW | db] transposed, (K + 1, FN), when FN < K + 1."""
    return w_shape[0] < int(np.prod(w_shape[1:])) + 1


def _backward_outputs(x, w_shape, need_dx):
    """(chunks, zeroed per-chunk [dW | db] buffers, dx or a placeholder) for a stride-1 backward."""
    FN, K = w_shape[0], int(np.prod(w_shape[1:]))
    chunks = conv_chunks(x.shape[0], FN, K, x.shape[2] * x.shape[3])
    shape = (chunks, K + 1, FN) if _transposed_dWb(w_shape) else (chunks, FN, K + 1)
    dx = np.empty(x.shape, dtype=x.dtype) if need_dx else np.empty((1, 1, 1, 1), dtype=x.dtype)
    return chunks, np.zeros(shape, dtype=x.dtype), dx


def _backward_result(dx, dWb, w_shape, need_dx):
    """(dx or None, dW, db) from dx and the chunk-summed [dW | db] of _backward_outputs's buffers."""
    if _transposed_dWb(w_shape):
        dWb = dWb.T
    return (dx if need_dx else None, np.ascontiguousarray(dWb[:, :-1]).reshape(w_shape),
            np.ascontiguousarray(dWb[:, -1]))

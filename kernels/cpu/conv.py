"""im2col / col2im and convolution (numba backend).

Convolution runs image by image inside a parallel loop over chunks of the
batch: each chunk owns a buffer ``colT`` (C*FH*FW, OH*OW) -- the transpose of
one image's im2col rows -- and one GEMM per image writes straight into the
NCHW output:

    for chunk in prange(chunks):                 # disjoint images per chunk
        for n in chunk:
            colT = windows of x[n]               # (K, P), K = C*FH*FW, P = OH*OW
            out[n] = W2 @ colT + b               # (FN, P), W2 = W.reshape(FN, K)

Backward recomputes colT instead of keeping the whole batch's columns (one
image's columns stay in cache), and reduces dW and db with one buffer per
chunk summed at the end:

    for chunk in prange(chunks):
        for n in chunk:
            dW_part[chunk] += dout[n] @ colT.T   # (FN, K)
            db_part[chunk] += dout[n].sum(axis=1)
            dx[n] = col2im(W2.T @ dout[n])       # scatter into image n only
    dW = sum(dW_part); db = sum(db_part)

Stride 1 (every convolution of the book's networks) uses an "extended row"
layout instead: each image is copied once into a zero-padded buffer whose rows
are Wp = max(W + pad, OW) long (the pad zeros at the end of a row also serve as
the left padding of the next row), and the output rows are computed over that
whole width, so row r = (c, ky, kx) of colT is ONE contiguous slice of the
padded channel, starting at ky*Wp + kx, of length OH*Wp. The Wp - OW extra
columns per output row are computed and dropped (forward), or multiplied by
zeros (backward, where dout is extended with zero columns). They hold real edge
pixels, and 0 * NaN is NaN: ``backward_s1`` keeps a non-finite x or W from
reaching results that do not depend on it, outside the kernels' loops. This turns
28-element copies into one ``memmove`` of about 800 elements per row
(DeepConvNet's conv2 columns: 4.5 ms with element copies, 1.1 ms with memmove,
measured here); col2im becomes one BLAS ``axpy`` per row. In backward, colT
carries an extra row of ones, so db comes out of the dW product as one more
column (``_backprop_image_s1``). ``fused.py`` runs the same per-image helpers
with Relu (and Pooling) applied in the buffer.

All products are CBLAS calls (``_blas``) with leading dimensions and beta = 1, so transposes
and dW accumulation need no temporary copies. The choice of per-image GEMMs follows the
issue's prototype measurements (one large im2col GEMM was slower on every book shape, a
direct loop nest reached 3-14 GFLOP/s); it was not re-measured here.
"""
import numpy as np
from numba import njit, prange

from ..shapes import window_output_hw
from ._arrays import kernel_input
from ._blas import MEMCPY, NO_TRANS, ROW_MAJOR, TRANS, axpy_for, blas_for, gemm_for
from ._chunks import nchunks

#: multiply-adds below which a convolution runs on the calling thread, and im2col/col2im
#: elements below which they do (see ``_chunks``; ``benchmarks/scripts/sweep.py``)
MIN_PARALLEL = 1 << 23
MIN_PARALLEL_COPY = 1 << 16


def conv_chunks(N, FN, K, P):
    """Chunks of images for a convolution of N images, FN filters of K taps, P output pixels."""
    return nchunks(N, N * FN * K * P, MIN_PARALLEL, mark=True)


@njit(cache=True)
def _span(kx, pad, stride, W, OW):
    """Output columns [lo, hi) whose tap kx lands inside the image: 0 <= ox*stride + kx - pad < W."""
    lo = 0
    if pad - kx > 0:
        lo = (pad - kx + stride - 1) // stride
    hi = (W - 1 + pad - kx) // stride + 1
    if hi > OW:
        hi = OW
    if lo > OW:
        lo = OW
    if hi < lo:
        hi = lo
    return lo, hi


@njit(cache=True)
def _fill_colT(colT, xn, FH, FW, stride, pad, OH, OW):
    """colT[(c*FH + ky)*FW + kx, oy*OW + ox] = xn[c, oy*stride + ky - pad, ox*stride + kx - pad] (0 outside)."""
    C, H, W = xn.shape
    zero = colT.dtype.type(0)
    for c in range(C):
        for ky in range(FH):
            for kx in range(FW):
                r = (c * FH + ky) * FW + kx
                lo, hi = _span(kx, pad, stride, W, OW)
                off = kx - pad
                for oy in range(OH):
                    iy = oy * stride + ky - pad
                    base = oy * OW
                    if iy < 0 or iy >= H:
                        for ox in range(OW):
                            colT[r, base + ox] = zero
                        continue
                    for ox in range(lo):
                        colT[r, base + ox] = zero
                    if stride == 1:
                        for ox in range(lo, hi):
                            colT[r, base + ox] = xn[c, iy, ox + off]
                    else:
                        for ox in range(lo, hi):
                            colT[r, base + ox] = xn[c, iy, ox * stride + off]
                    for ox in range(hi, OW):
                        colT[r, base + ox] = zero


@njit(cache=True)
def _add_colT(dxn, dcolT, FH, FW, stride, pad, OH, OW):
    """The adjoint of _fill_colT: dxn[c, iy, ix] += dcolT[r, p] for every tap inside the image."""
    C, H, W = dxn.shape
    for c in range(C):
        for ky in range(FH):
            for kx in range(FW):
                r = (c * FH + ky) * FW + kx
                lo, hi = _span(kx, pad, stride, W, OW)
                off = kx - pad
                for oy in range(OH):
                    iy = oy * stride + ky - pad
                    if iy < 0 or iy >= H:
                        continue
                    base = oy * OW
                    for ox in range(lo, hi):
                        dxn[c, iy, ox * stride + off] += dcolT[r, base + ox]


@njit(cache=True)
def _im2col_chunk(ci, col, x, FH, FW, stride, pad, OH, OW, chunks):
    """Chunk ci of _im2col (all of the work when chunks == 1)."""
    N = x.shape[0]
    K = col.shape[1]
    P = OH * OW
    colT = np.empty((K, P), dtype=x.dtype)
    for n in range(ci * N // chunks, (ci + 1) * N // chunks):
        _fill_colT(colT, x[n], FH, FW, stride, pad, OH, OW)
        block = col[n * P:(n + 1) * P]          # (P, K): this image's rows
        for p in range(P):
            for k in range(K):
                block[p, k] = colT[k, p]


@njit(parallel=True, cache=True)
def _im2col(col, x, FH, FW, stride, pad, OH, OW, chunks):
    if chunks == 1:
        _im2col_chunk(0, col, x, FH, FW, stride, pad, OH, OW, chunks)
    else:
        for ci in prange(chunks):
            _im2col_chunk(ci, col, x, FH, FW, stride, pad, OH, OW, chunks)


@njit(cache=True)
def _col2im_chunk(ci, img, col, FH, FW, stride, pad, OH, OW, chunks):
    """Chunk ci of _col2im (all of the work when chunks == 1)."""
    N = img.shape[0]
    K = col.shape[1]
    P = OH * OW
    colT = np.empty((K, P), dtype=col.dtype)
    for n in range(ci * N // chunks, (ci + 1) * N // chunks):
        block = col[n * P:(n + 1) * P]
        for p in range(P):
            for k in range(K):
                colT[k, p] = block[p, k]
        img[n] = 0
        _add_colT(img[n], colT, FH, FW, stride, pad, OH, OW)


@njit(parallel=True, cache=True)
def _col2im(img, col, FH, FW, stride, pad, OH, OW, chunks):
    if chunks == 1:
        _col2im_chunk(0, img, col, FH, FW, stride, pad, OH, OW, chunks)
    else:
        for ci in prange(chunks):
            _col2im_chunk(ci, img, col, FH, FW, stride, pad, OH, OW, chunks)


def im2col(x, filter_h, filter_w, stride=1, pad=0):
    """x (N, C, H, W) -> col (N*OH*OW, C*FH*FW), zero padding. Parallel over images."""
    x = kernel_input(x)
    N, C, H, W = x.shape
    OH, OW = window_output_hw(H, W, filter_h, filter_w, stride, pad)
    col = np.empty((N * OH * OW, C * filter_h * filter_w), dtype=x.dtype)
    _im2col(col, x, filter_h, filter_w, stride, pad, OH, OW, nchunks(N, col.size, MIN_PARALLEL_COPY))
    return col


def col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    """col (N*OH*OW, C*FH*FW) -> x (N, C, H, W); each image is summed by one thread (no races)."""
    col = kernel_input(col)
    N, C, H, W = (int(s) for s in input_shape)
    OH, OW = window_output_hw(H, W, filter_h, filter_w, stride, pad)
    img = np.empty((N, C, H, W), dtype=col.dtype)
    _col2im(img, col, filter_h, filter_w, stride, pad, OH, OW, nchunks(N, col.size, MIN_PARALLEL_COPY))
    return img


@njit(cache=True)
def _conv_forward_chunk(ci, out, x, W2, b, FH, FW, stride, pad, chunks, gemm):
    """Chunk ci of _conv_forward (all of the work when chunks == 1)."""
    N = x.shape[0]
    FN, K = W2.shape
    OH, OW = out.shape[2], out.shape[3]
    P = OH * OW
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    colT = np.empty((K, P), dtype=x.dtype)
    for n in range(ci * N // chunks, (ci + 1) * N // chunks):
        _fill_colT(colT, x[n], FH, FW, stride, pad, OH, OW)
        o = out[n].reshape(FN, P)
        # o (FN, P) = W2 (FN, K) @ colT (K, P)
        gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, FN, P, K, one, W2.ctypes.data, K, colT.ctypes.data, P,
             zero, o.ctypes.data, P)
        for f in range(FN):
            bf = b[f]
            for p in range(P):
                o[f, p] += bf


@njit(parallel=True, cache=True)
def _conv_forward(out, x, W2, b, FH, FW, stride, pad, chunks, gemm):
    if chunks == 1:
        _conv_forward_chunk(0, out, x, W2, b, FH, FW, stride, pad, chunks, gemm)
    else:
        for ci in prange(chunks):
            _conv_forward_chunk(ci, out, x, W2, b, FH, FW, stride, pad, chunks, gemm)


@njit(cache=True)
def _conv_backward_chunk(ci, dx, dW_part, db_part, dout, x, W2, FH, FW, stride, pad, chunks, need_dx, gemm):
    """Chunk ci of _conv_backward (all of the work when chunks == 1)."""
    N = x.shape[0]
    FN, K = W2.shape
    OH, OW = dout.shape[2], dout.shape[3]
    P = OH * OW
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    colT = np.empty((K, P), dtype=x.dtype)
    dcolT = np.empty((K, P), dtype=x.dtype)
    dWc = dW_part[ci]
    dbc = db_part[ci]
    for n in range(ci * N // chunks, (ci + 1) * N // chunks):
        d = dout[n].reshape(FN, P)
        _fill_colT(colT, x[n], FH, FW, stride, pad, OH, OW)
        # dWc (FN, K) += d (FN, P) @ colT.T (P, K)
        gemm(ROW_MAJOR, NO_TRANS, TRANS, FN, K, P, one, d.ctypes.data, P, colT.ctypes.data, P,
             one, dWc.ctypes.data, K)
        for f in range(FN):
            s = dbc.dtype.type(0)
            for p in range(P):
                s += d[f, p]
            dbc[f] += s
        if need_dx:
            # dcolT (K, P) = W2.T (K, FN) @ d (FN, P)
            gemm(ROW_MAJOR, TRANS, NO_TRANS, K, P, FN, one, W2.ctypes.data, K, d.ctypes.data, P,
                 zero, dcolT.ctypes.data, P)
            dxn = dx[n]
            dxn[:] = 0
            _add_colT(dxn, dcolT, FH, FW, stride, pad, OH, OW)


@njit(parallel=True, cache=True)
def _conv_backward(dx, dW_part, db_part, dout, x, W2, FH, FW, stride, pad, chunks, need_dx, gemm):
    if chunks == 1:
        _conv_backward_chunk(0, dx, dW_part, db_part, dout, x, W2, FH, FW, stride, pad, chunks, need_dx, gemm)
    else:
        for ci in prange(chunks):
            _conv_backward_chunk(ci, dx, dW_part, db_part, dout, x, W2, FH, FW, stride, pad, chunks, need_dx, gemm)


@njit(cache=True)
def _ext_width(W, pad, FW):
    """Row length Wp of the stride-1 "extended row" layout: W + pad, so the pad zeros at the end
    of each row also serve as the left padding of the next (a window reaching past the left edge
    reads the previous row's trailing zeros), and at least OW. W + 2*pad, the plain padded
    width, computes 14-25% more columns than needed on DeepConvNet's 14x14 and 8x8 layers."""
    return max(W + pad, W + 2 * pad - FW + 1)


@njit(cache=True)
def _fill_pad(xpad, xn, FW, pad, memcpy):
    """Stride 1: copy xn's rows into the zero-padded buffer xpad (C, (H + 2*pad)*Wp + FW)."""
    C, H, W = xn.shape
    Wp = _ext_width(W, pad, FW)
    isz = xn.itemsize
    for c in range(C):
        for iy in range(H):
            memcpy(xpad.ctypes.data + (c * xpad.shape[1] + (iy + pad) * Wp + pad) * isz,
                   xn.ctypes.data + ((c * H + iy) * W) * isz, W * isz)


@njit(cache=True)
def _fill_ext(colT, xpad, xn, FH, FW, pad, memcpy):
    """Stride 1: copy xn into the padded buffer, then colT[(c*FH+ky)*FW+kx, :] = xpad[c, ky*Wp+kx :][:L].

    Every copy is one contiguous run, done with C's memmove (passed in as ``memcpy``; 4x faster
    than a Numba slice assignment here). All arrays are C-contiguous and distinct."""
    C, H, W = xn.shape
    Wp = _ext_width(W, pad, FW)
    L = colT.shape[1]
    isz = colT.itemsize
    _fill_pad(xpad, xn, FW, pad, memcpy)
    for c in range(C):
        xc = xpad[c]
        for ky in range(FH):
            for kx in range(FW):
                memcpy(colT.ctypes.data + ((c * FH + ky) * FW + kx) * L * isz, xc.ctypes.data + (ky * Wp + kx) * isz,
                       L * isz)


@njit(cache=True)
def _image_s1(oext, colT, xpad, xn, W2, Wt, FH, FW, pad, gemm, memcpy):
    """One image, stride 1: oext (FN, L) = the convolution of xn in extended rows.

    Wt empty: fill colT (K, L), then oext = W2 (FN, K) @ colT (im2col).
    Wt (FH*FW, FN, C): one product per tap, oext += Wt[tap] (FN, C) @ xpad[:, ky*Wp + kx:][:, :L]
    straight from the padded image (the "shifted" B matrix has leading dimension xpad.shape[1]),
    so no columns are copied at all."""
    C, H, W = xn.shape
    FN, K = W2.shape
    L = oext.shape[1]
    one = xn.dtype.type(1)
    zero = xn.dtype.type(0)
    if Wt.shape[0] == 0:
        _fill_ext(colT, xpad, xn, FH, FW, pad, memcpy)
        gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, FN, L, K, one, W2.ctypes.data, K, colT.ctypes.data, L,
             zero, oext.ctypes.data, L)
        return
    _fill_pad(xpad, xn, FW, pad, memcpy)
    Wp = _ext_width(W, pad, FW)
    P = xpad.shape[1]
    isz = xn.itemsize
    for t in range(FH * FW):
        ky = t // FW
        kx = t - ky * FW
        gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, FN, L, C, one, Wt[t].ctypes.data, C,
             xpad.ctypes.data + (ky * Wp + kx) * isz, P, zero if t == 0 else one, oext.ctypes.data, L)


@njit(cache=True)
def _zero_extra_columns(a, rows, OW, Wp):
    """a[:rows, oy*Wp + ox] = 0 for every extra column ox in [OW, Wp) of every output row oy."""
    zero = a.dtype.type(0)
    L = a.shape[1]
    for r in range(rows):
        for start in range(OW, L, Wp):
            for i in range(start, start + Wp - OW):
                a[r, i] = zero


@njit(cache=True)
def _backprop_image_s1(dx, n, dWc, dext, colT, dcolT, xpad, dxpad, xn, W2, Wt, FH, FW, pad, need_dx, clean,
                       gemm, memcpy, axpy):
    """One image, stride 1, given dext (FN, L), the output gradient in extended rows (zeros in the
    extra columns): dWc += dext @ colT.T, and with need_dx, dx[n] = col2im(W2.T @ dext) (Wt
    empty) or, tap by tap, dxpad[:, ky*Wp + kx:][:, :L] += Wt[tap].T @ dext (Wt given; no dcolT).

    colT has K + 1 rows, the last all ones, and dWc is [dW | db] (FN, K + 1): its last column sums
    dext's rows, which is db, inside the same product (a separate sum was a serial loop of FN*L
    adds). When FN < K + 1, dWc is the transpose (K + 1, FN), computed as colT @ dext.T: OpenBLAS
    ran DeepConvNet's shapes 6-11% faster with the larger dimension as M (float32, measured here).

    The extra columns are where NaN and Inf can leak in: colT's hold pixels of the image's left
    and right edges (the windows "wrap" into the next row), and 0 * NaN = 0 * Inf = NaN, so a
    non-finite edge pixel would spread NaN into dW entries that do not depend on it; likewise
    dcolT's (and the per-tap products') extra columns are W2.T @ 0, NaN when W is not finite, and
    they land on real pixels of dx. With ``clean`` those extra columns are zeroed (colT's after the
    copy, dcolT's after the product; Wt must then be empty). The callers pass clean only in that
    rare case (``backward_s1``): zeroing costs K*OH*(Wp - OW) scattered stores per image."""
    C, H, W = xn.shape
    FN, K = W2.shape
    L = colT.shape[1]
    Wp = _ext_width(W, pad, FW)
    OW = W + 2 * pad - FW + 1
    P = dxpad.shape[1]
    isz = xn.itemsize
    one = xn.dtype.type(1)
    _fill_ext(colT, xpad, xn, FH, FW, pad, memcpy)
    if clean:
        _zero_extra_columns(colT, K, OW, Wp)
    if dWc.shape[0] == FN:
        # [dWc | dbc] (FN, K + 1) += dext (FN, L) @ [colT; 1].T (L, K + 1)
        gemm(ROW_MAJOR, NO_TRANS, TRANS, FN, K + 1, L, one, dext.ctypes.data, L, colT.ctypes.data, L,
             one, dWc.ctypes.data, K + 1)
    else:
        # [dWc | dbc].T (K + 1, FN) += [colT; 1] (K + 1, L) @ dext.T (L, FN)
        gemm(ROW_MAJOR, NO_TRANS, TRANS, K + 1, FN, L, one, colT.ctypes.data, L, dext.ctypes.data, L,
             one, dWc.ctypes.data, FN)
    if not need_dx:
        return
    dxpad[:] = 0
    if Wt.shape[0] == 0:
        # dcolT (K, L) = W2.T (K, FN) @ dext (FN, L); its extra columns are zero
        gemm(ROW_MAJOR, TRANS, NO_TRANS, K, L, FN, one, W2.ctypes.data, K, dext.ctypes.data, L,
             xn.dtype.type(0), dcolT.ctypes.data, L)
        if clean:
            _zero_extra_columns(dcolT, K, OW, Wp)
        for c in range(C):
            dc = dxpad[c]
            for ky in range(FH):
                for kx in range(FW):
                    # dc[ky*Wp + kx :][:L] += dcolT[(c*FH + ky)*FW + kx]
                    axpy(L, one, dcolT.ctypes.data + ((c * FH + ky) * FW + kx) * L * isz, 1,
                         dc.ctypes.data + (ky * Wp + kx) * isz, 1)
    else:
        for t in range(FH * FW):
            ky = t // FW
            kx = t - ky * FW
            # dxpad[:, ky*Wp + kx :][:, :L] (C, L) += Wt[t].T (C, FN) @ dext (FN, L)
            gemm(ROW_MAJOR, TRANS, NO_TRANS, C, L, FN, one, Wt[t].ctypes.data, C, dext.ctypes.data, L,
                 one, dxpad.ctypes.data + (ky * Wp + kx) * isz, P)
    for c in range(C):
        for iy in range(H):
            memcpy(dx.ctypes.data + (((n * C + c) * H + iy) * W) * isz,
                   dxpad.ctypes.data + (c * P + (iy + pad) * Wp + pad) * isz, W * isz)


#: Stride-1 convolutions with at least this many input channels compute the forward output and
#: dx tap by tap from the padded image (``_image_s1`` / ``_backprop_image_s1`` with Wt) instead of
#: through im2col columns: with K = C >= 16 per product OpenBLAS keeps its speed, and the column
#: copies (forward) and the dcolT product + axpy (dx) disappear. Measured here, DeepConvNet's
#: training step: 24.0 -> 20.3 ms (float32) and 48.9 -> 40.2 ms (float64) with OpenBLAS's own
#: AVX-512 kernels; with the Haswell kernels some machines force (OPENBLAS_CORETYPE), about 1 ms
#: of 34 in float32 and no change in float64. dW still uses the columns. On the calling thread
#: alone (chunks == 1: a few images), the column products are used whatever C: they are large
#: enough for OpenBLAS to thread, the nine per-tap ones are not (one 64x7x7 image, backward:
#: 393 vs 447 us float64, 250 vs 284 us float32).
SHIFT_MIN_C = 16


def _taps(W2, w_shape, chunks):
    """Wt (FH*FW, FN, C) = W by tap for the shifted products, or an empty array when im2col is used."""
    FN, C, FH, FW = w_shape
    if C < SHIFT_MIN_C or chunks == 1:
        return _no_taps(W2, w_shape)
    return np.ascontiguousarray(W2.reshape(w_shape).transpose(2, 3, 0, 1)).reshape(FH * FW, FN, C)


def _no_taps(W2, w_shape):
    """The empty Wt: the products go through im2col columns."""
    return np.empty((0, w_shape[0], w_shape[1]), dtype=W2.dtype)


@njit(cache=True)
def _backward_buffers_s1(x, FN, K, FH, FW, pad, L, Wt):
    """One chunk's buffers for _backprop_image_s1: xpad (zeros), dxpad, colT with its last row of
    ones (db inside the dW product), dext (zeros: its extra columns must stay zero) and dcolT
    (empty when the products go tap by tap)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    size = (H + 2 * pad) * _ext_width(W, pad, FW) + FW
    colT = np.empty((K + 1, L), dtype=x.dtype)
    colT[K] = 1
    return (np.zeros((C, size), dtype=x.dtype), np.empty((C, size), dtype=x.dtype), colT,
            np.zeros((FN, L), dtype=x.dtype), np.empty((K if Wt.shape[0] == 0 else 0, L), dtype=x.dtype))


@njit(cache=True)
def _conv_forward_s1_chunk(ci, out, mask, x, W2, Wt, b, FH, FW, pad, chunks, relu, gemm, memcpy):
    """Chunk ci of _conv_forward_s1 (all of the work when chunks == 1)."""
    N, C, H, W = x.shape
    FN, K = W2.shape
    OH, OW = out.shape[2], out.shape[3]
    Wp = _ext_width(W, pad, FW)
    L = OH * Wp
    zero = x.dtype.type(0)
    # the slack of FW elements lets the last slice run past the padded image (into zeros)
    xpad = np.zeros((C, (H + 2 * pad) * Wp + FW), dtype=x.dtype)
    colT = np.empty((K if Wt.shape[0] == 0 else 0, L), dtype=x.dtype)   # unused when shifted
    oext = np.empty((FN, L), dtype=x.dtype)
    for n in range(ci * N // chunks, (ci + 1) * N // chunks):
        _image_s1(oext, colT, xpad, x[n], W2, Wt, FH, FW, pad, gemm, memcpy)
        on = out[n]
        for f in range(FN):
            bf = b[f]
            for oy in range(OH):
                src = oy * Wp
                if relu:
                    for ox in range(OW):
                        v = oext[f, src + ox] + bf
                        m = v <= zero
                        mask[n, f, oy, ox] = m
                        on[f, oy, ox] = zero if m else v
                else:
                    for ox in range(OW):
                        on[f, oy, ox] = oext[f, src + ox] + bf


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
def _conv_backward_s1_chunk(ci, dWb_part, dx, dout, mask, x, W2, Wt, FH, FW, pad, chunks, need_dx, clean, relu, gemm,
                            memcpy, axpy):
    """Chunk ci of _conv_backward_s1 (all of the work when chunks == 1)."""
    N, C, H, W = x.shape
    FN, K = W2.shape
    OH, OW = dout.shape[2], dout.shape[3]
    Wp = _ext_width(W, pad, FW)
    L = OH * Wp
    zero = x.dtype.type(0)
    xpad, dxpad, colT, dext, dcolT = _backward_buffers_s1(x, FN, K, FH, FW, pad, L, Wt)
    for n in range(ci * N // chunks, (ci + 1) * N // chunks):
        dn = dout[n]
        for f in range(FN):
            for oy in range(OH):
                dst = oy * Wp
                if relu:
                    for ox in range(OW):
                        dext[f, dst + ox] = zero if mask[n, f, oy, ox] else dn[f, oy, ox]
                else:
                    for ox in range(OW):
                        dext[f, dst + ox] = dn[f, oy, ox]
        _backprop_image_s1(dx, n, dWb_part[ci], dext, colT, dcolT, xpad, dxpad, x[n], W2, Wt, FH, FW, pad,
                           need_dx, clean, gemm, memcpy, axpy)


@njit(parallel=True, cache=True)
def _conv_backward_s1(dWb_part, dx, dout, mask, x, W2, Wt, FH, FW, pad, chunks, need_dx, clean, relu, gemm, memcpy,
                      axpy):
    """Stride 1; dWb_part[chunk] = [dW | db] (FN, K + 1) of its images. With relu, the gradient is
    first zeroed where mask is set (the fused Relu's backward)."""
    if chunks == 1:
        _conv_backward_s1_chunk(0, dWb_part, dx, dout, mask, x, W2, Wt, FH, FW, pad, chunks, need_dx, clean, relu, gemm,
                                memcpy, axpy)
    else:
        for ci in prange(chunks):
            _conv_backward_s1_chunk(ci, dWb_part, dx, dout, mask, x, W2, Wt, FH, FW, pad, chunks, need_dx, clean, relu,
                                    gemm, memcpy, axpy)


#: the mask argument of the stride-1 kernels when no Relu is fused (one compiled signature either way)
NO_MASK = np.zeros((1, 1, 1, 1), dtype=np.bool_)


def _w2(W):
    """W (FN, C, FH, FW) as the C-contiguous (FN, C*FH*FW) matrix the kernels take (explicit sizes:
    reshape(FN, -1) cannot infer -1 when FN == 0)."""
    FN, C, FH, FW = W.shape
    return kernel_input(W).reshape(FN, C * FH * FW)


def _forward_s1(x, W, b, pad, relu):
    """(out, mask, W2) of the stride-1 kernel; mask is NO_MASK unless relu."""
    x = kernel_input(x)
    W2 = _w2(W)
    FN, C, FH, FW = W.shape
    N, _, H, Wd = x.shape
    OH, OW = window_output_hw(H, Wd, FH, FW, 1, pad)
    out = np.empty((N, FN, OH, OW), dtype=x.dtype)
    mask = np.empty(out.shape, dtype=np.bool_) if relu else NO_MASK
    chunks = conv_chunks(N, FN, W2.shape[1], OH * OW)
    with blas_for(chunks):
        _conv_forward_s1(out, mask, x, W2, _taps(W2, W.shape, chunks), kernel_input(b), FH, FW, pad, chunks, relu,
                         gemm_for(x.dtype), MEMCPY)
    return out, mask, x, W2


def _backward_s1(dout, mask, x, W2, w_shape, pad, need_dx, relu):
    """(dx or None, dW, db) of the stride-1 kernel; with relu, dout is masked first."""
    FN, C, FH, FW = w_shape
    dout = kernel_input(dout)

    def run(dWb_part, dx, Wt, chunks, need_dx, clean):
        _conv_backward_s1(dWb_part, dx, dout, mask, x, W2, Wt, FH, FW, pad, chunks, need_dx, clean, relu,
                          gemm_for(x.dtype), MEMCPY, axpy_for(x.dtype))
    return backward_s1(run, x, W2, w_shape, need_dx)


def backward_s1(run, x, W2, w_shape, need_dx):
    """(dx or None, dW, db) of a stride-1 backward kernel (this module's or ``fused``'s), which
    ``run(dWb_part, dx, Wt, chunks, need_dx, clean)`` calls.

    NaN and Inf must reach the results exactly where the reference puts them, but the extended
    rows' extra columns can add 0 * NaN or 0 * Inf (= NaN) terms (``_backprop_image_s1``):
    * W not finite (one sum over W, W's size): the whole call runs clean, with the column
      products (no Wt), so dx gets no NaN from the extra columns;
    * otherwise a NaN in the chunk-summed [dW | db] (tested by one sum of its FN*(K + 1) values) may come from a non-finite pixel
      at the image's edges: [dW | db] alone is then computed again, clean (dx does not depend on
      x, so it stands). A NaN that the reference has too (from dout, say) costs the same rerun.
    Finite inputs pay the sum and the look only; the kernels' loops are unchanged."""
    chunks, dWb_part, dx = backward_outputs_s1(x, w_shape, need_dx)
    # sums as tests, no temporary arrays: a NaN anywhere makes the sum NaN; an overflow, or Inf
    # and -Inf together, only sends the call down the clean path, which is right whatever the input
    with np.errstate(over="ignore", invalid="ignore"):
        finite_w = bool(np.isfinite(np.sum(W2)))
        Wt = _taps(W2, w_shape, chunks) if finite_w else _no_taps(W2, w_shape)
        with blas_for(chunks):
            run(dWb_part, dx, Wt, chunks, need_dx, not finite_w)
            dWb = dWb_part.sum(axis=0)               # the chunks summed once, in a fixed order
            if finite_w and np.isnan(np.sum(dWb)):
                dWb_part[:] = 0
                run(dWb_part, dx, _no_taps(W2, w_shape), chunks, False, True)
                dWb = dWb_part.sum(axis=0)
    return backward_result_s1(dx, dWb, w_shape, need_dx)


def _transposed_dWb(w_shape):
    """_backprop_image_s1 computes [dW | db] transposed, (K + 1, FN), when FN < K + 1."""
    return w_shape[0] < int(np.prod(w_shape[1:])) + 1


def backward_outputs_s1(x, w_shape, need_dx):
    """(chunks, zeroed per-chunk [dW | db] buffers, dx or a placeholder) for the stride-1 backward
    kernels (this module's and ``fused``'s)."""
    FN, K = w_shape[0], int(np.prod(w_shape[1:]))
    chunks = conv_chunks(x.shape[0], FN, K, x.shape[2] * x.shape[3])
    shape = (chunks, K + 1, FN) if _transposed_dWb(w_shape) else (chunks, FN, K + 1)
    dx = np.empty(x.shape, dtype=x.dtype) if need_dx else np.empty((1, 1, 1, 1), dtype=x.dtype)
    return chunks, np.zeros(shape, dtype=x.dtype), dx


def backward_result_s1(dx, dWb, w_shape, need_dx):
    """(dx or None, dW, db) from dx and the chunk-summed [dW | db] of backward_outputs_s1's buffers."""
    if _transposed_dWb(w_shape):
        dWb = dWb.T
    return (dx if need_dx else None, np.ascontiguousarray(dWb[:, :-1]).reshape(w_shape),
            np.ascontiguousarray(dWb[:, -1]))


def degenerate(w_shape):
    """No filters or no input channels (FN == 0 or C == 0; the layers refuse C == 0): there is
    nothing to multiply, and BLAS refuses the zero leading dimensions, so ``conv_forward`` and
    ``conv_backward`` answer without the kernels (``fused`` falls back to them)."""
    return w_shape[0] == 0 or w_shape[1] == 0


def _degenerate_forward(x, W, b, stride, pad):
    FN, C, FH, FW = W.shape
    N, _, H, Wd = x.shape
    OH, OW = window_output_hw(H, Wd, FH, FW, stride, pad)
    out = np.empty((N, FN, OH, OW), dtype=x.dtype)
    out[...] = np.asarray(b).reshape(1, FN, 1, 1)        # a sum over no taps, plus b
    return out, (x, None, W.shape, stride, pad)      # W2 None: backward answers as well


def _degenerate_backward(dout, x, w_shape, need_dx):
    dx = np.zeros(x.shape, dtype=x.dtype) if need_dx else None
    return dx, np.zeros(w_shape, dtype=x.dtype), np.asarray(dout).sum(axis=(0, 2, 3)).astype(x.dtype, copy=False)


def conv_forward(x, W, b, stride, pad):
    """x (N, C, H, W) * W (FN, C, FH, FW) + b -> (out (N, FN, OH, OW) C-contiguous, ctx)."""
    if degenerate(W.shape):
        return _degenerate_forward(x, W, b, stride, pad)
    if stride == 1:
        out, _, x, W2 = _forward_s1(x, W, b, pad, False)
        return out, (x, W2, W.shape, stride, pad)
    x = kernel_input(x)
    W2 = _w2(W)
    FN, C, FH, FW = W.shape
    N, _, H, Wd = x.shape
    OH, OW = window_output_hw(H, Wd, FH, FW, stride, pad)
    out = np.empty((N, FN, OH, OW), dtype=x.dtype)
    chunks = conv_chunks(N, FN, W2.shape[1], OH * OW)
    with blas_for(chunks):
        _conv_forward(out, x, W2, kernel_input(b), FH, FW, stride, pad, chunks, gemm_for(x.dtype))
    return out, (x, W2, W.shape, stride, pad)


def conv_backward(dout, ctx, need_dx=True):
    """dout (N, FN, OH, OW) -> (dx, dW, db). With need_dx=False (the first layer of a net),
    dx is not computed and None is returned in its place."""
    x, W2, w_shape, stride, pad = ctx
    if W2 is None:
        return _degenerate_backward(dout, x, w_shape, need_dx)
    if stride == 1:
        return _backward_s1(dout, NO_MASK, x, W2, w_shape, pad, need_dx, False)
    dout = kernel_input(dout)
    FN, C, FH, FW = w_shape
    chunks = conv_chunks(x.shape[0], FN, W2.shape[1], dout.shape[2] * dout.shape[3])
    dW_part = np.zeros((chunks,) + W2.shape, dtype=x.dtype)
    db_part = np.zeros((chunks, FN), dtype=x.dtype)
    dx = np.empty(x.shape, dtype=x.dtype) if need_dx else np.empty((1, 1, 1, 1), dtype=x.dtype)
    with blas_for(chunks):
        _conv_backward(dx, dW_part, db_part, dout, x, W2, FH, FW, stride, pad, chunks, need_dx,
                       gemm_for(x.dtype))
    dW = dW_part.sum(axis=0).reshape(w_shape)
    return (dx if need_dx else None), dW, db_part.sum(axis=0)

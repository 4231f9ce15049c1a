"""The stride-1 "extended row" layout and one image's products in it (numba backend; the
building blocks of ``conv_s1`` and ``fused``).

Each image is copied once into a zero-padded buffer ``xpad`` (C, (H + 2*pad)*Wp + FW) whose rows
are Wp = ``ext_width`` long (the pad zeros at the end of a row also serve as the left padding of
the next row), and the output rows are computed over that whole width, so row r = (c, ky, kx) of
the columns ``colT`` is ONE contiguous slice of the padded channel, starting at ky*Wp + kx, of
length L = OH*Wp. The Wp - OW extra columns per output row are computed and dropped (forward),
or multiplied by zeros (backward, where the output gradient ``dext`` has zero extra columns).
They hold real edge pixels, and 0 * NaN is NaN: see ``backprop_image_s1``'s ``clean``.
This turns 28-element copies into one ``memmove`` of about 800 elements per row (DeepConvNet's
conv2 columns: 4.5 ms with element copies, 1.1 ms with memmove, measured here); col2im becomes
one BLAS ``axpy`` per row.

``forward_buffers_s1`` / ``backward_buffers_s1`` allocate one chunk's buffers; ``image_s1``
(forward) and ``backprop_image_s1`` (backward) do one image. Everything here is ``@njit``.
"""
import numpy as np
from numba import njit

from ._blas import NO_TRANS, ROW_MAJOR, TRANS


@njit(cache=True)
def ext_width(W, pad, FW):
    """Row length Wp of the stride-1 "extended row" layout: W + pad, so the pad zeros at the end
    of each row also serve as the left padding of the next (a window reaching past the left edge
    reads the previous row's trailing zeros), and at least OW. W + 2*pad, the plain padded
    width, computes 14-25% more columns than needed on DeepConvNet's 14x14 and 8x8 layers."""
    return max(W + pad, W + 2 * pad - FW + 1)


@njit(cache=True)
def _fill_pad(xpad, xn, FW, pad, memcpy):
    """Stride 1: copy xn's rows into the zero-padded buffer xpad (C, (H + 2*pad)*Wp + FW)."""
    C, H, W = xn.shape
    Wp = ext_width(W, pad, FW)
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
    Wp = ext_width(W, pad, FW)
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
def image_s1(oext, colT, xpad, xn, W2, Wt, FH, FW, pad, gemm, memcpy):
    """One image, stride 1: oext (FN, L) = the convolution of xn in extended rows (no bias).

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
    Wp = ext_width(W, pad, FW)
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
def backprop_image_s1(dx, n, dWc, dext, colT, dcolT, xpad, dxpad, xn, W2, Wt, FH, FW, pad, need_dx, clean,
                      tap_dw, gemm, memcpy, axpy):
    """One image, stride 1, given dext (FN, L), the output gradient in extended rows (zeros in the
    extra columns): dWc += dext @ colT.T, and with need_dx, dx[n] = col2im(W2.T @ dext) (Wt
    empty) or, tap by tap, dxpad[:, ky*Wp + kx:][:, :L] += Wt[tap].T @ dext (Wt given; no dcolT).

    colT has K + 1 rows, the last all ones, and dWc is [dW | db] (FN, K + 1): its last column sums
    dext's rows, which is db, inside the same product (a separate sum would be a serial loop of FN*L
    adds). When FN < K + 1, dWc is the transpose (K + 1, FN), computed as colT @ dext.T: OpenBLAS
    ran DeepConvNet's shapes 6-11% faster with the larger dimension as M (float32, measured here).
    With ``tap_dw`` (Wt given, dWc transposed: ``conv_s1.dw_by_taps`` decides) [dW | db] is instead
    computed tap by tap from the padded image, without filling colT: OpenBLAS then packs nine
    (C, L) blocks that stay in cache instead of one (K + 1, L) block of columns (dW of 50 images
    of DeepConvNet's conv2, one thread: 1.9 vs 3.0 ms float32, 4.1 vs 6.4 ms float64; on its 8x8
    layers, L = 72, the columns were faster, measured here).

    The extra columns are where NaN and Inf can leak in: colT's hold pixels of the image's left
    and right edges (the windows "wrap" into the next row), and 0 * NaN = 0 * Inf = NaN, so a
    non-finite edge pixel would spread NaN into dW entries that do not depend on it; likewise
    dcolT's (and the per-tap products') extra columns are W2.T @ 0, NaN when W is not finite, and
    they land on real pixels of dx. With ``clean`` those extra columns are zeroed (colT's after the
    copy, dcolT's after the product; Wt must then be empty). The callers pass clean only in that
    rare case (``conv_s1.run_backward_s1``): zeroing costs K*OH*(Wp - OW) scattered stores per image."""
    C, H, W = xn.shape
    FN, K = W2.shape
    L = colT.shape[1]
    Wp = ext_width(W, pad, FW)
    OW = W + 2 * pad - FW + 1
    P = dxpad.shape[1]
    isz = xn.itemsize
    one = xn.dtype.type(1)
    if tap_dw:
        # [dW | db].T (K + 1, FN) tap by tap, from the padded image with no columns copied: tap t's
        # rows t, t + FH*FW, ... (one per channel) are a (C, FN) matrix of leading dimension
        # FH*FW*FN, += xpad[:, ky*Wp + kx:][:, :L] (C, L) @ dext.T (L, FN); db (the last row)
        # += ones (1, L) @ dext.T, the ones being colT's one row (backward_buffers_s1)
        _fill_pad(xpad, xn, FW, pad, memcpy)
        P0 = xpad.shape[1]
        T = FH * FW
        for t in range(T):
            ky = t // FW
            kx = t - ky * FW
            gemm(ROW_MAJOR, NO_TRANS, TRANS, C, FN, L, one, xpad.ctypes.data + (ky * Wp + kx) * isz, P0,
                 dext.ctypes.data, L, one, dWc.ctypes.data + t * FN * isz, T * FN)
        gemm(ROW_MAJOR, NO_TRANS, TRANS, 1, FN, L, one, colT.ctypes.data, L, dext.ctypes.data, L,
             one, dWc.ctypes.data + K * FN * isz, FN)
    else:
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


@njit(cache=True)
def forward_buffers_s1(x, W2, Wt, FW, pad, OH):
    """(Wp, xpad, colT, oext): one chunk's buffers for image_s1. xpad starts as zeros (its
    padding is never written again); colT is empty when the products go tap by tap (Wt given)."""
    N, C, H, W = x.shape
    FN, K = W2.shape
    Wp = ext_width(W, pad, FW)
    L = OH * Wp
    # the slack of FW elements lets the last slice run past the padded image (into zeros)
    xpad = np.zeros((C, (H + 2 * pad) * Wp + FW), dtype=x.dtype)
    colT = np.empty((K if Wt.shape[0] == 0 else 0, L), dtype=x.dtype)   # unused when shifted
    oext = np.empty((FN, L), dtype=x.dtype)
    return Wp, xpad, colT, oext


@njit(cache=True)
def backward_buffers_s1(x, W2, Wt, FW, pad, OH, tap_dw):
    """(Wp, xpad, dxpad, colT, dext, dcolT): one chunk's buffers for backprop_image_s1. xpad
    (zeros), dxpad, colT with its last row of ones (db inside the dW product; with tap_dw that row
    alone, as no columns are filled), dext (zeros: its extra columns must stay zero) and dcolT
    (empty when the products go tap by tap)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    FN, K = W2.shape
    Wp = ext_width(W, pad, FW)
    L = OH * Wp
    size = (H + 2 * pad) * Wp + FW
    colT = np.empty((1 if tap_dw else K + 1, L), dtype=x.dtype)
    colT[colT.shape[0] - 1] = 1
    return (Wp, np.zeros((C, size), dtype=x.dtype), np.empty((C, size), dtype=x.dtype), colT,
            np.zeros((FN, L), dtype=x.dtype), np.empty((K if Wt.shape[0] == 0 else 0, L), dtype=x.dtype))

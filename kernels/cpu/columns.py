"""im2col / col2im (numba backend): the book's column layout, and the per-image column kernels
that the strided convolution (``conv``) shares.

One image's columns are built transposed, ``colT`` (C*FH*FW, OH*OW), one row per tap
(c, ky, kx): ``fill_colT`` writes it, ``add_colT`` is its adjoint (scatter-add back into the
image). ``im2col`` / ``col2im`` run them image by image, one span of images per chunk, and
transpose each image's block into (or out of) the book's (N*OH*OW, C*FH*FW) rows; ``conv``
multiplies ``colT`` directly (no transpose).
"""
from typing import Tuple

import numpy as np
from numba import njit, prange

from ..shapes import check_col, expect_ndim, window_output_hw
from ._arrays import kernel_input
from ._chunks import nchunks

#: this module's ops (the backend package imports exactly these)
__all__ = ["im2col", "col2im"]

#: elements below which im2col/col2im run on the calling thread (see ``_chunks``;
#: ``benchmarks/scripts/sweep.py``)
MIN_PARALLEL_COPY = 1 << 16


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
def fill_colT(colT, xn, FH, FW, stride, pad, OH, OW):
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
def add_colT(dxn, dcolT, FH, FW, stride, pad, OH, OW):
    """The adjoint of fill_colT: dxn[c, iy, ix] += dcolT[r, p] for every tap inside the image."""
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
        fill_colT(colT, x[n], FH, FW, stride, pad, OH, OW)
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
        add_colT(img[n], colT, FH, FW, stride, pad, OH, OW)


@njit(parallel=True, cache=True)
def _col2im(img, col, FH, FW, stride, pad, OH, OW, chunks):
    if chunks == 1:
        _col2im_chunk(0, img, col, FH, FW, stride, pad, OH, OW, chunks)
    else:
        for ci in prange(chunks):
            _col2im_chunk(ci, img, col, FH, FW, stride, pad, OH, OW, chunks)


def im2col(x, filter_h, filter_w, stride=1, pad=0):
    # type: (np.ndarray, int, int, int, int) -> np.ndarray
    """x (N, C, H, W) -> col (N*OH*OW, C*FH*FW), zero padding. Parallel over images."""
    N, C, H, W = expect_ndim("im2col", "x", x, 4, "(N, C, H, W)")
    x = kernel_input(x)
    OH, OW = window_output_hw(H, W, filter_h, filter_w, stride, pad)
    col = np.empty((N * OH * OW, C * filter_h * filter_w), dtype=x.dtype)
    _im2col(col, x, filter_h, filter_w, stride, pad, OH, OW, nchunks(N, col.size, MIN_PARALLEL_COPY))
    return col


def col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    # type: (np.ndarray, Tuple[int, ...], int, int, int, int) -> np.ndarray
    """col (N*OH*OW, C*FH*FW) -> x (N, C, H, W); each image is summed by one thread (no races)."""
    N, C, H, W, OH, OW = check_col("col2im", col, input_shape, filter_h, filter_w, stride, pad)
    col = kernel_input(col)
    img = np.empty((N, C, H, W), dtype=col.dtype)
    _col2im(img, col, filter_h, filter_w, stride, pad, OH, OW, nchunks(N, col.size, MIN_PARALLEL_COPY))
    return img

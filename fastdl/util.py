"""im2col / col2im, output sizes and data helpers (``common/util.py`` in the book)."""
from __future__ import annotations

from typing import Any, Sequence, Tuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import backend
from ._checks import float_array
from .kernels.shapes import conv_output_size, window_output_hw

__all__ = ["im2col", "col2im", "conv_output_size", "shuffle_dataset", "smooth_curve"]


def im2col(input_data: ArrayLike, filter_h: int, filter_w: int, stride: int = 1,
           pad: int = 0) -> Any:
    """Unfold every filter_h x filter_w window of a batch of images into a row.

    input_data (N, C, H, W) -> col (N*OH*OW, C*filter_h*filter_w); rows in
    (n, oh, ow) order, columns in (c, ky, kx) order, zero padding; dtype kept
    (the book's version always returns float64).

    Parameters
    ----------
    input_data : array_like, shape (N, C, H, W)
        Images (on the cuda backend also a device array).
    filter_h : int
        The window's height.
    filter_w : int
        The window's width.
    stride : int
        Step between windows.
    pad : int
        Zero padding on every side.

    Returns
    -------
    ndarray, shape (N*OH*OW, C*filter_h*filter_w)
        float32 for float32 (and float16) input, else float64; on the cuda backend a device
        array for a device array.
    """
    x = float_array("input_data", input_data, 4, owner="im2col")
    window_output_hw(x.shape[2], x.shape[3], filter_h, filter_w, stride, pad)
    return backend.ops().im2col(x, int(filter_h), int(filter_w), int(stride), int(pad))


def col2im(col: ArrayLike, input_shape: Sequence[int], filter_h: int, filter_w: int,
           stride: int = 1, pad: int = 0) -> Any:
    """Fold rows of ``col`` back into images of ``input_shape``; overlapping taps are summed.

    Parameters
    ----------
    col : array_like, shape (N*OH*OW, C*filter_h*filter_w)
        Rows as :func:`im2col` makes them (on the cuda backend also a device array).
    input_shape : sequence of 4 ints
        ``(N, C, H, W)`` of the images.
    filter_h : int
        As given to :func:`im2col`.
    filter_w : int
        As given to :func:`im2col`.
    stride : int
        As given to :func:`im2col`.
    pad : int
        As given to :func:`im2col`.

    Returns
    -------
    ndarray, shape (N, C, H, W)
        In the float dtype of ``col`` (float32 or float64).
    """
    cols = float_array("col", col, 2, owner="col2im")
    if len(input_shape) != 4:
        raise ValueError(f"col2im: input_shape must be (N, C, H, W), got {tuple(input_shape)}")
    N, C, H, W = (int(s) for s in input_shape)
    OH, OW = window_output_hw(H, W, filter_h, filter_w, stride, pad)
    want = (N * OH * OW, C * filter_h * filter_w)
    if cols.shape != want:
        raise ValueError(f"col2im: col must have shape {want} for input_shape {tuple(input_shape)}, "
                         f"filter {filter_h}x{filter_w}, stride {stride}, pad {pad}; got {cols.shape}")
    return backend.ops().col2im(cols, (N, C, H, W), int(filter_h), int(filter_w), int(stride), int(pad))


def shuffle_dataset(x: ArrayLike, t: ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
    """Shuffle x and t with the same permutation of the first axis (global NumPy RNG, as in the book).

    Parameters
    ----------
    x : array_like, shape (N, ...)
        Samples.
    t : array_like, shape (N, ...)
        Their labels.

    Returns
    -------
    (ndarray, ndarray)
        Shuffled copies of ``x`` and ``t``, dtypes and shapes kept.
    """
    x, t = np.asarray(x), np.asarray(t)
    if x.shape[0] != t.shape[0]:
        raise ValueError(f"shuffle_dataset: x has {x.shape[0]} samples but t has {t.shape[0]}")
    perm = np.random.permutation(x.shape[0])
    return x[perm], t[perm]


def smooth_curve(x: ArrayLike) -> NDArray[np.float64]:
    """Smooth a loss curve with an 11-tap Kaiser window (beta 2), mirroring the ends.

    Returns an array of the same length as x.

    Parameters
    ----------
    x : array_like
        At least 11 values (flattened).

    Returns
    -------
    ndarray of float64, shape (len(x),)
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    n = 11
    if x.size < n:
        raise ValueError(f"smooth_curve: need at least {n} points, got {x.size}")
    # reflect n-1 points at each end so the 'valid' convolution keeps len(x) + n - 1 points
    s = np.concatenate([x[n - 1:0:-1], x, x[-2:-n - 1:-1]])
    w = np.kaiser(n, 2)
    y = np.convolve(w / w.sum(), s, mode="valid")
    half = n // 2
    return y[half:len(y) - half]

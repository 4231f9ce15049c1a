"""Softmax and softmax + cross-entropy (numba backend), by spans of rows.

Below ``MIN_PARALLEL`` elements (a batch of 100 scores of 10 classes is 1,000) the
rows are done on the calling thread; above, one span of rows per Numba thread.
"""
from typing import Any, Tuple

import numpy as np
from numba import njit, prange

from ..shapes import bad_label, check_labels_shape
from ..spec import LOG_EPS
from ._arrays import kernel_input
from ._chunks import nchunks
from ._vexp import exp_nonpos

#: this module's ops (the backend package imports exactly these)
__all__ = ["softmax", "softmax_loss_forward", "softmax_loss_backward"]

#: score elements below which the kernels run on the calling thread (see ``_chunks``); the
#: backward pass (a scaled copy) is cheaper per element and splits later. Measured here:
#: softmax of 10000x10 527 us parallel vs 687 serial; backward 81 vs 50 us.
MIN_PARALLEL = 1 << 14
MIN_PARALLEL_BACKWARD = 1 << 18


@njit(cache=True, error_model="numpy")
def _row_max(v):
    """max of v (NaN may be skipped: it reaches the sum through exp(NaN - m) anyway); four
    running maxima so the loop is not one long dependency chain."""
    K = v.size
    m0 = m1 = m2 = m3 = v[0]
    k = 0
    while k + 4 <= K:
        a, b, c, d = v[k], v[k + 1], v[k + 2], v[k + 3]
        m0 = a if a > m0 else m0
        m1 = b if b > m1 else m1
        m2 = c if c > m2 else m2
        m3 = d if d > m3 else m3
        k += 4
    for j in range(k, K):
        m0 = v[j] if v[j] > m0 else m0
    m0 = m1 if m1 > m0 else m0
    m2 = m3 if m3 > m2 else m2
    return m2 if m2 > m0 else m0


@njit(cache=True, error_model="numpy")
def _row_sum(v):
    """sum of v with four partial sums (a different order than NumPy's pairwise sum; both
    are within the float tolerance of the exact sum)."""
    K = v.size
    s0 = s1 = s2 = s3 = v.dtype.type(0)
    k = 0
    while k + 4 <= K:
        s0 += v[k]
        s1 += v[k + 1]
        s2 += v[k + 2]
        s3 += v[k + 3]
        k += 4
    for j in range(k, K):
        s0 += v[j]
    return (s0 + s1) + (s2 + s3)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _softmax_span(y, x):
    """Softmax of each row of x into y: max, exp(x - max) (vectorised, _vexp), sum, divide."""
    N, K = x.shape
    for i in range(N):
        xi = x[i]
        yi = y[i]
        m = _row_max(xi)
        for k in range(K):
            yi[k] = exp_nonpos(xi[k] - m)
        s = _row_sum(yi)
        for k in range(K):
            yi[k] /= s


@njit(cache=True, error_model="numpy")
def _softmax_loss_span(y, losses, x, t, eps):
    """Returns the number of labels outside [0, K) (their rows are not read; the op raises)."""
    _softmax_span(y, x)
    K = x.shape[1]
    bad = 0
    for i in range(x.shape[0]):
        ti = t[i]
        if ti < 0 or ti >= K:
            bad += 1
            losses[i] = 0
        else:
            losses[i] = -np.log(y[i, ti] + eps)
    return bad


@njit(cache=True, error_model="numpy")
def _softmax_loss_backward_span(dx, y, t, scale):
    """Returns the number of labels outside [0, K) (not written; the op raises)."""
    K = y.shape[1]
    one = y.dtype.type(1)
    bad = 0
    for i in range(y.shape[0]):
        for k in range(K):
            dx[i, k] = y[i, k] * scale
        ti = t[i]
        if ti < 0 or ti >= K:
            bad += 1
        else:
            # (y - 1) * scale as the reference computes it: y * scale - scale is NaN for an
            # infinite dout (inf - inf) where the reference has -inf
            dx[i, ti] = (y[i, ti] - one) * scale
    return bad


@njit(parallel=True, cache=True, error_model="numpy")
def _softmax_rows(y, x, chunks):
    N = x.shape[0]
    if chunks == 1:
        _softmax_span(y, x)
    else:
        for c in prange(chunks):
            lo, hi = c * N // chunks, (c + 1) * N // chunks
            _softmax_span(y[lo:hi], x[lo:hi])


@njit(parallel=True, cache=True, error_model="numpy")
def _softmax_loss_forward(y, losses, x, t, eps, chunks):
    N = x.shape[0]
    if chunks == 1:
        return _softmax_loss_span(y, losses, x, t, eps)
    bad = 0
    for c in prange(chunks):
        lo, hi = c * N // chunks, (c + 1) * N // chunks
        bad += _softmax_loss_span(y[lo:hi], losses[lo:hi], x[lo:hi], t[lo:hi], eps)
    return bad


@njit(parallel=True, cache=True, error_model="numpy")
def _softmax_loss_backward(dx, y, t, scale, chunks):
    N = y.shape[0]
    if chunks == 1:
        return _softmax_loss_backward_span(dx, y, t, scale)
    bad = 0
    for c in prange(chunks):
        lo, hi = c * N // chunks, (c + 1) * N // chunks
        bad += _softmax_loss_backward_span(dx[lo:hi], y[lo:hi], t[lo:hi], scale)
    return bad


def _chunks(x, min_work=MIN_PARALLEL):
    return nchunks(x.shape[0], x.size, min_work)


def softmax(x):
    # type: (np.ndarray) -> np.ndarray
    """Softmax along the last axis, any leading dims; row maximum subtracted first."""
    x2 = kernel_input(x).reshape(-1, x.shape[-1])
    y = np.empty_like(x2)
    _softmax_rows(y, x2, _chunks(x2))
    return y.reshape(x.shape)


def softmax_loss_forward(x, t):
    # type: (np.ndarray, np.ndarray) -> Tuple[Any, np.ndarray]
    """x (N, K), t (N,) int labels -> (mean of -log(y[n, t[n]] + 1e-7), y). The kernel checks
    each label as it reads it (no pass of its own); a label outside [0, K) raises ValueError."""
    t = kernel_input(np.asarray(t, dtype=np.intp))
    N, K = check_labels_shape("softmax_loss_forward", "x", x, t)
    x = kernel_input(x)
    y = np.empty_like(x)
    ftype = x.dtype.type
    losses = np.empty(N, dtype=x.dtype)
    if _softmax_loss_forward(y, losses, x, t, ftype(LOG_EPS), _chunks(x)):
        raise bad_label("softmax_loss_forward", t, K)
    return ftype(np.add.reduce(losses) / ftype(N)), y


def softmax_loss_backward(y, t, dout):
    # type: (np.ndarray, np.ndarray, float) -> np.ndarray
    """dx = dout * (y - onehot(t)) / N."""
    t = kernel_input(np.asarray(t, dtype=np.intp))
    N, K = check_labels_shape("softmax_loss_backward", "y", y, t)
    y = kernel_input(y)
    dx = np.empty_like(y)
    if _softmax_loss_backward(dx, y, t, y.dtype.type(dout / N), _chunks(y, MIN_PARALLEL_BACKWARD)):
        raise bad_label("softmax_loss_backward", t, K)
    return dx

"""Softmax and softmax + cross-entropy (numba backend), by spans of rows.

Below ``MIN_PARALLEL`` elements (a batch of 100 scores of 10 classes is 1,000) the
rows are done on the calling thread; above, one span of rows per Numba thread.
"""
import numpy as np
from numba import njit, prange

from ..spec import LOG_EPS
from ._chunks import nchunks
from ._vexp import exp_nonpos

#: score elements below which the kernels run on the calling thread (see ``_chunks``)
MIN_PARALLEL = 1 << 14


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _softmax_span(y, x, lo, hi):
    K = x.shape[1]
    for i in range(lo, hi):
        m = x[i, 0]
        for k in range(1, K):
            if x[i, k] > m:
                m = x[i, k]
        s = x.dtype.type(0)
        for k in range(K):
            e = exp_nonpos(x[i, k] - m)      # x - max <= 0 (_vexp)
            y[i, k] = e
            s += e
        for k in range(K):
            y[i, k] /= s


@njit(cache=True, error_model="numpy")
def _softmax_loss_span(y, losses, x, t, eps, lo, hi):
    _softmax_span(y, x, lo, hi)
    for i in range(lo, hi):
        losses[i] = -np.log(y[i, t[i]] + eps)


@njit(cache=True, error_model="numpy")
def _softmax_loss_backward_span(dx, y, t, scale, lo, hi):
    K = y.shape[1]
    for i in range(lo, hi):
        for k in range(K):
            dx[i, k] = y[i, k] * scale
        dx[i, t[i]] -= scale


@njit(parallel=True, cache=True, error_model="numpy")
def _softmax_rows(y, x, chunks):
    N = x.shape[0]
    if chunks == 1:
        _softmax_span(y, x, 0, N)
    else:
        for c in prange(chunks):
            _softmax_span(y, x, c * N // chunks, (c + 1) * N // chunks)


@njit(parallel=True, cache=True, error_model="numpy")
def _softmax_loss_forward(y, losses, x, t, eps, chunks):
    N = x.shape[0]
    if chunks == 1:
        _softmax_loss_span(y, losses, x, t, eps, 0, N)
    else:
        for c in prange(chunks):
            _softmax_loss_span(y, losses, x, t, eps, c * N // chunks, (c + 1) * N // chunks)


@njit(parallel=True, cache=True, error_model="numpy")
def _softmax_loss_backward(dx, y, t, scale, chunks):
    N = y.shape[0]
    if chunks == 1:
        _softmax_loss_backward_span(dx, y, t, scale, 0, N)
    else:
        for c in prange(chunks):
            _softmax_loss_backward_span(dx, y, t, scale, c * N // chunks, (c + 1) * N // chunks)


def _chunks(x):
    return nchunks(x.shape[0], x.size, MIN_PARALLEL)


def softmax(x):
    """Softmax along the last axis, any leading dims; row maximum subtracted first."""
    x2 = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    y = np.empty_like(x2)
    _softmax_rows(y, x2, _chunks(x2))
    return y.reshape(x.shape)


def softmax_loss_forward(x, t):
    """x (N, K), t (N,) int labels -> (mean of -log(y[n, t[n]] + 1e-7), y)."""
    x = np.ascontiguousarray(x)
    t = np.ascontiguousarray(t, dtype=np.intp)
    y = np.empty_like(x)
    losses = np.empty(x.shape[0], dtype=x.dtype)
    _softmax_loss_forward(y, losses, x, t, x.dtype.type(LOG_EPS), _chunks(x))
    return x.dtype.type(losses.sum() / x.dtype.type(x.shape[0])), y


def softmax_loss_backward(y, t, dout):
    """dx = dout * (y - onehot(t)) / N."""
    t = np.ascontiguousarray(t, dtype=np.intp)
    y = np.ascontiguousarray(y)
    dx = np.empty_like(y)
    _softmax_loss_backward(dx, y, t, y.dtype.type(dout / y.shape[0]), _chunks(y))
    return dx

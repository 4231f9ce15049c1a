"""Softmax and softmax + cross-entropy (numba backend), row by row in parallel."""
import numpy as np
from numba import njit, prange

from ..spec import LOG_EPS


@njit(parallel=True, cache=True)
def _softmax_rows(y, x):
    N, K = x.shape
    for i in prange(N):
        m = x[i, 0]
        for k in range(1, K):
            if x[i, k] > m:
                m = x[i, k]
        s = x.dtype.type(0)
        for k in range(K):
            e = np.exp(x[i, k] - m)
            y[i, k] = e
            s += e
        for k in range(K):
            y[i, k] /= s


@njit(parallel=True, cache=True)
def _softmax_loss_forward(y, losses, x, t, eps):
    _softmax_rows(y, x)
    for i in prange(x.shape[0]):
        losses[i] = -np.log(y[i, t[i]] + eps)


@njit(parallel=True, cache=True)
def _softmax_loss_backward(dx, y, t, scale):
    N, K = y.shape
    for i in prange(N):
        for k in range(K):
            dx[i, k] = y[i, k] * scale
        dx[i, t[i]] -= scale


def softmax(x):
    """Softmax along the last axis, any leading dims; row maximum subtracted first."""
    x2 = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    y = np.empty_like(x2)
    _softmax_rows(y, x2)
    return y.reshape(x.shape)


def softmax_loss_forward(x, t):
    """x (N, K), t (N,) int labels -> (mean of -log(y[n, t[n]] + 1e-7), y)."""
    x = np.ascontiguousarray(x)
    t = np.ascontiguousarray(t, dtype=np.intp)
    y = np.empty_like(x)
    losses = np.empty(x.shape[0], dtype=x.dtype)
    _softmax_loss_forward(y, losses, x, t, x.dtype.type(LOG_EPS))
    return x.dtype.type(losses.sum() / x.dtype.type(x.shape[0])), y


def softmax_loss_backward(y, t, dout):
    """dx = dout * (y - onehot(t)) / N."""
    t = np.ascontiguousarray(t, dtype=np.intp)
    dx = np.empty_like(y)
    _softmax_loss_backward(dx, np.ascontiguousarray(y), t, y.dtype.type(dout / y.shape[0]))
    return dx

"""Softmax and softmax + cross-entropy (cuda backend): one thread per row; the loss comes back
to the host as a scalar, the probabilities stay on the device."""
import math
from typing import Any, Tuple

import numpy as np
from numba import cuda

from ..arrays import Array
from ..shapes import check_label_range, check_labels_shape
from ..spec import LOG_EPS
from . import launch
from .arrays import empty, to_device, to_host

#: this module's ops (the backend package imports exactly these)
__all__ = ["softmax", "softmax_loss_forward", "softmax_loss_backward"]


@cuda.jit
def _softmax_rows_kernel(y, x):
    i = cuda.grid(1)
    if i < x.shape[0]:
        K = x.shape[1]
        m = x[i, 0]
        for k in range(1, K):
            if x[i, k] > m:
                m = x[i, k]
        s = x[i, 0] * 0
        for k in range(K):
            e = math.exp(x[i, k] - m)
            y[i, k] = e
            s += e
        for k in range(K):
            y[i, k] /= s


@cuda.jit
def _row_loss_kernel(losses, y, t, eps):
    i = cuda.grid(1)
    if i < y.shape[0]:
        losses[i] = -math.log(y[i, t[i]] + eps)


@cuda.jit
def _softmax_loss_backward_kernel(dx, y, t, scale):
    i = cuda.grid(1)
    if i < y.size:
        K = y.shape[1]
        r = i // K
        k = i - r * K
        v = y[r, k]
        if k == t[r]:
            v -= 1          # (y - 1) * scale as the reference: y*scale - scale is NaN for infinite scale
        dx[r, k] = v * scale


def _softmax_dev(x2):
    y = empty(x2.shape, x2.dtype)
    _softmax_rows_kernel[launch.grid1d(x2.shape[0])](y, x2)
    return y


def softmax(x):
    # type: (Array) -> Array
    x = to_device(x)
    shape = tuple(int(v) for v in x.shape)      # the simulator's shape objects reject negative indices
    x2 = x.reshape(int(np.prod(shape[:-1])), shape[-1])
    return _softmax_dev(x2).reshape(*shape)


def _labels(op, scores_name, scores, t):
    """t as a device array of int64 labels, checked on the host against scores (N, K)."""
    t = np.asarray(to_host(t))
    _, k = check_labels_shape(op, scores_name, scores, t)
    check_label_range(op, t, k)
    return to_device(np.ascontiguousarray(t, dtype=np.int64))


def softmax_loss_forward(x, t):
    # type: (Array, Array) -> Tuple[Any, Array]
    td = _labels("softmax_loss_forward", "x", x, t)
    x = to_device(x)
    dt = np.dtype(x.dtype).type
    y = _softmax_dev(x)
    losses = empty((x.shape[0],), x.dtype)
    _row_loss_kernel[launch.grid1d(x.shape[0])](losses, y, td, dt(LOG_EPS))
    return dt(losses.copy_to_host().sum() / dt(x.shape[0])), y


def softmax_loss_backward(y, t, dout):
    # type: (Array, Array, float) -> Array
    td = _labels("softmax_loss_backward", "y", y, t)
    y = to_device(y)
    dt = np.dtype(y.dtype).type
    dx = empty(y.shape, y.dtype)
    _softmax_loss_backward_kernel[launch.grid1d(y.size)](dx, y, td, dt(dout / y.shape[0]))
    return dx

"""Softmax and softmax + cross-entropy (reference backend)."""
from typing import Any, Tuple

import numpy as np

from ..shapes import check_label_range, check_labels_shape
from ..spec import LOG_EPS

__all__ = ["softmax", "softmax_loss_forward", "softmax_loss_backward"]


def softmax(x):
    # type: (np.ndarray) -> np.ndarray
    """Softmax along the last axis; the row maximum is subtracted first, so large scores do not overflow."""
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def softmax_loss_forward(x, t):
    # type: (np.ndarray, np.ndarray) -> Tuple[Any, np.ndarray]
    """x (N, K), t (N,) int labels -> (mean of -log(y[n, t[n]] + 1e-7), y)."""
    t = np.asarray(t)
    n, k = check_labels_shape("softmax_loss_forward", "x", x, t)
    check_label_range("softmax_loss_forward", t, k)
    return _softmax_loss_forward(x, t)


def _softmax_loss_forward(x, t):
    # type: (np.ndarray, np.ndarray) -> Tuple[Any, np.ndarray]
    """``softmax_loss_forward`` on arguments known good: x a 2-D float array (N, K), t an integer
    array (N,) of labels in [0, K) (what ``fastdl._checks.labels`` returns for that x)."""
    y = softmax(x)
    n = y.shape[0]
    picked = y[np.arange(n), t]
    loss = -np.log(picked + y.dtype.type(LOG_EPS)).sum() / y.dtype.type(n)
    return y.dtype.type(loss), y


#: the op without its argument checks, for a caller that has made them (``SoftmaxWithLoss``)
softmax_loss_forward.unchecked = _softmax_loss_forward  # type: ignore[attr-defined]


def softmax_loss_backward(y, t, dout):
    # type: (np.ndarray, np.ndarray, float) -> np.ndarray
    """dx = dout * (y - onehot(t)) / N."""
    t = np.asarray(t)
    n, k = check_labels_shape("softmax_loss_backward", "y", y, t)
    check_label_range("softmax_loss_backward", t, k)
    dx = y.copy()
    dx[np.arange(n), t] -= 1
    dx *= y.dtype.type(dout / n)
    return dx

"""Activation and loss functions of chapters 3-4 (``common/functions.py`` in the book).

sigmoid, relu and softmax run on the current backend; the rest are NumPy.
Integer inputs are converted to float64, as NumPy would; float32 stays float32;
float16 is computed in float32.
"""
import numpy as np

from . import backend
from ._checks import float_array, labels, numeric_array
from .kernels.spec import LOG_EPS

__all__ = ["identity_function", "step_function", "sigmoid", "sigmoid_grad", "relu", "relu_grad",
           "softmax", "sum_squared_error", "cross_entropy_error", "softmax_loss"]


def _unwrap(x):
    """A 0-d result comes back as a NumPy scalar, as NumPy's own ufuncs do."""
    return x[()] if x.ndim == 0 else x


def identity_function(x):
    """Returns x unchanged (the output activation for regression)."""
    return x


def step_function(x):
    """1 where x > 0, else 0, as an integer array."""
    return np.array(np.asarray(x) > 0, dtype=np.int_)


def sigmoid(x):
    """1 / (1 + exp(-x)), evaluated without overflow warnings for large |x|."""
    x = float_array("x", x, owner="sigmoid")
    return _unwrap(backend.ops().sigmoid_forward(x))


def sigmoid_grad(x):
    """Derivative of sigmoid at x: (1 - sigmoid(x)) * sigmoid(x)."""
    y = np.asarray(sigmoid(x))
    return (y.dtype.type(1) - y) * y


def relu(x):
    """max(0, x), element-wise."""
    x = float_array("x", x, owner="relu")
    return _unwrap(backend.ops().relu_forward(x)[0])


def relu_grad(x):
    """1 where x >= 0, else 0 (the book's convention at 0)."""
    x = float_array("x", x, owner="relu_grad")
    return (x >= 0).astype(x.dtype)


def softmax(x):
    """Softmax along the last axis, for any number of leading dimensions."""
    x = float_array("x", x, owner="softmax")
    if x.ndim == 0:
        raise ValueError("softmax: x must have at least one dimension, got a scalar")
    if x.shape[-1] == 0:
        raise ValueError(f"softmax: x has no classes (its last axis is empty, shape {x.shape})")
    return backend.ops().softmax(x)


def sum_squared_error(y, t):
    """0.5 * sum((y - t)^2)."""
    y = float_array("y", y, owner="sum_squared_error")
    t = numeric_array("t", t, owner="sum_squared_error")
    if y.shape != t.shape:
        raise ValueError(f"sum_squared_error: y has shape {y.shape} but t has shape {t.shape}")
    d = y - t.astype(y.dtype, copy=False)
    return y.dtype.type(0.5) * np.sum(d * d)


def cross_entropy_error(y, t):
    """Mean over the batch of -log(y[n, t[n]] + 1e-7).

    y: probabilities (N, K), or (K,) for a single sample.
    t: labels (N,), (N, 1), one-hot (N, K), or for a single sample a label or a one-hot (K,).
    Raises ValueError for labels that do not match the batch; NaN in y gives NaN, as in NumPy.
    """
    y = float_array("y", y, owner="cross_entropy_error")
    t = np.asarray(t)
    if y.ndim == 1:
        y = y.reshape(1, -1)
        t = t.reshape(1, -1) if t.size == y.size else t.reshape(1)
    if y.ndim != 2:
        raise ValueError(f"cross_entropy_error: y must be (N, K) or (K,), got shape {y.shape}")
    if y.shape[1] == 0:
        raise ValueError(f"cross_entropy_error: y has no classes (shape {y.shape})")
    idx = labels(t, y.shape[0], y.shape[1], owner="cross_entropy_error")
    n = y.shape[0]
    return -np.sum(np.log(y[np.arange(n), idx] + y.dtype.type(LOG_EPS))) / y.dtype.type(n)


def softmax_loss(X, t):
    """cross_entropy_error(softmax(X), t)."""
    return cross_entropy_error(softmax(X), t)

"""Activation and loss functions of chapters 3-4 (``common/functions.py`` in the book).

sigmoid, relu and softmax run on the current backend; the rest are NumPy.
Integer inputs are converted to float64, as NumPy would; float32 stays float32;
float16 is computed in float32.

Every function accepts what NumPy accepts (arrays, nested lists, scalars); a 0-d input gives a
NumPy scalar back, as NumPy's own ufuncs do.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import backend
from ._checks import float_array, labels, numeric_array
from .kernels.spec import LOG_EPS

__all__ = ["identity_function", "step_function", "sigmoid", "sigmoid_grad", "relu", "relu_grad",
           "softmax", "sum_squared_error", "cross_entropy_error", "softmax_loss"]


def _unwrap(x: Any) -> Any:
    """A 0-d result comes back as a NumPy scalar, as NumPy's own ufuncs do."""
    return x[()] if x.ndim == 0 else x


def identity_function(x: Any) -> Any:
    """Returns x unchanged (the output activation for regression).

    Parameters
    ----------
    x : any
        Anything; the very object is returned (no copy, no conversion).

    Returns
    -------
    any
        ``x`` itself.
    """
    return x


def step_function(x: ArrayLike) -> NDArray[np.int_]:
    """1 where x > 0, else 0, as an integer array.

    Parameters
    ----------
    x : array_like
        Real numbers, any shape.

    Returns
    -------
    ndarray of int, the shape of ``x``
        1 where ``x > 0``, else 0 (a 0-d array for a scalar).
    """
    return np.array(np.asarray(x) > 0, dtype=np.int_)


def sigmoid(x: ArrayLike) -> Any:
    """1 / (1 + exp(-x)), evaluated without overflow warnings for large |x|.

    Parameters
    ----------
    x : array_like
        Real numbers, any shape (on the cuda backend also a device array).

    Returns
    -------
    ndarray, the shape of ``x``
        float32 for float32 (and float16) input, else float64; a NumPy scalar for a scalar.
    """
    a = float_array("x", x, owner="sigmoid")
    return _unwrap(backend.ops().sigmoid_forward(a))


def sigmoid_grad(x: ArrayLike) -> Any:
    """Derivative of sigmoid at x: (1 - sigmoid(x)) * sigmoid(x).

    Parameters
    ----------
    x : array_like
        Real numbers, any shape.

    Returns
    -------
    ndarray, the shape and float dtype of ``sigmoid(x)``
    """
    y = np.asarray(sigmoid(x))
    return (y.dtype.type(1) - y) * y


def relu(x: ArrayLike) -> Any:
    """max(0, x), element-wise.

    Parameters
    ----------
    x : array_like
        Real numbers, any shape (on the cuda backend also a device array).

    Returns
    -------
    ndarray, the shape of ``x``
        float32 for float32 (and float16) input, else float64; a NumPy scalar for a scalar.
    """
    a = float_array("x", x, owner="relu")
    return _unwrap(backend.ops().relu_forward(a)[0])


def relu_grad(x: ArrayLike) -> NDArray[np.floating]:
    """1 where x >= 0, else 0 (the book's convention at 0).

    Parameters
    ----------
    x : array_like
        Real numbers, any shape.

    Returns
    -------
    ndarray, the shape of ``x``
        1.0 or 0.0, in the float dtype fastdl computes ``x`` in (float32 or float64).
    """
    a = float_array("x", x, owner="relu_grad")
    return (a >= 0).astype(a.dtype)


def softmax(x: ArrayLike) -> NDArray[np.floating]:
    """Softmax along the last axis, for any number of leading dimensions.

    Parameters
    ----------
    x : array_like, shape (..., K)
        Scores; at least one dimension, and at least one class (``K >= 1``).

    Returns
    -------
    ndarray, shape (..., K)
        Probabilities summing to 1 along the last axis; float32 for float32 (and float16)
        input, else float64.

    Raises
    ------
    ValueError
        For a scalar or an empty last axis.
    """
    a = float_array("x", x, owner="softmax")
    if a.ndim == 0:
        raise ValueError("softmax: x must have at least one dimension, got a scalar")
    if a.shape[-1] == 0:
        raise ValueError(f"softmax: x has no classes (its last axis is empty, shape {a.shape})")
    return backend.ops().softmax(a)


def sum_squared_error(y: ArrayLike, t: ArrayLike) -> np.floating:
    """0.5 * sum((y - t)^2).

    Parameters
    ----------
    y : array_like
        Outputs, any shape.
    t : array_like
        Targets, the shape of ``y`` (one-hot rows for classification).

    Returns
    -------
    numpy float scalar
        In the float dtype of ``y`` (float32 or float64).
    """
    ya = float_array("y", y, owner="sum_squared_error")
    ta = numeric_array("t", t, owner="sum_squared_error")
    if ya.shape != ta.shape:
        raise ValueError(f"sum_squared_error: y has shape {ya.shape} but t has shape {ta.shape}")
    d = ya - ta.astype(ya.dtype, copy=False)
    return ya.dtype.type(0.5) * np.sum(d * d)


def cross_entropy_error(y: ArrayLike, t: ArrayLike) -> np.floating:
    """Mean over the batch of -log(y[n, t[n]] + 1e-7).

    y: probabilities (N, K), or (K,) for a single sample.
    t: labels (N,), (N, 1), one-hot (N, K), or for a single sample a label or a one-hot (K,).
    Raises ValueError for labels that do not match the batch; NaN in y gives NaN, as in NumPy.

    Parameters
    ----------
    y : array_like, shape (N, K) or (K,)
        Probabilities (the output of :func:`softmax`).
    t : array_like, shape (N,), (N, 1) or (N, K); for one sample a label or shape (K,)
        Integer class indices (whole-number floats accepted) or one-hot rows.

    Returns
    -------
    numpy float scalar
        The mean loss, in the float dtype of ``y`` (float32 or float64).
    """
    ya = float_array("y", y, owner="cross_entropy_error")
    ta = np.asarray(t)
    if ya.ndim == 1:
        ya = ya.reshape(1, -1)
        ta = ta.reshape(1, -1) if ta.size == ya.size else ta.reshape(1)
    if ya.ndim != 2:
        raise ValueError(f"cross_entropy_error: y must be (N, K) or (K,), got shape {ya.shape}")
    if ya.shape[1] == 0:
        raise ValueError(f"cross_entropy_error: y has no classes (shape {ya.shape})")
    idx = labels(ta, ya.shape[0], ya.shape[1], owner="cross_entropy_error")
    n = ya.shape[0]
    return -np.sum(np.log(ya[np.arange(n), idx] + ya.dtype.type(LOG_EPS))) / ya.dtype.type(n)


def softmax_loss(X: ArrayLike, t: ArrayLike) -> np.floating:
    """cross_entropy_error(softmax(X), t).

    Parameters
    ----------
    X : array_like, shape (N, K) or (K,)
        Scores.
    t : array_like
        Labels, as for :func:`cross_entropy_error`.

    Returns
    -------
    numpy float scalar
        The mean loss, in the float dtype of ``X`` (float32 or float64).
    """
    return cross_entropy_error(softmax(X), t)

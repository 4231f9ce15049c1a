"""Element-wise activations and the dropout mask product (reference backend)."""
from typing import Tuple

import numpy as np

from ..shapes import same_shapes

__all__ = ["relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward", "leaky_relu_forward",
           "leaky_relu_backward", "dropout_apply"]


def relu_forward(x):
    # type: (np.ndarray) -> Tuple[np.ndarray, np.ndarray]
    """-> (out, mask) with mask = x <= 0 and out = x where not mask, else 0."""
    mask = x <= 0
    if type(x) is np.ndarray and x.size <= _SMALL:
        out = x.copy(order="K")        # the layout np.where gives; zeros set where the mask holds
        out[mask] = 0
        return out, mask
    out = np.where(mask, x.dtype.type(0), x)
    return out, mask


#: arrays of at most this many elements take a copy and a masked store in ``relu_forward``: the
#: same result as ``np.where`` (values, dtype, strides), with less call overhead; above it,
#: ``np.where``'s single pass is faster
_SMALL = 512


def relu_backward(dout, mask):
    # type: (np.ndarray, np.ndarray) -> np.ndarray
    """dx = dout where not mask, else 0. dout is not modified (the book's version zeroes it in place)."""
    same_shapes("relu_backward", "dout", dout, ("mask", mask))
    return np.where(mask, dout.dtype.type(0), dout)


def sigmoid_forward(x):
    # type: (np.ndarray) -> np.ndarray
    """1 / (1 + exp(-x)), evaluated without overflow for large |x|: with e = exp(-|x|), in (0, 1],
    1 / (1 + e) where x >= 0 and e / (1 + e) where x < 0. (Computed in one buffer: this op runs
    between a user's own NumPy calls, where every extra pass over the array shows.)"""
    e = np.empty_like(x)
    np.abs(x, out=e)
    np.negative(e, out=e)
    np.exp(e, out=e)
    one = x.dtype.type(1)
    d = e + one
    out = np.divide(e, d, out=e)                     # x < 0
    np.divide(one, d, out=out, where=x >= 0)         # x >= 0 (and NaN stays e / d = NaN)
    return out


def sigmoid_backward(dout, out):
    # type: (np.ndarray, np.ndarray) -> np.ndarray
    """dx = dout * (1 - out) * out."""
    same_shapes("sigmoid_backward", "dout", dout, ("out", out))
    return dout * (out.dtype.type(1) - out) * out


def leaky_relu_forward(x, alpha=0.01):
    # type: (np.ndarray, float) -> Tuple[np.ndarray, np.ndarray]
    """-> (out, mask) with mask = x <= 0 and out = x where not mask, else alpha * x."""
    mask = x <= 0
    return np.where(mask, x * x.dtype.type(alpha), x), mask


def leaky_relu_backward(dout, mask, alpha=0.01):
    # type: (np.ndarray, np.ndarray, float) -> np.ndarray
    """dx = dout where not mask, else alpha * dout."""
    same_shapes("leaky_relu_backward", "dout", dout, ("mask", mask))
    return np.where(mask, dout * dout.dtype.type(alpha), dout)


def dropout_apply(x, mask):
    # type: (np.ndarray, np.ndarray) -> np.ndarray
    """x * mask for a boolean mask; the dtype of x is kept."""
    same_shapes("dropout_apply", "x", x, ("mask", mask))
    return x * mask

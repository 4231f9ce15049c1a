"""Element-wise activations and the dropout mask product (cuda backend): one thread per element
of the flattened arrays, each kernel built from its scalar function (``_map``, ``kernels/scalars.py``)."""
import math

import numpy as np
from numba import cuda

from .. import scalars
from ..shapes import same_shapes
from ._map import elementwise
from .arrays import empty, to_device

#: this module's ops (the backend package imports exactly these)
__all__ = ["relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward", "dropout_apply"]


@cuda.jit(device=True)
def _sigmoid(v):
    one = type(v)(1)
    if v >= 0:
        return one / (one + math.exp(-v))
    e = math.exp(v)
    return e / (one + e)


_relu_forward = elementwise(scalars.relu, 1, 2)
_relu_backward = elementwise(scalars.relu_grad, 2, 1)
_sigmoid_forward = elementwise(_sigmoid, 1, 1)
_sigmoid_backward = elementwise(scalars.sigmoid_grad, 2, 1)
_mask_multiply = elementwise(scalars.masked, 2, 1)


def _like(x, dtype=None):
    return empty(x.shape, dtype or x.dtype)


def relu_forward(x):
    x = to_device(x)
    out, mask = _like(x), _like(x, np.bool_)
    _relu_forward((out, mask), (x,))
    return out, mask


def relu_backward(dout, mask):
    same_shapes("relu_backward", "dout", dout, ("mask", mask))
    dout = to_device(dout)
    dx = _like(dout)
    _relu_backward((dx,), (dout, to_device(mask)))
    return dx


def sigmoid_forward(x):
    x = to_device(x)
    out = _like(x)
    _sigmoid_forward((out,), (x,))
    return out


def sigmoid_backward(dout, out):
    same_shapes("sigmoid_backward", "dout", dout, ("out", out))
    dout = to_device(dout)
    dx = _like(dout)
    _sigmoid_backward((dx,), (dout, to_device(out)))
    return dx


def dropout_apply(x, mask):
    """x * mask; the mask is drawn with NumPy on the host (same masks as every backend) and copied in."""
    same_shapes("dropout_apply", "x", x, ("mask", mask))
    x = to_device(x)
    out = _like(x)
    _mask_multiply((out,), (x, to_device(mask)))
    return out

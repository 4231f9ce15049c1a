"""Element-wise activations and the dropout mask product (cuda backend): one thread per element
of the flattened arrays, each kernel built from its scalar function (``_map``, ``kernels/scalars.py``)."""
import math
from typing import Tuple

import numpy as np
from numba import cuda

from .. import scalars
from ..arrays import Array
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


def _apply(run, a, b=None):
    """run((out,), (a[, b])) on device copies; out, a new array like a."""
    a = to_device(a)
    out = _like(a)
    run((out,), (a,) if b is None else (a, to_device(b)))
    return out


def relu_forward(x):
    # type: (Array) -> Tuple[Array, Array]
    x = to_device(x)
    out, mask = _like(x), _like(x, np.bool_)
    _relu_forward((out, mask), (x,))
    return out, mask


def relu_backward(dout, mask):
    # type: (Array, Array) -> Array
    same_shapes("relu_backward", "dout", dout, ("mask", mask))
    return _apply(_relu_backward, dout, mask)


def sigmoid_forward(x):
    # type: (Array) -> Array
    return _apply(_sigmoid_forward, x)


def sigmoid_backward(dout, out):
    # type: (Array, Array) -> Array
    same_shapes("sigmoid_backward", "dout", dout, ("out", out))
    return _apply(_sigmoid_backward, dout, out)


def dropout_apply(x, mask):
    # type: (Array, Array) -> Array
    """x * mask; the mask is drawn with NumPy on the host (same masks as every backend) and copied in."""
    same_shapes("dropout_apply", "x", x, ("mask", mask))
    return _apply(_mask_multiply, x, mask)

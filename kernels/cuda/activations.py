"""Element-wise activations and the dropout mask product (cuda backend): one thread per element
of the flattened arrays."""
import math

import numpy as np
from numba import cuda

from ..shapes import same_shapes
from . import launch
from .arrays import empty, flat, to_device

#: this module's ops (the backend package imports exactly these)
__all__ = ["relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward", "dropout_apply"]


@cuda.jit
def _relu_forward_kernel(out, mask, x):
    i = cuda.grid(1)
    if i < x.size:
        v = x[i]
        m = v <= 0
        mask[i] = m
        out[i] = 0 if m else v


@cuda.jit
def _relu_backward_kernel(dx, dout, mask):
    i = cuda.grid(1)
    if i < dout.size:
        dx[i] = 0 if mask[i] else dout[i]


@cuda.jit
def _sigmoid_forward_kernel(out, x, one):
    i = cuda.grid(1)
    if i < x.size:
        v = x[i]
        if v >= 0:
            out[i] = one / (one + math.exp(-v))
        else:
            e = math.exp(v)
            out[i] = e / (one + e)


@cuda.jit
def _sigmoid_backward_kernel(dx, dout, out, one):
    i = cuda.grid(1)
    if i < dout.size:
        y = out[i]
        dx[i] = dout[i] * (one - y) * y


@cuda.jit
def _mask_multiply_kernel(out, x, mask):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = x[i] if mask[i] else 0


def _like(x, dtype=None):
    return empty(x.shape, dtype or x.dtype)


def relu_forward(x):
    x = to_device(x)
    out, mask = _like(x), _like(x, np.bool_)
    if x.size:
        _relu_forward_kernel[launch.grid1d(x.size)](flat(out), flat(mask), flat(x))
    return out, mask


def relu_backward(dout, mask):
    same_shapes("relu_backward", "dout", dout, ("mask", mask))
    dout = to_device(dout)
    dx = _like(dout)
    if dout.size:
        _relu_backward_kernel[launch.grid1d(dout.size)](flat(dx), flat(dout), flat(to_device(mask)))
    return dx


def sigmoid_forward(x):
    x = to_device(x)
    out = _like(x)
    if x.size:
        _sigmoid_forward_kernel[launch.grid1d(x.size)](flat(out), flat(x), np.dtype(x.dtype).type(1))
    return out


def sigmoid_backward(dout, out):
    same_shapes("sigmoid_backward", "dout", dout, ("out", out))
    dout = to_device(dout)
    dx = _like(dout)
    if dout.size:
        _sigmoid_backward_kernel[launch.grid1d(dout.size)](flat(dx), flat(dout), flat(to_device(out)),
                                                           np.dtype(dout.dtype).type(1))
    return dx


def dropout_apply(x, mask):
    """x * mask; the mask is drawn with NumPy on the host (same masks as every backend) and copied in."""
    same_shapes("dropout_apply", "x", x, ("mask", mask))
    x = to_device(x)
    out = _like(x)
    if x.size:
        _mask_multiply_kernel[launch.grid1d(x.size)](flat(out), flat(x), flat(to_device(mask)))
    return out

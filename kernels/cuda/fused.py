"""Fused Convolution -> Relu [-> Pooling]: this backend's own ops one after another
(``fastdl.kernels.composite``), so the result is the unfused layers' exactly."""
from types import SimpleNamespace

from .. import composite
from .activations import relu_backward, relu_forward
from .conv import conv_backward, conv_forward
from .pool import pool_backward, pool_forward

_OPS = SimpleNamespace(conv_forward=conv_forward, conv_backward=conv_backward, relu_forward=relu_forward,
                       relu_backward=relu_backward, pool_forward=pool_forward, pool_backward=pool_backward)


def conv_relu_forward(x, W, b, stride, pad):
    return composite.conv_relu_forward(_OPS, x, W, b, stride, pad)


def conv_relu_backward(dout, ctx, need_dx=True):
    return composite.conv_relu_backward(_OPS, dout, ctx, need_dx)


def conv_relu_pool_forward(x, W, b, stride, pad, pool_h, pool_w, pool_stride, pool_pad):
    return composite.conv_relu_pool_forward(_OPS, x, W, b, stride, pad, pool_h, pool_w, pool_stride, pool_pad)


def conv_relu_pool_backward(dout, ctx, need_dx=True):
    return composite.conv_relu_pool_backward(_OPS, dout, ctx, need_dx)

"""Fused Convolution -> Relu [-> Pooling]: this backend's own ops one after another
(``fastdl.kernels.composite``), so the result is the unfused layers' exactly."""
import sys

from .. import composite


def _ops():
    """This backend's own ops (the package namespace, complete once it is imported)."""
    return sys.modules[__package__]


def conv_relu_forward(x, W, b, stride, pad):
    return composite.conv_relu_forward(_ops(), x, W, b, stride, pad)


def conv_relu_backward(dout, ctx, need_dx=True):
    return composite.conv_relu_backward(_ops(), dout, ctx, need_dx)


def conv_relu_pool_forward(x, W, b, stride, pad, pool_h, pool_w, pool_stride, pool_pad):
    return composite.conv_relu_pool_forward(_ops(), x, W, b, stride, pad, pool_h, pool_w, pool_stride, pool_pad)


def conv_relu_pool_backward(dout, ctx, need_dx=True):
    return composite.conv_relu_pool_backward(_ops(), dout, ctx, need_dx)

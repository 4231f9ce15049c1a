"""Fusion: a network's plan that runs each Convolution -> Relu [-> Pooling] of its layers as one
backend op (``conv_relu_forward`` / ``conv_relu_pool_forward`` of ``fastdl.kernels.spec``).

Not part of the book: ``Net`` calls ``plan(layers)`` on every forward pass while ``net.fuse`` is
on (the default) and runs the steps it returns instead of the layers. The numbers are the
layers' own, bit for bit on every backend; the backend never has to store the full-size
convolution output.

A ``ConvBlock`` keeps its own forward state (the op's ``ctx``) and works through public methods
of its layers only: ``Convolution.prepare`` (checked input, output shape, weights as the kernels
take them), ``Pooling.output_shape``, and ``reset()``, which drops the forward state each layer
may hold from an earlier forward of its own, so a stale state is never used afterwards (a
layer's own ``backward`` then says it was called before forward). The block's ``backward``
sets ``conv.dW`` and ``conv.db``, as ``Convolution.backward`` does. The layers know nothing
about being fused.
"""
import numpy as np

from . import backend
from ._checks import float_array
from .layers import Convolution, Pooling, Relu

__all__ = ["ConvBlock", "plan"]


class ConvBlock:
    """Convolution -> Relu [-> Pooling] of a network run as one fused backend op."""
    train_flg_aware = False

    def __init__(self, conv, relu, pool=None):
        self.conv, self.relu, self.pool = conv, relu, pool
        self._ctx = None
        self._out_shape = None
        self._dtype = None
        self._ops = None

    @property
    def layers(self):
        """The layers this block runs, in order."""
        return (self.conv, self.relu) if self.pool is None else (self.conv, self.relu, self.pool)

    def __repr__(self):
        return f"ConvBlock({', '.join(repr(layer) for layer in self.layers)})"

    def forward(self, x):
        conv, pool = self.conv, self.pool
        ops = backend.ops()
        x, conv_shape, W, b = conv.prepare(x, ops)
        if pool is None:
            out, ctx = ops.conv_relu_forward(x, W, b, conv.stride, conv.pad)
            out_shape = conv_shape
        else:
            out_shape = pool.output_shape(conv_shape)
            out, ctx = ops.conv_relu_pool_forward(x, W, b, conv.stride, conv.pad,
                                                  pool.pool_h, pool.pool_w, pool.stride, pool.pad)
        for layer in self.layers:
            layer.reset()            # what they hold is from an earlier forward of their own
        self._ops, self._ctx, self._out_shape, self._dtype = ops, ctx, out_shape, x.dtype
        return out

    def backward(self, dout, need_dx=True):
        """dx of the block's input (None when not need_dx); sets conv.dW and conv.db."""
        if self._ctx is None:
            raise RuntimeError("ConvBlock.backward called before forward")
        dout = float_array("dout", dout, owner="ConvBlock.backward")
        if tuple(dout.shape) != self._out_shape:
            raise ValueError(f"ConvBlock.backward: dout must have the forward output's shape "
                             f"{self._out_shape}, got {tuple(dout.shape)}")
        if np.dtype(dout.dtype) != np.dtype(self._dtype):
            dout = self._ops.astype(dout, self._dtype)
        fn = self._ops.conv_relu_backward if self.pool is None else self._ops.conv_relu_pool_backward
        dx, self.conv.dW, self.conv.db = fn(dout, self._ctx, need_dx)
        return dx

    def backward_params(self, dout):
        """Set conv.dW and conv.db without computing dx (for the first step of a network)."""
        self.backward(dout, need_dx=False)


def plan(layers):
    """The steps that run ``layers`` (a list, in order): each Convolution -> Relu [-> Pooling] run
    replaced by one ConvBlock, every other layer as it is. Only the exact classes are fused: a
    subclass (a reader's own Relu, say) may compute something else, so it runs on its own."""
    steps, i, n = [], 0, len(layers)
    while i < n:
        if type(layers[i]) is Convolution and i + 1 < n and type(layers[i + 1]) is Relu:
            pool = layers[i + 2] if i + 2 < n and type(layers[i + 2]) is Pooling else None
            steps.append(ConvBlock(layers[i], layers[i + 1], pool))
            i += 2 if pool is None else 3
        else:
            steps.append(layers[i])
            i += 1
    return steps

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
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

from . import backend
from ._checks import float_array
from .layers import Array, Convolution, Cost, Pooling, Relu, Shape, _RunsOnBackend

__all__ = ["ConvBlock", "plan"]


class ConvBlock(_RunsOnBackend):
    """Convolution -> Relu [-> Pooling] of a network run as one fused backend op.

    Parameters
    ----------
    conv : Convolution
    relu : Relu
    pool : Pooling, optional
        The layers, as the network holds them (not copied).

    Attributes
    ----------
    conv : layer
        The block's Convolution.
    relu : layer
        The block's Relu.
    pool : layer or None
        The block's Pooling (None for a Convolution -> Relu block).
    train_flg_aware : bool
        False: ``forward`` takes no ``train_flg``.
    """
    train_flg_aware = False

    def __init__(self, conv: Convolution, relu: Relu, pool: Pooling | None = None) -> None:
        self.conv, self.relu, self.pool = conv, relu, pool
        self._ctx: Any = None
        self._out_shape: Shape | None = None
        self._dtype: Any = None
        self._ops = None

    @property
    def layers(self) -> tuple[Any, ...]:
        """The layers this block runs, in order."""
        return (self.conv, self.relu) if self.pool is None else (self.conv, self.relu, self.pool)

    def __repr__(self) -> str:
        return f"ConvBlock({', '.join(repr(layer) for layer in self.layers)})"

    def cost(self, input_shape: Sequence[int]) -> Cost:
        """The block's output shape and its layers' parameters, bytes and FLOPs added up (the
        fused op computes what they compute: ``Convolution.cost``, ``Relu.cost``, ``Pooling.cost``).

        Parameters
        ----------
        input_shape : sequence of int
            (N, C, H, W).

        Returns
        -------
        Cost
        """
        shape: Shape = tuple(int(v) for v in input_shape)
        params = nbytes = flops = 0
        for layer in self.layers:
            c = layer.cost(shape)
            shape, params, nbytes, flops = c.output_shape, params + c.params, nbytes + c.param_bytes, flops + c.flops
        return Cost(shape, params, nbytes, flops)

    def forward(self, x: ArrayLike) -> Array:
        """The block's output, computed by one backend op; keeps the op's context for ``backward``
        and resets its layers (their own forward state would be stale).

        Parameters
        ----------
        x : array_like
            (N, C, H, W).

        Returns
        -------
        Array
            relu(conv(x)) (N, FN, OH, OW), or its pooling (N, FN, PH, PW), in W's dtype.
        """
        conv, pool = self.conv, self.pool
        ops = backend.ops()
        xa, conv_shape, W, b = conv.prepare(x, ops)
        if pool is None:
            out, ctx = ops.conv_relu_forward(xa, W, b, conv.stride, conv.pad)
            out_shape = conv_shape
        else:
            out_shape = pool.output_shape(conv_shape)
            out, ctx = ops.conv_relu_pool_forward(xa, W, b, conv.stride, conv.pad,
                                                  pool.pool_h, pool.pool_w, pool.stride, pool.pad)
        for layer in self.layers:
            layer.reset()            # what they hold is from an earlier forward of their own
        self._ops, self._ctx, self._out_shape, self._dtype = ops, ctx, out_shape, xa.dtype
        return out

    def backward(self, dout: ArrayLike, need_dx: bool = True) -> Array | None:
        """dx of the block's input (None when not need_dx); sets conv.dW and conv.db.

        Parameters
        ----------
        dout : array_like
            The gradient of the block's output, in its shape.
        need_dx : bool
            Whether to compute dx.

        Returns
        -------
        Array or None
            dx (N, C, H, W), or None.
        """
        if self._ctx is None:
            raise RuntimeError("ConvBlock.backward called before forward")
        dout_a: Array = float_array("dout", dout, owner="ConvBlock.backward")
        if tuple(dout_a.shape) != self._out_shape:
            raise ValueError(f"ConvBlock.backward: dout must have the forward output's shape "
                             f"{self._out_shape}, got {tuple(dout_a.shape)}")
        if np.dtype(dout_a.dtype) != np.dtype(self._dtype):
            dout_a = self._ops.astype(dout_a, self._dtype)
        fn = self._ops.conv_relu_backward if self.pool is None else self._ops.conv_relu_pool_backward
        dx, self.conv.dW, self.conv.db = fn(dout_a, self._ctx, need_dx)
        return dx

    def backward_params(self, dout: ArrayLike) -> None:
        """Set conv.dW and conv.db without computing dx (for the first step of a network).

        Parameters
        ----------
        dout : array_like
            The gradient of the block's output.
        """
        self.backward(dout, need_dx=False)


def plan(layers: Sequence[Any]) -> list[Any]:
    """The steps that run ``layers`` (a list, in order): each Convolution -> Relu [-> Pooling] run
    replaced by one ConvBlock, every other layer as it is. Only the exact classes are fused: a
    subclass (a reader's own Relu, say) may compute something else, so it runs on its own.

    Parameters
    ----------
    layers : sequence of layers
        A network's layers, in order.

    Returns
    -------
    list
        The steps: ConvBlocks and the other layers, in order.
    """
    steps: list[Any] = []
    i, n = 0, len(layers)
    while i < n:
        if type(layers[i]) is Convolution and i + 1 < n and type(layers[i + 1]) is Relu:
            pool = layers[i + 2] if i + 2 < n and type(layers[i + 2]) is Pooling else None
            steps.append(ConvBlock(layers[i], layers[i + 1], pool))
            i += 2 if pool is None else 3
        else:
            steps.append(layers[i])
            i += 1
    return steps

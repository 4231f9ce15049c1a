"""Layers over images (N, C, H, W): ``Convolution``, ``Pooling`` (max) and ``AvgPooling``."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

from .. import backend
from .._checks import float_array, positive_int
from ..kernels.shapes import window_output_hw
from ._base import (Array, Cost, Shape, _RunsOnBackend, _as, _as_shape, _check_dout, _check_weights,
                    _need_forward, _numel, _param_size, _shape, _weights)


def _check_stride_pad(owner: str, stride: int, pad: int) -> tuple[int, int]:
    return (positive_int("stride", stride, 1, owner=owner), positive_int("pad", pad, 0, owner=owner))


class Convolution(_RunsOnBackend):
    """2-D convolution (cross-correlation, as in the book) of x (N, C, H, W) with W (FN, C, FH, FW).

    Output (N, FN, OH, OW) with OH = (H + 2*pad - FH) // stride + 1.

    Parameters
    ----------
    W : array_like
        (FN, C, FH, FW) filters, kept as given (shared with a network's ``params``).
    b : array_like or float
        (FN,) bias, or a scalar broadcast to every filter.
    stride : int
        The step of the window (>= 1).
    pad : int
        The zero padding on each side (>= 0).

    Attributes
    ----------
    W : Array
        The filters (FN, C, FH, FW), as given.
    b : Array
        The bias (FN,), as given.
    dW : Array or None
        The gradient of W (FN, C, FH, FW) from the last ``backward`` (or a fused block's,
        ``fastdl.fusion``); None before the first.
    db : Array or None
        The gradient of b (FN,), set with ``dW``.
    x : Array or None
        The last forward's input (N, C, H, W), in W's dtype, kept for ``backward``.
    train_flg_aware : bool
        False: ``forward`` takes no ``train_flg``.
    """
    train_flg_aware = False

    def __init__(self, W: ArrayLike, b: ArrayLike, stride: int = 1, pad: int = 0) -> None:
        self.W, self.b = _check_weights("Convolution", W, b, 4)
        self.stride, self.pad = _check_stride_pad("Convolution", stride, pad)
        self.dW: Array = None
        self.db: Array = None
        self.reset()

    def reset(self) -> None:
        """Drop the saved forward state (backward then refuses until the next forward); dW and db stay."""
        self.x: Array = None
        self._ctx: Any = None
        self._out_shape: Shape | None = None
        self._ops = None

    def __repr__(self) -> str:
        return (f"Convolution(W={_shape(self.W)}, stride={self.stride}, pad={self.pad}, "
                f"{np.dtype(self.W.dtype)})")

    def cost(self, input_shape: Sequence[int]) -> Cost:
        """Output (N, FN, OH, OW), the elements of W and b, and ``2*N*FN*OH*OW*C*FH*FW`` FLOPs
        (a multiply-add per filter tap and output) ``+ N*FN*OH*OW`` (the bias).

        Parameters
        ----------
        input_shape : sequence of int
            (N, C, H, W), C matching W's channels.

        Returns
        -------
        Cost
        """
        N, C, H, Wd = _as_shape("Convolution", input_shape, (4,))
        FN, FC, FH, FW = _shape(self.W)
        if C != FC:
            raise ValueError(f"Convolution.cost: an input of shape {(N, C, H, Wd)} has {C} channels "
                             f"but W of shape {(FN, FC, FH, FW)} expects {FC}")
        try:
            OH, OW = window_output_hw(H, Wd, FH, FW, self.stride, self.pad)
        except ValueError as exc:
            raise ValueError(f"Convolution.cost: filter {FH}x{FW} does not fit an input of shape "
                             f"{(N, C, H, Wd)} with pad {self.pad}: {exc}") from None
        outputs = N * FN * OH * OW
        params, nbytes = _param_size(self.W, self.b)
        return Cost((N, FN, OH, OW), params, nbytes, 2 * outputs * C * FH * FW + outputs)

    def describe(self, x_shape: Sequence[int]) -> tuple[str, str | None]:
        """(row label, PyTorch counterpart as an expression over ``nn``) for ``fastdl compare``."""
        FN, C, FH, FW = _shape(self.W)
        return (f"Convolution W{FN}x{C}x{FH}x{FW} s{self.stride} p{self.pad}",
                f"nn.Conv2d({C}, {FN}, ({FH}, {FW}), stride={self.stride}, padding={self.pad})")

    def prepare(self, x: ArrayLike, ops: Any = None) -> tuple[Array, Shape, Array, Array]:
        """What a forward pass starts from, for this layer and for a network's fused op
        (``fastdl.fusion``): ``(x, out_shape, W, b)``, x checked and in the weights' dtype, the
        output shape (N, FN, OH, OW), and the weights as backend ``ops`` (default: the current
        one) takes them. Keeps nothing.

        Parameters
        ----------
        x : array_like
            (N, C, H, W).
        ops : module, optional
            The backend's ops (``fastdl.backend.ops()``); the current backend's by default.

        Returns
        -------
        tuple
            ``(x, out_shape, W, b)``.
        """
        ops = backend.ops() if ops is None else ops
        xa: Array = float_array("x", x, 4, owner="Convolution.forward")
        W, b = _weights("Convolution", ops, self.W, self.b, 4)
        FN, C, FH, FW = (int(v) for v in W.shape)
        N, Cx, H, Wd = (int(v) for v in xa.shape)
        if C == 0 or FH == 0 or FW == 0:
            raise ValueError(f"Convolution: W of shape {tuple(W.shape)} has no channels or an empty filter")
        if Cx != C:
            raise ValueError(f"Convolution.forward: x of shape {tuple(xa.shape)} has {Cx} channels "
                             f"but W of shape {tuple(W.shape)} expects {C}")
        try:
            OH, OW = window_output_hw(H, Wd, FH, FW, self.stride, self.pad)
        except ValueError as exc:
            raise ValueError(f"Convolution.forward: filter {FH}x{FW} does not fit input x of shape "
                             f"{xa.shape} with pad {self.pad}: {exc}") from None
        return _as(ops, xa, W.dtype), (N, FN, OH, OW), W, b

    def forward(self, x: ArrayLike) -> Array:
        """The convolution of x with the filters, plus the bias; keeps x (and the backend's
        context, e.g. the im2col matrix on the numpy backend) for ``backward``.

        Parameters
        ----------
        x : array_like
            (N, C, H, W), converted to W's dtype.

        Returns
        -------
        Array
            (N, FN, OH, OW), in W's (compute) dtype.
        """
        ops = backend.ops()
        x, self._out_shape, W, b = self.prepare(x, ops)
        self._ops = ops
        out, self._ctx = ops.conv_forward(x, W, b, self.stride, self.pad)
        self.x = x
        return out

    def backward(self, dout: ArrayLike) -> Array:
        """dx; sets ``dW`` and ``db``.

        Parameters
        ----------
        dout : array_like
            (N, FN, OH, OW), the gradient of the output (converted to x's dtype).

        Returns
        -------
        Array
            dx (N, C, H, W).
        """
        return self._backward(dout, True)

    def backward_params(self, dout: ArrayLike) -> None:
        """Set dW and db without computing dx (for the first layer of a network); returns None.

        Parameters
        ----------
        dout : array_like
            (N, FN, OH, OW), the gradient of the output.
        """
        self._backward(dout, False)

    def _backward(self, dout: ArrayLike, need_dx: bool) -> Array:
        _need_forward(self, "_ctx")
        dout = _check_dout(self, dout, self._out_shape, self.x.dtype)
        dx, self.dW, self.db = self._ops.conv_backward(dout, self._ctx, need_dx)
        return dx


class Pooling(_RunsOnBackend):
    """Max pooling over pool_h x pool_w windows; default stride 2.

    ``pad > 0`` is supported (the book's version fails): padding counts as
    minus infinity, so it never wins, and pad must be smaller than the window.
    On ties the first maximum in the window (row by row) wins, as in the book.

    Parameters
    ----------
    pool_h : int
        The window's height.
    pool_w : int
        The window's width.
    stride : int
        The window's step (2 by default, as in the book).
    pad : int
        Padding on each side, smaller than the window.

    Attributes
    ----------
    x : Array or None
        The last forward's input (N, C, H, W).
    train_flg_aware : bool
        False: ``forward`` takes no ``train_flg``.
    """
    train_flg_aware = False
    #: the backend ops this pooling runs, and its PyTorch counterpart (a subclass changes these)
    _forward_op, _backward_op, _peer = "pool_forward", "pool_backward", "nn.MaxPool2d"

    def __init__(self, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0) -> None:
        owner = type(self).__name__
        self.pool_h = positive_int("pool_h", pool_h, owner=owner)
        self.pool_w = positive_int("pool_w", pool_w, owner=owner)
        self.stride, self.pad = _check_stride_pad(owner, stride, pad)
        if self.pad >= min(self.pool_h, self.pool_w):
            raise ValueError(f"{owner}: pad ({self.pad}) must be smaller than the window "
                             f"({self.pool_h}x{self.pool_w}), or a window could hold only padding")
        self.reset()

    def reset(self) -> None:
        """Drop the saved forward state (backward then refuses until the next forward)."""
        self.x: Array = None
        self._ctx: Any = None
        self._out_shape: Shape | None = None
        self._ops = None

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(pool_h={self.pool_h}, pool_w={self.pool_w}, stride={self.stride}, "
                f"pad={self.pad})")

    def describe(self, x_shape: Sequence[int]) -> tuple[str, str | None]:
        """(row label, PyTorch counterpart as an expression over ``nn``) for ``fastdl compare``."""
        return (f"{type(self).__name__} {self.pool_h}x{self.pool_w} s{self.stride} p{self.pad}",
                f"{self._peer}(({self.pool_h}, {self.pool_w}), stride={self.stride}, padding={self.pad})")

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        """(N, C, OH, OW) for an input of shape (N, C, H, W); ValueError if the window does not fit."""
        N, C, H, W = (int(v) for v in input_shape)
        try:
            OH, OW = window_output_hw(H, W, self.pool_h, self.pool_w, self.stride, self.pad)
        except ValueError as exc:
            raise ValueError(f"{type(self).__name__}.forward: window {self.pool_h}x{self.pool_w} does not fit input x "
                             f"of shape {(N, C, H, W)} with pad {self.pad}: {exc}") from None
        return N, C, OH, OW

    def cost(self, input_shape: Sequence[int]) -> Cost:
        """Output (N, C, OH, OW) (``output_shape``), no parameters, and 1 FLOP per window element
        per output, ``N*C*OH*OW*pool_h*pool_w`` (max: the comparisons; average: the additions
        and the division).

        Parameters
        ----------
        input_shape : sequence of int
            (N, C, H, W).

        Returns
        -------
        Cost
        """
        shape = self.output_shape(_as_shape(type(self).__name__, input_shape, (4,)))
        return Cost(shape, 0, 0, _numel(shape) * self.pool_h * self.pool_w)

    def forward(self, x: ArrayLike) -> Array:
        """The maximum (``AvgPooling``: the mean) of each window, per sample and channel; keeps
        what ``backward`` needs (where each maximum was).

        Parameters
        ----------
        x : array_like
            (N, C, H, W).

        Returns
        -------
        Array
            (N, C, OH, OW), in x's (compute) dtype.
        """
        xa: Array = float_array("x", x, 4, owner=f"{type(self).__name__}.forward")
        out_shape = self.output_shape(xa.shape)
        self._ops = backend.ops()
        op = getattr(self._ops, self._forward_op)
        out, self._ctx = op(xa, self.pool_h, self.pool_w, self.stride, self.pad)
        self.x = xa
        self._out_shape = out_shape
        return out

    def backward(self, dout: ArrayLike) -> Array:
        """dx: each output's gradient goes back to its window's maximum (``AvgPooling``: shared
        equally among the window's taps).

        Parameters
        ----------
        dout : array_like
            (N, C, OH, OW), the gradient of the output.

        Returns
        -------
        Array
            dx (N, C, H, W).
        """
        _need_forward(self, "_ctx")
        dout = _check_dout(self, dout, self._out_shape, self.x.dtype)
        return getattr(self._ops, self._backward_op)(dout, self._ctx)


class AvgPooling(Pooling):
    """Average pooling over pool_h x pool_w windows; default stride 2 (not a layer of the book).

    Each output is its window's mean. ``pad > 0`` pads with zeros, and the padding counts in
    the divisor (pool_h * pool_w for every window, as PyTorch's ``AvgPool2d`` by default); pad
    must be smaller than the window. Backward shares each window's gradient equally among its
    taps.
    """
    _forward_op, _backward_op, _peer = "avg_pool_forward", "avg_pool_backward", "nn.AvgPool2d"

"""Element-wise layers: ``Elementwise``, the base that runs one element-wise op of the
backend, and its subclasses ``Relu`` and ``Sigmoid``."""
from __future__ import annotations

from typing import Sequence

from numpy.typing import ArrayLike

from .. import backend
from .._checks import float_array
from ._base import Array, Cost, _RunsOnBackend, _as_shape, _check_dout, _need_forward, _numel


class Elementwise(_RunsOnBackend):
    """A layer that applies one element-wise op of the backend (the base of Relu and Sigmoid).

    A subclass names the ops (``forward_op``, ``backward_op``), the attribute under which
    ``forward`` keeps what the backward op takes (``saved``: the op's second result, or its
    output when it returns one array), whether ``backward`` converts ``dout`` to that array's
    dtype (``convert_dout``), its PyTorch counterpart (``peer``, an expression over ``nn``) and
    the FLOPs it counts per element (``flops_per_element``, for ``cost``).

    Attributes
    ----------
    train_flg_aware : bool
        False: ``forward`` takes no ``train_flg``.
    flops_per_element : int
        Forward FLOPs per element, for ``cost`` (Relu: 1, Sigmoid: 4).
    """
    train_flg_aware = False
    forward_op: str = ""
    backward_op: str = ""
    saved: str = ""
    peer: str | None = None
    convert_dout = False
    flops_per_element = 1

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Drop the saved forward state (backward then refuses until the next forward)."""
        setattr(self, self.saved, None)
        self._ops = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def describe(self, x_shape: Sequence[int]) -> tuple[str, str | None]:
        """(row label, PyTorch counterpart as an expression over ``nn``) for ``fastdl compare``."""
        return type(self).__name__, self.peer

    def cost(self, input_shape: Sequence[int]) -> Cost:
        """Output shape (the input's), no parameters, ``flops_per_element`` FLOPs per element.

        Parameters
        ----------
        input_shape : sequence of int
            The input's shape, batch axis first (any rank).

        Returns
        -------
        Cost
        """
        shape = _as_shape(type(self).__name__, input_shape)
        return Cost(shape, 0, 0, self.flops_per_element * _numel(shape))

    def forward(self, x: ArrayLike) -> Array:
        """Apply the op to every element, keeping what ``backward`` needs under ``saved``.

        Parameters
        ----------
        x : array_like
            Any shape; float32 and float64 are computed as they are, other real dtypes as
            ``float_array`` says (integers in float64, float16 in float32).

        Returns
        -------
        Array
            The same shape as x, in its (compute) dtype.
        """
        x = float_array("x", x, owner=f"{type(self).__name__}.forward")
        self._ops = backend.ops()
        result = getattr(self._ops, self.forward_op)(x)
        out, kept = result if isinstance(result, tuple) else (result, result)
        setattr(self, self.saved, kept)
        return out

    def backward(self, dout: ArrayLike) -> Array:
        """The gradient of the input.

        Parameters
        ----------
        dout : array_like
            The gradient of the output: the shape of the last forward's output.

        Returns
        -------
        Array
            dx, of that shape. A new array: ``dout`` is not modified.
        """
        _need_forward(self, self.saved)
        kept = getattr(self, self.saved)
        dout = _check_dout(self, dout, tuple(kept.shape), kept.dtype if self.convert_dout else None)
        return getattr(self._ops, self.backward_op)(dout, kept)


class Relu(Elementwise):
    """max(0, x). ``mask`` marks the inputs that were <= 0.

    Attributes
    ----------
    mask : Array or None
        Boolean, the shape of the last forward's input: True where it was <= 0 (None before
        forward and after ``reset``).
    """
    forward_op, backward_op, saved, peer = "relu_forward", "relu_backward", "mask", "nn.ReLU()"
    flops_per_element = 1


class Sigmoid(Elementwise):
    """1 / (1 + exp(-x)). ``out`` keeps the forward result for backward.

    Attributes
    ----------
    out : Array or None
        The last forward's output (None before forward and after ``reset``).
    """
    forward_op, backward_op, saved, peer = "sigmoid_forward", "sigmoid_backward", "out", "nn.Sigmoid()"
    convert_dout = True
    flops_per_element = 4

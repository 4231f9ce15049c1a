"""Element-wise layers: ``Elementwise``, the base that runs one element-wise op of the
backend, and its subclasses ``Relu``, ``Sigmoid`` and ``LeakyRelu``."""
from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

from .. import backend
from .._checks import FLOAT_DTYPES, float_array
from ..kernels.spec import BY_NAME
from ._base import Array, Cost, _RunsOnBackend, _as_shape, _check_dout, _need_forward, _numel


class Elementwise(_RunsOnBackend):
    """A layer that applies one element-wise op of the backend (the base of Relu and Sigmoid).

    A subclass names the ops (``forward_op``, ``backward_op``), the attribute under which
    ``forward`` keeps what the backward op takes (``saved``: the op's second result, or its
    output when it returns one array), whether ``backward`` converts ``dout`` to that array's
    dtype (``convert_dout``), its PyTorch counterpart (``peer``, an expression over ``nn``) and
    the FLOPs it counts per element (``flops_per_element``, for ``cost``).

    The forward op's scalar parameters (``Param`` entries of ``kernels/spec.py``, e.g. LeakyRelu's
    ``alpha``) are the constructor's arguments, by position or name, with the spec's defaults;
    each is kept as an attribute of that name and passed to both ops. ``peer`` may name them in
    braces (``"nn.LeakyReLU({alpha})"``).

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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        name, params = type(self).__name__, self._op_params()
        if len(args) > len(params):
            raise TypeError(f"{name}() takes {len(params)} parameter(s) "
                            f"({', '.join(p.name for p in params) or 'none'}), got {len(args)}")
        unknown = sorted(set(kwargs) - {p.name for p in params})
        if unknown:
            raise TypeError(f"{name}() has no parameter {unknown[0]!r}; its parameters: "
                            f"{', '.join(p.name for p in params) or 'none'}")
        for i, p in enumerate(params):
            value = args[i] if i < len(args) else kwargs.get(p.name, p.default)
            setattr(self, p.name, _param_value(name, p, value))
        self.reset()

    def params(self) -> dict[str, Any]:
        """The op's scalar parameters: name -> this layer's value ({} for Relu and Sigmoid)."""
        return {p.name: getattr(self, p.name) for p in self._op_params()}

    @classmethod
    def _op_params(cls) -> tuple[Any, ...]:
        # the base class names no op: it has no parameters
        op = BY_NAME.get(cls.forward_op)
        return () if op is None else tuple(op.params)

    def reset(self) -> None:
        """Drop the saved forward state (backward then refuses until the next forward)."""
        setattr(self, self.saved, None)
        self._ops = None
        self._used: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"

    def describe(self, x_shape: Sequence[int]) -> tuple[str, str | None]:
        """(row label, PyTorch counterpart as an expression over ``nn``) for ``fastdl compare``."""
        return type(self).__name__, self.peer and self.peer.format(**self.params())

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
        if type(x) is not np.ndarray or x.dtype not in FLOAT_DTYPES:
            x = float_array("x", x, owner=f"{type(self).__name__}.forward")
        ops = backend.ops()
        self._ops_name = ops.NAME
        if _paramless(type(self)):
            self._used = {}
            result = getattr(ops, self.forward_op)(x)
        else:
            self._used = used = self.params()
            result = getattr(ops, self.forward_op)(x, **used)
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
        kept: Any = getattr(self, self.saved, None)
        if kept is None:
            _need_forward(self, self.saved)
        dout = _check_dout(self, dout, kept.shape, kept.dtype if self.convert_dout else None)
        used = self._used
        if used:
            return getattr(self._ops, self.backward_op)(dout, kept, **used)
        return getattr(self._ops, self.backward_op)(dout, kept)


_PARAMLESS: dict[type, bool] = {}     # class -> its forward op takes no parameters (first use)


def _paramless(cls: type) -> bool:
    """Whether layers of ``cls`` call their ops without parameters: the op has none and the class
    keeps ``Elementwise.params`` (a class of its own may add some there). Decided once per class."""
    known = _PARAMLESS.get(cls)
    if known is None:
        known = _PARAMLESS[cls] = (getattr(cls, "params", None) is Elementwise.params
                                   and not getattr(cls, "_op_params")())
    return known


def _param_value(owner: str, p: Any, value: Any) -> Any:
    """``value`` as parameter ``p`` (a spec ``Param``) of layer ``owner``, or a one-line error."""
    if p.type is bool:
        if not isinstance(value, (bool, numbers.Integral)):
            raise TypeError(f"{owner}: {p.name} must be True or False, got {value!r}")
        return bool(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {p.name} must be a real number, got {value!r}")
    if p.type is int and not float(value).is_integer():
        raise ValueError(f"{owner}: {p.name} must be a whole number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {p.name} must be finite, got {value!r}")
    return p.type(value)


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


class LeakyRelu(Elementwise):
    """x where x > 0, else alpha * x. ``mask`` marks the inputs that were <= 0.

    Attributes
    ----------
    alpha : float
        The slope for x <= 0 (default 0.01, as PyTorch's ``negative_slope``).
    mask : Array or None
        As Relu's.
    """
    forward_op, backward_op, saved = "leaky_relu_forward", "leaky_relu_backward", "mask"
    peer = "nn.LeakyReLU({alpha})"
    flops_per_element = 2
    alpha: float

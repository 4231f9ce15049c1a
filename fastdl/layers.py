"""Layers with forward/backward (chapters 5-7; ``common/layers.py`` in the book).

Each layer validates its input, looks up the current backend's kernels when
``forward`` is called, and its ``backward`` uses the same backend. Weights
(``W``, ``b``, ``gamma``, ``beta``) are the arrays passed to the constructor,
not copies, so a network's ``params`` dict and its layers share them and an
optimizer's in-place update is seen by the layers.

Deviations from the book, all deliberate:

* ``Relu.backward`` returns a new array; the book's zeroes ``dout`` in place.
* ``Pooling`` accepts ``pad > 0`` (padding counts as minus infinity and never
  wins; ``pad`` must be smaller than the window). The book's crashes.
* An input whose dtype differs from the layer's weights is converted to the
  weights' dtype, so a float32 network computes in float32 throughout (NumPy
  would promote a float64 input to float64).
* ``SoftmaxWithLoss`` turns one-hot labels into class indices; ``t`` must
  really be one-hot (the book would also accept soft labels in ``backward``).

What is checked (the README's "What fastdl accepts" gives the whole rule): shapes,
ranks, channel counts and label ranges, with errors naming the argument. What
NumPy accepts is accepted: lists, integer and boolean arrays (computed in
float64), float16 arrays (stored in half precision, computed in float32), a
Python scalar or 0-d bias (broadcast to every output, as ``b = 0`` in the book's
ch07), and weights of mixed float dtypes (the bias takes W's dtype). NaN and
infinity that arise in a computation flow through as they do in NumPy;
``SoftmaxWithLoss`` says so once with a RuntimeWarning naming the likely cause.

Besides the book's API, every layer here declares about itself what code elsewhere needs,
so no other module keeps a list of layer types:

* ``train_flg_aware``: whether ``forward`` takes ``train_flg`` (Dropout, BatchNormalization).
  ``run_forward(layer, x, train_flg)`` is how networks, ``fastdl compare`` and the benchmarks
  call a layer; a reader's own layer without the attribute is asked through its ``forward``'s
  signature.
* ``repr()``: the configuration, e.g. ``Convolution(W=(30, 1, 5, 5), stride=1, pad=0, float32)``.
* ``describe(x_shape)``: ``(row label, PyTorch counterpart)`` for ``fastdl compare``, the latter
  an expression over ``nn`` such as ``"nn.Conv2d(1, 30, (5, 5), stride=1, padding=0)"``, or None.
* ``reset()``: drops the saved forward state (a network's fused plan, ``fastdl.fusion``, resets
  the layers it runs as one op, so their own ``backward`` refuses instead of using a stale state).
* ``state_attrs`` (BatchNormalization): arrays of the layer's own that a network saves and moves.
* ``cost(input_shape)``: a ``Cost`` (output shape, parameter count, parameter bytes, forward
  FLOPs) for an input of that shape, batch axis included, computed from the shapes alone (nothing
  runs); ``Net.summary`` adds them up. The FLOP convention: a multiply-add counts as 2 FLOPs, a
  comparison, addition, multiplication or division as 1, a function such as exp as 1:

  - ``Affine``: ``2*N*D*M`` for ``x @ W`` (x of N rows of D, W of D x M) ``+ N*M`` for the bias;
  - ``Convolution``: ``2*N*FN*OH*OW*C*FH*FW`` ``+ N*FN*OH*OW`` for the bias;
  - ``Relu``: 1 per element (the comparison); ``Sigmoid``: 4 per element (negate, exp, add 1,
    divide) (``Elementwise.flops_per_element``);
  - ``Pooling`` and ``AvgPooling``: 1 per window element per output, ``N*C*OH*OW*pool_h*pool_w``
    (max: the comparisons; average: the additions and the division);
  - ``Dropout``: 1 per element (the multiplication by the mask, or by ``1 - dropout_ratio`` in
    evaluation; drawing the mask is not counted);
  - ``BatchNormalization``: 4 per element (subtract the mean, divide by the deviation, multiply
    by gamma, add beta); the batch statistics of a training step are not counted;
  - ``SoftmaxWithLoss``: 4 per score (subtract the row's maximum, exp, sum, divide) + 2 per
    sample (the log and the mean).

  Parameters are the layer's trainable arrays (``W`` and ``b``, ``gamma`` and ``beta``), bytes
  what they take in their dtype; BatchNormalization's running statistics are not parameters.

Where arrays live is the backend's business: weights, inputs and new arrays go through the
device-placement ops of the backend in force (``owns``, ``to_device``, ``astype``, ``scale``,
``zeros_like``; ``fastdl.kernels.spec``), which are identities over NumPy arrays on the host
backends. Device weights under a CPU backend are refused with an error saying what to do.
"""
from __future__ import annotations

import inspect
import numbers
import os
import sys
import warnings
from typing import Any, NamedTuple, Sequence

import numpy as np
from numpy.typing import ArrayLike

from . import backend
from ._checks import FLOAT_DTYPES, compute_dtype, float_array, labels, positive_int
from .kernels.shapes import window_output_hw

__all__ = ["MulLayer", "AddLayer", "Relu", "Sigmoid", "Affine", "SoftmaxWithLoss", "Dropout",
           "BatchNormalization", "Convolution", "Pooling", "AvgPooling", "Elementwise", "Cost",
           "run_forward", "takes_train_flg"]

#: An array of the backend in force: a NumPy array on the CPU backends ("numpy", "numba"), a
#: numba device array under "cuda" for a network moved there (type hints say ``Array``).
Array = Any

#: A shape: a tuple of ints, the batch axis first.
Shape = tuple[int, ...]


class Cost(NamedTuple):
    """What a layer computes for an input shape (``layer.cost(input_shape)``), from the shapes alone.

    Attributes
    ----------
    output_shape : tuple of int
        The shape of ``forward``'s result, batch axis first (``()`` for a loss).
    params : int
        The number of trainable parameters (elements of ``W`` and ``b``, ``gamma`` and ``beta``).
    param_bytes : int
        What those parameters take in their dtype (4 per float32 element, 8 per float64 one).
    flops : int
        Floating-point operations of one forward pass over the whole input (the batch included),
        by the convention of this module's docstring: a multiply-add counts as 2.
    """
    output_shape: Shape
    params: int
    param_bytes: int
    flops: int


def _as_shape(owner: str, input_shape: Sequence[int], ndims: tuple[int, ...] | None = None) -> Shape:
    """input_shape as a tuple of non-negative ints, of a rank in ndims if given (ValueError if not)."""
    try:
        shape = tuple(int(v) for v in input_shape)
    except TypeError:
        raise TypeError(f"{owner}.cost: input_shape must be a sequence of ints, got {input_shape!r}") from None
    if any(v < 0 for v in shape):
        raise ValueError(f"{owner}.cost: input_shape must not hold negative sizes, got {shape}")
    if ndims is not None and len(shape) not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{owner}.cost: the input must be {want} (batch axis first), got shape {shape}")
    return shape


def _numel(shape: Sequence[int]) -> int:
    return int(np.prod(tuple(shape), dtype=np.int64))


def _param_size(*arrays: Any) -> tuple[int, int]:
    """(elements, bytes) of the arrays as stored (a Python scalar bias: a 0-d array of its kind)."""
    n = nbytes = 0
    for a in arrays:
        if not (hasattr(a, "shape") and hasattr(a, "dtype")):
            a = np.asarray(a)
        k = _numel(a.shape)
        n += k
        nbytes += k * np.dtype(a.dtype).itemsize
    return n, nbytes

#: BatchNormalization's epsilon: the book writes 10e-7, which is 1e-6.
BATCHNORM_EPS = 1e-6


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _caller_stacklevel() -> int:
    """The stacklevel of the first frame outside fastdl, so a warning points at the user's line."""
    frame: Any = sys._getframe(2)
    level = 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR + os.sep):
        frame, level = frame.f_back, level + 1
    return level


def warn_nonfinite(owner: str, value: float) -> None:
    """Say once that a loss became NaN/infinite, naming the likely causes; the value flows on."""
    warnings.warn(
        f"{owner}: the loss is {value}: the scores reaching it hold NaN or infinity. In training this "
        "usually means it diverged: the learning rate is too high or the initial weights too large "
        "(weight_init_std); NaN in the input data does the same. The computation goes on as in NumPy "
        "(this warning is given once).", RuntimeWarning, stacklevel=_caller_stacklevel())


def _need_forward(layer: object, attr: str) -> None:
    if getattr(layer, attr, None) is None:
        raise RuntimeError(
            f"{type(layer).__name__}.backward called before forward (or after reset(): a network "
            "runs each Convolution -> Relu [-> Pooling] of its layers as one fused op (Net.fuse) and "
            "leaves those layers without forward state; go back through the network's gradient(), or "
            "set net.fuse = False to run the layers one by one)")


def _as(ops: Any, x: Array, dtype: Any) -> Array:
    """x in dtype, where it lives (the backend's ``astype``)."""
    if np.dtype(x.dtype) == np.dtype(dtype):
        return x
    return ops.astype(x, dtype)


def _rows(x: Array) -> Array:
    """x as (N, -1), for host and device arrays."""
    shape = tuple(int(v) for v in x.shape)
    return x.reshape(shape[0], int(np.prod(shape[1:], dtype=np.int64)))


def _placed(owner: str, ops: Any, a: Array) -> Array:
    """a where backend ``ops`` computes: a itself when the backend owns it, else moved there (a
    host network under "cuda" copies its weights at every call). A backend that cannot take it
    (device weights under a CPU backend) is refused rather than copied back at every call."""
    if ops.owns(a):
        return a
    try:
        return ops.to_device(a)
    except TypeError:
        raise TypeError(f"{owner}: the weights are on the GPU but the backend is {ops.NAME!r}; use "
                        "fastdl.set_backend('cuda') (or using_backend) or move the network back with "
                        "net.to('cpu')") from None


def _kept(name: str, a: Any, owner: str) -> Array:
    """a as given when it is an array (a NumPy array, or any array with a shape and a dtype such as
    a device array: kept, so a network's ``params`` and its layers share it), anything else (a
    list) as a NumPy array; it must hold real numbers."""
    if not (hasattr(a, "shape") and hasattr(a, "dtype")):
        a = np.asarray(a)
    if np.dtype(a.dtype).kind not in "biuf":
        raise TypeError(f"{owner}: {name} must hold real numbers, got dtype {a.dtype}")
    return a


def _check_dout(layer: Any, dout: Any, shape: Any, dtype: Any) -> Array:
    dout = float_array("dout", dout, owner=f"{type(layer).__name__}.backward")
    if tuple(dout.shape) != tuple(shape):
        raise ValueError(f"{type(layer).__name__}.backward: dout must have the forward output's "
                         f"shape {tuple(shape)}, got {dout.shape}")
    return dout if dtype is None else _as(layer._ops, dout, dtype)


def _shape(a: Any) -> Shape:
    return tuple(int(v) for v in a.shape)


# -- train/eval: which layers take train_flg -------------------------------------------------
_TAKES_TRAIN_FLG: dict[type, bool] = {}        # class -> bool, filled on first use


def takes_train_flg(layer: object) -> bool:
    """Whether ``layer.forward`` takes ``train_flg`` (training vs evaluation behaviour).

    A class says so with the attribute ``train_flg_aware`` (True on Dropout and BatchNormalization,
    False on the other layers here). For a class that overrides ``forward`` without declaring it
    (a reader's own layer), the answer is whether its ``forward`` has a ``train_flg`` parameter.
    Decided once per class.

    Parameters
    ----------
    layer : object
        Any layer: one of this module's or a reader's own.

    Returns
    -------
    bool
    """
    cls = type(layer)
    known = _TAKES_TRAIN_FLG.get(cls)
    if known is None:
        known = _TAKES_TRAIN_FLG[cls] = _declares_train_flg(cls)
    return known


def _declares_train_flg(cls: Any) -> bool:
    for klass in cls.__mro__:
        own = vars(klass)
        if "train_flg_aware" in own:
            return bool(own["train_flg_aware"])
        if "forward" in own:
            break
    try:
        return "train_flg" in inspect.signature(cls.forward).parameters
    except (AttributeError, TypeError, ValueError):
        return False


def run_forward(layer: Any, x: ArrayLike, train_flg: bool) -> Array:
    """``layer.forward(x, train_flg)`` for a layer that takes ``train_flg`` (``takes_train_flg``),
    ``layer.forward(x)`` for the others: how networks, ``fastdl compare`` and the benchmarks run a
    layer in training (``train_flg=True``) or evaluation mode.

    Parameters
    ----------
    layer : object
        A layer with a ``forward`` method.
    x : array_like
        The layer's input.
    train_flg : bool
        Training (True) or evaluation mode, for the layers that take it.

    Returns
    -------
    Array
        What ``layer.forward`` returns.
    """
    if takes_train_flg(layer):
        return layer.forward(x, train_flg)
    return layer.forward(x)


class _RunsOnBackend:
    """What a layer keeps of the backend that ran its ``forward``: the backend's NAME, so the layer
    pickles and deep-copies at any time (a module object cannot be pickled). ``self._ops`` reads
    as the backend's kernel module (None before a forward), and is set with one."""
    _ops_name: str | None = None

    @property
    def _ops(self) -> Any:
        name = self._ops_name
        return None if name is None else backend.ops(name)

    @_ops.setter
    def _ops(self, ops: Any) -> None:
        self._ops_name = None if ops is None else ops.NAME


class MulLayer:
    """out = x * y (chapter 5's multiplication node).

    Attributes
    ----------
    x : Any
        The first input of the last ``forward``, kept for ``backward`` (None before it).
    y : Any
        The second input of the last ``forward``, kept for ``backward`` (None before it).
    train_flg_aware : bool
        False: ``forward`` takes no ``train_flg``.
    """
    train_flg_aware = False

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Drop the saved inputs (backward then refuses until the next forward)."""
        self.x: Any = None
        self.y: Any = None

    def __repr__(self) -> str:
        return "MulLayer()"

    def forward(self, x: Any, y: Any) -> Any:
        """x * y, keeping x and y for ``backward``.

        Parameters
        ----------
        x : Any
            A number or array (the book's apple price).
        y : Any
            A number or array that multiplies ``x`` (the book's apple count).

        Returns
        -------
        Any
            ``x * y``.
        """
        self.x, self.y = x, y
        return x * y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        """The gradients of x and y: ``(dout * y, dout * x)``.

        Parameters
        ----------
        dout : Any
            The gradient of the output.

        Returns
        -------
        tuple
            ``(dx, dy)``.
        """
        return dout * self.y, dout * self.x


class AddLayer:
    """out = x + y (chapter 5's addition node).

    Attributes
    ----------
    train_flg_aware : bool
        False: ``forward`` takes no ``train_flg``.
    """
    train_flg_aware = False

    def __init__(self) -> None:
        pass

    def reset(self) -> None:
        """Nothing to drop: addition keeps no state."""

    def __repr__(self) -> str:
        return "AddLayer()"

    def forward(self, x: Any, y: Any) -> Any:
        """x + y; nothing is kept.

        Parameters
        ----------
        x : Any
            A number or array.
        y : Any
            A number or array added to ``x``.

        Returns
        -------
        Any
            ``x + y``.
        """
        return x + y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        """The gradients of x and y: ``(dout, dout)`` (as ``dout * 1``, new objects).

        Parameters
        ----------
        dout : Any
            The gradient of the output.

        Returns
        -------
        tuple
            ``(dx, dy)``.
        """
        return dout * 1, dout * 1


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


def _check_weights(owner: str, W: Any, b: Any, w_ndim: int) -> tuple[Array, Any]:
    """Check W and b at construction; the caller's arrays are kept (not copied), so a network's
    ``params`` and its layers share them. b may be an array of W's output size, or a Python
    scalar / 0-d / 1-element array broadcast to it (the book's ch07 passes ``b = 0``)."""
    W = _kept("W", W, owner)
    if not (hasattr(b, "shape") or isinstance(b, (int, float))):
        b = np.asarray(b)                          # a list: kept as an array
    # the same checks as every forward (a bias to convert is read through np.asarray here)
    _resolve_weights(owner, W, b, w_ndim, np.asarray)
    return W, b


def _out_size(W: Any, w_ndim: int) -> int:
    return int(W.shape[0] if w_ndim == 4 else W.shape[1])


def _resolve_weights(owner: str, W: Any, b: Any, w_ndim: int, to_host: Any) -> tuple[Array, Array]:
    """(W, b) as the kernels take them: float32/float64 arrays of one dtype, b of shape (n,).

    W itself when it is float32/float64 (shared, no copy); float16 and integer weights are
    computed in float32 / float64 (a converted copy per call, the arrays stored stay as they
    are). b is converted to W's dtype and broadcast when it is not already that (read on the
    host with ``to_host``).
    """
    if not (isinstance(W, np.ndarray) and W.dtype in FLOAT_DTYPES):
        W = float_array("W", W, w_ndim, owner=owner)          # device arrays pass as they are
    if len(W.shape) != w_ndim:
        raise ValueError(f"{owner}: W must be {w_ndim}-D, got shape {tuple(W.shape)}")
    n = _out_size(W, w_ndim)
    dt = np.dtype(W.dtype)
    if hasattr(b, "shape") and tuple(b.shape) == (n,) and np.dtype(b.dtype) == dt:
        return W, b
    b = np.asarray(to_host(b))
    if b.dtype.kind not in "biuf":
        raise TypeError(f"{owner}: b must hold real numbers, got dtype {b.dtype}")
    if b.shape not in ((), (1,), (n,)):
        raise ValueError(f"{owner}: b must have shape ({n},) to match W {tuple(W.shape)} (or be a "
                         f"scalar), got shape {b.shape}")
    return W, np.ascontiguousarray(np.broadcast_to(b.astype(dt, copy=False), (n,)))


def _weights(owner: str, ops: Any, W: Any, b: Any, w_ndim: int) -> tuple[Array, Array]:
    """(W, b) as backend ``ops`` takes them: resolved (``_resolve_weights``) and placed (``_placed``)."""
    W, b = _resolve_weights(owner, W, b, w_ndim, ops.to_host)
    return _placed(owner, ops, W), _placed(owner, ops, b)


#: batches up to this many rows are converted to W's dtype by Affine itself (a training batch:
#: converted once per step); larger ones by the op (``affine_forward`` accepts either float dtype)
_CONVERT_IN_OP_ROWS = 2048


class Affine(_RunsOnBackend):
    """out = x @ W + b; inputs of rank > 2 are flattened to (N, -1) as in the book.

    Parameters
    ----------
    W : array_like
        (D, M) weights, kept as given (not copied: a network's ``params`` share it).
    b : array_like or float
        (M,) bias, or a scalar broadcast to every output (the book's ch07 passes ``b = 0``).

    Attributes
    ----------
    W : Array
        The weights (D, M), as given.
    b : Array
        The bias (M,), as given.
    dW : Array or None
        The gradient of W (D, M) set by the last ``backward`` (or ``backward_params``), in
        W's compute dtype; None before the first.
    db : Array or None
        The gradient of b (M,), set with ``dW``.
    x : Array or None
        The last forward's input as (N, D) rows, kept for ``backward``.
    original_x_shape : tuple of int or None
        The last forward's input shape (dx is returned in it).
    train_flg_aware : bool
        False: ``forward`` takes no ``train_flg``.
    """
    train_flg_aware = False

    def __init__(self, W: ArrayLike, b: ArrayLike) -> None:
        self.W, self.b = _check_weights("Affine", W, b, 2)
        self.dW: Array = None
        self.db: Array = None
        self.reset()

    def reset(self) -> None:
        """Drop the saved forward state (backward then refuses until the next forward); dW and db stay."""
        self.x: Array = None
        self.original_x_shape: Any = None      # a Shape after forward
        self._ops = None
        self._W: Array = None          # the W of the last forward, as the kernels took it

    def __repr__(self) -> str:
        return f"Affine(W={_shape(self.W)}, {np.dtype(self.W.dtype)})"

    def cost(self, input_shape: Sequence[int]) -> Cost:
        """Output (N, M) for an input of N rows of D features (``x`` flattened to (N, -1)), the
        elements of W and b, and ``2*N*D*M + N*M`` FLOPs (the product, then the bias).

        Parameters
        ----------
        input_shape : sequence of int
            The input's shape, batch axis first; its other axes must hold D = ``W.shape[0]``
            features in all.

        Returns
        -------
        Cost
        """
        shape = _as_shape("Affine", input_shape)
        if not shape:
            raise ValueError("Affine.cost: the input must have a batch axis, got a scalar shape ()")
        D, M = _shape(self.W)
        N, features = shape[0], _numel(shape[1:])
        if features != D:
            raise ValueError(f"Affine.cost: an input of shape {shape} has {features} features per "
                             f"sample but W of shape {(D, M)} expects {D}")
        params, nbytes = _param_size(self.W, self.b)
        return Cost((N, M), params, nbytes, 2 * N * D * M + N * M)

    def describe(self, x_shape: Sequence[int]) -> tuple[str, str | None]:
        """(row label, PyTorch counterpart as an expression over ``nn``) for ``fastdl compare``."""
        d, m = _shape(self.W)
        return f"Affine {d}x{m}", f"nn.Sequential(nn.Flatten(), nn.Linear({d}, {m}))"

    def forward(self, x: ArrayLike) -> Array:
        """x @ W + b, keeping x (as rows) for ``backward``.

        Parameters
        ----------
        x : array_like
            (N, D), or (N, ...) with D elements per sample (flattened, as in the book). Converted
            to W's dtype.

        Returns
        -------
        Array
            (N, M), in W's (compute) dtype.
        """
        xa: Array = float_array("x", x, owner="Affine.forward")
        if len(xa.shape) < 1:
            raise ValueError("Affine.forward: x must have a batch axis, got a scalar")
        ops = backend.ops()
        W, b = _weights("Affine", ops, self.W, self.b, 2)
        self.original_x_shape = tuple(xa.shape)
        x2 = _rows(xa)
        if x2.shape[0] <= _CONVERT_IN_OP_ROWS or not ops.owns(x2):
            # converted once here and kept for backward (the op would convert it again there)
            x2 = _as(ops, x2, W.dtype)
        # a larger host x of the other float dtype (an evaluation of the book's float32 images
        # by float64 weights) goes to the op as it is: the numba backend converts it block by
        # block, without a full-size copy (kernels/cpu/affine.py)
        if x2.shape[1] != W.shape[0]:
            raise ValueError(f"Affine.forward: x of shape {xa.shape} has {x2.shape[1]} features per sample "
                             f"but W of shape {tuple(W.shape)} expects {W.shape[0]}")
        self._ops = ops
        self.x, self._W = x2, W
        return ops.affine_forward(x2, W, b)

    def backward(self, dout: ArrayLike) -> Array:
        """dx; sets ``dW`` (= x.T @ dout) and ``db`` (= dout summed over the batch).

        Parameters
        ----------
        dout : array_like
            (N, M), the gradient of the output (converted to W's dtype).

        Returns
        -------
        Array
            dx, in the shape of the last forward's input.
        """
        _need_forward(self, "x")
        W = self._W
        dout = _check_dout(self, dout, (self.x.shape[0], W.shape[1]), W.dtype)
        dx, self.dW, self.db = self._ops.affine_backward(dout, self.x, W)
        return dx.reshape(*self.original_x_shape)

    def backward_params(self, dout: ArrayLike) -> None:
        """dW and db only, without dx (what a network's first layer needs). Returns None.

        Parameters
        ----------
        dout : array_like
            (N, M), the gradient of the output.
        """
        _need_forward(self, "x")
        W = self._W
        dout = _check_dout(self, dout, (self.x.shape[0], W.shape[1]), W.dtype)
        _, self.dW, self.db = self._ops.affine_backward(dout, self.x, W, need_dx=False)


class SoftmaxWithLoss(_RunsOnBackend):
    """Softmax followed by cross-entropy; ``forward(x, t)`` returns the mean loss.

    t: labels (N,), (N, 1) or one-hot (N, K). ``backward(dout=1)`` returns
    dout * (y - onehot(t)) / N.

    Attributes
    ----------
    loss : numpy.floating or None
        The last forward's mean loss.
    y : Array or None
        The softmax probabilities (N, K) of the last forward, kept for ``backward``.
    t : Any
        The labels the last forward was given, as given.
    train_flg_aware : bool
        False: ``forward`` takes no ``train_flg``.
    """
    train_flg_aware = False

    def __init__(self) -> None:
        self.loss: Any = None
        self._warned = False      # the non-finite loss warning is given once per layer
        self.reset()

    def reset(self) -> None:
        """Drop the saved forward state (backward then refuses until the next forward); ``loss`` stays."""
        self.y: Array = None
        self.t: Any = None
        self._labels: Any = None
        self._ops = None

    def __repr__(self) -> str:
        return "SoftmaxWithLoss()"

    def describe(self, x_shape: Sequence[int]) -> tuple[str, str | None]:
        """(row label, None: its PyTorch counterpart takes labels too) for ``fastdl compare``."""
        return "SoftmaxWithLoss", None

    def cost(self, input_shape: Sequence[int]) -> Cost:
        """Output ``()`` (the mean loss), no parameters, ``4*N*K + 2*N`` FLOPs: 4 per score
        (subtract the row's maximum, exp, sum, divide) and 2 per sample (the log, the mean).

        Parameters
        ----------
        input_shape : sequence of int
            The scores' shape (N, K), or (K,) for one sample.

        Returns
        -------
        Cost
        """
        shape = _as_shape("SoftmaxWithLoss", input_shape, (1, 2))
        N, K = (1,) + shape if len(shape) == 1 else shape
        return Cost((), 0, 0, 4 * N * K + 2 * N)

    def forward(self, x: ArrayLike, t: ArrayLike) -> np.floating[Any]:
        """The mean cross-entropy of softmax(x) against t; keeps the probabilities for ``backward``.

        Parameters
        ----------
        x : array_like
            Scores (N, K), or (K,) for one sample.
        t : array_like
            Labels: (N,) or (N, 1) class indices, or one-hot (N, K).

        Returns
        -------
        numpy.floating
            The mean loss, a NumPy scalar of x's dtype (also kept as ``loss``). A NaN or infinite loss flows on, with a
            RuntimeWarning the first time.
        """
        xa: Array = float_array("x", x, (1, 2), owner="SoftmaxWithLoss.forward")
        if len(xa.shape) == 1:
            xa = xa.reshape(1, int(xa.shape[0]))
            t = np.asarray(t)
            t = t.reshape(1, -1) if t.size == xa.size and xa.size > 1 else t.reshape(1)
        if int(xa.shape[0]) == 0:
            raise ValueError("SoftmaxWithLoss.forward: the batch is empty (x has shape "
                             f"{tuple(xa.shape)}); the mean loss over no samples is undefined")
        if int(xa.shape[1]) == 0:
            raise ValueError("SoftmaxWithLoss.forward: x has no classes (shape "
                             f"{tuple(xa.shape)})")
        self._labels = labels(t, int(xa.shape[0]), int(xa.shape[1]), owner="SoftmaxWithLoss.forward")
        self.t = t
        self._ops = backend.ops()
        self.loss, self.y = self._ops.softmax_loss_forward(xa, self._labels)
        if not np.isfinite(self.loss) and not self._warned:
            self._warned = True
            warn_nonfinite("SoftmaxWithLoss", self.loss)
        return self.loss

    def backward(self, dout: float = 1) -> Array:
        """The gradient of the scores: ``dout * (y - onehot(t)) / N``.

        Parameters
        ----------
        dout : float
            The gradient of the loss (1 at the end of a network).

        Returns
        -------
        Array
            (N, K), in the scores' dtype.
        """
        _need_forward(self, "y")
        return self._ops.softmax_loss_backward(self.y, self._labels, float(dout))


class Dropout(_RunsOnBackend):
    """Drops each unit with probability ``dropout_ratio`` while training.

    Non-inverted, as in the book: training multiplies by the 0/1 mask and
    evaluation scales by (1 - dropout_ratio). The mask is drawn with NumPy's
    global RNG (``np.random.rand``), so ``np.random.seed`` makes it
    reproducible and identical on every backend.

    Parameters
    ----------
    dropout_ratio : float
        The probability of dropping a unit, in [0, 1).

    Attributes
    ----------
    mask : numpy.ndarray or None
        Boolean, the shape of the last training forward's input: True for the units kept.
    train_flg_aware : bool
        True: ``forward`` takes ``train_flg``.
    """
    train_flg_aware = True

    def __init__(self, dropout_ratio: float = 0.5) -> None:
        if not 0 <= dropout_ratio < 1:
            raise ValueError(f"Dropout: dropout_ratio must be in [0, 1), got {dropout_ratio}")
        self.dropout_ratio = dropout_ratio
        self.reset()

    def reset(self) -> None:
        """Drop the saved mask (backward then refuses until the next training forward)."""
        self.mask: Any = None
        self._ops = None

    def __repr__(self) -> str:
        return f"Dropout(dropout_ratio={self.dropout_ratio})"

    def describe(self, x_shape: Sequence[int]) -> tuple[str, str | None]:
        """(row label, PyTorch counterpart as an expression over ``nn``) for ``fastdl compare``."""
        return f"Dropout {self.dropout_ratio}", f"nn.Dropout({self.dropout_ratio})"

    def cost(self, input_shape: Sequence[int]) -> Cost:
        """Output shape (the input's), no parameters, 1 FLOP per element (the multiplication by
        the mask, or by ``1 - dropout_ratio`` in evaluation; drawing the mask is not counted).

        Parameters
        ----------
        input_shape : sequence of int
            The input's shape, batch axis first (any rank).

        Returns
        -------
        Cost
        """
        shape = _as_shape("Dropout", input_shape)
        return Cost(shape, 0, 0, _numel(shape))

    def forward(self, x: ArrayLike, train_flg: bool = True) -> Array:
        """Training: x times a new random 0/1 mask (kept for ``backward``); evaluation:
        x * (1 - dropout_ratio).

        Parameters
        ----------
        x : array_like
            Any shape.
        train_flg : bool
            Training (True, the book's default) or evaluation.

        Returns
        -------
        Array
            The shape and (compute) dtype of x.
        """
        xa: Array = float_array("x", x, owner="Dropout.forward")
        self._ops = backend.ops()
        if train_flg:
            # an array even for a 0-d x (np.random.rand() then returns a float, and the book's
            # x * mask still works)
            self.mask = np.asarray(np.random.rand(*xa.shape) > self.dropout_ratio)
            return self._ops.dropout_apply(xa, self.mask)
        return self._ops.scale(xa, 1.0 - self.dropout_ratio)

    def backward(self, dout: ArrayLike) -> Array:
        """dout times the mask of the last training forward.

        Parameters
        ----------
        dout : array_like
            The gradient of the output, in the forward input's shape.

        Returns
        -------
        Array
            dx, of that shape.
        """
        _need_forward(self, "mask")
        dout = _check_dout(self, dout, tuple(self.mask.shape), None)
        return self._ops.dropout_apply(dout, self.mask)


class BatchNormalization(_RunsOnBackend):
    """Batch normalisation (chapter 6), per feature; 4-D input is flattened to ``(N, C*H*W)`` as in the book.

    ``running_mean`` / ``running_var`` start at zeros (created with the layer, in gamma's compute
    dtype, where gamma lives) unless given; given arrays are copied, never modified.
    ``eps`` is 1e-6 (the book's ``10e-7``).

    Parameters
    ----------
    gamma : array_like
        (D,) scale, kept as given (shared with a network's ``params``).
    beta : array_like
        (D,) shift, kept as given (shared with a network's ``params``).
    momentum : float
        Of the running statistics: ``running = momentum * running + (1 - momentum) * batch``; in
        [0, 1] (ValueError otherwise: beyond it the statistics diverge).
    running_mean : array_like, optional
        (D,) starting running mean (copied).
    running_var : array_like, optional
        (D,) starting running variance (copied).

    Attributes
    ----------
    gamma : Array
        The scale, as given.
    beta : Array
        The shift, as given.
    dgamma : Array or None
        The gradient (D,) of gamma from the last ``backward``.
    dbeta : Array or None
        The gradient (D,) of beta from the last ``backward``.
    momentum : float
        Of the running statistics, as given.
    running_mean : Array
        (D,) running mean used in evaluation (zeros until the first training forward unless
        given).
    running_var : Array
        (D,) running variance used in evaluation (as ``running_mean``).
    input_shape : tuple of int or None
        The last forward's input shape.
    state_attrs : tuple of str
        The names of the running statistics, which a network saves, loads and moves.
    train_flg_aware : bool
        True: ``forward`` takes ``train_flg``.
    """
    train_flg_aware = True
    #: arrays of the layer's own (not parameters) that a network saves, loads and moves with it
    state_attrs = ("running_mean", "running_var")

    def __init__(self, gamma: ArrayLike, beta: ArrayLike, momentum: float = 0.9,
                 running_mean: ArrayLike | None = None, running_var: ArrayLike | None = None) -> None:
        # the caller's arrays are kept (shared with a network's params); a beta of another float
        # dtype is converted to gamma's at each forward, as the bias of Affine is
        self.gamma = _kept("gamma", gamma, "BatchNormalization")
        self.beta = _kept("beta", beta, "BatchNormalization")
        if len(self.gamma.shape) != 1 or tuple(self.beta.shape) != tuple(self.gamma.shape):
            raise ValueError(f"BatchNormalization: gamma and beta must be 1-D of the same shape, got "
                             f"{tuple(self.gamma.shape)} and {tuple(self.beta.shape)}")
        m: Any = momentum
        if isinstance(m, bool) or not isinstance(m, numbers.Real) or not 0 <= float(m) <= 1:
            # NaN fails the comparison too; outside [0, 1] the running statistics diverge
            raise ValueError(f"BatchNormalization: momentum must be a number in [0, 1] (the weight of the "
                             f"old running statistics; the book's is 0.9), got {momentum!r}")
        self.momentum = momentum
        self.running_mean = self._stat("running_mean", running_mean)
        self.running_var = self._stat("running_var", running_var)
        self.dgamma: Array = None
        self.dbeta: Array = None
        self.reset()

    def reset(self) -> None:
        """Drop the saved forward state (backward then refuses until the next training forward);
        the running statistics and dgamma/dbeta stay."""
        self.input_shape: Any = None           # a Shape after forward
        self.batch_size: int | None = None
        self._ctx: Any = None
        self._ops = None

    def __repr__(self) -> str:
        return (f"BatchNormalization(gamma={_shape(self.gamma)}, momentum={self.momentum}, "
                f"{np.dtype(self.gamma.dtype)})")

    def describe(self, x_shape: Sequence[int]) -> tuple[str, str | None]:
        """(row label, PyTorch counterpart as an expression over ``nn``) for ``fastdl compare``."""
        bn = (f"nn.BatchNorm1d({_shape(self.gamma)[0]}, eps={BATCHNORM_EPS}, "
              f"momentum={1 - self.momentum:.6g})")
        return "BatchNormalization", bn if len(x_shape) == 2 else f"nn.Sequential(nn.Flatten(), {bn})"

    def cost(self, input_shape: Sequence[int]) -> Cost:
        """Output shape (the input's), the elements of gamma and beta (the running statistics are
        not parameters), and 4 FLOPs per element (subtract the mean, divide by the deviation,
        multiply by gamma, add beta; a training step's batch statistics are not counted).

        Parameters
        ----------
        input_shape : sequence of int
            (N, D), or (N, C, H, W) with ``C*H*W == D``.

        Returns
        -------
        Cost
        """
        shape = _as_shape("BatchNormalization", input_shape, (2, 4))
        D = _shape(self.gamma)[0]
        if _numel(shape[1:]) != D:
            raise ValueError(f"BatchNormalization.cost: an input of shape {shape} has {_numel(shape[1:])} "
                             f"features per sample but gamma has shape {(D,)}")
        params, nbytes = _param_size(self.gamma, self.beta)
        return Cost(shape, params, nbytes, 4 * _numel(shape))

    def _stat(self, name: str, v: Any) -> Array:
        if v is None:
            # zeros where gamma is stored: a gamma the host does not own (a device array) gets
            # them from the current backend, which computes where it lives
            if not backend.ops("numpy").owns(self.gamma):
                return backend.ops().zeros_like(self.gamma)
            return np.zeros(tuple(self.gamma.shape), dtype=compute_dtype(self.gamma.dtype))
        v = np.array(v, dtype=compute_dtype(self.gamma.dtype))  # a copy: updated in place later
        if v.shape != tuple(self.gamma.shape):
            raise ValueError(f"BatchNormalization: {name} must have shape {tuple(self.gamma.shape)}, "
                             f"got {v.shape}")
        return v

    def forward(self, x: ArrayLike, train_flg: bool = True) -> Array:
        """Normalise each feature: by the batch's statistics in training (updating the running
        ones, keeping what ``backward`` needs), by the running statistics in evaluation.

        Parameters
        ----------
        x : array_like
            (N, D), or (N, C, H, W) normalised as ``(N, C*H*W)`` as in the book. Converted to the
            compute dtype of gamma.
        train_flg : bool
            Training (True, the book's default) or evaluation.

        Returns
        -------
        Array
            The shape of x, in gamma's compute dtype.
        """
        xa: Array = float_array("x", x, (2, 4), owner="BatchNormalization.forward")
        ops = backend.ops()
        gamma = _placed("BatchNormalization", ops, float_array("gamma", self.gamma, 1))
        beta = _placed("BatchNormalization", ops, _as(ops, float_array("beta", self.beta, 1), gamma.dtype))
        self.input_shape = tuple(xa.shape)
        x2 = _as(ops, _rows(xa), gamma.dtype)
        D = x2.shape[1]
        if D != gamma.shape[0]:
            raise ValueError(f"BatchNormalization.forward: x of shape {xa.shape} has {D} features per sample "
                             f"but gamma has shape {tuple(gamma.shape)}")
        if train_flg and int(x2.shape[0]) == 0:
            raise ValueError(f"BatchNormalization.forward: the batch is empty (x has shape {xa.shape}); "
                             "batch statistics of no samples are undefined (and would turn the running "
                             "mean and variance into NaN)")
        self._ops = ops
        if self.running_mean is None:
            # zeros where gamma is stored: on the GPU for a network moved there; a host network
            # run under "cuda" keeps host statistics (the op copies them in and out)
            home = ops if ops.owns(self.gamma) else backend.ops("numpy")
            self.running_mean, self.running_var = home.zeros_like(gamma), home.zeros_like(gamma)
        out, ctx = ops.batchnorm_forward(x2, gamma, beta, self.running_mean, self.running_var,
                                         self.momentum, BATCHNORM_EPS, bool(train_flg))
        if train_flg:
            self._ctx = ctx
            self.batch_size = x2.shape[0]
        return out.reshape(*self.input_shape)

    def backward(self, dout: ArrayLike) -> Array:
        """dx; sets ``dgamma`` and ``dbeta``. Only after a training forward.

        Parameters
        ----------
        dout : array_like
            The gradient of the output, in the forward input's shape.

        Returns
        -------
        Array
            dx, of that shape.
        """
        _need_forward(self, "_ctx")
        dout = _check_dout(self, dout, self.input_shape, compute_dtype(self.gamma.dtype))
        dx, self.dgamma, self.dbeta = self._ops.batchnorm_backward(_rows(dout), self._ctx)
        return dx.reshape(*self.input_shape)


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


def __getattr__(name: str) -> Any:
    # ConvBlock lived here before fusion became a network-level plan (fastdl.fusion)
    if name == "ConvBlock":
        from .fusion import ConvBlock
        return ConvBlock
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

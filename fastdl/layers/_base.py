"""What every layer shares: the backend-running mixin, the shape and cost types, input
and weight validation, placement of arrays on the backend in force, train/eval dispatch."""
from __future__ import annotations

import inspect
import math
import os
import sys
import warnings
from typing import Any, NamedTuple, Sequence

import numpy as np
from numpy.typing import ArrayLike

from .. import backend
from .._checks import FLOAT_DTYPES, float_array


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
        by the convention of the ``fastdl.layers`` docstring: a multiply-add counts as 2.
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


#: fastdl's own directory: frames there are skipped when a warning names the caller's line
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
    """x as (N, -1), for host and device arrays (the size of the rows counted exactly, so a batch
    of 0 rows reshapes too)."""
    shape = x.shape
    if type(shape) is not tuple:
        shape = tuple(int(v) for v in shape)
    return x.reshape(int(shape[0]), int(math.prod(shape[1:])))


_HOST_BACKENDS: dict[str, bool] = {}     # backend name -> it owns NumPy arrays (asked once)


def _on_host(ops: Any) -> bool:
    """Whether backend ``ops`` computes on NumPy arrays (``owns`` a NumPy array): asked once per backend."""
    known = _HOST_BACKENDS.get(ops.NAME)
    if known is None:
        known = _HOST_BACKENDS[ops.NAME] = bool(ops.owns(np.empty(0)))
    return known


def _placed(owner: str, ops: Any, a: Array) -> Array:
    """a where backend ``ops`` computes: a itself when the backend owns it, else moved there (a
    host network under "cuda" copies its weights at every call). A backend that cannot take it
    (device weights under a CPU backend) is refused rather than copied back at every call."""
    if type(a) is np.ndarray and _on_host(ops):
        return a
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
    """dout as a float array of ``shape`` (ValueError naming the layer if not), in ``dtype`` unless
    that is None."""
    if type(dout) is not np.ndarray or dout.dtype not in FLOAT_DTYPES:
        dout = float_array("dout", dout, owner=f"{type(layer).__name__}.backward")
    got = dout.shape
    if (got if type(got) is tuple else tuple(got)) != (shape if type(shape) is tuple else tuple(shape)):
        raise ValueError(f"{type(layer).__name__}.backward: dout must have the forward output's "
                         f"shape {tuple(shape)}, got {dout.shape}")
    if dtype is None or dout.dtype == dtype:
        return dout
    return _as(layer._ops, dout, dtype)


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
        Any layer: one of ``fastdl.layers`` or a reader's own.

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
    known = _TAKES_TRAIN_FLG.get(type(layer))         # takes_train_flg, inline: every layer call asks
    if known is None:
        known = takes_train_flg(layer)
    if known:
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
    if type(W) is np.ndarray and type(b) is np.ndarray:
        ws = W.shape                       # float NumPy weights as the kernels take them: as they are
        if (len(ws) == w_ndim and W.dtype in FLOAT_DTYPES and b.dtype == W.dtype
                and b.shape == (ws[0] if w_ndim == 4 else ws[1],)):
            return W, b
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

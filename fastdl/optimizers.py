"""Optimizers of chapter 6 (``common/optimizer.py`` in the book).

``update(params, grads)`` updates every entry of ``params`` in place with the
book's rule and defaults. Array parameters are updated in place on the
current backend (so layers holding the same arrays see the change); plain
Python floats (the book's 2-D optimizer comparison) are supported too and are
replaced in the dict by their updated value. State (``v``, ``h``, ``m``) is
created on the first call with the parameter's shape and dtype, where the
parameter lives (the backend's ``zeros_like``: on the GPU for a network moved
there with ``net.to("cuda")``).
"""
from __future__ import annotations

import inspect
import numbers
from typing import Any, MutableMapping

import numpy as np

from . import backend

__all__ = ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"]


class _Optimizer:
    #: names of the per-parameter state dicts, e.g. ("v",) for Momentum
    _state: tuple[str, ...] = ()

    def __init__(self) -> None:
        for name in self._state:
            setattr(self, name, None)

    def __repr__(self) -> str:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return f"{type(self).__name__}({', '.join(f'{p}={getattr(self, p)!r}' for p in names)})"

    def _step(self, ops: Any, param: Any, grad: Any, *state: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define _step")

    def _begin(self) -> None:
        """Called once per update before the parameters (Adam advances its step count here)."""

    def update(self, params: MutableMapping[str, Any], grads: MutableMapping[str, Any]) -> None:
        """Update every entry of ``params`` in place with this optimizer's rule.

        Parameters
        ----------
        params : dict of str to array or float
            The parameters (a network's ``params``): float arrays, updated in place on the
            current backend (device arrays under "cuda"); Python floats and 0-d arrays are
            replaced in the dict by their updated value.
        grads : dict of str to array_like or float
            A gradient for every key of ``params``, of its shape (converted to its dtype).

        Returns
        -------
        None
        """
        missing = [k for k in params if k not in grads]
        if missing:
            raise KeyError(f"{type(self).__name__}.update: grads has no entry for {missing}")
        if self._state and getattr(self, self._state[0]) is None:
            for name in self._state:
                setattr(self, name, {})
        self._begin()
        ops = backend.ops()
        for key, val in params.items():
            grad = grads[key]
            if (isinstance(val, (numbers.Real, np.generic)) and not isinstance(val, bool)) or \
                    (isinstance(val, np.ndarray) and val.ndim == 0):
                params[key] = self._update_scalar(key, val, grad)
            elif not ops.owns(val):
                raise TypeError(
                    f"{type(self).__name__}.update: params[{key!r}] does not live where the backend "
                    f"{backend.current_backend()!r} computes (GPU arrays need the 'cuda' backend, NumPy "
                    "arrays a CPU one); switch backend, or move the network with net.to('cpu') / "
                    "net.to('cuda') and create the optimizer after moving")
            elif isinstance(val, np.ndarray):
                self._update_array(ops, key, val, grad)
            elif hasattr(val, "shape") and hasattr(val, "dtype"):
                self._update_device(ops, key, val, grad)
            else:
                raise TypeError(f"{type(self).__name__}.update: params[{key!r}] must be an array or a "
                                f"float, got {type(val).__name__}")

    def _states(self, ops: Any, key: str, like: Any) -> list[Any]:
        out = []
        for name in self._state:
            d = getattr(self, name)
            if key not in d:
                d[key] = ops.zeros_like(like)
            out.append(d[key])
        return out

    def _update_array(self, ops: Any, key: str, param: np.ndarray, grad: Any) -> None:
        name = type(self).__name__
        if param.dtype.kind != "f":
            raise TypeError(f"{name}.update: params[{key!r}] must be a float array, got dtype {param.dtype}")
        if not param.flags.writeable:
            raise ValueError(f"{name}.update: params[{key!r}] is read-only; it is updated in place")
        grad = np.asarray(grad)
        if grad.dtype.kind not in "biuf":
            raise TypeError(f"{name}.update: grads[{key!r}] must hold real numbers, got dtype {grad.dtype}"
                            + (" (the imaginary part would be lost)" if grad.dtype.kind == "c" else ""))
        if grad.shape != param.shape:
            raise ValueError(f"{name}.update: grads[{key!r}] has shape {grad.shape} but params[{key!r}] "
                             f"has shape {param.shape}")
        if param.dtype == np.float16:
            # half storage, single arithmetic: the rule runs on a float32 copy (its state kept in
            # float32) and the result is stored back in the caller's float16 array
            work = param.astype(np.float32)
            self._step(ops, work, grad.astype(np.float32), *self._states(ops, key, work))
            param[...] = work
            return
        if grad.dtype != param.dtype:
            grad = grad.astype(param.dtype)
        self._step(ops, param, grad, *self._states(ops, key, param))

    def _update_device(self, ops: Any, key: str, param: Any, grad: Any) -> None:
        """A parameter in the memory of a device backend: the update runs there, with its state."""
        if tuple(grad.shape) != tuple(param.shape):
            raise ValueError(f"{type(self).__name__}.update: grads[{key!r}] has shape {tuple(grad.shape)} "
                             f"but params[{key!r}] has shape {tuple(param.shape)}")
        self._step(ops, param, ops.to_device(grad), *self._states(ops, key, param))

    def _update_scalar(self, key: str, val: Any, grad: Any) -> float:
        # a 0-d float64 array runs the same rule on the reference kernels
        if np.iscomplexobj(val) or np.iscomplexobj(grad):
            raise TypeError(f"{type(self).__name__}.update: params[{key!r}] and grads[{key!r}] must be real "
                            f"numbers, got {type(val).__name__} and {type(grad).__name__}")
        p = np.array(float(val))
        ref = backend.ops("numpy")
        self._step(ref, p, np.array(float(grad)), *self._states(ref, key, p))
        return float(p)


class SGD(_Optimizer):
    """W <- W - lr * dW.

    Parameters
    ----------
    lr : float
        The learning rate (attribute ``lr``, which may be changed between updates).
    """

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        self.lr = lr

    def _step(self, ops: Any, param: Any, grad: Any) -> None:
        ops.sgd_update(param, grad, self.lr)


class Momentum(_Optimizer):
    """v <- momentum * v - lr * dW; W <- W + v.

    Parameters
    ----------
    lr, momentum : float
        The learning rate and the momentum (attributes of the same names).

    Attributes
    ----------
    v : dict of str to Array or None
        The velocity of each parameter, created at the first ``update`` (None before).
    """
    _state = ("v",)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__()
        self.lr, self.momentum = lr, momentum

    def _step(self, ops: Any, param: Any, grad: Any, v: Any) -> None:
        ops.momentum_update(param, grad, v, self.lr, self.momentum)


class Nesterov(_Optimizer):
    """Nesterov's accelerated gradient in the book's form (http://arxiv.org/abs/1212.0901).

    Parameters
    ----------
    lr, momentum : float
        The learning rate and the momentum (attributes of the same names).

    Attributes
    ----------
    v : dict of str to Array or None
        The velocity of each parameter, created at the first ``update`` (None before).
    """
    _state = ("v",)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__()
        self.lr, self.momentum = lr, momentum

    def _step(self, ops: Any, param: Any, grad: Any, v: Any) -> None:
        ops.nesterov_update(param, grad, v, self.lr, self.momentum)


class AdaGrad(_Optimizer):
    """h <- h + dW^2; W <- W - lr * dW / (sqrt(h) + 1e-7).

    Parameters
    ----------
    lr : float
        The learning rate (attribute ``lr``).

    Attributes
    ----------
    h : dict of str to Array or None
        The sum of each parameter's squared gradients, created at the first ``update``.
    """
    _state = ("h",)

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        self.lr = lr

    def _step(self, ops: Any, param: Any, grad: Any, h: Any) -> None:
        ops.adagrad_update(param, grad, h, self.lr)


class RMSprop(_Optimizer):
    """h <- decay_rate * h + (1 - decay_rate) * dW^2; W <- W - lr * dW / (sqrt(h) + 1e-7).

    Parameters
    ----------
    lr, decay_rate : float
        The learning rate and the decay of the running mean of squares (attributes of the same
        names).

    Attributes
    ----------
    h : dict of str to Array or None
        The running mean of each parameter's squared gradients, created at the first ``update``.
    """
    _state = ("h",)

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99) -> None:
        super().__init__()
        self.lr, self.decay_rate = lr, decay_rate

    def _step(self, ops: Any, param: Any, grad: Any, h: Any) -> None:
        ops.rmsprop_update(param, grad, h, self.lr, self.decay_rate)


class Adam(_Optimizer):
    """Adam (http://arxiv.org/abs/1412.6980) with the book's bias-corrected learning rate
    lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t).

    Parameters
    ----------
    lr : float
        The learning rate.
    beta1, beta2 : float
        The decay rates of the first and second moment estimates.

    Attributes
    ----------
    iter : int
        t, the number of updates so far (0 before the first); ``update`` advances it once per
        call, for all the parameters.
    m, v : dict of str to Array or None
        The first and second moment estimates of each parameter, created at the first ``update``.
    """
    _state = ("m", "v")

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999) -> None:
        super().__init__()
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter = 0
        self._lr_t: float | None = None

    def _begin(self) -> None:
        self.iter += 1
        self._lr_t = self.lr * np.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)

    def _step(self, ops: Any, param: Any, grad: Any, m: Any, v: Any) -> None:
        ops.adam_update(param, grad, m, v, self._lr_t, self.beta1, self.beta2)

"""Optimizers of chapter 6 (``common/optimizer.py`` in the book).

``update(params, grads)`` updates every entry of ``params`` in place with the
book's rule and defaults. Array parameters are updated in place where they
live (so layers holding the same arrays see the change): NumPy arrays on the
current backend, GPU arrays (a network moved with ``net.to("cuda")``) with the
cuda backend's kernels, whatever the current backend; plain
Python floats (the book's 2-D optimizer comparison) are supported too and are
replaced in the dict by their updated value.

State (``v``, ``h``, ``m``) belongs to a parameter of one shape and dtype, living in one place.
It is created (zeros) at the first update of each key with the parameter's shape and dtype,
where the parameter lives (the backend's ``zeros_like``: on the GPU for a network moved there
with ``net.to("cuda")``), and carries over from update to update while ``params[key]`` keeps
that shape, dtype and place (the book's behaviour). When ``params[key]`` no longer matches its
state (another shape, another dtype, or host memory instead of the GPU's or back), the state of
that key starts fresh, as for a new parameter: so one optimizer can be reused for a second
network with the same keys, and gives what a new optimizer would. ``reset()`` forgets all the
state (Adam's step count too).

Hyper-parameters are checked when set, in the constructor and on later assignment
(``opt.lr = 0.005`` between epochs, as learning-rate schedules do): ``lr`` must be a finite
number >= 0 (0 freezes the parameters); ``momentum`` (Momentum, Nesterov), ``beta1`` and
``beta2`` (Adam) and ``decay_rate`` (RMSprop) must lie in [0, 1). Anything else (a negative or
infinite rate climbs or explodes the loss; a momentum or decay of 1 or more never forgets)
raises a ValueError naming the argument; a value that is not a real number, a TypeError.
"""
from __future__ import annotations

import inspect
import math
import numbers
from typing import Any, Callable, MutableMapping

import numpy as np

from . import backend

__all__ = ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"]


def _real(owner: str, name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise TypeError(f"{owner}: {name} must be a real number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{owner}: {name} must be finite, got {v}")
    return v


def _rate(owner: str, name: str, value: Any) -> Any:
    """A learning rate: finite and >= 0 (0 is a frozen step)."""
    if _real(owner, name, value) < 0:
        raise ValueError(f"{owner}: {name} must be >= 0, got {value!r} (a negative rate climbs the loss)")
    return value


def _fraction(owner: str, name: str, value: Any) -> Any:
    """A decay factor (momentum, beta1, beta2, decay_rate): in [0, 1)."""
    if not 0 <= _real(owner, name, value) < 1:
        raise ValueError(f"{owner}: {name} must be in [0, 1), got {value!r}")
    return value


def _fits(ops: Any, state: Any, like: Any) -> bool:
    """state can go on serving parameter ``like`` (which backend ``ops`` owns): same shape and
    dtype, in the same memory (``ops.owns``)."""
    return (getattr(state, "shape", None) == like.shape and getattr(state, "dtype", None) == like.dtype
            and ops.owns(state))


class _Optimizer:
    #: names of the per-parameter state dicts, e.g. ("v",) for Momentum
    _state: tuple[str, ...] = ()
    #: the hyper-parameters of this class and their checks, run on every assignment (the
    #: constructor's too); the values are plain attributes (``vars(opt)`` lists them)
    _checks: dict[str, Callable[[str, str, Any], Any]] = {"lr": _rate}

    def __setattr__(self, name: str, value: Any) -> None:
        check = self._checks.get(name)
        if check is not None:
            value = check(type(self).__name__, name, value)
        object.__setattr__(self, name, value)

    def __init__(self) -> None:
        for name in self._state:
            setattr(self, name, None)

    def reset(self) -> None:
        """Forget all state (velocities, sums of squares, moments, Adam's step count): the next
        ``update`` starts as a new optimizer's first. The hyper-parameters are kept."""
        for name in self._state:
            setattr(self, name, None)

    def __repr__(self) -> str:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return f"{type(self).__name__}({', '.join(f'{p}={getattr(self, p)!r}' for p in names)})"

    def _step(self, ops: Any, key: str, param: Any, grad: Any, *state: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define _step")

    def _begin(self) -> None:
        """Called once per update before the parameters (Adam advances its step count here)."""

    def _fresh(self, key: str) -> None:
        """Called when the state of ``key`` is created (Adam counts that key's steps from here)."""

    def update(self, params: MutableMapping[str, Any], grads: MutableMapping[str, Any]) -> None:
        """Update every entry of ``params`` in place with this optimizer's rule.

        Parameters
        ----------
        params : dict of str to array or float
            The parameters (a network's ``params``): float arrays, updated in place where they
            live (NumPy arrays on the current backend, GPU arrays with the cuda kernels under any
            backend: ``net.to("cuda")`` is all a network needs); Python floats and 0-d arrays are
            replaced in the dict by their updated value. A key whose parameter no longer has
            the shape, dtype or place of its state gets fresh state (see the module's notes).
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
                # a parameter another backend owns (the GPU's) is updated there
                owner = backend.ops_for(val)
                if owner is None:
                    raise TypeError(
                        f"{type(self).__name__}.update: params[{key!r}] does not live where the backend "
                        f"{backend.current_backend()!r} computes (NumPy arrays need a CPU backend); "
                        "switch backend, or move the network with net.to('cuda') and create the "
                        "optimizer after moving")
                self._update_device(owner, key, val, grad)
            elif isinstance(val, np.ndarray):
                self._update_array(ops, key, val, grad)
            elif hasattr(val, "shape") and hasattr(val, "dtype"):
                self._update_device(ops, key, val, grad)
            else:
                raise TypeError(f"{type(self).__name__}.update: params[{key!r}] must be an array or a "
                                f"float, got {type(val).__name__}")

    def _states(self, ops: Any, key: str, like: Any) -> list[Any]:
        """The state arrays of ``key`` for a parameter like ``like``: kept while they fit it,
        otherwise (first update, or another shape, dtype or place) all new zeros."""
        dicts = [getattr(self, name) for name in self._state]
        out = [d.get(key) for d in dicts]
        if not all(_fits(ops, s, like) for s in out):
            out = [ops.zeros_like(like) for _ in dicts]
            for d, s in zip(dicts, out):
                d[key] = s
            self._fresh(key)
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
            self._step(ops, key, work, grad.astype(np.float32), *self._states(ops, key, work))
            param[...] = work
            return
        if grad.dtype != param.dtype:
            grad = grad.astype(param.dtype)
        self._step(ops, key, param, grad, *self._states(ops, key, param))

    def _update_device(self, ops: Any, key: str, param: Any, grad: Any) -> None:
        """A parameter in the memory of a device backend: the update runs there, with its state."""
        if tuple(grad.shape) != tuple(param.shape):
            raise ValueError(f"{type(self).__name__}.update: grads[{key!r}] has shape {tuple(grad.shape)} "
                             f"but params[{key!r}] has shape {tuple(param.shape)}")
        self._step(ops, key, param, ops.to_device(grad), *self._states(ops, key, param))

    def _update_scalar(self, key: str, val: Any, grad: Any) -> float:
        # a 0-d float64 array runs the same rule on the reference kernels
        if np.iscomplexobj(val) or np.iscomplexobj(grad):
            raise TypeError(f"{type(self).__name__}.update: params[{key!r}] and grads[{key!r}] must be real "
                            f"numbers, got {type(val).__name__} and {type(grad).__name__}")
        p = np.array(float(val))
        ref = backend.ops("numpy")
        self._step(ref, key, p, np.array(float(grad)), *self._states(ref, key, p))
        return float(p)


class SGD(_Optimizer):
    """W <- W - lr * dW.

    Parameters
    ----------
    lr : float
        The learning rate, finite and >= 0 (attribute ``lr``, which may be changed between
        updates and is checked again then).

    Raises
    ------
    ValueError
        lr negative, NaN or infinite.
    """

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        self.lr = lr

    def _step(self, ops: Any, key: str, param: Any, grad: Any) -> None:
        ops.sgd_update(param, grad, self.lr)


class Momentum(_Optimizer):
    """v <- momentum * v - lr * dW; W <- W + v.

    Parameters
    ----------
    lr : float
        The learning rate (finite, >= 0); an attribute of the same name, checked again when
        assigned.
    momentum : float
        The momentum (in [0, 1)); an attribute of the same name, checked again when assigned.

    Attributes
    ----------
    v : dict of str to Array or None
        The velocity of each parameter, created at its first ``update`` (None before), new
        zeros when the parameter's shape, dtype or place changes.
    """
    _state = ("v",)
    _checks = {"lr": _rate, "momentum": _fraction}

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__()
        self.lr, self.momentum = lr, momentum

    def _step(self, ops: Any, key: str, param: Any, grad: Any, v: Any) -> None:
        ops.momentum_update(param, grad, v, self.lr, self.momentum)


class Nesterov(_Optimizer):
    """Nesterov's accelerated gradient in the book's form (http://arxiv.org/abs/1212.0901).

    Parameters
    ----------
    lr : float
        The learning rate (finite, >= 0); an attribute of the same name, checked again when
        assigned.
    momentum : float
        The momentum (in [0, 1)); an attribute of the same name, checked again when assigned.

    Attributes
    ----------
    v : dict of str to Array or None
        The velocity of each parameter, created at its first ``update`` (None before), new
        zeros when the parameter's shape, dtype or place changes.
    """
    _state = ("v",)
    _checks = {"lr": _rate, "momentum": _fraction}

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__()
        self.lr, self.momentum = lr, momentum

    def _step(self, ops: Any, key: str, param: Any, grad: Any, v: Any) -> None:
        ops.nesterov_update(param, grad, v, self.lr, self.momentum)


class AdaGrad(_Optimizer):
    """h <- h + dW^2; W <- W - lr * dW / (sqrt(h) + 1e-7).

    Parameters
    ----------
    lr : float
        The learning rate, finite and >= 0 (attribute ``lr``, checked again when assigned).

    Attributes
    ----------
    h : dict of str to Array or None
        The sum of each parameter's squared gradients, created at its first ``update``, new
        zeros when the parameter's shape, dtype or place changes.
    """
    _state = ("h",)

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        self.lr = lr

    def _step(self, ops: Any, key: str, param: Any, grad: Any, h: Any) -> None:
        ops.adagrad_update(param, grad, h, self.lr)


class RMSprop(_Optimizer):
    """h <- decay_rate * h + (1 - decay_rate) * dW^2; W <- W - lr * dW / (sqrt(h) + 1e-7).

    Parameters
    ----------
    lr : float
        The learning rate (finite, >= 0); an attribute of the same name, checked again when
        assigned.
    decay_rate : float
        The decay of the running mean of squares (in [0, 1)); an attribute of the same name,
        checked again when assigned.

    Attributes
    ----------
    h : dict of str to Array or None
        The running mean of each parameter's squared gradients, created at its first
        ``update``, new zeros when the parameter's shape, dtype or place changes.
    """
    _state = ("h",)
    _checks = {"lr": _rate, "decay_rate": _fraction}

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99) -> None:
        super().__init__()
        self.lr, self.decay_rate = lr, decay_rate

    def _step(self, ops: Any, key: str, param: Any, grad: Any, h: Any) -> None:
        ops.rmsprop_update(param, grad, h, self.lr, self.decay_rate)


class Adam(_Optimizer):
    """Adam (http://arxiv.org/abs/1412.6980) with the book's bias-corrected learning rate
    lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t).

    Parameters
    ----------
    lr : float
        The learning rate, finite and >= 0.
    beta1 : float
        The decay rate of the first moment estimate, in [0, 1).
    beta2 : float
        The decay rate of the second moment estimate, in [0, 1).
        ``lr``, ``beta1`` and ``beta2`` are attributes, checked again when assigned.

    Attributes
    ----------
    iter : int
        The number of updates so far (0 before the first); ``update`` advances it once per
        call, for all the parameters.
    m : dict of str to Array or None
        The first moment estimate of each parameter, created at its first ``update``, new
        zeros when the parameter's shape, dtype or place changes.
    v : dict of str to Array or None
        The second moment estimate of each parameter, kept as ``m`` is.

    Notes
    -----
    t in lr_t is counted for each parameter from the update that created its state: ``iter``
    for the parameters present from the first update (the book's t), and 1 again for a
    parameter whose state starts fresh, as in a new optimizer.
    """
    _state = ("m", "v")
    _checks = {"lr": _rate, "beta1": _fraction, "beta2": _fraction}

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999) -> None:
        super().__init__()
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter = 0
        #: key -> the value of ``iter`` before the update that created its state (absent: 0)
        self._t0: dict[str, int] = {}

    def reset(self) -> None:
        super().reset()
        self.iter = 0
        self._t0 = {}

    def _begin(self) -> None:
        self.iter += 1

    def _fresh(self, key: str) -> None:
        self.__dict__.setdefault("_t0", {})[key] = self.iter - 1

    def _step(self, ops: Any, key: str, param: Any, grad: Any, m: Any, v: Any) -> None:
        t = self.iter - self.__dict__.get("_t0", {}).get(key, 0)
        lr_t = self.lr * np.sqrt(1.0 - self.beta2 ** t) / (1.0 - self.beta1 ** t)
        ops.adam_update(param, grad, m, v, lr_t, self.beta1, self.beta2)

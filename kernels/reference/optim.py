"""Optimizer update rules, in place on the parameter and its state (reference backend).

Scalars (lr, momentum, ...) are cast to the parameter's dtype, so a float32
parameter is updated in float32 arithmetic. Gradient and state must have the parameter's
shape (checked first: NumPy would broadcast some of them silently).
"""
import numpy as np

from ..shapes import same_shapes
from ..spec import OPT_EPS

__all__ = ["sgd_update", "momentum_update", "nesterov_update", "adagrad_update", "rmsprop_update", "adam_update"]


def sgd_update(param, grad, lr):
    # type: (np.ndarray, np.ndarray, float) -> None
    same_shapes("sgd_update", "param", param, ("grad", grad))
    dt = param.dtype.type
    param -= dt(lr) * grad


def momentum_update(param, grad, v, lr, momentum):
    # type: (np.ndarray, np.ndarray, np.ndarray, float, float) -> None
    same_shapes("momentum_update", "param", param, ("grad", grad), ("v", v))
    dt = param.dtype.type
    v *= dt(momentum)
    v -= dt(lr) * grad
    param += v


def nesterov_update(param, grad, v, lr, momentum):
    # type: (np.ndarray, np.ndarray, np.ndarray, float, float) -> None
    same_shapes("nesterov_update", "param", param, ("grad", grad), ("v", v))
    # the book's current order (its commit 89eadd0, 2021): the parameter moves with the
    # previous v, then v is updated
    dt = param.dtype.type
    param += dt(momentum * momentum) * v
    param -= dt((1 + momentum) * lr) * grad
    v *= dt(momentum)
    v -= dt(lr) * grad


def adagrad_update(param, grad, h, lr):
    # type: (np.ndarray, np.ndarray, np.ndarray, float) -> None
    same_shapes("adagrad_update", "param", param, ("grad", grad), ("h", h))
    dt = param.dtype.type
    h += grad * grad
    param -= dt(lr) * grad / (np.sqrt(h) + dt(OPT_EPS))


def rmsprop_update(param, grad, h, lr, decay_rate):
    # type: (np.ndarray, np.ndarray, np.ndarray, float, float) -> None
    same_shapes("rmsprop_update", "param", param, ("grad", grad), ("h", h))
    dt = param.dtype.type
    h *= dt(decay_rate)
    h += dt(1 - decay_rate) * grad * grad
    param -= dt(lr) * grad / (np.sqrt(h) + dt(OPT_EPS))


def adam_update(param, grad, m, v, lr_t, beta1, beta2):
    # type: (np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float, float) -> None
    same_shapes("adam_update", "param", param, ("grad", grad), ("m", m), ("v", v))
    dt = param.dtype.type
    m += dt(1 - beta1) * (grad - m)
    v += dt(1 - beta2) * (grad * grad - v)
    param -= dt(lr_t) * m / (np.sqrt(v) + dt(OPT_EPS))

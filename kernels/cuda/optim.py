"""Optimizer update rules as fused element-wise kernels, in place on device arrays (cuda backend)."""
import math

import numpy as np
from numba import cuda

from ..shapes import same_shapes
from ..spec import OPT_EPS
from . import launch
from .arrays import flat, is_device

#: this module's ops (the backend package imports exactly these)
__all__ = ["sgd_update", "momentum_update", "nesterov_update", "adagrad_update", "rmsprop_update", "adam_update"]


@cuda.jit
def _sgd(p, g, lr):
    i = cuda.grid(1)
    if i < p.size:
        p[i] -= lr * g[i]


@cuda.jit
def _momentum(p, g, v, lr, momentum):
    i = cuda.grid(1)
    if i < p.size:
        vi = momentum * v[i] - lr * g[i]
        v[i] = vi
        p[i] += vi


@cuda.jit
def _nesterov(p, g, v, lr, momentum, mm, step):
    i = cuda.grid(1)
    if i < p.size:
        vi = v[i]                        # the previous v moves the parameter (the book's order)
        gi = g[i]
        p[i] += mm * vi - step * gi
        v[i] = momentum * vi - lr * gi


@cuda.jit
def _adagrad(p, g, h, lr, eps):
    i = cuda.grid(1)
    if i < p.size:
        gi = g[i]
        hi = h[i] + gi * gi
        h[i] = hi
        p[i] -= lr * gi / (math.sqrt(hi) + eps)


@cuda.jit
def _rmsprop(p, g, h, lr, decay, one_minus_decay, eps):
    i = cuda.grid(1)
    if i < p.size:
        gi = g[i]
        hi = decay * h[i] + one_minus_decay * gi * gi
        h[i] = hi
        p[i] -= lr * gi / (math.sqrt(hi) + eps)


@cuda.jit
def _adam(p, g, m, v, lr_t, one_minus_b1, one_minus_b2, eps):
    i = cuda.grid(1)
    if i < p.size:
        gi = g[i]
        mi = m[i] + one_minus_b1 * (gi - m[i])
        vi = v[i] + one_minus_b2 * (gi * gi - v[i])
        m[i] = mi
        v[i] = vi
        p[i] -= lr_t * mi / (math.sqrt(vi) + eps)


def _run(op, kernel, arrays, scalars):
    same_shapes(op, "param", arrays[0], *zip(_NAMES[op][1:], arrays[1:]))
    for a in arrays:
        if not is_device(a):
            raise TypeError("the cuda backend updates device arrays in place: move the network with "
                            "net.to('cuda') before creating the optimizer's state")
    dt = np.dtype(arrays[0].dtype).type
    n = arrays[0].size
    if n:
        kernel[launch.grid1d(n)](*[flat(a) for a in arrays], *[dt(s) for s in scalars])


#: the array arguments of each op, by name, as the errors name them
_NAMES = {"sgd_update": ("param", "grad"), "momentum_update": ("param", "grad", "v"),
          "nesterov_update": ("param", "grad", "v"), "adagrad_update": ("param", "grad", "h"),
          "rmsprop_update": ("param", "grad", "h"), "adam_update": ("param", "grad", "m", "v")}


def sgd_update(param, grad, lr):
    _run("sgd_update", _sgd, (param, grad), (lr,))


def momentum_update(param, grad, v, lr, momentum):
    _run("momentum_update", _momentum, (param, grad, v), (lr, momentum))


def nesterov_update(param, grad, v, lr, momentum):
    _run("nesterov_update", _nesterov, (param, grad, v), (lr, momentum, momentum * momentum, (1 + momentum) * lr))


def adagrad_update(param, grad, h, lr):
    _run("adagrad_update", _adagrad, (param, grad, h), (lr, OPT_EPS))


def rmsprop_update(param, grad, h, lr, decay_rate):
    _run("rmsprop_update", _rmsprop, (param, grad, h), (lr, decay_rate, 1 - decay_rate, OPT_EPS))


def adam_update(param, grad, m, v, lr_t, beta1, beta2):
    _run("adam_update", _adam, (param, grad, m, v), (lr_t, 1 - beta1, 1 - beta2, OPT_EPS))

"""Optimizer update rules as fused, in-place, element-wise parallel kernels (numba backend).

Every kernel reads each element of the parameter, gradient and state once and
writes parameter and state once. Scalars are cast to the parameter's dtype so
float32 parameters are updated in float32 arithmetic (one compiled signature per dtype).
"""
import numpy as np
from numba import njit, prange

from ..spec import OPT_EPS


@njit(parallel=True, cache=True)
def _sgd(p, g, lr):
    for i in prange(p.size):
        p[i] -= lr * g[i]


@njit(parallel=True, cache=True)
def _momentum(p, g, v, lr, momentum):
    for i in prange(p.size):
        vi = momentum * v[i] - lr * g[i]
        v[i] = vi
        p[i] += vi


@njit(parallel=True, cache=True)
def _nesterov(p, g, v, lr, momentum):
    mm = momentum * momentum
    step = (1 + momentum) * lr
    for i in prange(p.size):
        vi = momentum * v[i] - lr * g[i]
        v[i] = vi
        p[i] += mm * vi - step * g[i]


@njit(parallel=True, cache=True)
def _adagrad(p, g, h, lr, eps):
    for i in prange(p.size):
        gi = g[i]
        hi = h[i] + gi * gi
        h[i] = hi
        p[i] -= lr * gi / (np.sqrt(hi) + eps)


@njit(parallel=True, cache=True)
def _rmsprop(p, g, h, lr, decay, eps):
    one = p.dtype.type(1)
    for i in prange(p.size):
        gi = g[i]
        hi = decay * h[i] + (one - decay) * gi * gi
        h[i] = hi
        p[i] -= lr * gi / (np.sqrt(hi) + eps)


@njit(parallel=True, cache=True)
def _adam(p, g, m, v, lr_t, beta1, beta2, eps):
    one = p.dtype.type(1)
    for i in prange(p.size):
        gi = g[i]
        mi = m[i] + (one - beta1) * (gi - m[i])
        vi = v[i] + (one - beta2) * (gi * gi - v[i])
        m[i] = mi
        v[i] = vi
        p[i] -= lr_t * mi / (np.sqrt(vi) + eps)


def _run(kernel, arrays, scalars):
    """Call kernel on flat views of the arrays (updated in place) with scalars cast to their dtype.

    Non-contiguous arrays are updated through contiguous copies written back afterwards.
    """
    dt = arrays[0].dtype.type
    flat = [a.reshape(-1) if a.flags.c_contiguous else np.ascontiguousarray(a).reshape(-1) for a in arrays]
    kernel(*flat, *[dt(s) for s in scalars])
    for i, (a, f) in enumerate(zip(arrays, flat)):
        if i != 1 and not a.flags.c_contiguous:      # arrays[1] is the gradient, read only
            a[...] = f.reshape(a.shape)


def sgd_update(param, grad, lr):
    _run(_sgd, (param, grad), (lr,))


def momentum_update(param, grad, v, lr, momentum):
    _run(_momentum, (param, grad, v), (lr, momentum))


def nesterov_update(param, grad, v, lr, momentum):
    _run(_nesterov, (param, grad, v), (lr, momentum))


def adagrad_update(param, grad, h, lr):
    _run(_adagrad, (param, grad, h), (lr, OPT_EPS))


def rmsprop_update(param, grad, h, lr, decay_rate):
    _run(_rmsprop, (param, grad, h), (lr, decay_rate, OPT_EPS))


def adam_update(param, grad, m, v, lr_t, beta1, beta2):
    _run(_adam, (param, grad, m, v), (lr_t, beta1, beta2, OPT_EPS))

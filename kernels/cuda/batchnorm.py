"""Batch normalisation per feature (cuda backend): one thread per feature column, looping over
the batch (every reduction is a gather by the column's own thread)."""
import math
from typing import Any, Tuple

import numpy as np
from numba import cuda

from ..arrays import Array
from ..shapes import check_batchnorm, expect_shape
from . import launch
from .arrays import empty, to_device

#: this module's ops (the backend package imports exactly these)
__all__ = ["batchnorm_forward", "batchnorm_backward"]


@cuda.jit
def _bn_train_kernel(out, xn, std, x, gamma, beta, running_mean, running_var, momentum, eps, zero):
    # sums start from ``zero`` (from the host): ``x[0, j] * 0`` is NaN for an infinite element
    j = cuda.grid(1)
    N, D = x.shape
    if j < D:
        mu = zero
        for n in range(N):
            mu += x[n, j]
        mu /= N
        var = zero
        for n in range(N):
            c = x[n, j] - mu
            var += c * c
        var /= N
        s = math.sqrt(var + eps)
        std[j] = s
        running_mean[j] = momentum * running_mean[j] + (1 - momentum) * mu
        running_var[j] = momentum * running_var[j] + (1 - momentum) * var
        for n in range(N):
            z = (x[n, j] - mu) / s
            xn[n, j] = z
            out[n, j] = gamma[j] * z + beta[j]


@cuda.jit
def _bn_eval_kernel(out, x, gamma, beta, running_mean, running_var, eps):
    i = cuda.grid(1)
    if i < x.size:
        D = x.shape[1]
        n = i // D
        j = i - n * D
        out[n, j] = (x[n, j] - running_mean[j]) * (gamma[j] / math.sqrt(running_var[j] + eps)) + beta[j]


@cuda.jit
def _bn_backward_kernel(dx, dgamma, dbeta, dout, xn, std, gamma, zero):
    j = cuda.grid(1)
    N, D = dout.shape
    if j < D:
        sb = zero
        sg = zero
        for n in range(N):
            sb += dout[n, j]
            sg += dout[n, j] * xn[n, j]
        dbeta[j] = sb
        dgamma[j] = sg
        for n in range(N):
            dx[n, j] = gamma[j] / std[j] * (dout[n, j] - sb / N - xn[n, j] * sg / N)


def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, eps, train_flg):
    # type: (Array, Array, Array, Array, Array, float, float, bool) -> Tuple[Array, Any]
    """running_mean / running_var must be device arrays (updated in place) when training."""
    check_batchnorm("batchnorm_forward", x, gamma, beta, running_mean, running_var)
    x, gamma, beta = to_device(x), to_device(gamma), to_device(beta)
    dt = np.dtype(x.dtype).type
    out = empty(x.shape, x.dtype)
    if not train_flg:
        _bn_eval_kernel[launch.grid1d(x.size)](out, x, gamma, beta, to_device(running_mean),
                                               to_device(running_var), dt(eps))
        return out, None
    xn = empty(x.shape, x.dtype)
    std = empty((x.shape[1],), x.dtype)
    _bn_train_kernel[launch.grid1d(x.shape[1])](out, xn, std, x, gamma, beta, running_mean, running_var,
                                                dt(momentum), dt(eps), dt(0))
    return out, (xn, std, gamma)


def batchnorm_backward(dout, ctx):
    # type: (Array, Any) -> Tuple[Array, Array, Array]
    xn, std, gamma = ctx
    expect_shape("batchnorm_backward", "dout", dout, tuple(xn.shape), "the forward call's x (from ctx)")
    dout = to_device(dout)
    dx = empty(dout.shape, dout.dtype)
    dgamma = empty((dout.shape[1],), dout.dtype)
    dbeta = empty((dout.shape[1],), dout.dtype)
    _bn_backward_kernel[launch.grid1d(dout.shape[1])](dx, dgamma, dbeta, dout, xn, std, gamma,
                                                      np.dtype(dout.dtype).type(0))
    return dx, dgamma, dbeta

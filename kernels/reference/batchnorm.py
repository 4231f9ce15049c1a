"""Batch normalisation over the batch axis of a 2-D input, per feature (reference backend).

The formulas are the book's computational graph:
mu = mean(x), xc = x - mu, var = mean(xc^2), std = sqrt(var + eps), xn = xc / std,
out = gamma * xn + beta.
"""
from typing import Any, Tuple

import numpy as np

from ..shapes import check_batchnorm, expect_shape

__all__ = ["batchnorm_forward", "batchnorm_backward"]


def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, eps, train_flg):
    # type: (np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float, bool) -> Tuple[np.ndarray, Any]
    """x (N, D) -> (out (N, D), ctx); running statistics updated in place when training."""
    check_batchnorm("batchnorm_forward", x, gamma, beta, running_mean, running_var)
    dt = x.dtype.type
    if train_flg:
        mu = x.mean(axis=0)
        xc = x - mu
        var = np.mean(xc * xc, axis=0)
        std = np.sqrt(var + dt(eps))
        xn = xc / std
        running_mean *= dt(momentum)
        running_mean += dt(1 - momentum) * mu
        running_var *= dt(momentum)
        running_var += dt(1 - momentum) * var
        ctx = (xc, xn, std, gamma)
    else:
        xn = (x - running_mean) / np.sqrt(running_var + dt(eps))
        ctx = None
    return gamma * xn + beta, ctx


def batchnorm_backward(dout, ctx):
    # type: (np.ndarray, Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray]
    """dout (N, D) -> (dx, dgamma, dbeta), backpropagating through the forward graph."""
    xc, xn, std, gamma = ctx
    expect_shape("batchnorm_backward", "dout", dout, xn.shape, "the forward call's x (from ctx)")
    dt = dout.dtype.type
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(xn * dout, axis=0)
    dxn = gamma * dout
    dxc = dxn / std
    dstd = -np.sum((dxn * xc) / (std * std), axis=0)
    dvar = dt(0.5) * dstd / std
    dxc = dxc + (dt(2.0) / dt(n)) * xc * dvar
    dmu = np.sum(dxc, axis=0)
    dx = dxc - dmu / dt(n)
    return dx, dgamma, dbeta

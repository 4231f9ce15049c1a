"""Batch normalisation over the batch axis, per feature (numba backend).

Features are split into blocks of columns, one block per chunk, so every
reduction over the batch is done by the one thread that owns its column
(below ``MIN_PARALLEL`` elements there is one block, on the calling thread):

    for block in blocks:                          # disjoint feature columns
        mu, var over the rows, in the block's own arrays
        xn = (x - mu) / sqrt(var + eps); out = gamma*xn + beta

Backward uses the closed form of the book's computational graph:
    dx = gamma / std * (dout - mean(dout) - xn * mean(dout * xn))
"""
from typing import Any, Tuple

import numpy as np
from numba import njit, prange

from ..shapes import check_batchnorm, expect_shape
from ._arrays import kernel_input
from ._chunks import nchunks

#: this module's ops (the backend package imports exactly these)
__all__ = ["batchnorm_forward", "batchnorm_backward"]

_MIN_BLOCK = 16   # columns per block; fewer do not vectorise
#: elements below which the kernels run on the calling thread (see ``_chunks``)
MIN_PARALLEL = 1 << 18


@njit(cache=True, error_model="numpy")
def _bn_train_block(out, xn, std, x, gamma, beta, running_mean, running_var, momentum, eps, lo, hi):
    """Columns lo:hi. Loops run from 0 over row slices (vectorised, see activations.py) and
    accumulate in arrays of this block's own (no cache line shared with another thread)."""
    N = x.shape[0]
    w = hi - lo
    dt = x.dtype.type
    inv_n = dt(1) / dt(N)
    mu = np.zeros(w, dtype=x.dtype)
    var = np.zeros(w, dtype=x.dtype)
    for n in range(N):
        xr = x[n, lo:hi]
        for j in range(w):
            mu[j] += xr[j]
    for j in range(w):
        mu[j] *= inv_n
    for n in range(N):
        xr = x[n, lo:hi]
        for j in range(w):
            c = xr[j] - mu[j]
            var[j] += c * c
    sd = np.empty(w, dtype=x.dtype)
    for j in range(w):
        v = var[j] * inv_n
        sd[j] = np.sqrt(v + eps)
        std[lo + j] = sd[j]
        running_mean[lo + j] = momentum * running_mean[lo + j] + (dt(1) - momentum) * mu[j]
        running_var[lo + j] = momentum * running_var[lo + j] + (dt(1) - momentum) * v
    g = gamma[lo:hi]
    bt = beta[lo:hi]
    for n in range(N):
        xr = x[n, lo:hi]
        zr = xn[n, lo:hi]
        orow = out[n, lo:hi]
        for j in range(w):
            z = (xr[j] - mu[j]) / sd[j]
            zr[j] = z
            orow[j] = g[j] * z + bt[j]


@njit(cache=True, error_model="numpy")
def _bn_eval_rows(out, x, inv_std, gamma, beta, running_mean, lo, hi):
    # gamma * ((x - mean) / std) + beta in the reference's order: folding gamma into 1/std
    # first would keep finite what overflows there ((1e308 / std) * gamma with std < 1 < 1/gamma)
    for n in range(lo, hi):
        for j in range(x.shape[1]):
            out[n, j] = gamma[j] * ((x[n, j] - running_mean[j]) * inv_std[j]) + beta[j]


@njit(parallel=True, cache=True, error_model="numpy")
def _bn_eval(out, x, gamma, beta, running_mean, running_var, eps, chunks):
    N, D = x.shape
    inv_std = np.empty(D, dtype=x.dtype)
    for j in range(D):
        inv_std[j] = x.dtype.type(1) / np.sqrt(running_var[j] + eps)
    if chunks == 1:
        _bn_eval_rows(out, x, inv_std, gamma, beta, running_mean, 0, N)
    else:
        for c in prange(chunks):
            _bn_eval_rows(out, x, inv_std, gamma, beta, running_mean, c * N // chunks, (c + 1) * N // chunks)


@njit(parallel=True, cache=True, error_model="numpy")
def _bn_train(out, xn, std, x, gamma, beta, running_mean, running_var, momentum, eps, blocks):
    D = x.shape[1]
    if blocks == 1:
        _bn_train_block(out, xn, std, x, gamma, beta, running_mean, running_var, momentum, eps, 0, D)
    else:
        for bi in prange(blocks):
            _bn_train_block(out, xn, std, x, gamma, beta, running_mean, running_var, momentum, eps,
                            bi * D // blocks, (bi + 1) * D // blocks)


@njit(parallel=True, cache=True, error_model="numpy")
def _bn_backward(dx, dgamma, dbeta, dout, xn, std, gamma, blocks):
    D = dout.shape[1]
    if blocks == 1:
        _bn_backward_block(dx, dgamma, dbeta, dout, xn, std, gamma, 0, D)
    else:
        for bi in prange(blocks):
            _bn_backward_block(dx, dgamma, dbeta, dout, xn, std, gamma, bi * D // blocks, (bi + 1) * D // blocks)


@njit(cache=True, error_model="numpy")
def _bn_backward_block(dx, dgamma, dbeta, dout, xn, std, gamma, lo, hi):
    """Columns lo:hi, accumulated in this block's own arrays (see _bn_train_block)."""
    N = dout.shape[0]
    w = hi - lo
    dt = dout.dtype.type
    inv_n = dt(1) / dt(N)
    dg = np.zeros(w, dtype=dout.dtype)
    db = np.zeros(w, dtype=dout.dtype)
    for n in range(N):
        dr = dout[n, lo:hi]
        zr = xn[n, lo:hi]
        for j in range(w):
            d = dr[j]
            db[j] += d
            dg[j] += d * zr[j]
    scale = np.empty(w, dtype=dout.dtype)
    for j in range(w):
        dgamma[lo + j] = dg[j]
        dbeta[lo + j] = db[j]
        scale[j] = gamma[lo + j] / std[lo + j]
        if not (np.isfinite(db[j]) and np.isfinite(dg[j]) and np.isfinite(scale[j])):
            # inf or NaN in a column of dout (or an infinite gamma) makes all of that column's
            # dx NaN in the reference's graph (dmu, the sum of the column's dxc, is NaN); the
            # closed form below would leave some of them +-inf. One test per column, not per element.
            scale[j] = np.nan
        db[j] *= inv_n
        dg[j] *= inv_n
    for n in range(N):
        dr = dout[n, lo:hi]
        zr = xn[n, lo:hi]
        xr = dx[n, lo:hi]
        for j in range(w):
            xr[j] = scale[j] * (dr[j] - db[j] - zr[j] * dg[j])


def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, eps, train_flg):
    # type: (np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float, bool) -> Tuple[np.ndarray, Any]
    """x (N, D) -> (out, ctx); running statistics updated in place when training."""
    check_batchnorm("batchnorm_forward", x, gamma, beta, running_mean, running_var)
    x = kernel_input(x)
    gamma, beta = kernel_input(gamma), kernel_input(beta)
    dt = x.dtype.type
    out = np.empty_like(x)
    if not train_flg:
        _bn_eval(out, x, gamma, beta, running_mean, running_var, dt(eps), nchunks(x.shape[0], x.size, MIN_PARALLEL))
        return out, None
    xn = np.empty_like(x)
    std = np.empty(x.shape[1], dtype=x.dtype)
    blocks = nchunks(max(1, x.shape[1] // _MIN_BLOCK), x.size, MIN_PARALLEL)
    _bn_train(out, xn, std, x, gamma, beta, running_mean, running_var, dt(momentum), dt(eps), blocks)
    return out, (xn, std, gamma)


def batchnorm_backward(dout, ctx):
    # type: (np.ndarray, Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray]
    """dout (N, D) -> (dx, dgamma, dbeta)."""
    xn, std, gamma = ctx
    expect_shape("batchnorm_backward", "dout", dout, xn.shape, "the forward call's x (from ctx)")
    dout = kernel_input(dout)
    dx = np.empty_like(dout)
    dgamma = np.empty(dout.shape[1], dtype=dout.dtype)
    dbeta = np.empty(dout.shape[1], dtype=dout.dtype)
    blocks = nchunks(max(1, dout.shape[1] // _MIN_BLOCK), dout.size, MIN_PARALLEL)
    _bn_backward(dx, dgamma, dbeta, dout, xn, std, gamma, blocks)
    return dx, dgamma, dbeta

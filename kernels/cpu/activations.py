"""Element-wise activations and the dropout mask product (numba backend).

Each kernel runs over the flattened array in a parallel loop (disjoint writes);
the wrappers flatten C-contiguous inputs without copying and restore the shape.
"""
import numpy as np
from numba import njit, prange


def _flat(a):
    return np.ascontiguousarray(a).reshape(-1)


@njit(parallel=True, cache=True)
def _relu_forward(out, mask, x):
    zero = x.dtype.type(0)
    for i in prange(x.size):
        v = x[i]
        m = v <= zero
        mask[i] = m
        out[i] = zero if m else v


@njit(parallel=True, cache=True)
def _relu_backward(dx, dout, mask):
    zero = dout.dtype.type(0)
    for i in prange(dout.size):
        dx[i] = zero if mask[i] else dout[i]


@njit(parallel=True, cache=True)
def _sigmoid_forward(out, x):
    one = x.dtype.type(1)
    for i in prange(x.size):
        v = x[i]
        if v >= 0:
            out[i] = one / (one + np.exp(-v))
        else:
            e = np.exp(v)
            out[i] = e / (one + e)


@njit(parallel=True, cache=True)
def _sigmoid_backward(dx, dout, out):
    one = out.dtype.type(1)
    for i in prange(dout.size):
        y = out[i]
        dx[i] = dout[i] * (one - y) * y


@njit(parallel=True, cache=True)
def _mask_multiply(out, x, mask):
    zero = x.dtype.type(0)
    for i in prange(x.size):
        out[i] = x[i] if mask[i] else zero


def relu_forward(x):
    """-> (out, mask) with mask = x <= 0."""
    xf = _flat(x)
    out = np.empty_like(xf)
    mask = np.empty(xf.shape, dtype=np.bool_)
    _relu_forward(out, mask, xf)
    return out.reshape(x.shape), mask.reshape(x.shape)


def relu_backward(dout, mask):
    """dx = dout where not mask, else 0 (a new array)."""
    df = _flat(dout)
    dx = np.empty_like(df)
    _relu_backward(dx, df, _flat(mask))
    return dx.reshape(dout.shape)


def sigmoid_forward(x):
    """1 / (1 + exp(-x)) without overflow."""
    xf = _flat(x)
    out = np.empty_like(xf)
    _sigmoid_forward(out, xf)
    return out.reshape(x.shape)


def sigmoid_backward(dout, out):
    """dx = dout * (1 - out) * out."""
    df = _flat(dout)
    dx = np.empty_like(df)
    _sigmoid_backward(dx, df, _flat(out))
    return dx.reshape(dout.shape)


def dropout_apply(x, mask):
    """x * mask for a boolean mask (the same product serves forward and backward)."""
    xf = _flat(x)
    out = np.empty_like(xf)
    _mask_multiply(out, xf, _flat(mask))
    return out.reshape(x.shape)

"""Element-wise activations and the dropout mask product (numba backend).

Each kernel is a loop over whole (flat) arrays; the driver runs it on the calling
thread below ``MIN_PARALLEL`` elements and on one slice per Numba thread above it
(disjoint writes). Loops run from 0 over a slice rather than over ``range(lo, hi)``:
Numba's negative-index check on an index it cannot prove non-negative kept LLVM from
vectorising them (4x slower, measured). The wrappers flatten
C-contiguous inputs without copying and restore the shape.
"""
import numpy as np
from numba import njit, prange

from ..shapes import same_shapes
from ._arrays import kernel_input
from ._chunks import nchunks
from ._vexp import exp_nonpos

#: this module's ops (the backend package imports exactly these)
__all__ = ["relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward", "dropout_apply"]

#: work below which a kernel runs on the calling thread (see ``_chunks``), in elements of a
#: memory-bound op (ReLU, the mask product); sigmoid's exp counts ``SIGMOID_COST`` per element.
#: Measured here (2 threads, float64): ReLU forward 164 us serial vs 104 us parallel at 200,000
#: elements and 31 vs 44 us at 50,000; sigmoid 110 vs 84 us at 50,000 and 14 vs 29 us at 5,000.
MIN_PARALLEL = 1 << 17
SIGMOID_COST = 4
SIGMOID_BACKWARD_COST = 2
#: elements below which the one-operation ops (ReLU backward, sigmoid backward, the mask
#: product) are NumPy's own expression (the reference's): calling a compiled kernel costs about
#: 1.5 us more than the whole work there (measured: 2.8 vs 1.9 us on 50 elements)
NUMPY_BELOW = 1024


def _flat(a):
    """A flat C-contiguous writeable view (a copy only for strided or read-only input)."""
    return kernel_input(a).reshape(-1)


@njit(cache=True, error_model="numpy")
def _relu_forward_span(out, mask, x):
    zero = x.dtype.type(0)
    for i in range(out.size):
        v = x[i]
        m = v <= zero
        mask[i] = m
        out[i] = zero if m else v


@njit(cache=True, error_model="numpy")
def _relu_backward_span(dx, dout, mask):
    zero = dout.dtype.type(0)
    for i in range(dx.size):
        dx[i] = zero if mask[i] else dout[i]


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _sigmoid_forward_span(out, x):
    one = x.dtype.type(1)
    for i in range(out.size):
        v = x[i]
        e = exp_nonpos(-abs(v))             # in (0, 1]: never overflows; vectorised (_vexp)
        r = one / (one + e)
        out[i] = r if v >= 0 else e * r


@njit(cache=True, error_model="numpy")
def _sigmoid_backward_span(dx, dout, out):
    one = out.dtype.type(1)
    for i in range(dx.size):
        y = out[i]
        dx[i] = dout[i] * (one - y) * y


@njit(cache=True, error_model="numpy")
def _mask_multiply_span(out, x, mask):
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    for i in range(out.size):
        out[i] = x[i] * (one if mask[i] else zero)     # as NumPy's x * mask: NaN and inf * False are NaN


@njit(parallel=True, cache=True, error_model="numpy")
def _relu_forward(out, mask, x, chunks):
    n = x.size
    if chunks == 1:
        _relu_forward_span(out, mask, x)
    else:
        for c in prange(chunks):
            lo, hi = c * n // chunks, (c + 1) * n // chunks
            _relu_forward_span(out[lo:hi], mask[lo:hi], x[lo:hi])


@njit(parallel=True, cache=True, error_model="numpy")
def _relu_backward(dx, dout, mask, chunks):
    n = dout.size
    if chunks == 1:
        _relu_backward_span(dx, dout, mask)
    else:
        for c in prange(chunks):
            lo, hi = c * n // chunks, (c + 1) * n // chunks
            _relu_backward_span(dx[lo:hi], dout[lo:hi], mask[lo:hi])


@njit(parallel=True, cache=True, error_model="numpy")
def _sigmoid_forward(out, x, chunks):
    n = x.size
    if chunks == 1:
        _sigmoid_forward_span(out, x)
    else:
        for c in prange(chunks):
            lo, hi = c * n // chunks, (c + 1) * n // chunks
            _sigmoid_forward_span(out[lo:hi], x[lo:hi])


@njit(parallel=True, cache=True, error_model="numpy")
def _sigmoid_backward(dx, dout, out, chunks):
    n = dout.size
    if chunks == 1:
        _sigmoid_backward_span(dx, dout, out)
    else:
        for c in prange(chunks):
            lo, hi = c * n // chunks, (c + 1) * n // chunks
            _sigmoid_backward_span(dx[lo:hi], dout[lo:hi], out[lo:hi])


@njit(parallel=True, cache=True, error_model="numpy")
def _mask_multiply(out, x, mask, chunks):
    n = x.size
    if chunks == 1:
        _mask_multiply_span(out, x, mask)
    else:
        for c in prange(chunks):
            lo, hi = c * n // chunks, (c + 1) * n // chunks
            _mask_multiply_span(out[lo:hi], x[lo:hi], mask[lo:hi])


def _chunks(n, cost=1):
    return nchunks(n, n * cost, MIN_PARALLEL)


def _map(kernel, a, b=None, cost=1):
    """kernel(out, a[, b], chunks) on flat views of a (and b), ``cost`` work units per element;
    out, a new array of a's dtype, comes back in a's shape."""
    af = _flat(a)
    out = np.empty_like(af)
    if b is None:
        kernel(out, af, _chunks(af.size, cost))
    else:
        kernel(out, af, _flat(b), _chunks(af.size, cost))
    return out.reshape(a.shape)


def relu_forward(x):
    """-> (out, mask) with mask = x <= 0."""
    xf = _flat(x)
    out = np.empty_like(xf)
    mask = np.empty(xf.shape, dtype=np.bool_)
    _relu_forward(out, mask, xf, _chunks(xf.size))
    return out.reshape(x.shape), mask.reshape(x.shape)


def relu_backward(dout, mask):
    """dx = dout where not mask, else 0 (a new array)."""
    same_shapes("relu_backward", "dout", dout, ("mask", mask))
    if dout.size < NUMPY_BELOW:                          # the reference's expression, inline
        return np.where(mask, dout.dtype.type(0), dout)
    return _map(_relu_backward, dout, mask)


def sigmoid_forward(x):
    """1 / (1 + exp(-x)) without overflow."""
    return _map(_sigmoid_forward, x, cost=SIGMOID_COST)


def sigmoid_backward(dout, out):
    """dx = dout * (1 - out) * out."""
    same_shapes("sigmoid_backward", "dout", dout, ("out", out))
    if dout.size < NUMPY_BELOW:
        return dout * (out.dtype.type(1) - out) * out
    return _map(_sigmoid_backward, dout, out, SIGMOID_BACKWARD_COST)


def dropout_apply(x, mask):
    """x * mask for a boolean mask (the same product serves forward and backward)."""
    same_shapes("dropout_apply", "x", x, ("mask", mask))
    if x.size < NUMPY_BELOW:
        return x * mask
    return _map(_mask_multiply, x, mask)

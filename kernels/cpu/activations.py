"""Element-wise activations and the dropout mask product (numba backend).

Each kernel is a loop over whole (flat) arrays; the driver runs it on the calling
thread below ``MIN_PARALLEL`` elements and on one slice per Numba thread above it
(disjoint writes). Loops run from 0 over a slice rather than over ``range(lo, hi)``:
Numba's negative-index check on an index it cannot prove non-negative kept LLVM from
vectorising them (4x slower, measured). The wrappers flatten
C-contiguous inputs without copying and restore the shape.
"""
from typing import Tuple

import numpy as np
from numba import njit

from .. import scalars
from ..shapes import same_shapes
from ._arrays import kernel_input
from ._chunks import nchunks
from ._map import elementwise
from ._vexp import exp_nonpos

#: this module's ops (the backend package imports exactly these)
__all__ = ["relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward", "leaky_relu_forward",
           "leaky_relu_backward", "dropout_apply"]

#: work below which a kernel runs on the calling thread (see ``_chunks``), in elements of a
#: memory-bound op (ReLU, the mask product); sigmoid's exp counts ``SIGMOID_COST`` per element.
#: Measured here (2 threads, float64): ReLU forward 164 us serial vs 104 us parallel at 200,000
#: elements and 31 vs 44 us at 50,000; sigmoid 110 vs 84 us at 50,000 and 14 vs 29 us at 5,000.
MIN_PARALLEL = 1 << 17
SIGMOID_COST = 4
SIGMOID_BACKWARD_COST = 2
#: work units per element of the ops that cost more than one (the others: 1), for ``_chunks``
COST = {"sigmoid_forward": SIGMOID_COST, "sigmoid_backward": SIGMOID_BACKWARD_COST}
#: elements below which the one-operation ops (ReLU forward and backward, sigmoid backward, the
#: mask product) are NumPy's own expression (the reference's, the same bits): calling a compiled
#: kernel costs about 1.5 us more than the whole work there (measured: 2.8 vs 1.9 us on 50 elements)
NUMPY_BELOW = 1024
#: the ops of this module with that NumPy shortcut
NUMPY_SHORTCUTS = ("relu_forward", "relu_backward", "sigmoid_backward", "dropout_apply")


def _flat(a):
    """A flat C-contiguous writeable view (a copy only for strided or read-only input)."""
    return kernel_input(a).reshape(-1)


# -- each op's kernels, built from its scalar function (``_map.elementwise``; the shared ones in
# ``kernels/scalars.py``) -----------------------------------------------------------------
@njit
def _sigmoid(v):
    one = type(v)(1)
    e = exp_nonpos(-abs(v))                 # in (0, 1]: never overflows; vectorised (_vexp)
    r = one / (one + e)
    return r if v >= 0 else e * r


_relu_forward = elementwise(globals(), "relu_forward", scalars.relu, 1, 2)
_relu_backward = elementwise(globals(), "relu_backward", scalars.relu_grad, 2, 1)
_sigmoid_forward = elementwise(globals(), "sigmoid_forward", _sigmoid, 1, 1, fastmath={"contract"})
_sigmoid_backward = elementwise(globals(), "sigmoid_backward", scalars.sigmoid_grad, 2, 1)
_leaky_relu_forward = elementwise(globals(), "leaky_relu_forward", scalars.leaky_relu, 1, 2)
_leaky_relu_backward = elementwise(globals(), "leaky_relu_backward", scalars.leaky_relu_grad, 2, 1)
_mask_multiply = elementwise(globals(), "mask_multiply", scalars.masked, 2, 1)


def _chunks(n, cost=1):
    return nchunks(n, n * cost, MIN_PARALLEL)


def _apply(kernel, a, b=None, cost=1, params=()):
    """kernel(out, a[, b], params, chunks) on flat views of a (and b), ``cost`` work units per
    element, ``params`` converted to a's dtype; out, a new array of a's dtype, comes back in
    a's shape."""
    af = _flat(a)
    out = np.empty_like(af)
    p = tuple(af.dtype.type(v) for v in params)
    if b is None:
        kernel(out, af, p, _chunks(af.size, cost))
    else:
        kernel(out, af, _flat(b), p, _chunks(af.size, cost))
    return out.reshape(a.shape)


def relu_forward(x):
    # type: (np.ndarray) -> Tuple[np.ndarray, np.ndarray]
    """-> (out, mask) with mask = x <= 0."""
    if x.size < NUMPY_BELOW:              # NumPy's own, the kernel's bits (x where not mask, else +0)
        mask = x <= 0
        out = x.copy()
        out[mask] = 0
        return out, mask
    xf = _flat(x)
    out = np.empty_like(xf)
    mask = np.empty(xf.shape, dtype=np.bool_)
    _relu_forward(out, mask, xf, (), _chunks(xf.size))
    return out.reshape(x.shape), mask.reshape(x.shape)


def relu_backward(dout, mask):
    # type: (np.ndarray, np.ndarray) -> np.ndarray
    """dx = dout where not mask, else 0 (a new array)."""
    same_shapes("relu_backward", "dout", dout, ("mask", mask))
    if dout.size < NUMPY_BELOW:              # NumPy's own, the reference's bits (+0 where masked)
        if mask.dtype != np.bool_:
            return np.where(mask, dout.dtype.type(0), dout)
        dx = dout.copy()
        dx[mask] = 0
        return dx
    return _apply(_relu_backward, dout, mask)


def sigmoid_forward(x):
    # type: (np.ndarray) -> np.ndarray
    """1 / (1 + exp(-x)) without overflow."""
    return _apply(_sigmoid_forward, x, cost=COST["sigmoid_forward"])


def sigmoid_backward(dout, out):
    # type: (np.ndarray, np.ndarray) -> np.ndarray
    """dx = dout * (1 - out) * out."""
    same_shapes("sigmoid_backward", "dout", dout, ("out", out))
    if dout.size < NUMPY_BELOW:
        return dout * (out.dtype.type(1) - out) * out
    return _apply(_sigmoid_backward, dout, out, COST["sigmoid_backward"])


def leaky_relu_forward(x, alpha=0.01):
    # type: (np.ndarray, float) -> Tuple[np.ndarray, np.ndarray]
    """-> (out, mask) with mask = x <= 0 and out = alpha * x there."""
    xf = _flat(x)
    out = np.empty_like(xf)
    mask = np.empty(xf.shape, dtype=np.bool_)
    _leaky_relu_forward(out, mask, xf, (xf.dtype.type(alpha),), _chunks(xf.size))
    return out.reshape(x.shape), mask.reshape(x.shape)


def leaky_relu_backward(dout, mask, alpha=0.01):
    # type: (np.ndarray, np.ndarray, float) -> np.ndarray
    """dx = dout where not mask, else alpha * dout (a new array)."""
    same_shapes("leaky_relu_backward", "dout", dout, ("mask", mask))
    return _apply(_leaky_relu_backward, dout, mask, params=(alpha,))


def dropout_apply(x, mask):
    # type: (np.ndarray, np.ndarray) -> np.ndarray
    """x * mask for a boolean mask (the same product serves forward and backward)."""
    same_shapes("dropout_apply", "x", x, ("mask", mask))
    if x.size < NUMPY_BELOW:
        return x * mask
    return _apply(_mask_multiply, x, mask)

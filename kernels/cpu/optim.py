"""Optimizer update rules as fused, in-place, element-wise kernels (numba backend).

Small parameters are updated on the calling thread, large ones by spans in parallel.

Every kernel reads each element of the parameter, gradient and state once and
writes parameter and state once. Each op first checks that the gradient and the state have the
parameter's shape (``shapes.same_shapes``): the kernels loop over the parameter's elements. Scalars are cast to the parameter's dtype so
float32 parameters are updated in float32 arithmetic (one compiled signature per dtype).
"""
import numpy as np
from .. import scalars
from ..shapes import same_shapes
from ..spec import OPT_EPS
from ._arrays import kernel_input
from ._chunks import nchunks
from ._map import update

#: this module's ops (the backend package imports exactly these)
__all__ = ["sgd_update", "momentum_update", "nesterov_update", "adagrad_update", "rmsprop_update", "adam_update"]

#: parameter elements below which an update runs on the calling thread (see ``_chunks``)
MIN_PARALLEL = 1 << 17
#: parameter elements below which SGD and Momentum, one or two in-place NumPy operations,
#: are NumPy's own (the reference's): a compiled call costs more than the work there
#: (measured: 5.1 vs 2.3 us for SGD on 10 elements)
NUMPY_BELOW = 1024
#: the ops of this module with that NumPy shortcut
NUMPY_SHORTCUTS = ("sgd_update", "momentum_update")


# Each rule's span (the loop over a slice, in place) and driver (the whole array on the calling
# thread when chunks == 1, else one span per thread) from its scalar in ``kernels/scalars.py``.
_sgd = update(globals(), "sgd", scalars.sgd_rule, 0)
_momentum = update(globals(), "momentum", scalars.momentum_rule, 1)
_nesterov = update(globals(), "nesterov", scalars.nesterov_rule, 1)
_adagrad = update(globals(), "adagrad", scalars.adagrad_rule, 1)
_rmsprop = update(globals(), "rmsprop", scalars.rmsprop_rule, 1)
_adam = update(globals(), "adam", scalars.adam_rule, 2)


def _run(kernel, arrays, scalars):
    """Call kernel on flat views of the arrays (updated in place) with scalars cast to their dtype.

    Non-contiguous arrays are updated through contiguous copies written back afterwards; a
    read-only gradient is read from a copy (see ``kernel_input``).
    """
    dt = arrays[0].dtype.type
    flat = [kernel_input(a).reshape(-1) if i == 1 else np.ascontiguousarray(a).reshape(-1)
            for i, a in enumerate(arrays)]
    n = flat[0].size
    kernel(*flat, tuple(dt(s) for s in scalars), nchunks(n, n, MIN_PARALLEL))
    for i, (a, f) in enumerate(zip(arrays, flat)):
        if i != 1 and not a.flags.c_contiguous:      # arrays[1] is the gradient, read only
            a[...] = f.reshape(a.shape)


def sgd_update(param, grad, lr):
    # type: (np.ndarray, np.ndarray, float) -> None
    same_shapes("sgd_update", "param", param, ("grad", grad))
    if param.size < NUMPY_BELOW:                         # the reference's expression, inline
        param -= param.dtype.type(lr) * grad
        return
    _run(_sgd, (param, grad), (lr,))


def momentum_update(param, grad, v, lr, momentum):
    # type: (np.ndarray, np.ndarray, np.ndarray, float, float) -> None
    same_shapes("momentum_update", "param", param, ("grad", grad), ("v", v))
    if param.size < NUMPY_BELOW:
        dt = param.dtype.type
        v *= dt(momentum)
        v -= dt(lr) * grad
        param += v
        return
    _run(_momentum, (param, grad, v), (lr, momentum))


def nesterov_update(param, grad, v, lr, momentum):
    # type: (np.ndarray, np.ndarray, np.ndarray, float, float) -> None
    same_shapes("nesterov_update", "param", param, ("grad", grad), ("v", v))
    _run(_nesterov, (param, grad, v), (lr, momentum))


def adagrad_update(param, grad, h, lr):
    # type: (np.ndarray, np.ndarray, np.ndarray, float) -> None
    same_shapes("adagrad_update", "param", param, ("grad", grad), ("h", h))
    _run(_adagrad, (param, grad, h), (lr, OPT_EPS))


def rmsprop_update(param, grad, h, lr, decay_rate):
    # type: (np.ndarray, np.ndarray, np.ndarray, float, float) -> None
    same_shapes("rmsprop_update", "param", param, ("grad", grad), ("h", h))
    _run(_rmsprop, (param, grad, h), (lr, decay_rate, OPT_EPS))


def adam_update(param, grad, m, v, lr_t, beta1, beta2):
    # type: (np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float, float) -> None
    same_shapes("adam_update", "param", param, ("grad", grad), ("m", m), ("v", v))
    _run(_adam, (param, grad, m, v), (lr_t, beta1, beta2, OPT_EPS))

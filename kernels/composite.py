"""Ops defined by composition over other ops: what a backend gets for an op it does not implement.

Each function takes the backend's own namespace ``ops`` first, then the op's arguments as
``spec.TABLE`` lists them. ``fastdl.kernels.complete`` binds them to a backend package for
every op the package leaves out, so these definitions are also what the ops *mean*:

* ``conv_relu_*`` is Convolution then Relu, ``conv_relu_pool_*`` adds max Pooling. The numba
  backend has real fused kernels for stride 1 (and composes its own ops for the rest); the
  reference and cuda backends use these.
* The device-placement ops, for host backends (NumPy arrays in, NumPy arrays out): ``owns``
  is "not a device array", ``to_device`` the identity, ``to_host``/``zeros_like``/``astype``
  NumPy's. The cuda backend defines its own. ``scale`` and ``all_finite`` go through
  ``to_host``/``to_device`` and so work on every backend.
"""
import numpy as np

from .arrays import is_device_array, to_host as _to_host


# -- fused blocks ------------------------------------------------------------------------
def conv_relu_forward(ops, x, W, b, stride, pad):
    c, cctx = ops.conv_forward(x, W, b, stride, pad)
    out, mask = ops.relu_forward(c)
    return out, (cctx, mask)


def conv_relu_backward(ops, dout, ctx, need_dx=True):
    cctx, mask = ctx
    return ops.conv_backward(ops.relu_backward(dout, mask), cctx, need_dx)


def conv_relu_pool_forward(ops, x, W, b, stride, pad, pool_h, pool_w, pool_stride, pool_pad):
    r, (cctx, mask) = conv_relu_forward(ops, x, W, b, stride, pad)
    out, pctx = ops.pool_forward(r, pool_h, pool_w, pool_stride, pool_pad)
    return out, (cctx, mask, pctx)


def conv_relu_pool_backward(ops, dout, ctx, need_dx=True):
    cctx, mask, pctx = ctx
    return conv_relu_backward(ops, ops.pool_backward(dout, pctx), (cctx, mask), need_dx)


# -- device placement (host backends) ----------------------------------------------------
def owns(ops, a):
    return not is_device_array(a)


def to_device(ops, a):
    if is_device_array(a):
        raise TypeError(f"backend {ops.NAME!r} computes on the host; this array is on the GPU "
                        "(move it with to_host first)")
    return a


def to_host(ops, a):
    return _to_host(a)


def zeros_like(ops, a):
    return np.zeros(tuple(a.shape), dtype=a.dtype)


def astype(ops, a, dtype):
    if np.dtype(a.dtype) == np.dtype(dtype):
        return a
    return ops.to_device(ops.to_host(a).astype(dtype))


# -- on every backend, through placement ---------------------------------------------------
def scale(ops, x, s):
    h = ops.to_host(x)
    return ops.to_device(h * h.dtype.type(s))


def all_finite(ops, a):
    return bool(np.isfinite(ops.to_host(a)).all())

"""Moving arrays between host and device (cuda backend): its device-placement ops of the spec
(``owns``, ``to_device``, ``to_host``, ``zeros_like``, ``astype``) and the allocation helpers
its kernels share."""
import numpy as np
from numpy.typing import DTypeLike
from numba import cuda

from . import launch
from ..arrays import Array, is_device_array as is_device, to_host

#: this module's ops (the backend package imports exactly these)
__all__ = ["owns", "to_device", "to_host", "zeros_like", "astype"]


def owns(a):
    # type: (Array) -> bool
    """True for a device array: what this backend computes on without copying."""
    return is_device(a)


def to_device(a):
    # type: (Array) -> Array
    """A C-contiguous device copy of a host array (device arrays are returned as they are)."""
    if is_device(a):
        return a
    return cuda.to_device(np.ascontiguousarray(a))



@cuda.jit
def _fill_kernel(out, value):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = value


def empty(shape, dtype):
    return cuda.device_array(shape, dtype=dtype)


def zeros(shape, dtype):
    a = cuda.device_array(shape, dtype=dtype)
    flat = a.reshape(a.size) if a.size else a
    if a.size:
        _fill_kernel[launch.grid1d(a.size)](flat, np.dtype(dtype).type(0))
    return a


def zeros_like(a):
    # type: (Array) -> Array
    return zeros(a.shape, a.dtype)


def astype(a, dtype):
    # type: (Array, DTypeLike) -> Array
    """a converted to dtype on the device (through the host: a rare, small conversion)."""
    if np.dtype(a.dtype) == np.dtype(dtype):
        return a
    return to_device(to_host(a).astype(dtype))


def flat(a):
    """1-D view of a C-contiguous device array."""
    return a.reshape(a.size)

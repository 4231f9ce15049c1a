"""Moving arrays between host and device, and device-array checks (cuda backend)."""
import numpy as np
from numba import cuda

from . import launch


def is_device(a):
    """A CUDA device array (real or simulated); NumPy arrays are host arrays."""
    return not isinstance(a, np.ndarray) and hasattr(a, "copy_to_host") and hasattr(a, "shape")


def to_device(a):
    """A C-contiguous device copy of a host array (device arrays are returned as they are)."""
    if is_device(a):
        return a
    return cuda.to_device(np.ascontiguousarray(a))


def to_host(a):
    """A NumPy copy of a device array (host arrays are returned as they are)."""
    return a.copy_to_host() if is_device(a) else a


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
    return zeros(a.shape, a.dtype)


def flat(a):
    """1-D view of a C-contiguous device array."""
    return a.reshape(a.size)

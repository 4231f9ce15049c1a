"""Telling device arrays from host arrays, without importing CUDA: the one definition every
backend and fastdl's own checks use."""
import numpy as np


def is_device_array(a):
    """A CUDA device array (numba's, real or simulated): duck-typed, so no CUDA import happens."""
    return not isinstance(a, np.ndarray) and hasattr(a, "copy_to_host") and hasattr(a, "shape")


def to_host(a):
    """A NumPy array for a: a copy of a device array, anything else as it is."""
    return a.copy_to_host() if is_device_array(a) else a

"""Telling device arrays from host arrays, without importing CUDA: the one definition every
backend and fastdl's own checks use."""
from typing import Any

import numpy as np

#: an array of any backend, for the type checker: a host ``np.ndarray`` or a device array
Array = Any


def is_device_array(a: Any) -> bool:
    """A CUDA device array (numba's, real or simulated): duck-typed, so no CUDA import happens."""
    return not isinstance(a, np.ndarray) and hasattr(a, "copy_to_host") and hasattr(a, "shape")


def to_host(a: Any) -> Any:
    """A NumPy array for a: a copy of a device array, anything else as it is."""
    return a.copy_to_host() if is_device_array(a) else a

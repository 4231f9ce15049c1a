"""The scalar functions of the element-wise ops, shared by the numba and cuda backends.

Each is an ``@njit`` function of one element of each input array (and the op's parameters from
``kernels/spec.py``, in the arrays' dtype) returning the element of each output (a tuple for
two). ``kernels/cpu/_map.py`` turns one into the numba backend's serial and parallel kernels;
``kernels/cuda/_map.py`` compiles its ``py_func`` as a device function for a one-thread-per-
element kernel. Constants are made in the element's own type (``type(v)(0)``), so float32 stays
float32. A scalar that needs a backend's own helper (the numba sigmoid's vectorised exp) lives in
that backend's module.
"""
from numba import njit


@njit
def relu(v):
    m = v <= 0
    return (type(v)(0) if m else v), m


@njit
def relu_grad(d, m):
    return type(d)(0) if m else d


@njit
def sigmoid_grad(d, y):
    return d * (type(y)(1) - y) * y


@njit
def leaky_relu(v, alpha):
    m = v <= 0
    return (v * alpha if m else v), m


@njit
def leaky_relu_grad(d, m, alpha):
    return d * alpha if m else d


@njit
def masked(v, m):
    return v * (type(v)(1) if m else type(v)(0))     # as NumPy's x * mask: NaN and inf * False are NaN

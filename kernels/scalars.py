"""The scalar functions of the element-wise ops, shared by the numba and cuda backends.

Each is an ``@njit`` function of one element of each input array (and the op's parameters from
``kernels/spec.py``, in the arrays' dtype) returning the element of each output (a tuple for
two). ``kernels/cpu/_map.py`` turns one into the numba backend's serial and parallel kernels;
``kernels/cuda/_map.py`` compiles its ``py_func`` as a device function for a one-thread-per-
element kernel. Constants are made in the element's own type (``type(v)(0)``), so float32 stays
float32. A scalar that needs a backend's own helper (the numba sigmoid's vectorised exp) lives in
that backend's module.

The optimizer rules (``*_rule``) are the update of one element, in place: they take the
parameter, gradient and state elements and the op's scalars (in the parameter's dtype) and return
the new parameter and state values; ``update`` in each backend's ``_map`` builds the kernels. Square
roots are ``math.sqrt``, which numba.cuda device code supports and which Numba's CPU target types
float32 -> float32 (the same results as ``np.sqrt``); the cast to the parameter's type keeps
float32 float32 where the function runs as plain Python (the CUDA simulator).

The functions here are unannotated: Numba types them from their arguments (see ``[tool.mypy]``).
"""
import math

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


@njit
def sgd_rule(p, g, lr):
    return p - lr * g


@njit
def momentum_rule(p, g, v, lr, momentum):
    vi = momentum * v - lr * g
    return p + vi, vi


@njit
def nesterov_rule(p, g, v, lr, momentum):
    # the previous v moves the parameter (the book's order)
    return p + (momentum * momentum * v - (1 + momentum) * lr * g), momentum * v - lr * g


@njit
def adagrad_rule(p, g, h, lr, eps):
    hi_ = h + g * g
    return p - lr * g / (type(p)(math.sqrt(hi_)) + eps), hi_


@njit
def rmsprop_rule(p, g, h, lr, decay, eps):
    hi_ = decay * h + (type(p)(1) - decay) * g * g
    return p - lr * g / (type(p)(math.sqrt(hi_)) + eps), hi_


@njit
def adam_rule(p, g, m, v, lr_t, beta1, beta2, eps):
    one = type(p)(1)
    mi = m + (one - beta1) * (g - m)
    vi = v + (one - beta2) * (g * g - v)
    return p - lr_t * mi / (type(p)(math.sqrt(vi)) + eps), mi, vi

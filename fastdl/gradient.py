"""Numerical differentiation (chapter 4), the oracle for every backward pass."""
import numpy as np

__all__ = ["numerical_diff", "numerical_gradient", "gradient_descent"]

H = 1e-4


def numerical_diff(f, x):
    """Central difference (f(x + h) - f(x - h)) / 2h with h = 1e-4."""
    return (f(x + H) - f(x - H)) / (2 * H)


def numerical_gradient(f, x):
    """Gradient of the scalar f at array x by central differences, h = 1e-4.

    As in the book, x is perturbed IN PLACE, one element at a time in C order,
    and each element is restored before moving on; ``f`` receives x itself.
    Networks rely on this: ``numerical_gradient(lambda W: net.loss(x, t), net.params['W1'])``
    works because the layers hold the very array being perturbed.
    """
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError("numerical_gradient: x must be a float ndarray (it is perturbed in place), "
                        f"got {type(x).__name__}" + (f" of dtype {x.dtype}" if isinstance(x, np.ndarray) else ""))
    if not x.flags.writeable:
        raise ValueError("numerical_gradient: x must be writeable (it is perturbed in place)")
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        orig = x[idx]
        x[idx] = float(orig) + H
        f_plus = f(x)
        x[idx] = float(orig) - H
        f_minus = f(x)
        x[idx] = orig
        grad[idx] = (f_plus - f_minus) / (2 * H)
    return grad


def gradient_descent(f, init_x, lr=0.01, step_num=100):
    """Minimise f from init_x with ``step_num`` steps of x -= lr * grad; returns x.

    Unlike the book's version, ``init_x`` is left unchanged (a copy is descended).
    """
    x = np.array(init_x, dtype=np.float64 if np.asarray(init_x).dtype.kind != "f" else None, copy=True)
    for _ in range(step_num):
        x -= lr * numerical_gradient(f, x)
    return x

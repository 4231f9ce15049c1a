"""Numerical differentiation (chapter 4), the oracle for every backward pass."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["numerical_diff", "numerical_gradient", "gradient_descent"]

H = 1e-4


def numerical_diff(f: Callable[[Any], Any], x: Any) -> Any:
    """Central difference (f(x + h) - f(x - h)) / 2h with h = 1e-4.

    Parameters
    ----------
    f : callable
        A function of one number (or array: it is then applied element-wise).
    x : float or ndarray
        Where to differentiate.

    Returns
    -------
    float or ndarray
        The estimate of f'(x), of whatever type ``f`` returns.
    """
    return (f(x + H) - f(x - H)) / (2 * H)


def numerical_gradient(f: Callable[[NDArray[np.floating]], Any],
                       x: NDArray[np.floating]) -> NDArray[np.floating]:
    """Gradient of the scalar f at array x by central differences, h = 1e-4.

    As in the book, x is perturbed IN PLACE, one element at a time in C order,
    and each element is restored before moving on; ``f`` receives x itself.
    Networks rely on this: ``numerical_gradient(lambda W: net.loss(x, t), net.params['W1'])``
    works because the layers hold the very array being perturbed.

    Parameters
    ----------
    f : callable
        Called with ``x`` itself; returns a real number (the loss).
    x : ndarray of float, any shape
        The point; writeable (it is perturbed in place and restored).

    Returns
    -------
    ndarray, the shape and dtype of ``x``
        The gradient.

    Raises
    ------
    TypeError
        If ``x`` is not a float ndarray.
    ValueError
        If ``x`` is read-only.
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


def gradient_descent(f: Callable[[NDArray[np.floating]], Any], init_x: ArrayLike,
                     lr: float = 0.01, step_num: int = 100) -> NDArray[np.floating]:
    """Minimise f from init_x with ``step_num`` steps of x -= lr * grad; returns x.

    Unlike the book's version, ``init_x`` is left unchanged (a copy is descended).

    Parameters
    ----------
    f : callable
        The function to minimise, of an array the shape of ``init_x``.
    init_x : array_like
        The starting point (integers are converted to float64, floats keep their dtype).
    lr : float
        The learning rate.
    step_num : int
        The number of steps.

    Returns
    -------
    ndarray of float, the shape of ``init_x``
        The point reached.
    """
    x = np.array(init_x, dtype=np.float64 if np.asarray(init_x).dtype.kind != "f" else None, copy=True)
    for _ in range(step_num):
        x -= lr * numerical_gradient(f, x)
    return x

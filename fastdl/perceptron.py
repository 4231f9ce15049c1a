"""Chapters 2-3: logic gates as perceptrons and the three-layer forward pass."""
from __future__ import annotations

from typing import Dict

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .functions import identity_function, sigmoid

__all__ = ["AND", "NAND", "OR", "XOR", "perceptron", "init_network", "forward"]


def perceptron(x: ArrayLike, w: ArrayLike, b: float) -> int:
    """1 if w . x + b > 0 else 0.

    Parameters
    ----------
    x : array_like, shape (n,)
        Inputs.
    w : array_like, shape (n,)
        Weights.
    b : float
        Bias.

    Returns
    -------
    int
        1 or 0.
    """
    return int(np.dot(np.asarray(w, dtype=np.float64), np.asarray(x, dtype=np.float64)) + b > 0)


def AND(x1: float, x2: float) -> int:
    """1 if both inputs are 1 (weights (0.5, 0.5), bias -0.7), else 0.

    Parameters
    ----------
    x1 : float
        The first input, 0 or 1 in the book.
    x2 : float
        The second input, 0 or 1 in the book.

    Returns
    -------
    int
        1 or 0.
    """
    return perceptron((x1, x2), (0.5, 0.5), -0.7)


def NAND(x1: float, x2: float) -> int:
    """0 if both inputs are 1, else 1: AND negated (weights (-0.5, -0.5), bias 0.7).

    Parameters
    ----------
    x1 : float
        The first input, 0 or 1 in the book.
    x2 : float
        The second input, 0 or 1 in the book.

    Returns
    -------
    int
        1 or 0.
    """
    return perceptron((x1, x2), (-0.5, -0.5), 0.7)


def OR(x1: float, x2: float) -> int:
    """1 if either input is 1 (weights (0.5, 0.5), bias -0.2), else 0.

    Parameters
    ----------
    x1 : float
        The first input, 0 or 1 in the book.
    x2 : float
        The second input, 0 or 1 in the book.

    Returns
    -------
    int
        1 or 0.
    """
    return perceptron((x1, x2), (0.5, 0.5), -0.2)


def XOR(x1: float, x2: float) -> int:
    """Not linearly separable: a second layer, AND(NAND, OR).

    Parameters
    ----------
    x1 : float
        The first input, 0 or 1 in the book.
    x2 : float
        The second input, 0 or 1 in the book.

    Returns
    -------
    int
        1 if exactly one input is 1, else 0.
    """
    return AND(NAND(x1, x2), OR(x1, x2))


def init_network() -> Dict[str, NDArray[np.float64]]:
    """The fixed 2-3-2-2 weights of chapter 3's example.

    Returns
    -------
    dict of str to ndarray of float64
        ``W1`` (2, 3), ``b1`` (3,), ``W2`` (3, 2), ``b2`` (2,), ``W3`` (2, 2), ``b3`` (2,).
    """
    return {
        "W1": np.array([[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]]),
        "b1": np.array([0.1, 0.2, 0.3]),
        "W2": np.array([[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]]),
        "b2": np.array([0.1, 0.2]),
        "W3": np.array([[0.1, 0.3], [0.2, 0.4]]),
        "b3": np.array([0.1, 0.2]),
    }


def forward(network: Dict[str, NDArray[np.floating]], x: ArrayLike) -> NDArray[np.floating]:
    """Two sigmoid layers and an identity output: a1 = x W1 + b1, z1 = sigmoid(a1), ...

    Parameters
    ----------
    network : dict of str to ndarray
        Weights and biases ``W1``, ``b1`` ... ``W3``, ``b3``, as from :func:`init_network`.
    x : array_like, shape (2,) or (N, 2)
        Inputs (converted to float64).

    Returns
    -------
    ndarray of float64, shape (2,) or (N, 2)
        The output layer's values.
    """
    z: NDArray[np.floating] = np.asarray(x, dtype=np.float64)
    for i in (1, 2):
        z = sigmoid(z @ network[f"W{i}"] + network[f"b{i}"])
    return identity_function(z @ network["W3"] + network["b3"])

"""Chapters 2-3: logic gates as perceptrons and the three-layer forward pass."""
import numpy as np

from .functions import identity_function, sigmoid

__all__ = ["AND", "NAND", "OR", "XOR", "perceptron", "init_network", "forward"]


def perceptron(x, w, b):
    """1 if w . x + b > 0 else 0."""
    return int(np.dot(np.asarray(w, dtype=np.float64), np.asarray(x, dtype=np.float64)) + b > 0)


def AND(x1, x2):
    return perceptron((x1, x2), (0.5, 0.5), -0.7)


def NAND(x1, x2):
    return perceptron((x1, x2), (-0.5, -0.5), 0.7)


def OR(x1, x2):
    return perceptron((x1, x2), (0.5, 0.5), -0.2)


def XOR(x1, x2):
    """Not linearly separable: a second layer, AND(NAND, OR)."""
    return AND(NAND(x1, x2), OR(x1, x2))


def init_network():
    """The fixed 2-3-2-2 weights of chapter 3's example."""
    return {
        "W1": np.array([[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]]),
        "b1": np.array([0.1, 0.2, 0.3]),
        "W2": np.array([[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]]),
        "b2": np.array([0.1, 0.2]),
        "W3": np.array([[0.1, 0.3], [0.2, 0.4]]),
        "b3": np.array([0.1, 0.2]),
    }


def forward(network, x):
    """Two sigmoid layers and an identity output: a1 = x W1 + b1, z1 = sigmoid(a1), ..."""
    z = np.asarray(x, dtype=np.float64)
    for i in (1, 2):
        z = sigmoid(z @ network[f"W{i}"] + network[f"b{i}"])
    return identity_function(z @ network["W3"] + network["b3"])
